/* SPDX-License-Identifier: MIT */
/*
 * Cross-domain platform tests: Dom0 (this process) against a guest peer.
 *
 * XMB_PLATFORM=xen: real Xen; the peer (xmb-xen-peer) runs in a PV DomU
 * started with the VM harness's xmb-domu.  Otherwise: the loopback
 * platform with the same peer code in a thread.  Same cases, both ways,
 * so the loopback platform is checked against the real thing.
 */
#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <poll.h>
#include <sstream>
#include <thread>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "bridge/platform/loopback/loopback_xen.h"
#include "peer.h"

using namespace xmb::xen;
using namespace xmb::xen::test;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using xmb::Status;

namespace {

constexpr int kTimeoutMs = 30000; /* QEMU TCG is slow; a hang still ends */

bool realXen()
{
	const char *p = std::getenv("XMB_PLATFORM");
	return p && std::string(p) == "xen";
}

std::string sh(const std::string &cmd)
{
	std::string out;
	FILE *f = ::popen(cmd.c_str(), "r");
	if (!f)
		return out;
	char buf[256];
	while (std::fgets(buf, sizeof(buf), f))
		out += buf;
	::pclose(f);
	while (!out.empty() && (out.back() == '\n' || out.back() == ' '))
		out.pop_back();
	return out;
}

std::string selfDir()
{
	char buf[PATH_MAX];
	ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
	if (n <= 0)
		return ".";
	std::string p(buf, n);
	return p.substr(0, p.rfind('/'));
}

/* One peer for the whole test program: booting a DomU per test would cost minutes. */
class World : public ::testing::Environment
{
public:
	void SetUp() override
	{
		if (realXen())
			setUpXen();
		else
			setUpLoopback();
	}

	void TearDown() override
	{
		if (dom0 && peer) {
			(void)call("exit");
		}
		stop = true;
		if (thread.joinable())
			thread.join();
		if (realXen() && peer)
			(void)std::system("xmb-domu destroy xmbpeer >/dev/null 2>&1");
	}

	/* Send a command to the peer and wait for its reply ("ok ..." / "err ..."). */
	std::string call(const std::string &cmd)
	{
		std::string seq = std::to_string(++seq_);
		std::string dir = XenStore::domainPath(peer) + "/data/xmbtest";
		if (!dom0->store->write(dir + "/cmd", seq + " " + cmd))
			return "err dom0 cannot write cmd";
		auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kTimeoutMs);
		while (std::chrono::steady_clock::now() < deadline) {
			auto r = dom0->store->read(dir + "/reply");
			if (r && r->rfind(seq + " ", 0) == 0)
				return r->substr(seq.size() + 1);
			std::this_thread::sleep_for(std::chrono::milliseconds(5));
		}
		return "err timeout waiting for the peer";
	}

	std::string key(const std::string &k)
	{
		auto r = dom0->store->read(XenStore::domainPath(peer) + "/data/xmbtest/" + k);
		return r ? *r : "";
	}

	std::vector<Gref> refs(const std::string &k)
	{
		std::vector<Gref> out;
		std::stringstream ss(key(k));
		std::string item;
		while (std::getline(ss, item, ','))
			out.push_back(static_cast<Gref>(std::stoul(item)));
		return out;
	}

	std::string skipReason;
	std::unique_ptr<Platform> dom0;
	DomId peer = 0;
	std::shared_ptr<LoopbackXen> hv;

private:
	void setUpLoopback()
	{
		hv = LoopbackXen::create();
		peer = 5;
		(void)hv->createDomain(peer, "xmbpeer");
		auto d0 = hv->open(0);
		auto pp = hv->open(peer);
		if (!d0 || !pp) {
			skipReason = "loopback platform failed to open";
			return;
		}
		dom0 = std::move(*d0);
		peerPlatform = std::move(*pp);
		thread = std::thread([this] { runPeer(*peerPlatform, &stop); });
		waitReady();
	}

	void setUpXen()
	{
		auto d0 = openRealPlatform();
		if (!d0) {
			skipReason = "not on Xen: " + d0.error().message;
			return;
		}
		dom0 = std::move(*d0);
		std::string bin = std::getenv("XMB_PEER_BIN") ? std::getenv("XMB_PEER_BIN")
							      : selfDir() + "/xmb-xen-peer";
		std::string out = sh("xmb-domu start xmbpeer -- " + bin + " 2>&1");
		std::string id = sh("xl domid xmbpeer 2>/dev/null");
		if (id.empty()) {
			skipReason = "could not start the peer DomU: " + out;
			ADD_FAILURE() << skipReason;
			return;
		}
		peer = static_cast<DomId>(std::stoul(id));
		waitReady();
	}

