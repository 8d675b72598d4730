/* SPDX-License-Identifier: MIT */
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "bridge/platform/grant_table.h"
#include "protocol/result.h"

namespace xmb::service {

/**
 * \brief Walk a guest's gref directory (cameraif's page directory, also
 * vcodec's), mapping each directory page once and copying it out before use.
 *
 * \param bytes the buffer size the directory describes: fixed by us (the
 *        layout), never by the guest, so it bounds the walk
 * \param pageBudget directory and buffer pages the guest may still have mapped
 * \param collect read the buffer's grefs (frontend-allocated); false: only
 *        follow the chain (be-alloc: Dom0 writes the grefs)
 * \param keep where to keep the directory mappings, writable (be-alloc), or null
 * \return the buffer's grefs (empty when \a collect is false)
 */
Result<std::vector<xen::Gref>> walkGuestDirectory(xen::GrantTable &grants, xen::DomId guest, xen::Gref first,
						  uint64_t bytes, size_t pageBudget, bool collect,
						  std::vector<xen::GrantMapping> *keep);

/**
 * \brief be-alloc: write the refs of the pages Dom0 granted into the guest's
 * directory pages (kept writable by walkGuestDirectory); the chain is the
 * guest's and stays as it wrote it
 */
Status writeGuestDirectory(std::span<xen::GrantMapping> dirPages, std::span<const xen::Gref> refs);

} /* namespace xmb::service */
