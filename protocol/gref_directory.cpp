/* SPDX-License-Identifier: MIT */
#include "protocol/gref_directory.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include "protocol/shared_memory.h"

namespace xmb::proto {

/**
 * \brief Prepare a bounded walk of a gref directory.
 *
 * The total is fixed here from \a bufferBytes, before any guest page is
 * read: the chain must contain exactly dirPagesFor(pagesFor(bufferBytes))
 * pages.
 */
GrefDirectoryWalker::GrefDirectoryWalker(Gref first, uint64_t bufferBytes, uint64_t maxPages,
					 Mode mode)
	: mode_(mode), dataPages_(pagesFor(bufferBytes)), dirPages_(dirPagesFor(dataPages_)),
	  next_(first)
{
	if (!bufferBytes)
		error_ = Error{ -EINVAL, "gref directory: buffer size is 0" };
	else if (dataPages_ > maxPages)
		error_ = Error{ -E2BIG, "gref directory: buffer of " + std::to_string(dataPages_) +
						" pages exceeds the cap of " + std::to_string(maxPages) };
	else if (first == 0)
		error_ = Error{ -EINVAL, "gref directory: first page gref is 0" };

	if (!error_) {
		dirGrefs_.reserve(dirPages_);
		if (mode_ == Mode::CollectGrefs)
			grefs_.reserve(dataPages_);
	}
}

std::optional<Gref> GrefDirectoryWalker::nextPage() const
{
	if (error_ || pagesWalked_ == dirPages_)
		return std::nullopt;
	return next_;
}

Status GrefDirectoryWalker::fail(int code, std::string msg)
{
	error_ = Error{ code, "gref directory page " + std::to_string(pagesWalked_) + " (gref " +
				      std::to_string(next_) + "): " + std::move(msg) };
	return *error_;
}

Status GrefDirectoryWalker::feed(std::span<const uint8_t> page)
{
	if (error_)
		return *error_;
	if (pagesWalked_ == dirPages_)
		return fail(-EINVAL, "fed past the end of the walk");
	if (page.size() < kDirPageSize)
		return fail(-EINVAL, "short page");

	if (!seen_.insert(next_).second)
		return fail(-ELOOP, "cycle: page already in the chain");
	dirGrefs_.push_back(next_);

	/* Copy the page out once; everything below reads the copy. */
	struct Page { Gref next; Gref gref[kGrefsPerDirPage]; };
	static_assert(sizeof(Page) == kDirPageSize);
	const Page copy = copyOut<Page>(page.data());

	uint64_t already = pagesWalked_ * kGrefsPerDirPage;
	uint64_t here = std::min<uint64_t>(kGrefsPerDirPage, dataPages_ - already);
	if (mode_ == Mode::CollectGrefs) {
		for (uint64_t i = 0; i < here; i++) {
			if (copy.gref[i] == 0)
				return fail(-EINVAL, "data gref " + std::to_string(already + i) + " is 0");
			grefs_.push_back(copy.gref[i]);
		}
	}

	pagesWalked_++;
	bool last = pagesWalked_ == dirPages_;
	if (last && copy.next != 0)
		return fail(-EINVAL, "over-long chain: next page " + std::to_string(copy.next) +
					     " after the last needed page");
	if (!last && copy.next == 0)
		return fail(-EINVAL, "short chain: ends after " + std::to_string(pagesWalked_) +
					     " of " + std::to_string(dirPages_) + " pages");
	next_ = copy.next;
	return {};
}

Status writeGrefDirectory(std::span<uint8_t *const> dirPages, std::span<const Gref> dirGrefs,
			  std::span<const Gref> grefs, bool writeChain)
{
	if (dirPages.size() != dirPagesFor(grefs.size()) || dirGrefs.size() != dirPages.size())
		return Error{ -EINVAL, "gref directory: " + std::to_string(dirPages.size()) +
					       " pages for " + std::to_string(grefs.size()) + " grefs" };
	for (size_t p = 0; p < dirPages.size(); p++) {
		uint8_t *page = dirPages[p];
		if (writeChain) {
			Gref next = p + 1 < dirGrefs.size() ? dirGrefs[p + 1] : 0;
			std::memcpy(page, &next, sizeof(next));
		}
		size_t first = p * kGrefsPerDirPage;
		size_t n = std::min(kGrefsPerDirPage, grefs.size() - first);
		std::memcpy(page + sizeof(Gref), grefs.data() + first, n * sizeof(Gref));
	}
	return {};
}

} /* namespace xmb::proto */
