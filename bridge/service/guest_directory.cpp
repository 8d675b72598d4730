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

} /* namespace xmb::service */
