/* SPDX-License-Identifier: MIT */
#include "bridge/platform/grant_table.h"

#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <unistd.h>

#include "protocol/base/log.h"

namespace xmb::xen {

XMB_LOG_DEFINE_CATEGORY(logGrant, "grant");

GrantMapping &GrantMapping::operator=(GrantMapping &&o) noexcept
{
	if (this != &o) {
		reset();
		owner_ = std::move(o.owner_);
		addr_ = std::exchange(o.addr_, nullptr);
		pages_ = std::exchange(o.pages_, 0);
		dom_ = o.dom_;
		writable_ = o.writable_;
	}
	return *this;
}

void GrantMapping::reset()
{
	if (addr_ && owner_)
		owner_->release(dom_, addr_, pages_);
	addr_ = nullptr;
	pages_ = 0;
	owner_.reset();
}

GrantShare &GrantShare::operator=(GrantShare &&o) noexcept
{
	if (this != &o) {
		reset();
		backend_ = std::move(o.backend_);
		addr_ = std::exchange(o.addr_, nullptr);
		refs_ = std::move(o.refs_);
		handle_ = o.handle_;
		peer_ = o.peer_;
	}
	return *this;
}

Status GrantShare::endAccess()
{
	if (!addr_)
		return {};
	int ret = backend_->endShare(addr_, refs_.size(), handle_, false);
	if (ret < 0)
		return Error{ ret, "end of access to " + std::to_string(refs_.size()) +
					   " pages granted to dom" + std::to_string(peer_) + ": " +
					   std::strerror(-ret) };
	addr_ = nullptr;
	refs_.clear();
	backend_.reset();
	return {};
}

void GrantShare::reset()
{
	if (addr_ && backend_)
		backend_->endShare(addr_, refs_.size(), handle_, true);
	addr_ = nullptr;
	refs_.clear();
	backend_.reset();
}

DmaBufGrant &DmaBufGrant::operator=(DmaBufGrant &&o) noexcept
{
	if (this != &o) {
		reset();
		backend_ = std::move(o.backend_);
		fd_ = std::move(o.fd_);
		refs_ = std::move(o.refs_);
		handle_ = o.handle_;
		table_ = std::move(o.table_);
		dom_ = o.dom_;
	}
	return *this;
}

void DmaBufGrant::reset()
{
	if (auto t = table_.lock(); t && fd_) {
		DmaBufGrant kept;
		kept.backend_ = std::move(backend_);
		kept.fd_ = std::move(fd_);
		kept.refs_ = std::move(refs_);
		kept.handle_ = handle_;
		kept.dom_ = dom_; /* no table: released for real when the table lets it go */
		table_.reset();
		t->quarantine(std::move(kept));
		return;
	}
	if (fd_ && backend_)
		backend_->dmabufImportRelease(fd_.get(), handle_);
	table_.reset();
	fd_.reset();
	refs_.clear();
	backend_.reset();
}

std::shared_ptr<GrantTable> GrantTable::create(std::shared_ptr<GrantBackend> backend)
{
	return std::shared_ptr<GrantTable>(new GrantTable(std::move(backend)));
}

/**
 * \brief Map a batch of a foreign domain's grant refs.
 *
 * The per-domain page limit is charged before the backend is asked, so a
 * guest cannot make us map past its cap even transiently.  The backend
 * checks every element and maps nothing if one fails; the error names the
 * first failing element and its status.
 */
Result<GrantMapping> GrantTable::map(DomId dom, std::span<const Gref> refs, bool writable)
{
	if (refs.empty())
		return Error{ -EINVAL, "grant map: no refs" };
	{
		std::lock_guard<std::mutex> l(lock_);
		auto it = limit_.find(dom);
		size_t limit = it == limit_.end() ? defaultLimit_ : it->second;
		size_t &used = mapped_[dom];
		if (refs.size() > limit || used > limit - refs.size())
			return Error{ -ENOSPC, "grant map: dom" + std::to_string(dom) + " would have " +
						       std::to_string(used + refs.size()) +
						       " pages mapped, limit " + std::to_string(limit) };
		used += refs.size();
	}

	MapFailure failure;
	void *addr = backend_->map(dom, refs, writable, failure);
	if (!addr) {
		{
			std::lock_guard<std::mutex> l(lock_);
			mapped_[dom] -= refs.size();
		}
		std::string msg = "grant map of " + std::to_string(refs.size()) + " refs from dom" +
				  std::to_string(dom) + " failed: " + std::strerror(-failure.code);
		for (size_t i = 0; i < failure.status.size() && i < refs.size(); i++) {
			if (failure.status[i]) {
				msg += " (first failing element " + std::to_string(i) + ", gref " +
				       std::to_string(refs[i]) + ": " +
				       std::strerror(-failure.status[i]) + ")";
				break;
			}
		}
		return Error{ failure.code ? failure.code : -EIO, msg };
	}

	GrantMapping m;
	m.owner_ = shared_from_this();
	m.addr_ = addr;
	m.pages_ = refs.size();
	m.dom_ = dom;
	m.writable_ = writable;
	return m;
}

void GrantTable::release(DomId dom, void *addr, size_t pages)
{
	backend_->unmap(addr, pages);
	std::lock_guard<std::mutex> l(lock_);
	mapped_[dom] -= pages;
}

Result<GrantShare> GrantTable::share(DomId dom, size_t pages, bool writable)
{
	if (!pages)
		return Error{ -EINVAL, "grant share: 0 pages" };
	GrantShare s;
	int err = 0;
	s.addr_ = backend_->share(dom, pages, writable, s.refs_, s.handle_, err);
	if (!s.addr_)
		return Error{ err ? err : -EIO, "sharing " + std::to_string(pages) + " pages with dom" +
							 std::to_string(dom) + ": " + std::strerror(-err) };
	s.backend_ = backend_;
	s.peer_ = dom;
	return s;
}

DmaBufSupport GrantTable::probeDmaBuf()
{
	std::lock_guard<std::mutex> l(lock_);
	if (!dmabuf_) {
		dmabuf_ = backend_->probeDmaBuf();
		XMB_LOG(logGrant, Info, "dma-buf: export-from-refs %s, import-to-refs %s (%s)",
			dmabuf_->exportFromRefs ? "yes" : "no", dmabuf_->importToRefs ? "yes" : "no",
			dmabuf_->detail.c_str());
	}
	return *dmabuf_;
}

ForeignMapSupport GrantTable::probeForeignMaps()
{
	std::lock_guard<std::mutex> l(lock_);
	if (!foreignMaps_) {
		foreignMaps_ = backend_->probeForeignMaps();
		XMB_LOG(logGrant, Info, "foreign mappings: driver vmap %s (%s)",
			foreignMaps_->driverVmap ? "yes" : "no", foreignMaps_->detail.c_str());
	}
	return *foreignMaps_;
}

Result<ForeignDmaBuf> GrantTable::dmabufFromRefs(DomId dom, std::span<const Gref> refs, bool writable)
{
	auto fd = backend_->dmabufExportFromRefs(dom, refs, writable);
	if (!fd)
		return fd.error();
	ForeignDmaBuf b;
	b.table_ = weak_from_this();
	b.fd_ = std::move(*fd);
	b.size_ = refs.size() * kPageSize;
	b.dom_ = dom;
	std::lock_guard<std::mutex> l(lock_);
	exports_[dom].live++;
	return b;
}

ForeignDmaBuf &ForeignDmaBuf::operator=(ForeignDmaBuf &&o) noexcept
{
	if (this != &o) {
		reset();
		table_ = std::move(o.table_);
		fd_ = std::move(o.fd_);
		size_ = std::exchange(o.size_, 0);
		dom_ = o.dom_;
	}
	return *this;
}

void ForeignDmaBuf::reset()
{
	if (auto t = table_.lock(); t && fd_)
		t->exportClosed(dom_, std::move(fd_));
	fd_.reset();
	table_.reset();
	size_ = 0;
}

namespace {

/* Whether gntdev has released export \a fd (a number we still reserve). */
bool exportReleased(GrantBackend &backend, int fd)
{
	/* Timeout 0: a query, never a wait in the event loop.  ENOENT: released
	 * before we asked; ENOTTY: the kernel cannot tell, nothing to wait for. */
	int r = backend.dmabufWaitReleased(fd, 0);
	return r == 0 || r == -ENOENT || r == -ENOTTY;
}

} /* namespace */

/*
 * Our fd of an export is closed by putting a placeholder over its number:
 * gntdev finds an export by the fd number it was created with, and a new
 * export given the same number would make the question ambiguous.
 */
void GrantTable::exportClosed(DomId dom, UniqueFD fd)
{
	const int n = fd.get();
	UniqueFD placeholder(::open("/dev/null", O_RDONLY | O_CLOEXEC));
	std::lock_guard<std::mutex> l(lock_);
	Exports &e = exports_[dom];
	if (e.live)
		e.live--;
	if (!placeholder || ::dup3(placeholder.get(), n, O_CLOEXEC) != n) {
		fd.reset(); /* cannot reserve the number: cannot ask either */
		return;
	}
	(void)fd.release(); /* n is the placeholder now */
	UniqueFD reserved(n);
	if (!exportReleased(*backend_, n))
		e.held.push_back(std::move(reserved));
}

void GrantTable::pollReleased(DomId dom)
{
	auto it = exports_.find(dom);
	if (it == exports_.end())
		return;
	std::erase_if(it->second.held, [this](const UniqueFD &f) { return exportReleased(*backend_, f.get()); });
	if (!it->second.live && it->second.held.empty())
		exports_.erase(it);
}

size_t GrantTable::exportedDmaBufs(DomId dom)
{
	std::lock_guard<std::mutex> l(lock_);
	pollReleased(dom);
	auto it = exports_.find(dom);
	return it == exports_.end() ? 0 : it->second.live + it->second.held.size();
}

Result<DmaBufGrant> GrantTable::refsFromDmabuf(DomId dom, int fd, size_t pages)
{
	uint64_t handle = 0;
	auto refs = backend_->dmabufImportToRefs(dom, fd, pages, handle);
	if (!refs)
		return refs.error();
	DmaBufGrant g;
	g.handle_ = handle;
	g.table_ = weak_from_this();
	g.dom_ = dom;
	g.backend_ = backend_;
	g.fd_.reset(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
	g.refs_ = std::move(*refs);
	return g;
}

void GrantTable::quarantine(DmaBufGrant &&grant)
{
	std::lock_guard<std::mutex> l(lock_);
	Quarantined &q = quarantine_[grant.dom_];
	q.pages += grant.refs_.size();
	q.grants.push_back(std::move(grant));
}

size_t GrantTable::quarantinedPages(DomId dom) const
{
	std::lock_guard<std::mutex> l(lock_);
	auto it = quarantine_.find(dom);
	return it == quarantine_.end() ? 0 : it->second.pages;
}

void GrantTable::domainGone(DomId dom)
{
	Quarantined q;
	{
		std::lock_guard<std::mutex> l(lock_);
		pollReleased(dom);
		if (auto e = exports_.find(dom); e != exports_.end() && !e->second.held.empty() &&
						 !std::exchange(e->second.reported, true))
			XMB_LOG(logGrant, Warn, "dom%u is gone but a driver still holds %zu dma-buf(s) of its "
				"pages (exp_from_refs): Xen keeps the domain's memory until it lets go",
				static_cast<unsigned>(dom), e->second.held.size());
		auto it = quarantine_.find(dom);
		if (it == quarantine_.end())
			return;
		q = std::move(it->second);
		quarantine_.erase(it);
	}
	/* the imports end here, outside the lock */
}

void GrantTable::setPageLimit(DomId dom, size_t maxPages)
{
	std::lock_guard<std::mutex> l(lock_);
	limit_[dom] = maxPages;
}

void GrantTable::setDefaultPageLimit(size_t maxPages)
{
	std::lock_guard<std::mutex> l(lock_);
	defaultLimit_ = maxPages;
}

size_t GrantTable::mappedPages(DomId dom) const
{
	std::lock_guard<std::mutex> l(lock_);
	auto it = mapped_.find(dom);
	return it == mapped_.end() ? 0 : it->second;
}

} /* namespace xmb::xen */
