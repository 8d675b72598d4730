/* SPDX-License-Identifier: MIT */
/* Loopback grant semantics: the same rules as Xen's grant tables. */
#include <cerrno>
#include <cstring>

#include <gmock/gmock.h>

#include "loopback_fixture.h"

using namespace xmb::xen;
using namespace xmb::xen::test;
using ::testing::HasSubstr;

using LoopbackGrants = LoopbackTest;

TEST_F(LoopbackGrants, MappedPagesAreTheGrantersPagesNotACopy)
{
	auto share = guest->grants->share(0, 3, true);
	ASSERT_TRUE(share) << share.error().message;
	std::memset(share->data(), 0x5a, share->size());

	auto map = dom0->grants->map(1, share->refs(), true);
	ASSERT_TRUE(map) << map.error().message;
	ASSERT_EQ(map->size(), 3 * kPageSize);
	EXPECT_EQ(map->data()[2 * kPageSize + 7], 0x5a);

	/* Writes go both ways through the same physical page. */
	map->data()[kPageSize] = 0x11;
	EXPECT_EQ(share->data()[kPageSize], 0x11);
	share->data()[5] = 0x22;
	EXPECT_EQ(map->data()[5], 0x22);
}

TEST_F(LoopbackGrants, OnlyTheGranteeMayMap)
{
	ASSERT_TRUE(hv->createDomain(2, "other"));
	auto other = hv->open(2);
	ASSERT_TRUE(other);
	auto share = guest->grants->share(0, 1, true);
	ASSERT_TRUE(share);

	auto map = (*other)->grants->map(1, share->refs(), false);
	ASSERT_FALSE(map);
	EXPECT_EQ(map.error().code, -EPERM);
}

TEST_F(LoopbackGrants, ReadOnlyGrantRefusesWritableMap)
{
	auto share = guest->grants->share(0, 1, false);
	ASSERT_TRUE(share);
	auto rw = dom0->grants->map(1, share->refs(), true);
	ASSERT_FALSE(rw);
	EXPECT_EQ(rw.error().code, -EACCES);
	auto ro = dom0->grants->map(1, share->refs(), false);
	EXPECT_TRUE(ro) << ro.error().message;
}

TEST_F(LoopbackGrants, BatchWithOneBadElementMapsNothingAndNamesIt)
{
	auto share = guest->grants->share(0, 4, true);
	ASSERT_TRUE(share);
	std::vector<Gref> refs = share->refs();
	refs[2] = 9999; /* never granted */

	auto map = dom0->grants->map(1, refs, true);
	ASSERT_FALSE(map);
	EXPECT_EQ(map.error().code, -ENOENT);
	EXPECT_THAT(map.error().message, HasSubstr("element 2"));
	EXPECT_THAT(map.error().message, HasSubstr("9999"));
	/* Nothing stays mapped from the good elements, and nothing is charged. */
	EXPECT_EQ(hv->mappedGrants(1), 0u);
	EXPECT_EQ(dom0->grants->mappedPages(1), 0u);
}

TEST_F(LoopbackGrants, MappedGrantCannotBeEnded)
{
	auto share = guest->grants->share(0, 2, true);
	ASSERT_TRUE(share);
	auto map = dom0->grants->map(1, share->refs(), false);
	ASSERT_TRUE(map);

	Status end = share->endAccess();
	ASSERT_FALSE(end);
	EXPECT_EQ(end.error().code, -EBUSY);
	EXPECT_TRUE(*share) << "the share stays valid after a refused end";

	map->reset();
	EXPECT_TRUE(share->endAccess());
	EXPECT_EQ(hv->grantEntries(1), 0u);
}

TEST_F(LoopbackGrants, RevokedGrantCannotBeMapped)
{
	auto share = guest->grants->share(0, 1, true);
	ASSERT_TRUE(share);
	std::vector<Gref> refs = share->refs();
	ASSERT_TRUE(share->endAccess());

	auto map = dom0->grants->map(1, refs, false);
	ASSERT_FALSE(map);
	EXPECT_EQ(map.error().code, -ENOENT);
}

