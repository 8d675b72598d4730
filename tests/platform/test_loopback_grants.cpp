/* SPDX-License-Identifier: MIT */
/* Loopback grant semantics: the same rules as Xen's grant tables. */
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <gmock/gmock.h>

#include "loopback_fixture.h"

using namespace xmb::xen;
using namespace xmb::xen::test;
using ::testing::HasSubstr;
using xmb::UniqueFD;

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

/*
 * exp_from_refs: Dom0 maps the guest's pages for as long as anyone holds the
 * dma-buf (a driver's import), not as long as our fd; exportedDmaBufs()
 * counts an export until gntdev says it is released.
 */
TEST_F(LoopbackGrants, AnExportIsHeldUntilItsLastHolderLetsGo)
{
	hv->emulateGntdevDmabuf(true);
	hv->emulateDmabufExport(true);
	auto share = guest->grants->share(0, 2, true);
	ASSERT_TRUE(share);
	auto buf = dom0->grants->dmabufFromRefs(1, share->refs(), true);
	ASSERT_TRUE(buf) << buf.error().message;
	EXPECT_EQ(buf->size(), 2 * kPageSize);
	EXPECT_EQ(dom0->grants->exportedDmaBufs(1), 1u);
	const int number = buf->fd();
	UniqueFD import = UniqueFD(::fcntl(number, F_DUPFD_CLOEXEC, 0)); /* a driver's reference */
	ASSERT_TRUE(import);
	buf->reset();
	EXPECT_EQ(dom0->grants->exportedDmaBufs(1), 1u) << "the driver still holds it";
	UniqueFD other(::open("/dev/null", O_RDONLY | O_CLOEXEC));
	EXPECT_NE(other.get(), number) << "the export's fd number stays reserved while it is held";
	import.reset();
	EXPECT_EQ(dom0->grants->exportedDmaBufs(1), 0u) << "released once the driver let go";
	auto again = dom0->grants->dmabufFromRefs(1, share->refs(), true);
	ASSERT_TRUE(again);
	again->reset();
	EXPECT_EQ(dom0->grants->exportedDmaBufs(1), 0u) << "nobody else held it: released at once";
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

/* gntdev dma-buf import (imp_to_refs) with the kernel's rules. */
namespace {
UniqueFD pagesFd(size_t pages)
{
	UniqueFD fd(::memfd_create("xmb-test-dmabuf", MFD_CLOEXEC));
	if (fd && ::ftruncate(fd.get(), static_cast<off_t>(pages * kPageSize)) < 0)
		fd.reset();
	return fd;
}
} /* namespace */

TEST_F(LoopbackGrants, DmabufImportIsRefusedWithoutGntdevDmabuf)
{
	UniqueFD fd = pagesFd(2);
	ASSERT_TRUE(fd);
	EXPECT_FALSE(dom0->grants->probeDmaBuf().importToRefs);
	auto g = dom0->grants->refsFromDmabuf(1, fd.get(), 2);
	ASSERT_FALSE(g);
	EXPECT_EQ(g.error().code, -ENOTTY);
}

TEST_F(LoopbackGrants, DmabufImportGrantsTheBuffersOwnPagesWritable)
{
	hv->emulateGntdevDmabuf(true);
	EXPECT_TRUE(dom0->grants->probeDmaBuf().importToRefs);
	UniqueFD fd = pagesFd(2);
	ASSERT_TRUE(fd);
	auto *mine = static_cast<uint8_t *>(
		::mmap(nullptr, 2 * kPageSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0));
	ASSERT_NE(mine, MAP_FAILED);
	auto wrong = dom0->grants->refsFromDmabuf(1, fd.get(), 3);
	ASSERT_FALSE(wrong) << "the kernel wants the buffer's exact page count";
	EXPECT_EQ(wrong.error().code, -EINVAL);

	auto g = dom0->grants->refsFromDmabuf(1, fd.get(), 2);
	ASSERT_TRUE(g) << g.error().message;
	ASSERT_EQ(g->refs().size(), 2u);
	auto map = guest->grants->map(0, g->refs(), true);
	ASSERT_TRUE(map) << "imports are granted writable: " << map.error().message;
	mine[kPageSize + 3] = 0x42;
	EXPECT_EQ(map->data()[kPageSize + 3], 0x42) << "the guest sees the buffer itself";
	map->data()[9] = 0x24;
	EXPECT_EQ(mine[9], 0x24) << "...and can write it";
	::munmap(mine, 2 * kPageSize);
}

TEST_F(LoopbackGrants, ALetGoImportStaysGrantedUntilTheGuestIsGone)
{
	hv->emulateGntdevDmabuf(true);
	UniqueFD fd = pagesFd(1);
	ASSERT_TRUE(fd);
	const size_t before = hv->grantEntries(0);
	auto g = dom0->grants->refsFromDmabuf(1, fd.get(), 1);
	ASSERT_TRUE(g);
	auto map = guest->grants->map(0, g->refs(), true);
	ASSERT_TRUE(map);
	g->reset();
	fd.reset(); /* Dom0 let go of the buffer entirely */
	map->data()[0] = 1; /* still the guest's to touch: nothing was freed under it */
	/*
	 * Not ended while the guest may map it (Linux's deferred end takes a
	 * page reference that breaks dma-contig buffers): kept, counted, until
	 * the domain is gone.
	 */
	EXPECT_EQ(hv->grantEntries(0), before + 1);
	EXPECT_EQ(dom0->grants->quarantinedPages(1), 1u);
	map->reset();
	EXPECT_EQ(hv->grantEntries(0), before + 1) << "an unmap is not visible to Dom0 on real Xen";
	dom0->grants->domainGone(1);
	EXPECT_EQ(dom0->grants->quarantinedPages(1), 0u);
	EXPECT_EQ(hv->grantEntries(0), before) << "ended once the domain is gone";
}
