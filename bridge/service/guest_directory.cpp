/* SPDX-License-Identifier: MIT */
#include "bridge/service/guest_directory.h"

#include "protocol/gref_directory.h"

namespace xmb::service {

Result<std::vector<xen::Gref>> walkGuestDirectory(xen::GrantTable &grants, xen::DomId guest, xen::Gref first,
						  uint64_t bytes, size_t pageBudget, bool collect,
						  std::vector<xen::GrantMapping> *keep)
{
	proto::GrefDirectoryWalker walker(first, bytes, pageBudget,
					  collect ? proto::GrefDirectoryWalker::Mode::CollectGrefs
						  : proto::GrefDirectoryWalker::Mode::DirectoryOnly);
	if (walker.error())
		return *walker.error();
	while (auto g = walker.nextPage()) {
		xen::Gref ref = *g;
		auto page = grants.map(guest, std::span(&ref, 1), keep != nullptr);
		if (!page)
			return Error{ page.error().code, "directory page: " + page.error().message };
		Status s = walker.feed(std::span<const uint8_t>(page->data(), xen::kPageSize));
		if (!s)
			return s.error();
		if (keep)
			keep->push_back(std::move(*page));
	}
	return walker.takeGrefs();
}

Status writeGuestDirectory(std::span<xen::GrantMapping> dirPages, std::span<const xen::Gref> refs)
{
	std::vector<uint8_t *> ptrs;
	for (auto &m : dirPages)
		ptrs.push_back(m.data());
	std::vector<xen::Gref> chain(dirPages.size(), 0); /* not written: the guest's own */
	return proto::writeGrefDirectory(ptrs, chain, refs, false);
}

} /* namespace xmb::service */
