/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Grants: map a foreign domain's pages, share our own, and turn either
 * into a dma-buf where the kernel allows it.
 *
 * GrantTable is the one front door; a GrantBackend (real gntdev/gntalloc or
 * loopback) does the work.  The front door owns what is common to both:
 * per-domain page limits, accounting and the RAII handles, which keep the
 * backend alive (shared_ptr) so a mapping may outlive the table object.
 */

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "protocol/base/unique_fd.h"
#include "bridge/platform/types.h"
#include "protocol/result.h"

namespace xmb::xen {

/** What the kernel lets us do with grant dma-bufs, probed at run time. */
struct DmaBufSupport {
	bool exportFromRefs = false; /**< foreign refs -> local dma-buf (exp_from_refs) */
	bool importToRefs = false;   /**< local dma-buf -> refs for a guest (imp_to_refs) */
	std::string detail;          /**< what the probe saw, for logs ("ENOTTY: no ...") */
};

/**
 * \brief Whether a kernel driver may reach our mappings of foreign pages.
 *
 * A V4L2 driver given a USERPTR pins the pages; a vb2-vmalloc driver
 * (vivid, uvcvideo) then vmaps them to write the frame.  In an x86 PV
 * domain gntdev installs a foreign frame only in the user PTEs and the
 * kernel's linear map: a second kernel mapping of it gets no PTE and the
 * driver faults (an oops in vivid's capture thread, seen on Xen 4.17 with
 * Linux 6.1).  Auto-translated domains (PVH, HVM, Arm) map foreign frames
 * into their physmap, where any mapping works.
 */
struct ForeignMapSupport {
	bool driverVmap = true; /**< drivers may vmap pinned pages of a foreign mapping */
	std::string detail;     /**< what the probe saw, for logs */
};

/** Error of a batch map: per-element status says which refs failed. */
struct MapFailure {
	int code = 0;
	std::vector<int> status; /* 0 or -errno per ref; empty if not known per element */
};

/** The implementation side; one per platform (real or loopback domain). */
class GrantBackend
{
public:
	virtual ~GrantBackend() = default;

	/**
	 * Map \a refs of \a dom contiguously.  All or nothing: on failure fill
	 * \a failure (per element where possible) and leave nothing mapped.
	 */
	virtual void *map(DomId dom, std::span<const Gref> refs, bool writable,
			  MapFailure &failure) = 0;
	virtual void unmap(void *addr, size_t pages) = 0;

	/** Allocate \a pages zeroed pages and grant them to \a dom. */
	virtual void *share(DomId dom, size_t pages, bool writable, std::vector<Gref> &refs,
			    uint64_t &handle, int &err) = 0;
	/**
	 * End access to shared pages. -EBUSY if the peer still maps one and
	 * \a deferIfBusy is false; with it, the pages are released when the
	 * peer unmaps (what Linux does for gntalloc) and 0 is returned.
	 */
	virtual int endShare(void *addr, size_t pages, uint64_t handle, bool deferIfBusy) = 0;

	virtual DmaBufSupport probeDmaBuf() = 0;
	virtual ForeignMapSupport probeForeignMaps() = 0;
	virtual Result<UniqueFD> dmabufExportFromRefs(DomId dom, std::span<const Gref> refs,
						      bool writable) = 0;
	virtual int dmabufWaitReleased(int fd, unsigned timeoutMs) = 0;
	/**
	 * Grant the \a pages pages of dma-buf \a fd to \a dom (writable: the
	 * kernel grants imports so).  \a handle identifies this import for the
	 * release: the kernel finds an import by its dma-buf, so one buffer
	 * imported for two guests needs a gntdev handle per import.
	 */
	virtual Result<std::vector<Gref>> dmabufImportToRefs(DomId dom, int fd, size_t pages,
							      uint64_t &handle) = 0;
	/** End the import: the refs are revoked (deferred while the guest maps them). */
	virtual void dmabufImportRelease(int fd, uint64_t handle) = 0;
};

class GrantTable;

/** \brief A foreign domain's pages mapped here; unmapped on destruction. */
class GrantMapping
{
public:
	GrantMapping() = default;
	GrantMapping(GrantMapping &&o) noexcept { *this = std::move(o); }
	GrantMapping &operator=(GrantMapping &&o) noexcept;
	GrantMapping(const GrantMapping &) = delete;
	GrantMapping &operator=(const GrantMapping &) = delete;
	~GrantMapping() { reset(); }

