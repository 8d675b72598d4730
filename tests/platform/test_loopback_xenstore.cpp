/* SPDX-License-Identifier: MIT */
/* Loopback XenStore: Xen's permission, watch and transaction rules. */
#include <cerrno>
#include <set>

#include <gmock/gmock.h>

#include "loopback_fixture.h"

using namespace xmb::xen;
using namespace xmb::xen::test;
using ::testing::ElementsAre;

using LoopbackXenStore = LoopbackTest;

namespace {

std::vector<WatchEvent> drain(XenStore &xs)
{
	std::vector<WatchEvent> out;
	while (auto ev = xs.readWatch())
		out.push_back(*ev);
	return out;
}

bool sawPath(const std::vector<WatchEvent> &evs, const std::string &path)
{
	for (const auto &e : evs)
		if (e.path == path)
			return true;
	return false;
}

} /* namespace */

TEST_F(LoopbackXenStore, WriteThenReadBack)
{
	ASSERT_TRUE(dom0->store->write("/local/domain/0/backend/x", "42"));
	auto v = dom0->store->read("/local/domain/0/backend/x");
	ASSERT_TRUE(v);
	EXPECT_EQ(*v, "42");
	auto missing = dom0->store->read("/local/domain/0/nope");
	ASSERT_FALSE(missing);
	EXPECT_EQ(missing.error().code, -ENOENT);
}

TEST_F(LoopbackXenStore, RelativePathsAreInTheDomainsOwnDirectory)
{
	ASSERT_TRUE(guest->store->write("data/hello", "world"));
	auto v = dom0->store->read("/local/domain/1/data/hello");
	ASSERT_TRUE(v);
	EXPECT_EQ(*v, "world");
	auto id = guest->store->selfDomid();
	ASSERT_TRUE(id);
	EXPECT_EQ(*id, 1);
}

TEST_F(LoopbackXenStore, GuestCannotReadOrWriteDom0Nodes)
{
	ASSERT_TRUE(dom0->store->write("/local/domain/0/secret", "x"));
	auto r = guest->store->read("/local/domain/0/secret");
	ASSERT_FALSE(r);
	EXPECT_EQ(r.error().code, -EACCES);
	Status w = guest->store->write("/local/domain/0/evil", "x");
	ASSERT_FALSE(w);
	EXPECT_EQ(w.error().code, -EACCES);
}

TEST_F(LoopbackXenStore, GuestCannotReadAnotherGuestsDirectory)
{
	ASSERT_TRUE(hv->createDomain(2, "other"));
	auto other = hv->open(2);
	ASSERT_TRUE(other);
	ASSERT_TRUE(guest->store->write("data/mine", "1"));
	auto r = (*other)->store->read("/local/domain/1/data/mine");
	ASSERT_FALSE(r);
	EXPECT_EQ(r.error().code, -EACCES);
}

TEST_F(LoopbackXenStore, AclEntryGrantsReadToOneDomain)
{
	const std::string be = "/local/domain/0/backend/vcamera/1/0";
	ASSERT_TRUE(dom0->store->write(be + "/state", "1"));
	ASSERT_TRUE(dom0->store->setPermissions(kNoTx, be, { { 0, XsPerm::None }, { 1, XsPerm::Read } }));
	ASSERT_TRUE(dom0->store->setPermissions(kNoTx, be + "/state",
						{ { 0, XsPerm::None }, { 1, XsPerm::Read } }));
	auto r = guest->store->read(be + "/state");
	ASSERT_TRUE(r) << r.error().message;
	EXPECT_EQ(*r, "1");
	Status w = guest->store->write(be + "/state", "4");
	ASSERT_FALSE(w);
	EXPECT_EQ(w.error().code, -EACCES);
}

TEST_F(LoopbackXenStore, NewNodesInheritPermsAndUnprivilegedCreatorOwns)
{
	ASSERT_TRUE(guest->store->write("device/vcamera/0/state", "1"));
	auto perms = dom0->store->getPermissions(kNoTx, "/local/domain/1/device/vcamera/0/state");
	ASSERT_TRUE(perms);
	ASSERT_FALSE(perms->empty());
	EXPECT_EQ((*perms)[0].dom, 1);
}

TEST_F(LoopbackXenStore, OnlyOwnerChangesPermsAndGuestCannotGiveAway)
{
	ASSERT_TRUE(guest->store->write("data/x", "1"));
	Status away = guest->store->setPermissions(kNoTx, "data/x", { { 0, XsPerm::None } });
	ASSERT_FALSE(away);
	EXPECT_EQ(away.error().code, -EPERM);
	EXPECT_TRUE(guest->store->setPermissions(kNoTx, "data/x", { { 1, XsPerm::Read } }));
}

TEST_F(LoopbackXenStore, WatchFiresOnRegistrationAndOnChangesBelow)
{
	ASSERT_TRUE(dom0->store->watch("/local/domain/1/device", "tok"));
	ASSERT_TRUE(readable(dom0->store->fd(), 1000));
	auto first = drain(*dom0->store);
	ASSERT_EQ(first.size(), 1u);
	EXPECT_EQ(first[0].path, "/local/domain/1/device");
	EXPECT_EQ(first[0].token, "tok");
	EXPECT_FALSE(readable(dom0->store->fd()));

	ASSERT_TRUE(guest->store->write("device/vcamera/0/state", "3"));
	ASSERT_TRUE(readable(dom0->store->fd(), 1000));
	auto evs = drain(*dom0->store);
	EXPECT_TRUE(sawPath(evs, "/local/domain/1/device/vcamera/0/state"));
	/* Unrelated writes do not fire it. */
	ASSERT_TRUE(guest->store->write("data/other", "1"));
	EXPECT_TRUE(drain(*dom0->store).empty());
}