TEST_F(LoopbackGrants, ReleaseWhileMappedIsDeferredAndRefNotReused)
{
	auto share = guest->grants->share(0, 1, true);
	ASSERT_TRUE(share);
	Gref ref = share->refs()[0];
	share->data()[0] = 0x77;
	auto map = dom0->grants->map(1, share->refs(), false);
	ASSERT_TRUE(map);

	share->reset(); /* guest lets go while Dom0 still maps: XSA-396 territory */
	EXPECT_EQ(map->data()[0], 0x77) << "mapped page must stay valid";

	/* The ref must not be handed out again while mapped. */
	auto again = guest->grants->share(0, 1, true);
	ASSERT_TRUE(again);
	EXPECT_NE(again->refs()[0], ref);

	map->reset();
	EXPECT_EQ(hv->grantEntries(1), 1u) << "deferred entry freed at unmap";
}

TEST_F(LoopbackGrants, PerDomainPageLimitIsEnforced)
{
	auto share = guest->grants->share(0, 8, true);
	ASSERT_TRUE(share);
	dom0->grants->setPageLimit(1, 10);
	auto a = dom0->grants->map(1, std::span(share->refs()).first(6), false);
	ASSERT_TRUE(a);
	auto b = dom0->grants->map(1, std::span(share->refs()).last(6), false);
	ASSERT_FALSE(b);
	EXPECT_EQ(b.error().code, -ENOSPC);
	EXPECT_THAT(b.error().message, HasSubstr("limit 10"));
	a->reset();
	EXPECT_EQ(dom0->grants->mappedPages(1), 0u);
	EXPECT_TRUE(dom0->grants->map(1, std::span(share->refs()).last(6), false));
}

TEST_F(LoopbackGrants, GrantTableFullIsReported)
{
	hv->setGrantTableSize(1, 4);
	auto a = guest->grants->share(0, 4, true);
	ASSERT_TRUE(a);
	auto b = guest->grants->share(0, 1, true);
	ASSERT_FALSE(b);
	EXPECT_EQ(b.error().code, -ENOSPC);
}

TEST_F(LoopbackGrants, MappingsOfADeadDomainStayValidNewOnesFail)
{
	auto share = guest->grants->share(0, 1, true);
	ASSERT_TRUE(share);
	share->data()[0] = 0x42;
	auto map = dom0->grants->map(1, share->refs(), false);
	ASSERT_TRUE(map);
	ASSERT_TRUE(hv->destroyDomain(1));

	EXPECT_EQ(map->data()[0], 0x42);
	auto again = dom0->grants->map(1, share->refs(), false);
	ASSERT_FALSE(again);
	EXPECT_EQ(again.error().code, -ESRCH);
}

TEST_F(LoopbackGrants, DmaBufProbeReportsNoSupport)
{
	DmaBufSupport s = dom0->grants->probeDmaBuf();
	EXPECT_FALSE(s.exportFromRefs);
	EXPECT_FALSE(s.importToRefs);
	EXPECT_FALSE(s.detail.empty());
	auto share = guest->grants->share(0, 1, true);
	ASSERT_TRUE(share);
	auto buf = dom0->grants->dmabufFromRefs(1, share->refs(), false);
	ASSERT_FALSE(buf);
	EXPECT_EQ(buf.error().code, -ENOTTY);
}

TEST_F(LoopbackGrants, MappingMovesOwnership)
{
	auto share = guest->grants->share(0, 1, true);
	ASSERT_TRUE(share);
	auto map = dom0->grants->map(1, share->refs(), false);
	ASSERT_TRUE(map);
	GrantMapping moved = std::move(*map);
	EXPECT_FALSE(*map);
	EXPECT_TRUE(moved);
	EXPECT_EQ(hv->mappedGrants(1), 1u);
	moved.reset();
	EXPECT_EQ(hv->mappedGrants(1), 0u);
}
