/* SPDX-License-Identifier: MIT */
/*
 * Grants on real Xen: gntdev (map foreign refs, dma-buf) through
 * libxengnttab, gntalloc (share our pages) through libxengntshr.
 */
#include "bridge/platform/real/real_platform.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

extern "C" {
#include <xengnttab.h>
}

#include "protocol/base/log.h"
#include "bridge/platform/real/xen_logger.h"

namespace xmb::xen {

XMB_LOG_DEFINE_CATEGORY(logRealGrant, "grant");

namespace {

/* Per-element probing after a failed batch is bounded: it is an error path a guest can trigger. */
constexpr size_t kMaxProbe = 64;

class RealGrantBackend final : public GrantBackend
{
public:
	RealGrantBackend(xengnttab_handle *gnt, xengntshr_handle *shr) : gnt_(gnt), shr_(shr) {}
	/* Owns the handle: one close, so never copied. */
	RealGrantBackend(const RealGrantBackend &) = delete;
	RealGrantBackend &operator=(const RealGrantBackend &) = delete;
	~RealGrantBackend() override
	{
		if (shr_)
			xengntshr_close(shr_);
		xengnttab_close(gnt_);
	}

	void *map(DomId dom, std::span<const Gref> refs, bool writable, MapFailure &failure) override
	{
		std::vector<uint32_t> r(refs.begin(), refs.end());
		int prot = PROT_READ | (writable ? PROT_WRITE : 0);
		void *addr = xengnttab_map_domain_grant_refs(gnt_, r.size(), dom, r.data(), prot);
		if (addr)
			return addr;
		failure.code = -(errno ? errno : EIO);
		/*
		 * gntdev maps all or nothing and does not say which element
		 * failed; map the first few one by one to find out.
		 */
		failure.status.assign(refs.size(), 0);
		for (size_t i = 0; i < std::min(refs.size(), kMaxProbe); i++) {
			void *one = xengnttab_map_grant_ref(gnt_, dom, refs[i], prot);
			if (one)
				xengnttab_unmap(gnt_, one, 1);
			else
				failure.status[i] = -(errno ? errno : EIO);
		}
		return nullptr;
	}

	void unmap(void *addr, size_t pages) override
	{
		if (xengnttab_unmap(gnt_, addr, pages) < 0)
			XMB_LOG(logRealGrant, Error, "unmap of %zu pages at %p: %s", pages, addr,
				std::strerror(errno));
	}

	void *share(DomId dom, size_t pages, bool writable, std::vector<Gref> &refs,
		    uint64_t &handle, int &err) override
	{
		if (!shr_) {
			err = -ENODEV;
			return nullptr;
		}
		refs.assign(pages, 0);
		void *addr = xengntshr_share_pages(shr_, dom, pages, refs.data(), writable);
		if (!addr) {
			err = -(errno ? errno : EIO);
			refs.clear();
			return nullptr;
		}
		handle = 0;
		return addr;
	}

	/*
	 * gntalloc ends foreign access when the pages are unmapped here; if the
	 * peer still maps one, Linux defers the release until the peer unmaps,
	 * so the page is never reused under it.  "Busy" is not visible to us.
	 */
	int endShare(void *addr, size_t pages, uint64_t, bool) override
	{
		if (xengntshr_unshare(shr_, addr, pages) < 0)
			return -errno;
		return 0;
	}

	/*
	 * Probe with an import of fd -1: a kernel with gntdev dma-buf answers
	 * EBADF (it got as far as looking the fd up); one without answers
	 * ENOTTY.  Export from foreign refs additionally needs a Dom0 whose
	 * gntdev does not use PTE modification and whose hypervisor grants
	 * GNTMAP_device_map: never the case on x86 (PV: EINVAL by design; PVH:
	 * Xen refuses the device map), so it is reported off there.
	 */
	DmaBufSupport probeDmaBuf() override
	{
		DmaBufSupport s;
		uint32_t ref = 0;
		int ret = xengnttab_dmabuf_imp_to_refs(gnt_, kProbeDomid, UINT32_MAX, 1, &ref);
		int e = ret ? errno : 0;
		if (!ret)
			xengnttab_dmabuf_imp_release(gnt_, UINT32_MAX);
		if (e != EBADF && e != 0) {
			s.detail = std::string("gntdev dma-buf ioctls unavailable (") + std::strerror(e) +
				   "): kernel without CONFIG_XEN_GNTDEV_DMABUF";
			return s;
		}
		s.importToRefs = true;
#if defined(__x86_64__) || defined(__i386__)
		s.exportFromRefs = false;
		s.detail = "gntdev dma-buf present; export from foreign refs is refused on x86 "
			   "(PV Dom0: EINVAL, PVH Dom0: no GNTMAP_device_map): mapped pages are used";
#else
		s.exportFromRefs = true;
		s.detail = "gntdev dma-buf present";
#endif
		return s;
	}