	[[nodiscard]] uint8_t *data() const { return static_cast<uint8_t *>(addr_); }
	[[nodiscard]] size_t pages() const { return pages_; }
	[[nodiscard]] size_t size() const { return pages_ * kPageSize; }
	[[nodiscard]] DomId domain() const { return dom_; }
	[[nodiscard]] bool writable() const { return writable_; }
	explicit operator bool() const { return addr_ != nullptr; }
	void reset();

private:
	friend class GrantTable;
	std::shared_ptr<GrantTable> owner_;
	void *addr_ = nullptr;
	size_t pages_ = 0;
	DomId dom_ = 0;
	bool writable_ = false;
};

/** \brief Our pages granted to a domain; access ended on destruction. */
class GrantShare
{
public:
	GrantShare() = default;
	GrantShare(GrantShare &&o) noexcept { *this = std::move(o); }
	GrantShare &operator=(GrantShare &&o) noexcept;
	GrantShare(const GrantShare &) = delete;
	GrantShare &operator=(const GrantShare &) = delete;
	~GrantShare() { reset(); }

	[[nodiscard]] uint8_t *data() const { return static_cast<uint8_t *>(addr_); }
	[[nodiscard]] size_t pages() const { return refs_.size(); }
	[[nodiscard]] size_t size() const { return refs_.size() * kPageSize; }
	[[nodiscard]] const std::vector<Gref> &refs() const { return refs_; }
	[[nodiscard]] DomId peer() const { return peer_; }
	explicit operator bool() const { return addr_ != nullptr; }

	/**
	 * End access now.  -EBUSY (and the share stays valid) while the peer
	 * maps a page; the caller may retry later.  Never lets a mapped page be
	 * reused: that is the XSA-396 rule.
	 */
	Status endAccess();
	/** End access, deferring the release to the peer's unmap if needed. */
	void reset();

private:
	friend class GrantTable;
	std::shared_ptr<GrantBackend> backend_;
	void *addr_ = nullptr;
	std::vector<Gref> refs_;
	uint64_t handle_ = 0;
	DomId peer_ = 0;
};

/**
 * \brief A dma-buf made of a foreign domain's pages (exp_from_refs).
 *
 * Dom0 maps the guest's pages for as long as anyone holds the dma-buf, not
 * as long as this fd: a driver keeps an import attached to its buffer slot
 * until the slot is given another buffer or freed.  On destruction the fd
 * goes back to the GrantTable, which asks the kernel whether the export is
 * released (exp_wait_released) and keeps counting it as held until it is
 * (GrantTable::exportedDmaBufs()).
 */
class ForeignDmaBuf
{
public:
	ForeignDmaBuf() = default;
	ForeignDmaBuf(ForeignDmaBuf &&o) noexcept = default;
	ForeignDmaBuf &operator=(ForeignDmaBuf &&o) noexcept;
	~ForeignDmaBuf() { reset(); }
	[[nodiscard]] int fd() const { return fd_.get(); }
	[[nodiscard]] size_t size() const { return size_; }
	explicit operator bool() const { return fd_.isValid(); }
	void reset();

private:
	friend class GrantTable;
	std::weak_ptr<GrantTable> table_;
	UniqueFD fd_;
	size_t size_ = 0;
	DomId dom_ = 0;
};

/**
 * \brief Refs granting a local dma-buf to a domain (imp_to_refs); released on destruction.
 *
 * The import is not ended when its owner lets go: the GrantTable keeps it
 * until the domain is gone (Xen has then dropped its mappings), bounded per
 * domain (quarantinedPages()).  Ending it while the guest may still map a
 * page sends Linux down gnttab_end_foreign_access()'s deferred path, which
 * takes and later drops a reference on that single page: harmless for
 * order-0 pages, but a camera's vb2-dma-contig buffer on a Xen PV Dom0 is
 * one non-compound high-order allocation (xen-swiotlb), so that put frees
 * the page on its own and the buffer's own free later hits "Bad page
 * state" and a Dom0 panic (seen on Linux 6.1 / Xen 4.17 with vivid
 * allocators=1; docs/camera-service.md).  No user-space call tells whether
 * a guest still maps a grant, so the domain's death is the safe point.
 */
class DmaBufGrant
{
public:
	DmaBufGrant() = default;
	DmaBufGrant(DmaBufGrant &&o) noexcept = default;
	DmaBufGrant &operator=(DmaBufGrant &&o) noexcept;
	~DmaBufGrant() { reset(); }
	[[nodiscard]] const std::vector<Gref> &refs() const { return refs_; }
	void reset();

private:
	friend class GrantTable;
	std::shared_ptr<GrantBackend> backend_;
	std::weak_ptr<GrantTable> table_;
	UniqueFD fd_;
	std::vector<Gref> refs_;
	uint64_t handle_ = 0;
	DomId dom_ = 0;
};

/**
 * \brief Grant operations with per-domain limits.
 *
 * Create with GrantTable::create(); it is shared by its mappings so that
 * accounting survives the order in which owners go away.
 */
class GrantTable : public std::enable_shared_from_this<GrantTable>
{
public:
	static std::shared_ptr<GrantTable> create(std::shared_ptr<GrantBackend> backend);

