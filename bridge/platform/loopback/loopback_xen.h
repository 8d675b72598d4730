/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * An in-process "hypervisor": several domains inside one process, each with
 * a Platform whose grants, event channels and XenStore behave as on Xen.
 *
 * - Grant refs are real shared pages (memfd): a mapping is the granter's
 *   page, not a copy.  Only the grantee may map; read-only grants refuse a
 *   writable map; a mapped grant cannot be ended (EBUSY, or deferred to the
 *   unmap as Linux's gntalloc does); refs are reused only once free.
 * - Event channels wake the peer handle's fd; a delivered port stays
 *   masked until unmasked, and events latch meanwhile.
 * - XenStore has Xen's permission rules (owner, default, per-domain ACL;
 *   Dom0 privileged; unprivileged creators own what they create), watches
 *   that fire on registration and on changes to the node or below, read-
 *   permission filtering of watch events, @introduceDomain/@releaseDomain,
 *   and transactions that fail with EAGAIN on conflict.
 *
 * Used by the unit tests and by the demo on machines without Xen.
 */

#include <memory>
#include <string>

#include "bridge/platform/platform.h"

namespace xmb::xen {

class LoopbackXen
{
public:
	/** A hypervisor with Dom0 (domid 0) already running. */
	static std::shared_ptr<LoopbackXen> create();
	virtual ~LoopbackXen() = default;

	/** Start a domain: its /local/domain/<id> appears (owned by it), @introduceDomain fires. */
	virtual Status createDomain(DomId id, const std::string &name = "") = 0;
	/**
	 * Destroy a domain: its event channels close (peers see them unbound),
	 * @releaseDomain fires, new maps of its grants fail, XenStore reports it
	 * not introduced; then its XenStore directory goes (the toolstack's
	 * cleanup, after @releaseDomain as on Xen), unless
	 * keepDirectoryOnDestroy(true): then the directory stays until
	 * removeDomainDirectory(), as when the toolstack is slow.  Pages others
	 * still map stay valid until unmapped, as on Xen.
	 */
	virtual Status destroyDomain(DomId id) = 0;
	virtual void keepDirectoryOnDestroy(bool keep) = 0;
	virtual Status removeDomainDirectory(DomId id) = 0;

	/** A platform handle set for a running domain. */
	virtual Result<std::unique_ptr<Platform>> open(DomId id) = 0;

	/* Introspection for tests. */
	virtual size_t grantEntries(DomId granter) const = 0;
	virtual size_t mappedGrants(DomId granter) const = 0;
	virtual void setGrantTableSize(DomId dom, size_t entries) = 0;
	/**
	 * Report what an x86 PV Dom0 reports for foreign mappings (drivers
	 * may not vmap them: ForeignMapSupport), for the service's tier choice.
	 */
	virtual void emulatePvForeignMaps(bool on) = 0;
	/**
	 * Emulate a Dom0 kernel with gntdev dma-buf import
	 * (CONFIG_XEN_GNTDEV_DMABUF: imp_to_refs, off by default like Debian's
	 * x86 kernel), with the kernel's rules: the dma-buf's size must be the
	 * page count asked for, the grants are writable, and a released
	 * import's pages stay valid until the grantee unmaps them.
	 */
	virtual void emulateGntdevDmabuf(bool on) = 0;
	/**
	 * Also export foreign refs as a local dma-buf (exp_from_refs), as an
	 * Arm Dom0's gntdev does (x86 refuses it).  The loopback can only hand
	 * out a granter's whole share, pages in order: the dma-buf is then that
	 * share's memory, so what a driver writes into it the granter sees.
	 */
	virtual void emulateDmabufExport(bool on) = 0;
};

} /* namespace xmb::xen */