	void waitReady()
	{
		auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kTimeoutMs * 4);
		while (std::chrono::steady_clock::now() < deadline) {
			if (key("ready") == "1")
				return;
			std::this_thread::sleep_for(std::chrono::milliseconds(20));
		}
		skipReason = "peer did not become ready";
		ADD_FAILURE() << skipReason << " (dom" << peer << ")";
	}

	std::unique_ptr<Platform> peerPlatform;
	std::thread thread;
	std::atomic<bool> stop{ false };
	unsigned seq_ = 0;
};

World *world;

class CrossDomain : public ::testing::Test
{
protected:
	void SetUp() override
	{
		if (!world->skipReason.empty()) {
			if (!realXen() || world->skipReason.rfind("not on Xen", 0) == 0)
				GTEST_SKIP() << world->skipReason;
			FAIL() << world->skipReason;
		}
		w = world;
	}
	World *w = nullptr;
};

} /* namespace */

TEST_F(CrossDomain, Dom0MapsGuestGrantedPagesInOneBatch)
{
	auto refs = w->refs("refs");
	ASSERT_EQ(refs.size(), static_cast<size_t>(kPeerDataPages));
	auto m = w->dom0->grants->map(w->peer, refs, true);
	ASSERT_TRUE(m) << m.error().message;
	for (int i = 0; i < kPeerDataPages; i++) {
		EXPECT_EQ(m->data()[i * kPageSize], kPeerPattern + i) << "page " << i;
		EXPECT_EQ(m->data()[i * kPageSize + kPageSize - 1], kPeerPattern + i) << "page " << i;
	}
	m->reset();
	EXPECT_EQ(w->dom0->grants->mappedPages(w->peer), 0u);
}

TEST_F(CrossDomain, BatchWithABadRefMapsNothingAndNamesTheElement)
{
	auto refs = w->refs("refs");
	refs.push_back(refs.back() + 4000); /* never granted */
	auto m = w->dom0->grants->map(w->peer, refs, false);
	ASSERT_FALSE(m);
	EXPECT_THAT(m.error().message, HasSubstr("element " + std::to_string(refs.size() - 1)));
	EXPECT_EQ(w->dom0->grants->mappedPages(w->peer), 0u);
	/* And the good refs still map afterwards: nothing half-mapped was left. */
	refs.pop_back();
	EXPECT_TRUE(w->dom0->grants->map(w->peer, refs, false));
}

TEST_F(CrossDomain, PagesGrantedToAnotherDomainAreRefused)
{
	auto other = w->refs("other-ref");
	ASSERT_EQ(other.size(), 1u);
	auto m = w->dom0->grants->map(w->peer, other, false);
	ASSERT_FALSE(m) << "a grant for another domain must not map in Dom0";
	EXPECT_THAT(m.error().message, HasSubstr("element 0"));
}

TEST_F(CrossDomain, ReadOnlyGrantRefusesWritableMapping)
{
	auto ro = w->refs("ro-ref");
	ASSERT_EQ(ro.size(), 1u);
	EXPECT_FALSE(w->dom0->grants->map(w->peer, ro, true));
	auto m = w->dom0->grants->map(w->peer, ro, false);
	ASSERT_TRUE(m) << m.error().message;
	EXPECT_EQ(m->data()[123], kPeerRoPattern);
}

TEST_F(CrossDomain, GuestMapsPagesDom0Shares)
{
	auto share = w->dom0->grants->share(w->peer, 2, true);
	ASSERT_TRUE(share) << share.error().message;
	std::memset(share->data(), kDom0Pattern, share->size());
	std::string refs;
	for (Gref r : share->refs())
		refs += (refs.empty() ? "" : ",") + std::to_string(r);
	EXPECT_EQ(w->call("map " + refs), "ok");
	EXPECT_EQ(share->data()[kPageSize], kPeerWrites) << "the guest's write must land in our page";
	/* The guest unmapped after use, so access can end now. */
	EXPECT_TRUE(share->endAccess());
}