	/** Map refs of \a dom; checks every element; partial failure maps nothing. */
	Result<GrantMapping> map(DomId dom, std::span<const Gref> refs, bool writable);
	Result<GrantShare> share(DomId dom, size_t pages, bool writable);

	DmaBufSupport probeDmaBuf();
	/** Probed once, logged once; see ForeignMapSupport. */
	ForeignMapSupport probeForeignMaps();
	Result<ForeignDmaBuf> dmabufFromRefs(DomId dom, std::span<const Gref> refs, bool writable);
	/**
	 * dma-bufs of \a dom's pages Dom0 holds: those not yet let go of, and
	 * those let go of that a driver has not released (asked again here).
	 */
	[[nodiscard]] size_t exportedDmaBufs(DomId dom);
	Result<DmaBufGrant> refsFromDmabuf(DomId dom, int fd, size_t pages);
	/** Pages of dma-buf imports for \a dom let go of and kept until it is gone (see DmaBufGrant). */
	[[nodiscard]] size_t quarantinedPages(DomId dom) const;
	/** \a dom is destroyed: Xen dropped its mappings; what was kept for it is freed. */
	void domainGone(DomId dom);

	/** Cap on pages mapped from \a dom at once (0 = no mapping allowed). */
	void setPageLimit(DomId dom, size_t maxPages);
	void setDefaultPageLimit(size_t maxPages);
	[[nodiscard]] size_t mappedPages(DomId dom) const;

	GrantBackend &backend() { return *backend_; }

private:
	explicit GrantTable(std::shared_ptr<GrantBackend> backend) : backend_(std::move(backend)) {}
	friend class GrantMapping;
	friend class DmaBufGrant;
	friend class ForeignDmaBuf;
	void quarantine(DmaBufGrant &&grant);
	void exportClosed(DomId dom, UniqueFD fd);
	void pollReleased(DomId dom);
	void release(DomId dom, void *addr, size_t pages);

	std::shared_ptr<GrantBackend> backend_;
	mutable std::mutex lock_;
	std::map<DomId, size_t> limit_;
	std::map<DomId, size_t> mapped_;
	size_t defaultLimit_ = 65536; /* 256 MiB per domain */
	std::optional<DmaBufSupport> dmabuf_;
	struct Quarantined {
		std::vector<DmaBufGrant> grants;
		size_t pages = 0;
	};
	std::map<DomId, Quarantined> quarantine_;
	struct Exports {
		size_t live = 0; /* ForeignDmaBufs alive */
		/* let go of, not yet released: placeholders keeping the fd numbers */
		std::vector<UniqueFD> held;
		bool reported = false; /* "still held" logged once per domain */
	};
	std::map<DomId, Exports> exports_;
	std::optional<ForeignMapSupport> foreignMaps_;
};

} /* namespace xmb::xen */