TEST_F(LoopbackXenStore, WatchEventsAreFilteredByReadPermission)
{
	ASSERT_TRUE(guest->store->watch("/local/domain/0/backend", "b"));
	drain(*guest->store);
	ASSERT_TRUE(dom0->store->write("/local/domain/0/backend/hidden", "1"));
	EXPECT_TRUE(drain(*guest->store).empty()) << "a guest must not learn of nodes it cannot read";
}

TEST_F(LoopbackXenStore, RemovingASubtreeFiresWatchesInsideIt)
{
	ASSERT_TRUE(guest->store->write("device/vcamera/0/state", "4"));
	ASSERT_TRUE(dom0->store->watch("/local/domain/1/device/vcamera/0/state", "s"));
	drain(*dom0->store);
	ASSERT_TRUE(guest->store->rm("device/vcamera"));
	auto evs = drain(*dom0->store);
	ASSERT_EQ(evs.size(), 1u);
	EXPECT_EQ(evs[0].path, "/local/domain/1/device/vcamera/0/state");
}

TEST_F(LoopbackXenStore, UnwatchDropsQueuedEvents)
{
	ASSERT_TRUE(dom0->store->watch("/local/domain/1", "w"));
	ASSERT_TRUE(guest->store->write("data/a", "1"));
	ASSERT_TRUE(dom0->store->unwatch("/local/domain/1", "w"));
	EXPECT_TRUE(drain(*dom0->store).empty());
}

TEST_F(LoopbackXenStore, IntroduceAndReleaseDomainFire)
{
	ASSERT_TRUE(dom0->store->watch("@introduceDomain", "in"));
	ASSERT_TRUE(dom0->store->watch("@releaseDomain", "out"));
	drain(*dom0->store);
	ASSERT_TRUE(hv->createDomain(3));
	auto in = drain(*dom0->store);
	ASSERT_FALSE(in.empty());
	EXPECT_EQ(in.back().token, "in");
	ASSERT_TRUE(hv->destroyDomain(3));
	auto out = drain(*dom0->store);
	ASSERT_FALSE(out.empty());
	EXPECT_EQ(out.back().token, "out");
	EXPECT_FALSE(dom0->store->read("/local/domain/3/domid"));
}

TEST_F(LoopbackXenStore, TransactionIsInvisibleUntilCommit)
{
	auto tx = dom0->store->transactionStart();
	ASSERT_TRUE(tx);
	ASSERT_TRUE(dom0->store->write(*tx, "/local/domain/0/t/a", "1"));
	EXPECT_FALSE(dom0->store->read("/local/domain/0/t/a"));
	auto inside = dom0->store->read(*tx, "/local/domain/0/t/a");
	ASSERT_TRUE(inside);
	ASSERT_TRUE(dom0->store->transactionEnd(*tx, false));
	auto after = dom0->store->read("/local/domain/0/t/a");
	ASSERT_TRUE(after);
	EXPECT_EQ(*after, "1");
}

TEST_F(LoopbackXenStore, ConflictingTransactionFailsWithEagainAndRetrySucceeds)
{
	auto tx = dom0->store->transactionStart();
	ASSERT_TRUE(tx);
	ASSERT_TRUE(dom0->store->write(*tx, "/local/domain/0/t/a", "1"));
	ASSERT_TRUE(guest->store->write("data/concurrent", "x")); /* someone else commits */
	Status end = dom0->store->transactionEnd(*tx, false);
	ASSERT_FALSE(end);
	EXPECT_EQ(end.error().code, -EAGAIN);
	EXPECT_FALSE(dom0->store->read("/local/domain/0/t/a"));

	int runs = 0;
	Status s = runTransaction(*dom0->store, [&](TxId t) {
		runs++;
		return dom0->store->write(t, "/local/domain/0/t/a", "2");
	});
	ASSERT_TRUE(s) << s.error().message;
	EXPECT_EQ(runs, 1);
}

TEST_F(LoopbackXenStore, AbortedTransactionChangesNothing)
{
	Status s = runTransaction(*dom0->store, [&](TxId t) -> Status {
		(void)dom0->store->write(t, "/local/domain/0/t/b", "1");
		return xmb::Error{ -ECANCELED, "changed my mind" };
	});
	ASSERT_FALSE(s);
	EXPECT_FALSE(dom0->store->read("/local/domain/0/t/b"));
}

TEST_F(LoopbackXenStore, ListShowsChildren)
{
	ASSERT_TRUE(dom0->store->write("/local/domain/0/l/a", ""));
	ASSERT_TRUE(dom0->store->write("/local/domain/0/l/b", ""));
	auto l = dom0->store->list(kNoTx, "/local/domain/0/l");
	ASSERT_TRUE(l);
	EXPECT_THAT(*l, ElementsAre("a", "b"));
}

TEST_F(LoopbackXenStore, InvalidPathsAreRejected)
{
	for (const char *p : { "/local//x", "/local/x/", "/local/a b", "/local/\xff" }) {
		Status s = dom0->store->write(p, "v");
		ASSERT_FALSE(s) << p;
		EXPECT_EQ(s.error().code, -EINVAL) << p;
	}
}
