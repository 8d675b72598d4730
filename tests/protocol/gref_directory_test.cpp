/* SPDX-License-Identifier: MIT */
/*
 * GrefDirectoryWalker against well-formed and hostile directory chains, and
 * writeGrefDirectory round trips.  "Guest memory" is a map gref -> page.
 */

#include <cerrno>
#include <cstring>
#include <map>
#include <numeric>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "protocol/gref_directory.h"

namespace xmb::proto {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using Mode = GrefDirectoryWalker::Mode;

constexpr uint64_t kPage = kDirPageSize;
constexpr uint64_t kCap = 1 << 20;

using PageBytes = std::vector<uint8_t>;

struct GuestMemory {
	std::map<Gref, PageBytes> pages;

	PageBytes &page(Gref g)
	{
		auto &p = pages[g];
		p.resize(kPage);
		return p;
	}
	void setNext(Gref page_, Gref next) { std::memcpy(page(page_).data(), &next, sizeof(next)); }
	void setEntry(Gref page_, size_t i, Gref v)
	{
		std::memcpy(page(page_).data() + sizeof(Gref) * (1 + i), &v, sizeof(v));
	}
};

std::vector<Gref> dataGrefs(size_t n, Gref base = 10000)
{
	std::vector<Gref> g(n);
	std::iota(g.begin(), g.end(), base);
	return g;
}

std::vector<Gref> dirGrefsFor(size_t dataPages, Gref base = 100)
{
	return dataGrefs(dirPagesFor(dataPages), base);
}

/* A well-formed directory describing \a grefs, on pages \a dirs. */
void writeDirectory(GuestMemory &mem, const std::vector<Gref> &dirs, const std::vector<Gref> &grefs)
{
	std::vector<uint8_t *> pages;
	for (Gref d : dirs)
		pages.push_back(mem.page(d).data());
	Status s = writeGrefDirectory(pages, dirs, grefs);
	ASSERT_TRUE(s.ok()) << s.error().message;
}

struct Walk {
	Status status;
	size_t fed = 0;
};

/* Drive the walker the way the backend does: map what it names, feed, repeat. */
Walk walk(GrefDirectoryWalker &w, GuestMemory &mem)
{
	Walk r;
	while (auto next = w.nextPage()) {
		auto it = mem.pages.find(*next);
		if (it == mem.pages.end()) {
			ADD_FAILURE() << "walker asked for unmapped gref " << *next;
			break;
		}
		r.fed++;
		r.status = w.feed(it->second);
		if (!r.status.ok())
			break;
		if (r.fed > 1000) {
			ADD_FAILURE() << "walk does not terminate";
			break;
		}
	}
	return r;
}

/* ---- well-formed directories ---- */

TEST(GrefDirectoryGeometry, A4KiBPageHolds1023Grefs)
{
	EXPECT_EQ(kGrefsPerDirPage, 1023u);
	EXPECT_EQ(pagesFor(0), 0u);
	EXPECT_EQ(pagesFor(1), 1u);
	EXPECT_EQ(pagesFor(4096), 1u);
	EXPECT_EQ(pagesFor(4097), 2u);
	EXPECT_EQ(dirPagesFor(1023), 1u);
	EXPECT_EQ(dirPagesFor(1024), 2u);
	EXPECT_EQ(dirPagesFor(2500), 3u);
}

TEST(GrefDirectoryGeometry, PagesForDoesNotWrapNearUint64Max)
{
	EXPECT_EQ(pagesFor(UINT64_MAX), UINT64_MAX / kPage + 1);
	EXPECT_EQ(pagesFor(UINT64_MAX - kPage + 2), UINT64_MAX / kPage + 1);
}

TEST(GrefDirectoryWalker, SinglePageDirectory)
{
	GuestMemory mem;
	auto grefs = dataGrefs(10);
	writeDirectory(mem, { 100 }, grefs);
	GrefDirectoryWalker w(100, 10 * kPage, kCap);
	ASSERT_FALSE(w.error());
	EXPECT_EQ(w.nextPage(), 100u);
	auto r = walk(w, mem);
	ASSERT_TRUE(r.status.ok()) << r.status.error().message;
	EXPECT_TRUE(w.done());
	EXPECT_EQ(r.fed, 1u);
	EXPECT_EQ(w.dataPages(), 10u);
	EXPECT_THAT(w.directoryGrefs(), ElementsAre(100u));
	EXPECT_EQ(w.takeGrefs(), grefs);
	EXPECT_EQ(w.nextPage(), std::nullopt);
}

TEST(GrefDirectoryWalker, PartialLastDataPageCountsAsAPage)
{
	GuestMemory mem;
	writeDirectory(mem, { 100 }, dataGrefs(2));
	GrefDirectoryWalker w(100, kPage + 1, kCap);
	ASSERT_TRUE(walk(w, mem).status.ok());
	EXPECT_EQ(w.dataPages(), 2u);
	EXPECT_EQ(w.takeGrefs().size(), 2u);
}

TEST(GrefDirectoryWalker, MultiPageDirectoryOf2500DataPagesHas3DirectoryPages)
{
	GuestMemory mem;
	auto grefs = dataGrefs(2500);
	std::vector<Gref> dirs = { 7, 3, 900 }; /* chain order need not be sorted */
	writeDirectory(mem, dirs, grefs);
	GrefDirectoryWalker w(7, 2500 * kPage, kCap);
	auto r = walk(w, mem);
	ASSERT_TRUE(r.status.ok()) << r.status.error().message;
	EXPECT_TRUE(w.done());
	EXPECT_EQ(r.fed, 3u);
	EXPECT_THAT(w.directoryGrefs(), ElementsAreArray(dirs));
	EXPECT_EQ(w.takeGrefs(), grefs);
}

TEST(GrefDirectoryWalker, Exactly1023DataPagesFitOneDirectoryPage)
{
	GuestMemory mem;
	auto grefs = dataGrefs(1023);
	writeDirectory(mem, { 100 }, grefs);
	GrefDirectoryWalker w(100, 1023 * kPage, kCap);
	auto r = walk(w, mem);
	ASSERT_TRUE(r.status.ok()) << r.status.error().message;
	EXPECT_EQ(r.fed, 1u);
	EXPECT_EQ(w.takeGrefs(), grefs);
}

TEST(GrefDirectoryWalker, DataPage1024NeedsASecondDirectoryPage)
{
	GuestMemory mem;
	auto grefs = dataGrefs(1024);
	writeDirectory(mem, { 100, 101 }, grefs);
	GrefDirectoryWalker w(100, 1024 * kPage, kCap);
	auto r = walk(w, mem);
	ASSERT_TRUE(r.status.ok()) << r.status.error().message;
	EXPECT_EQ(r.fed, 2u);
	EXPECT_THAT(w.directoryGrefs(), ElementsAre(100u, 101u));
	EXPECT_EQ(w.takeGrefs(), grefs);
}

TEST(GrefDirectoryWalker, EntriesPastTheLastDataPageAreIgnored)
{
	GuestMemory mem;
	writeDirectory(mem, { 100 }, dataGrefs(3));
	mem.setEntry(100, 3, 0);          /* a 0 after the last needed gref */
	mem.setEntry(100, 1000, 0xffffff); /* and garbage */
	GrefDirectoryWalker w(100, 3 * kPage, kCap);
	EXPECT_TRUE(walk(w, mem).status.ok());
	EXPECT_EQ(w.takeGrefs(), dataGrefs(3));
}

TEST(GrefDirectoryWalker, BufferExactlyAtTheCapIsAccepted)
{
	GuestMemory mem;
	writeDirectory(mem, { 100 }, dataGrefs(8));
	GrefDirectoryWalker w(100, 8 * kPage, 8);
	EXPECT_FALSE(w.error());
	EXPECT_TRUE(walk(w, mem).status.ok());
}

/* ---- rejected before any page is read ---- */

TEST(GrefDirectoryWalkerHostile, BufferSizeZeroIsRejected)
{
	GrefDirectoryWalker w(100, 0, kCap);
	ASSERT_TRUE(w.error());
	EXPECT_EQ(w.error()->code, -EINVAL);
	EXPECT_THAT(w.error()->message, HasSubstr("size is 0"));
	EXPECT_EQ(w.nextPage(), std::nullopt);
	EXPECT_FALSE(w.done());
}

TEST(GrefDirectoryWalkerHostile, FirstGrefZeroIsRejected)
{
	GrefDirectoryWalker w(0, kPage, kCap);
	ASSERT_TRUE(w.error());
	EXPECT_EQ(w.error()->code, -EINVAL);
	EXPECT_THAT(w.error()->message, HasSubstr("first page gref is 0"));
	EXPECT_EQ(w.nextPage(), std::nullopt);
}

TEST(GrefDirectoryWalkerHostile, BufferOverTheCapIsRejected)
{
	GrefDirectoryWalker w(100, 9 * kPage, 8);
	ASSERT_TRUE(w.error());
	EXPECT_EQ(w.error()->code, -E2BIG);
	EXPECT_THAT(w.error()->message, HasSubstr("9 pages"));
	EXPECT_THAT(w.error()->message, HasSubstr("cap of 8"));
	EXPECT_EQ(w.nextPage(), std::nullopt);
}

TEST(GrefDirectoryWalkerHostile, CapZeroRejectsEveryBuffer)
{
	GrefDirectoryWalker w(100, 1, 0);
	ASSERT_TRUE(w.error());
	EXPECT_EQ(w.error()->code, -E2BIG);
}

TEST(GrefDirectoryWalkerHostile, BufferSizeNearUint64MaxIsOverTheCap)
{
	/* (size + 4095) / 4096 must not wrap to 0 pages and pass as an empty walk. */
	for (uint64_t size : { UINT64_MAX, UINT64_MAX - 1, UINT64_MAX - kPage + 2 }) {
		GrefDirectoryWalker w(100, size, kCap);
		ASSERT_TRUE(w.error()) << size;
		EXPECT_EQ(w.error()->code, -E2BIG) << size;
		EXPECT_FALSE(w.done());
	}
}

/* ---- hostile chains ---- */

TEST(GrefDirectoryWalkerHostile, PagePointingToItselfIsACycle)
{
	GuestMemory mem;
	writeDirectory(mem, { 100, 101 }, dataGrefs(1500));
	mem.setNext(100, 100);
	GrefDirectoryWalker w(100, 1500 * kPage, kCap);
	auto r = walk(w, mem);
	ASSERT_FALSE(r.status.ok());
	EXPECT_EQ(r.status.error().code, -ELOOP);
	EXPECT_THAT(r.status.error().message, HasSubstr("cycle"));
	EXPECT_EQ(r.fed, 2u);
}

TEST(GrefDirectoryWalkerHostile, PagePointingToAnEarlierPageIsACycle)
{
	GuestMemory mem;
	writeDirectory(mem, { 100, 101, 102, 103 }, dataGrefs(4000));
	mem.setNext(102, 101);
	GrefDirectoryWalker w(100, 4000 * kPage, kCap);
	auto r = walk(w, mem);
	ASSERT_FALSE(r.status.ok());
	EXPECT_EQ(r.status.error().code, -ELOOP);
	EXPECT_THAT(r.status.error().message, HasSubstr("gref 101"));
	EXPECT_EQ(r.fed, 4u);
}

TEST(GrefDirectoryWalkerHostile, ChainEndingTooEarlyIsAShortChain)
{
	GuestMemory mem;
	writeDirectory(mem, { 100, 101, 102 }, dataGrefs(2500));
	mem.setNext(101, 0);
	GrefDirectoryWalker w(100, 2500 * kPage, kCap);
	auto r = walk(w, mem);
	ASSERT_FALSE(r.status.ok());
	EXPECT_EQ(r.status.error().code, -EINVAL);
	EXPECT_THAT(r.status.error().message, HasSubstr("short chain"));
	EXPECT_THAT(r.status.error().message, HasSubstr("2 of 3"));
	EXPECT_EQ(w.nextPage(), std::nullopt);
}

TEST(GrefDirectoryWalkerHostile, ChainGoingOnPastTheLastNeededPageIsOverLong)
{
	GuestMemory mem;
	writeDirectory(mem, { 100 }, dataGrefs(5));
	mem.setNext(100, 555);
	mem.page(555); /* mapped, but must never be asked for */
	GrefDirectoryWalker w(100, 5 * kPage, kCap);
	auto r = walk(w, mem);
	ASSERT_FALSE(r.status.ok());
	EXPECT_THAT(r.status.error().message, HasSubstr("over-long"));
	EXPECT_THAT(r.status.error().message, HasSubstr("555"));
	EXPECT_EQ(r.fed, 1u);
	EXPECT_FALSE(w.done());
}

TEST(GrefDirectoryWalkerHostile, DataGrefZeroIsRejectedAndNamed)
{
	GuestMemory mem;
	writeDirectory(mem, { 100, 101 }, dataGrefs(1100));
	mem.setEntry(101, 5, 0); /* data gref 1023 + 5 */
	GrefDirectoryWalker w(100, 1100 * kPage, kCap);
	auto r = walk(w, mem);
	ASSERT_FALSE(r.status.ok());
	EXPECT_EQ(r.status.error().code, -EINVAL);
	EXPECT_THAT(r.status.error().message, HasSubstr("data gref 1028 is 0"));
}

TEST(GrefDirectoryWalkerHostile, FirstDataGrefZeroIsRejected)
{
	GuestMemory mem;
	writeDirectory(mem, { 100 }, dataGrefs(2));
	mem.setEntry(100, 0, 0);
	GrefDirectoryWalker w(100, 2 * kPage, kCap);
	auto r = walk(w, mem);
	ASSERT_FALSE(r.status.ok());
	EXPECT_THAT(r.status.error().message, HasSubstr("data gref 0 is 0"));
}

TEST(GrefDirectoryWalkerHostile, ShortPageIsRejected)
{
	GrefDirectoryWalker w(100, kPage, kCap);
	PageBytes half(kPage / 2);
	Status s = w.feed(half);
	ASSERT_FALSE(s.ok());
	EXPECT_THAT(s.error().message, HasSubstr("short page"));
}

TEST(GrefDirectoryWalkerHostile, FeedingAfterAFailureKeepsFailingWithTheSameError)
{
	GuestMemory mem;
	writeDirectory(mem, { 100, 101 }, dataGrefs(1500));
	mem.setNext(100, 0);
	GrefDirectoryWalker w(100, 1500 * kPage, kCap);
	auto r = walk(w, mem);
	ASSERT_FALSE(r.status.ok());
	/* A caller that ignores the error and feeds a perfectly good page. */
	GuestMemory good;
	writeDirectory(good, { 100, 101 }, dataGrefs(1500));
	Status again = w.feed(good.page(101));
	ASSERT_FALSE(again.ok());
	EXPECT_EQ(again.error().message, r.status.error().message);
	EXPECT_FALSE(w.done());
	EXPECT_EQ(w.nextPage(), std::nullopt);
}

TEST(GrefDirectoryWalkerHostile, FeedingAfterAConstructionErrorFails)
{
	GrefDirectoryWalker w(0, kPage, kCap);
	PageBytes page(kPage);
	EXPECT_FALSE(w.feed(page).ok());
	EXPECT_FALSE(w.done());
}

TEST(GrefDirectoryWalkerHostile, FeedingPastTheEndOfTheWalkFails)
{
	GuestMemory mem;
	writeDirectory(mem, { 100 }, dataGrefs(1));
	GrefDirectoryWalker w(100, kPage, kCap);
	ASSERT_TRUE(walk(w, mem).status.ok());
	ASSERT_TRUE(w.done());
	Status s = w.feed(mem.page(100));
	ASSERT_FALSE(s.ok());
	EXPECT_THAT(s.error().message, HasSubstr("past the end"));
	EXPECT_FALSE(w.done());
}

/* ---- DirectoryOnly (be-alloc) ---- */

TEST(GrefDirectoryWalkerDirectoryOnly, IgnoresDataGrefsButWalksTheChain)
{
	GuestMemory mem;
	std::vector<Gref> dirs = { 100, 101, 102 };
	writeDirectory(mem, dirs, std::vector<Gref>(2500, 0)); /* no data grefs yet */
	GrefDirectoryWalker w(100, 2500 * kPage, kCap, Mode::DirectoryOnly);
	auto r = walk(w, mem);
	ASSERT_TRUE(r.status.ok()) << r.status.error().message;
	EXPECT_TRUE(w.done());
	EXPECT_EQ(r.fed, 3u);
	EXPECT_THAT(w.directoryGrefs(), ElementsAreArray(dirs));
	EXPECT_TRUE(w.takeGrefs().empty());
}

TEST(GrefDirectoryWalkerDirectoryOnly, StillRejectsAShortChain)
{
	GuestMemory mem;
	writeDirectory(mem, { 100, 101 }, std::vector<Gref>(1500, 0));
	mem.setNext(100, 0);
	GrefDirectoryWalker w(100, 1500 * kPage, kCap, Mode::DirectoryOnly);
	auto r = walk(w, mem);
	ASSERT_FALSE(r.status.ok());
	EXPECT_THAT(r.status.error().message, HasSubstr("short chain"));
}

TEST(GrefDirectoryWalkerDirectoryOnly, StillRejectsACycle)
{
	GuestMemory mem;
	writeDirectory(mem, { 100, 101, 102 }, std::vector<Gref>(2500, 0));
	mem.setNext(101, 100);
	GrefDirectoryWalker w(100, 2500 * kPage, kCap, Mode::DirectoryOnly);
	auto r = walk(w, mem);
	ASSERT_FALSE(r.status.ok());
	EXPECT_EQ(r.status.error().code, -ELOOP);
}

TEST(GrefDirectoryWalkerDirectoryOnly, StillRejectsAnOverLongChain)
{
	GuestMemory mem;
	writeDirectory(mem, { 100 }, std::vector<Gref>(3, 0));
	mem.setNext(100, 101);
	GrefDirectoryWalker w(100, 3 * kPage, kCap, Mode::DirectoryOnly);
	auto r = walk(w, mem);
	ASSERT_FALSE(r.status.ok());
	EXPECT_THAT(r.status.error().message, HasSubstr("over-long"));
}

/* ---- writeGrefDirectory ---- */

TEST(WriteGrefDirectory, RoundTripsThroughTheWalker)
{
	for (size_t n : { 1, 2, 1022, 1023, 1024, 2046, 2047, 5000 }) {
		GuestMemory mem;
		auto grefs = dataGrefs(n, 1);
		auto dirs = dirGrefsFor(n, 0x80000000u);
		writeDirectory(mem, dirs, grefs);
		GrefDirectoryWalker w(dirs.front(), n * kPage, kCap);
		auto r = walk(w, mem);
		ASSERT_TRUE(r.status.ok()) << n << ": " << r.status.error().message;
		EXPECT_EQ(w.directoryGrefs(), dirs) << n;
		EXPECT_EQ(w.takeGrefs(), grefs) << n;
	}
}

TEST(WriteGrefDirectory, LastPageEndsTheChain)
{
	GuestMemory mem;
	mem.setNext(101, 0xdead);
	writeDirectory(mem, { 100, 101 }, dataGrefs(1024));
	Gref next;
	std::memcpy(&next, mem.page(100).data(), sizeof(next));
	EXPECT_EQ(next, 101u);
	std::memcpy(&next, mem.page(101).data(), sizeof(next));
	EXPECT_EQ(next, 0u);
}

TEST(WriteGrefDirectory, WithoutChainOnlyTheGrefEntriesAreWritten)
{
	GuestMemory mem;
	/* The guest's chain, with no data grefs (be-alloc). */
	writeDirectory(mem, { 100, 101 }, std::vector<Gref>(1024, 0));
	mem.setNext(100, 101);
	std::vector<uint8_t *> pages = { mem.page(100).data(), mem.page(101).data() };
	auto grefs = dataGrefs(1024);
	std::vector<Gref> dirs = { 7, 8 }; /* ignored for the chain */
	ASSERT_TRUE(writeGrefDirectory(pages, dirs, grefs, false).ok());
	Gref next;
	std::memcpy(&next, mem.page(100).data(), sizeof(next));
	EXPECT_EQ(next, 101u) << "the guest's chain is left alone";
	GrefDirectoryWalker w(100, 1024 * kPage, kCap);
	ASSERT_TRUE(walk(w, mem).status.ok());
	EXPECT_EQ(w.takeGrefs(), grefs);
}

TEST(WriteGrefDirectory, WrongNumberOfDirectoryPagesIsRejected)
{
	GuestMemory mem;
	std::vector<uint8_t *> one = { mem.page(100).data() };
	std::vector<Gref> oneGref = { 100 };
	Status s = writeGrefDirectory(one, oneGref, dataGrefs(1024));
	ASSERT_FALSE(s.ok());
	EXPECT_EQ(s.error().code, -EINVAL);
	EXPECT_THAT(s.error().message, HasSubstr("1 pages for 1024 grefs"));
}

TEST(WriteGrefDirectory, DirectoryGrefCountMustMatchPageCount)
{
	GuestMemory mem;
	std::vector<uint8_t *> one = { mem.page(100).data() };
	std::vector<Gref> twoGrefs = { 100, 101 };
	EXPECT_FALSE(writeGrefDirectory(one, twoGrefs, dataGrefs(3)).ok());
}

TEST(WriteGrefDirectory, NoGrefsNeedNoPages)
{
	EXPECT_TRUE(writeGrefDirectory({}, {}, {}).ok());
}

} /* namespace */
} /* namespace xmb::proto */
