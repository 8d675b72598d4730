/* SPDX-License-Identifier: MIT */
/*
 * Loopback grants: each share is a memfd; mapping a ref maps the granter's
 * page of that memfd into the mapper's address space (MAP_SHARED), so both
 * sides see the same physical page, as with a real grant mapping.
 */
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <thread>

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bridge/platform/loopback/loopback_state.h"

namespace xmb::xen::loopback {

namespace {

/* Grant every page of \a mem to \a dom, reusing freed refs first (lock held). */
std::vector<Gref> grantPages(Domain &me, DomId dom, bool readonly, const std::shared_ptr<Backing> &mem)
{
	std::vector<Gref> refs;
	for (size_t i = 0; i < mem->pages; i++) {
		Gref ref;
		if (!me.freeRefs.empty()) {
			ref = *me.freeRefs.begin();
			me.freeRefs.erase(me.freeRefs.begin());
		} else {
			ref = me.nextRef++;
		}
		me.grants[ref] = GrantEntry{ dom, readonly, mem, i, 0, false };
		refs.push_back(ref);
	}
	return refs;
}

class LoopbackGrantBackend final : public GrantBackend
{
public:
	LoopbackGrantBackend(std::shared_ptr<Hypervisor> hv, DomId self)
		: hv_(std::move(hv)), self_(self) {}