	/* The domain type says whether foreign frames live in our physmap. */
	ForeignMapSupport probeForeignMaps() override
	{
		ForeignMapSupport s;
		char type[16] = {};
		int fd = ::open("/sys/hypervisor/guest_type", O_RDONLY | O_CLOEXEC);
		ssize_t n = fd < 0 ? -1 : ::read(fd, type, sizeof(type) - 1);
		if (fd >= 0)
			::close(fd);
		std::string t = n > 0 ? std::string(type, static_cast<size_t>(n)) : "";
		while (!t.empty() && (t.back() == '\n' || t.back() == ' '))
			t.pop_back();
		if (t == "PV" || t.empty()) {
			s.driverVmap = false;
			s.detail = t.empty() ? "/sys/hypervisor/guest_type unreadable: assuming PV"
					     : "x86 PV domain: foreign frames are only in gntdev's user "
					       "and linear-map PTEs, a driver's vmap of them faults";
		} else {
			s.detail = t + " domain: foreign frames are in the physmap";
		}
		return s;
	}

	Result<UniqueFD> dmabufExportFromRefs(DomId dom, std::span<const Gref> refs, bool) override
	{
		std::vector<uint32_t> r(refs.begin(), refs.end());
		uint32_t fd = 0;
		if (xengnttab_dmabuf_exp_from_refs(gnt_, dom, 0, r.size(), r.data(), &fd))
			return Error{ -errno, std::string("dma-buf export from dom") + std::to_string(dom) +
						      " refs: " + std::strerror(errno) };
		return UniqueFD(static_cast<int>(fd));
	}

	int dmabufWaitReleased(int fd, unsigned timeoutMs) override
	{
		return xengnttab_dmabuf_exp_wait_released(gnt_, fd, timeoutMs) ? -errno : 0;
	}

	/*
	 * One gntdev handle per import, released by closing it: the kernel's
	 * imp_release finds an import by the fd *number* given at import time
	 * (Linux 6.1 dmabuf_imp_find_unlink), which our caller may have closed
	 * and reused since, and one handle's list could hold the same buffer
	 * for two guests.  Closing the handle ends exactly this import.
	 */
	Result<std::vector<Gref>> dmabufImportToRefs(DomId dom, int fd, size_t pages,
						      uint64_t &handle) override
	{
		xengnttab_handle *h = xengnttab_open(quietXenLogger(), 0);
		if (!h)
			return Error{ -errno, std::string("gntdev: ") + std::strerror(errno) };
		std::vector<uint32_t> refs(pages);
		if (xengnttab_dmabuf_imp_to_refs(h, dom, fd, pages, refs.data())) {
			int e = errno;
			xengnttab_close(h);
			return Error{ -e, std::string("dma-buf import to refs for dom") +
						  std::to_string(dom) + ": " + std::strerror(e) };
		}
		handle = reinterpret_cast<uintptr_t>(h);
		return std::vector<Gref>(refs.begin(), refs.end());
	}

	void dmabufImportRelease(int fd, uint64_t handle) override
	{
		auto *h = reinterpret_cast<xengnttab_handle *>(static_cast<uintptr_t>(handle));
		if (!h)
			return;
		(void)fd;
		xengnttab_close(h); /* gntdev_release: ends the import's grants, detaches, puts the dma-buf */
	}

private:
	/* An unused domid for probing: the kernel checks the fd before the domain. */
	static constexpr uint32_t kProbeDomid = 0x7ff0;
	xengnttab_handle *gnt_;
	xengntshr_handle *shr_;
};

} /* namespace */

Result<std::shared_ptr<GrantBackend>> openRealGrants()
{
	xengnttab_handle *gnt = xengnttab_open(quietXenLogger(), 0);
	if (!gnt)
		return Error{ -errno, std::string("/dev/xen/gntdev: ") + std::strerror(errno) +
					      " (is xen-gntdev loaded? running in a Xen domain?)" };
	/* gntalloc is optional: a backend that only maps can live without it. */
	xengntshr_handle *shr = xengntshr_open(quietXenLogger(), 0);
	if (!shr)
		XMB_LOG(logRealGrant, Warn, "/dev/xen/gntalloc: %s: sharing pages disabled",
			std::strerror(errno));
	return std::shared_ptr<GrantBackend>(std::make_shared<RealGrantBackend>(gnt, shr));
}

} /* namespace xmb::xen */
