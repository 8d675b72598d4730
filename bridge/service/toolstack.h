/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The toolstack part of vcamera: upstream xl/libxl know no vcamera device,
 * so the service creates the device nodes itself, the way libxl does for
 * vdispl and vsnd:
 *
 *   frontend /local/domain/<fe>/device/vcamera/<dev>     owner fe, backend may read
 *   backend  /local/domain/<be>/backend/vcamera/<fe>/<dev> owner be, frontend may read
 *
 * and fills the camera configuration (formats, controls, max-buffers,
 * unique-id, be-alloc) into the frontend directory.
 */

#include <map>
#include <optional>
#include <string>

#include "bridge/platform/xenstore.h"
#include "protocol/xenstore_schema.h"

namespace xmb::service {

/**
 * Create both directories with their permissions, state Initialising, in one
 * transaction; \a frontendKeys (relative paths) go into the frontend directory.
 */
Status attachDevice(xen::XenStore &xs, xen::DomId backend, xen::DomId frontend, unsigned devid,
		    const std::map<std::string, std::string> &frontendKeys, const std::string &type,
		    const std::string &versions);

/** A vcamera device: the camera configuration is written into the frontend directory. */
Status attachDevice(xen::XenStore &xs, xen::DomId backend, xen::DomId frontend, unsigned devid,
		    const proto::VcameraConfig &config);

/** Remove both directories (the frontend's first, so its driver sees the device go). */
Status detachDevice(xen::XenStore &xs, xen::DomId backend, xen::DomId frontend, unsigned devid,
		    const std::string &type = "vcamera");

/**
 * Has domain \a dom died?  XenStore's "introduced" flag first: it turns
 * false at @releaseDomain, while the toolstack may still be removing the
 * domain's directory (which alone would make a dead guest look alive).
 * Without an answer from XenStore, a missing /local/domain/<id>/domid.
 */
bool domainGone(xen::XenStore &xs, xen::DomId dom);

/** The running domain a guest section names (by domid, else by name); nullopt if none runs. */
std::optional<xen::DomId> runningDomain(xen::XenStore &xs, std::optional<xen::DomId> domid,
					const std::string &name);

/** A read-only view of XenStore directory \a dir for the protocol parsers (keys relative to it). */
using xen::directoryView;

/** Find a running domain by name (/local/domain/<id>/name); -ENOENT if none. */
Result<xen::DomId> findDomainByName(xen::XenStore &xs, const std::string &name);

} /* namespace xmb::service */
