/* SPDX-License-Identifier: MIT */
/*
 * Fuzz the gref directory walker with hostile chains, and writeGrefDirectory
 * round trips.
 *
 * Input: [flags u8] then
 *   walk mode (flags bit 1 clear):
 *     [size u32 or u64 (flags bit 3)] [maxPages u16] [first u32]
 *     then one record per page the walker asks for:
 *     [next u32] [fill u32] [k u8] [k x gref u32]   (entries >= k are 'fill')
 *     flags bit 0: DirectoryOnly; bit 2: feed a short page when records run out
 *   round-trip mode (flags bit 1 set):
 *     [n u16] [seed u32] [dirBase u32] [slack u16] [garbage u8]
 */

#include <algorithm>
#include <set>
#include <vector>

#include "fuzz_input.h"
#include "protocol/gref_directory.h"

namespace xmb::proto {
namespace {

using fuzz::Input;
using Mode = GrefDirectoryWalker::Mode;
using PageBuf = std::vector<uint8_t>;

struct Record {
	Gref next;
	std::vector<Gref> entries; /* kGrefsPerDirPage */
};

Record readRecord(Input &in)
{
	Record r;
	r.next = in.u32();
	Gref fill = in.u32();
	uint8_t k = in.u8();
	r.entries.assign(kGrefsPerDirPage, fill);
	for (uint8_t i = 0; i < k; i++)
		r.entries[i] = in.u32();
	return r;
}

PageBuf pageOf(const Record &r)
{
	PageBuf p(kDirPageSize);
	std::memcpy(p.data(), &r.next, sizeof(Gref));
	std::memcpy(p.data() + sizeof(Gref), r.entries.data(), kGrefsPerDirPage * sizeof(Gref));
	return p;
}

void checkFailedStaysFailed(GrefDirectoryWalker &w, const std::string &msg)
{
	FUZZ_CHECK(w.error());
	FUZZ_CHECK(w.error()->message == msg);
	FUZZ_CHECK(!w.done());
	FUZZ_CHECK(!w.nextPage());
	PageBuf zero(kDirPageSize);
	Status again = w.feed(zero);
	FUZZ_CHECK(!again.ok() && again.error().message == msg);
}

void walkMode(Input &in, uint8_t flags)
{
	Mode mode = flags & 1 ? Mode::DirectoryOnly : Mode::CollectGrefs;
	uint64_t size = flags & 8 ? in.u64() : in.u32();
	uint64_t maxPages = in.u16();
	Gref first = in.u32();

	GrefDirectoryWalker w(first, size, maxPages, mode);
	uint64_t data = w.dataPages();
	/* The page count covers the buffer exactly: no wrap-around to a short walk. */
	if (size) {
		FUZZ_CHECK(data >= 1);
		FUZZ_CHECK(data - 1 < size / kDirPageSize + 1);
		FUZZ_CHECK((data - 1) * kDirPageSize < size);
		FUZZ_CHECK(data > UINT64_MAX / kDirPageSize || data * kDirPageSize >= size);
	}
	if (!size || data > maxPages || !first) {
		FUZZ_CHECK(w.error());
		checkFailedStaysFailed(w, w.error()->message);
		return;
	}
	FUZZ_CHECK(!w.error());
	const uint64_t dirPages = dirPagesFor(data);
	FUZZ_CHECK(w.nextPage() == first);

	std::vector<Gref> expectDirs, expectData;
	Gref cur = first;
	uint64_t fed = 0;
	while (auto next = w.nextPage()) {
		FUZZ_CHECK(*next == cur);
		FUZZ_CHECK(fed < dirPages);
		if (in.empty() && (flags & 4)) {
			PageBuf shortPage(kDirPageSize - 1);
			FUZZ_CHECK(!w.feed(shortPage).ok());
			checkFailedStaysFailed(w, w.error()->message);
			return;
		}
		if (in.empty())
			break; /* the guest never answers: the walk just stays incomplete */
		Record rec = readRecord(in);
		bool cycle = std::find(expectDirs.begin(), expectDirs.end(), cur) != expectDirs.end();
		uint64_t already = fed * kGrefsPerDirPage;
		uint64_t here = std::min<uint64_t>(kGrefsPerDirPage, data - already);
		bool zero = mode == Mode::CollectGrefs &&
			    std::find(rec.entries.begin(), rec.entries.begin() + here, 0u) !=
				    rec.entries.begin() + here;
		bool last = fed + 1 == dirPages;
		bool chainBad = last ? rec.next != 0 : rec.next == 0;

		Status s = w.feed(pageOf(rec));
		fed++;
		FUZZ_CHECK(s.ok() == !(cycle || zero || chainBad));
		if (!s.ok()) {
			FUZZ_CHECK(s.error().code < 0);
			checkFailedStaysFailed(w, s.error().message);
			return;
		}
		expectDirs.push_back(cur);
		if (mode == Mode::CollectGrefs)
			expectData.insert(expectData.end(), rec.entries.begin(), rec.entries.begin() + here);
		cur = rec.next;
	}

	FUZZ_CHECK(w.directoryGrefs() == expectDirs);
	if (fed < dirPages) {
		FUZZ_CHECK(!w.done());
		return;
	}
	FUZZ_CHECK(w.done());
	FUZZ_CHECK(!w.nextPage());
	FUZZ_CHECK(expectDirs.size() == dirPages);
	std::set<Gref> distinct(expectDirs.begin(), expectDirs.end());
	FUZZ_CHECK(distinct.size() == expectDirs.size() && !distinct.count(0));
	auto grefs = w.takeGrefs();
	if (mode == Mode::CollectGrefs) {
		FUZZ_CHECK(grefs.size() == data);
		FUZZ_CHECK(grefs == expectData);
	} else {
		FUZZ_CHECK(grefs.empty());
	}
	/* Done means done: one more page is refused. */
	PageBuf extra(kDirPageSize);
	FUZZ_CHECK(!w.feed(extra).ok());
	FUZZ_CHECK(!w.done());
}

uint32_t splitmix(uint64_t &x)
{
	uint64_t z = (x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return static_cast<uint32_t>(z ^ (z >> 31));
}

/* Walk \a pages (chain order, grefs \a dirs) as the backend would. */
std::vector<Gref> walkPages(const std::vector<PageBuf> &pages, const std::vector<Gref> &dirs,
			    uint64_t bytes, Mode mode, bool &ok)
{
	GrefDirectoryWalker w(dirs.empty() ? 1 : dirs.front(), bytes, 1 << 16, mode);
	ok = !w.error();
	size_t i = 0;
	while (ok && w.nextPage()) {
		FUZZ_CHECK(i < pages.size());
		FUZZ_CHECK(*w.nextPage() == dirs[i]);
		ok = w.feed(pages[i++]).ok();
	}
	ok = ok && w.done() && w.directoryGrefs() == dirs;
	return w.takeGrefs();
}

void roundTripMode(Input &in)
{
	size_t n = in.u16() % 5000;
	uint64_t seed = in.u32();
	Gref dirBase = in.u32();
	uint16_t slack = in.u16() % kDirPageSize;
	uint8_t garbage = in.u8();

	std::vector<Gref> grefs(n);
	for (auto &g : grefs)
		g = splitmix(seed) | 1; /* never 0 */
	size_t nd = dirPagesFor(n);
	if (dirBase == 0 || dirBase > UINT32_MAX - nd)
		dirBase = 1;
	std::vector<Gref> dirs(nd);
	for (size_t i = 0; i < nd; i++)
		dirs[i] = dirBase + static_cast<Gref>(i);

	std::vector<PageBuf> pages(nd, PageBuf(kDirPageSize, garbage));
	std::vector<uint8_t *> ptrs;
	for (auto &p : pages)
		ptrs.push_back(p.data());

	/* A wrong page count is refused, and nothing is written. */
	if (nd) {
		std::vector<uint8_t *> fewer(ptrs.begin(), ptrs.end() - 1);
		std::vector<Gref> fewerDirs(dirs.begin(), dirs.end() - 1);
		FUZZ_CHECK(!writeGrefDirectory(fewer, fewerDirs, grefs).ok());
	}
	FUZZ_CHECK(!writeGrefDirectory(ptrs, std::vector<Gref>(nd + 1, 1), grefs).ok());
	for (auto &p : pages)
		FUZZ_CHECK(std::all_of(p.begin(), p.end(), [&](uint8_t b) { return b == garbage; }));

	FUZZ_CHECK(writeGrefDirectory(ptrs, dirs, grefs).ok());
	uint64_t bytes = n ? (n - 1) * kDirPageSize + 1 + slack : 0;
	FUZZ_CHECK(pagesFor(bytes) == n);

	bool ok = false;
	auto got = walkPages(pages, dirs, bytes, Mode::CollectGrefs, ok);
	FUZZ_CHECK(ok == (n != 0));
	if (!n)
		return;
	FUZZ_CHECK(got == grefs);
	got = walkPages(pages, dirs, bytes, Mode::DirectoryOnly, ok);
	FUZZ_CHECK(ok && got.empty());

	/* be-alloc: rewrite only the data grefs; the chain stays as it was. */
	std::vector<Gref> other(grefs.rbegin(), grefs.rend());
	std::vector<Gref> bogusDirs(nd, 0xdeadbeef);
	FUZZ_CHECK(writeGrefDirectory(ptrs, bogusDirs, other, false).ok());
	got = walkPages(pages, dirs, bytes, Mode::CollectGrefs, ok);
	FUZZ_CHECK(ok && got == other);
}

} /* namespace */
} /* namespace xmb::proto */

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	xmb::fuzz::Input in(data, size);
	uint8_t flags = in.u8();
	if (flags & 2)
		xmb::proto::roundTripMode(in);
	else
		xmb::proto::walkMode(in, flags);
	return 0;
}
