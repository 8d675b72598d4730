/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Gref directories: the chain of pages that lists the grant refs of a
 * buffer (cameraif's xencamera_page_directory; vcodec uses the same form).
 *
 *   page: [ gref_dir_next_page | gref[0] ... gref[N-1] ]   N = 1023 for 4 KiB
 *
 * The number of data grefs is not on the wire: it follows from the buffer
 * size the backend itself announced, so the walk is bounded by it and the
 * guest cannot make us read one page more or less.  The walker is a pure
 * state machine: the caller maps the page it names, feeds a copy, repeats.
 */

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <unordered_set>
#include <vector>

#include "protocol/result.h"

namespace xmb::proto {

using Gref = uint32_t;

constexpr size_t kDirPageSize = 4096;
constexpr size_t kGrefsPerDirPage = (kDirPageSize - sizeof(Gref)) / sizeof(Gref);

/** Pages needed for \a bytes of buffer (0 if \a bytes is 0). */
constexpr uint64_t pagesFor(uint64_t bytes, size_t pageSize = kDirPageSize)
{
	/* Not (bytes + pageSize - 1) / pageSize: that wraps to 0 near UINT64_MAX. */
	return bytes / pageSize + (bytes % pageSize != 0);
}

/** Directory pages needed to list \a dataPages grefs. */
constexpr uint64_t dirPagesFor(uint64_t dataPages)
{
	return dataPages / kGrefsPerDirPage + (dataPages % kGrefsPerDirPage != 0);
}

class GrefDirectoryWalker
{
public:
	enum class Mode {
		CollectGrefs,  /**< frontend-allocated buffer: read the data grefs */
		DirectoryOnly, /**< be-alloc: only the chain matters, backend fills the grefs */
	};

	/**
	 * \param first The directory's first page (from BUF_CREATE)
	 * \param bufferBytes The buffer size the backend announced (layout size)
	 * \param maxPages Per-buffer page cap (a per-guest limit); 0 rejects all
	 */
	GrefDirectoryWalker(Gref first, uint64_t bufferBytes, uint64_t maxPages,
			    Mode mode = Mode::CollectGrefs);

	/** Error found at construction (size 0, over the cap, first gref 0). */
	[[nodiscard]] const std::optional<Error> &error() const { return error_; }

	/** The directory page to map and feed next, or nullopt when done/failed. */
	[[nodiscard]] std::optional<Gref> nextPage() const;

	/**
	 * Feed the content of the page nextPage() named.  The page is read once
	 * (copied); errors: cycle, short chain, over-long chain, gref 0.
	 */
	Status feed(std::span<const uint8_t> page);

	[[nodiscard]] bool done() const { return !error_ && pagesWalked_ == dirPages_; }
	[[nodiscard]] uint64_t dataPages() const { return dataPages_; }
	/** Directory page grefs in chain order (for be-alloc writes). */
	[[nodiscard]] const std::vector<Gref> &directoryGrefs() const { return dirGrefs_; }
	/** Data grefs in buffer order (Mode::CollectGrefs). */
	[[nodiscard]] std::vector<Gref> takeGrefs() { return std::move(grefs_); }

private:
	Status fail(int code, std::string msg);

	Mode mode_;
	uint64_t dataPages_ = 0;
	uint64_t dirPages_ = 0;
	uint64_t pagesWalked_ = 0;
	Gref next_ = 0;
	std::unordered_set<Gref> seen_;
	std::vector<Gref> dirGrefs_;
	std::vector<Gref> grefs_;
	std::optional<Error> error_;
};

/**
 * Write a directory: \a dirPages are the directory pages' memory (in chain
 * order) and \a dirGrefs their grant refs; \a grefs the data grefs.  Used
 * by frontends to describe a buffer and by the backend in be-alloc mode
 * (where only the gref[] entries are written and the chain is the guest's).
 */
Status writeGrefDirectory(std::span<uint8_t *const> dirPages, std::span<const Gref> dirGrefs,
			  std::span<const Gref> grefs, bool writeChain = true);

} /* namespace xmb::proto */
