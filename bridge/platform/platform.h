/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The Xen platform one domain sees: grants, event channels, XenStore.
 * openRealPlatform() talks to the hypervisor through libxengnttab,
 * libxenevtchn and libxenstore; LoopbackXen (loopback.h) gives every
 * "domain" of one process a platform with the same semantics.
 */

#include <memory>

#include "bridge/platform/event_channel.h"
#include "bridge/platform/grant_table.h"
#include "bridge/platform/xenstore.h"

namespace xmb::xen {

struct Platform {
	DomId self = 0;
	std::shared_ptr<GrantTable> grants;
	std::unique_ptr<EventChannels> events;
	std::unique_ptr<XenStore> store;
	const char *kind = ""; /* "xen" or "loopback", for logs */
};

/**
 * Open the real Xen platform (/dev/xen/gntdev, gntalloc, evtchn, xenstore).
 * Errors name the device or library that failed.
 */
Result<std::unique_ptr<Platform>> openRealPlatform();

/** True if this build has the real platform (libxen* found at configure time). */
bool haveRealPlatform();

} /* namespace xmb::xen */