	void *map(DomId dom, std::span<const Gref> refs, bool writable, MapFailure &failure) override
	{
		std::lock_guard<std::mutex> l(hv_->lock);
		failure.status.assign(refs.size(), 0);
		if (!hv_->aliveDomain(self_)) {
			failure.code = -ESRCH;
			return nullptr;
		}
		Domain *granter = hv_->aliveDomain(dom);

		/* Check every element before mapping anything. */
		std::vector<GrantEntry *> entries(refs.size());
		for (size_t i = 0; i < refs.size(); i++) {
			int st = 0;
			if (!granter) {
				st = -ESRCH;
			} else {
				auto it = granter->grants.find(refs[i]);
				if (it == granter->grants.end() || it->second.endPending)
					st = -ENOENT; /* GNTST_bad_gntref */
				else if (it->second.grantee != self_)
					st = -EPERM; /* GNTST_permission_denied */
				else if (writable && it->second.readonly)
					st = -EACCES; /* read-only grant */
				else
					entries[i] = &it->second;
			}
			failure.status[i] = st;
			if (st && !failure.code)
				failure.code = st;
		}
		if (failure.code)
			return nullptr;

		size_t len = refs.size() * kPageSize;
		void *base = ::mmap(nullptr, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (base == MAP_FAILED) {
			failure.code = -errno;
			return nullptr;
		}
		int prot = PROT_READ | (writable ? PROT_WRITE : 0);
		for (size_t i = 0; i < refs.size(); i++) {
			void *at = static_cast<uint8_t *>(base) + i * kPageSize;
			void *p = ::mmap(at, kPageSize, prot, MAP_SHARED | MAP_FIXED,
					 entries[i]->mem->memfd.get(), entries[i]->page * kPageSize);
			if (p == MAP_FAILED) {
				failure.code = -errno;
				failure.status[i] = failure.code;
				::munmap(base, len); /* partial failure: nothing stays mapped */
				return nullptr;
			}
		}

		MappingRecord rec{ self_, refs.size(), {} };
		for (size_t i = 0; i < refs.size(); i++) {
			entries[i]->mapCount++;
			rec.grants.emplace_back(dom, refs[i]);
		}
		hv_->mappings[base] = std::move(rec);
		return base;
	}

	void unmap(void *addr, size_t pages) override
	{
		std::lock_guard<std::mutex> l(hv_->lock);
		auto it = hv_->mappings.find(addr);
		if (it == hv_->mappings.end())
			return;
		for (auto [dom, ref] : it->second.grants) {
			auto d = hv_->domains.find(dom);
			if (d == hv_->domains.end())
				continue;
			auto g = d->second.grants.find(ref);
			if (g == d->second.grants.end())
				continue;
			if (--g->second.mapCount == 0 && g->second.endPending)
				hv_->freeGrant(d->second, ref);
		}
		::munmap(addr, pages * kPageSize);
		hv_->mappings.erase(it);
	}

	void *share(DomId dom, size_t pages, bool writable, std::vector<Gref> &refs,
		    uint64_t &handle, int &err) override
	{
		std::lock_guard<std::mutex> l(hv_->lock);
		Domain *me = hv_->aliveDomain(self_);
		if (!me) {
			err = -ESRCH;
			return nullptr;
		}
		if (me->grants.size() + pages > me->maxGrants) {
			err = -ENOSPC; /* grant table full */
			return nullptr;
		}
		auto mem = std::make_shared<Backing>();
		mem->memfd = UniqueFD(::memfd_create("xmb-loopback-grant", MFD_CLOEXEC));
		mem->pages = pages;
		if (!mem->memfd || ::ftruncate(mem->memfd.get(), pages * kPageSize) < 0) {
			err = -errno;
			return nullptr;
		}
		void *addr = ::mmap(nullptr, pages * kPageSize, PROT_READ | PROT_WRITE, MAP_SHARED,
				    mem->memfd.get(), 0);
		if (addr == MAP_FAILED) {
			err = -errno;
			return nullptr;
		}
		refs = grantPages(*me, dom, !writable, mem);
		hv_->shares[addr] = ShareRecord{ self_, refs, pages };
		handle = 0;
		return addr;
	}

	int endShare(void *addr, size_t pages, uint64_t, bool deferIfBusy) override
	{
		std::lock_guard<std::mutex> l(hv_->lock);
		auto it = hv_->shares.find(addr);
		if (it == hv_->shares.end())
			return -EINVAL;
		auto d = hv_->domains.find(it->second.owner);
		if (d != hv_->domains.end()) {
			auto &grants = d->second.grants;
			bool busy = false;
			for (Gref ref : it->second.refs) {
				auto g = grants.find(ref);
				if (g != grants.end() && g->second.mapCount)
					busy = true;
			}
			if (busy && !deferIfBusy)
				return -EBUSY;
			for (Gref ref : it->second.refs) {
				auto g = grants.find(ref);
				if (g == grants.end())
					continue;
				if (g->second.mapCount)
					g->second.endPending = true;
				else
					hv_->freeGrant(d->second, ref);
			}
		}
		::munmap(addr, pages * kPageSize);
		hv_->shares.erase(it);
		return 0;
	}

	DmaBufSupport probeDmaBuf() override
	{
		std::lock_guard<std::mutex> l(hv_->lock);
		if (hv_->gntdevDmabuf && hv_->dmabufExport)
			return { true, true, "loopback platform emulating an Arm Dom0's gntdev dma-buf" };
		if (hv_->gntdevDmabuf)
			return { false, true, "loopback platform emulating gntdev dma-buf import" };
		return { false, false,
			 "loopback platform: no gntdev dma-buf (as Debian's x86 Dom0 kernel)" };
	}

	ForeignMapSupport probeForeignMaps() override
	{
		std::lock_guard<std::mutex> l(hv_->lock);
		if (hv_->pvForeignMaps)
			return { false, "loopback platform emulating an x86 PV Dom0" };
		return { true, "loopback platform: mappings are ordinary shared memory" };
	}

	/*
	 * exp_from_refs as an Arm Dom0 does it, within what the loopback can
	 * share: the refs must be a granter's whole share in page order (a
	 * guest buffer is one), and the dma-buf is that share's memory.
	 */
	Result<UniqueFD> dmabufExportFromRefs(DomId dom, std::span<const Gref> refs, bool writable) override
	{
		std::lock_guard<std::mutex> l(hv_->lock);
		if (!hv_->gntdevDmabuf || !hv_->dmabufExport)
			return Error{ -ENOTTY, "loopback platform: no dma-buf export" };
		Domain *granter = hv_->aliveDomain(dom);
		if (!granter || refs.empty())
			return Error{ -EINVAL, "loopback: export of no refs or of a dead domain" };
		std::shared_ptr<Backing> mem;
		for (size_t i = 0; i < refs.size(); i++) {
			auto it = granter->grants.find(refs[i]);
			if (it == granter->grants.end() || it->second.endPending || it->second.grantee != self_)
				return Error{ -EINVAL, "loopback: export: ref " + std::to_string(refs[i]) + " not granted to us" };
			if (writable && it->second.readonly)
				return Error{ -EACCES, "loopback: export: read-only grant" };
			if (!mem)
				mem = it->second.mem;
			if (it->second.mem != mem || it->second.page != i)
				return Error{ -EINVAL, "loopback: export: refs are not one share's pages in order" };
		}
		if (mem->pages != refs.size())
			return Error{ -EINVAL, "loopback: export: not a whole share" };
		UniqueFD fd(::fcntl(mem->memfd.get(), F_DUPFD_CLOEXEC, 0));
		if (!fd)
			return Error{ -errno, "loopback: export: dup" };
		struct stat st = {};
		::fstat(fd.get(), &st);
		exports_[fd.get()] = Export{ st.st_dev, st.st_ino, mem };
		return fd;
	}

	/*
	 * exp_wait_released as gntdev does it: the export is found by the fd
	 * number it was created with (ENOENT once released) and is released
	 * when nobody holds the dma-buf.  Here all holders are this process's
	 * fds, so "held" is: an fd refers to the memory other than the share's
	 * own memfd and other exports of it not yet closed.
	 */
	int dmabufWaitReleased(int fd, unsigned timeoutMs) override
	{
		const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
		for (;;) {
			{
				std::lock_guard<std::mutex> l(hv_->lock);
				auto it = exports_.find(fd);
				if (it == exports_.end())
					return -ENOENT;
				if (holders(fd, it->second) == 0) {
					exports_.erase(it);
					return 0;
				}
			}
			if (std::chrono::steady_clock::now() >= deadline)
				return -ETIMEDOUT;
			std::this_thread::sleep_for(std::chrono::milliseconds(1));
		}
	}
	/*
	 * imp_to_refs as Linux's gntdev does it: the buffer must be exactly
	 * \a pages long, every page is granted writable to \a dom, and the
	 * grants keep the memory (a dup of the fd) until the last unmap.
	 */
	Result<std::vector<Gref>> dmabufImportToRefs(DomId dom, int fd, size_t pages,
						      uint64_t &handle) override
	{
		std::lock_guard<std::mutex> l(hv_->lock);
		if (!hv_->gntdevDmabuf)
			return Error{ -ENOTTY, "loopback platform: no dma-buf import" };
		Domain *me = hv_->aliveDomain(self_);
		if (!me)
			return Error{ -ESRCH, "loopback: importer is dead" };
		off_t size = ::lseek(fd, 0, SEEK_END);
		if (size < 0)
			return Error{ -EBADF, "dma-buf import: not a buffer" };
		if (pages == 0 || static_cast<size_t>(size) != pages * kPageSize)
			return Error{ -EINVAL, "dma-buf import: buffer has " + std::to_string(size) +
						       " bytes, " + std::to_string(pages) + " pages asked" };
		if (me->grants.size() + pages > me->maxGrants)
			return Error{ -ENOSPC, "dma-buf import: grant table full" };
		auto mem = std::make_shared<Backing>();
		mem->memfd = UniqueFD(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
		mem->pages = pages;
		if (!mem->memfd)
			return Error{ -errno, "dma-buf import: dup" };
		std::vector<Gref> refs = grantPages(*me, dom, false, mem);
		handle = hv_->nextHandle++;
		hv_->imports[handle] = ShareRecord{ self_, refs, pages };
		return refs;
	}

	void dmabufImportRelease(int, uint64_t handle) override
	{
		std::lock_guard<std::mutex> l(hv_->lock);
		auto it = hv_->imports.find(handle);
		if (it == hv_->imports.end())
			return;
		auto d = hv_->domains.find(it->second.owner);
		if (d != hv_->domains.end()) {
			for (Gref ref : it->second.refs) {
				auto g = d->second.grants.find(ref);
				if (g == d->second.grants.end())
					continue;
				if (g->second.mapCount)
					g->second.endPending = true; /* the memory stays until the unmap */
				else
					hv_->freeGrant(d->second, ref);
			}
		}
		hv_->imports.erase(it);
	}

private:
	struct Export {
		dev_t dev;
		ino_t ino;
		std::weak_ptr<Backing> mem;
	};
	static bool refersTo(int fd, const Export &e)
	{
		struct stat st = {};
		return ::fstat(fd, &st) == 0 && st.st_dev == e.dev && st.st_ino == e.ino;
	}
	/* fds holding export \a fd's memory, but for the share itself and open exports (lock held) */
	size_t holders(int fd, const Export &e) const
	{
		long n = 0;
		if (DIR *d = ::opendir("/proc/self/fd")) {
			while (const dirent *ent = ::readdir(d))
				if (ent->d_name[0] != '.' && refersTo(std::atoi(ent->d_name), e))
					n++;
			::closedir(d);
		}
		if (auto mem = e.mem.lock(); mem && refersTo(mem->memfd.get(), e))
			n--;
		for (const auto &[other, o] : exports_)
			if (other != fd && refersTo(other, e))
				n--;
		return n > 0 ? size_t(n) : 0;
	}
	std::map<int, Export> exports_; /* by the fd number they were created with */
	std::shared_ptr<Hypervisor> hv_;
	DomId self_;
};

} /* namespace */

std::shared_ptr<GrantBackend> makeGrantBackend(std::shared_ptr<Hypervisor> hv, DomId self)
{
	return std::make_shared<LoopbackGrantBackend>(std::move(hv), self);
}

} /* namespace xmb::xen::loopback */