TEST_F(CrossDomain, EventChannelsWorkBothWays)
{
	/* Guest -> Dom0 direction: we bind to the port the peer published. */
	auto fromPeer = w->dom0->events->bindInterdomain(w->peer, std::stoul(w->key("port")));
	ASSERT_TRUE(fromPeer) << fromPeer.error().message;
	/* Dom0 -> guest direction: the peer binds to a port we offer. */
	auto toPeer = w->dom0->events->allocUnbound(w->peer);
	ASSERT_TRUE(toPeer) << toPeer.error().message;
	EXPECT_THAT(w->call("bind " + std::to_string(toPeer->port())), StartsWith("ok"));

	std::string reply;
	std::thread waiter([&] { reply = w->call("wait-event 20000"); });
	/* Keep notifying until the peer, now waiting, has seen one (it latches anyway). */
	ASSERT_TRUE(toPeer->notify());
	waiter.join();
	EXPECT_EQ(reply, "ok");

	pollfd pfd{ w->dom0->events->fd(), POLLIN, 0 };
	ASSERT_EQ(::poll(&pfd, 1, kTimeoutMs), 1) << "no event from the guest";
	auto p = w->dom0->events->pending();
	ASSERT_TRUE(p && p->has_value());
	EXPECT_EQ(**p, fromPeer->port());
	EXPECT_TRUE(fromPeer->unmask());
}

TEST_F(CrossDomain, WatchSeesTheGuestsWrite)
{
	std::string path = XenStore::domainPath(w->peer) + "/data/xmbtest/ping";
	ASSERT_TRUE(w->dom0->store->watch(path, "ping"));
	/* The registration event comes first. */
	pollfd pfd{ w->dom0->store->fd(), POLLIN, 0 };
	ASSERT_EQ(::poll(&pfd, 1, kTimeoutMs), 1);
	while (w->dom0->store->readWatch()) {
	}
	EXPECT_EQ(w->call("write ping pong"), "ok");
	bool seen = false;
	auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kTimeoutMs);
	while (!seen && std::chrono::steady_clock::now() < deadline) {
		if (::poll(&pfd, 1, 100) == 1)
			while (auto ev = w->dom0->store->readWatch())
				seen |= ev->path == path && ev->token == "ping";
	}
	EXPECT_TRUE(seen);
	EXPECT_TRUE(w->dom0->store->unwatch(path, "ping"));
}

TEST_F(CrossDomain, GuestCannotReadDom0NodesUntilGrantedRead)
{
	const std::string node = "/local/domain/0/xmbtest/secret";
	ASSERT_TRUE(w->dom0->store->write(node, "s3cret"));
	ASSERT_TRUE(w->dom0->store->setPermissions(kNoTx, node, { { 0, XsPerm::None } }));
	EXPECT_THAT(w->call("read " + node), StartsWith("err " + std::to_string(-EACCES)));

	ASSERT_TRUE(w->dom0->store->setPermissions(kNoTx, node,
						   { { 0, XsPerm::None }, { w->peer, XsPerm::Read } }));
	EXPECT_EQ(w->call("read " + node), "ok s3cret");
	EXPECT_TRUE(w->dom0->store->rm(kNoTx, "/local/domain/0/xmbtest"));
}

TEST_F(CrossDomain, TransactionConflictsWithAConcurrentWriteOfTheSameNode)
{
	std::string node = XenStore::domainPath(w->peer) + "/data/xmbtest/tx";
	ASSERT_TRUE(w->dom0->store->write(node, "0"));
	auto tx = w->dom0->store->transactionStart();
	ASSERT_TRUE(tx);
	ASSERT_TRUE(w->dom0->store->read(*tx, node));
	ASSERT_TRUE(w->dom0->store->write(*tx, node, "dom0"));
	EXPECT_EQ(w->call("write tx guest"), "ok");
	Status end = w->dom0->store->transactionEnd(*tx, false);
	ASSERT_FALSE(end);
	EXPECT_EQ(end.error().code, -EAGAIN);
	auto v = w->dom0->store->read(node);
	ASSERT_TRUE(v);
	EXPECT_EQ(*v, "guest");
}

TEST_F(CrossDomain, GuestReleasingMappedPagesDoesNotPullThemFromUnderDom0)
{
	auto refs = w->refs("refs");
	auto m = w->dom0->grants->map(w->peer, refs, false);
	ASSERT_TRUE(m) << m.error().message;
	EXPECT_EQ(w->call("release"), "ok");
	/* XSA-396: the page stays ours until we unmap, and keeps its content. */
	EXPECT_EQ(m->data()[0], kPeerPattern);
	m->reset();
}

int main(int argc, char **argv)
{
	::testing::InitGoogleTest(&argc, argv);
	world = new World;
	::testing::AddGlobalTestEnvironment(world);
	return RUN_ALL_TESTS();
}
