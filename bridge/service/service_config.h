/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The camera service's configuration file (docs/camera-service.md):
 *
 *   [camera front]                 # a camera, named "front"
 *   source = test-pattern          # or v4l2:/dev/video0, v4l2-card:<card>, libcamera:<id>
 *   formats = NV12, YUYV           # optional allow-list
 *   copy = auto                    # or "force" (benchmarks: copy every frame)
 *   foreign-userptr = auto         # capture into mapped guest pages: auto (not on
 *                                  # an x86 PV Dom0), yes (driver only DMAs), no
 *   share-device-buffers = no      # yes: be-alloc guests granted the camera's own
 *                                  # buffers share one set (guests that trust each other)
 *
 *   [guest kitchen]                # a guest device
 *   domain = guest1                # domain name, or a domid
 *   device = 0                     # vcamera device index in the guest
 *   camera = front
 *   max-buffers = 4                # 1..32
 *   be-alloc = no                  # yes: Dom0 allocates buffers and grants them
 *   max-pages = 65536              # pages of this guest mapped/granted at once
 *   controls = brightness, contrast  # default: all the camera has
 *   unique-id = front-cam           # default: the camera's id
 *
 * Errors name the file, the line and the key.
 */

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bridge/platform/types.h"
#include "protocol/result.h"

namespace xmb::service {

struct CameraEntry {
	std::string name;
	std::string source;
	bool forceCopy = false;
	/** Capture into guest pages mapped in Dom0; unset: ask the platform. */
	std::optional<bool> foreignUserPtr;
	/** Guests granted the camera's buffers share them (zero copy; they can write each other's frames). */
	bool shareDeviceBuffers = false;
	std::vector<uint32_t> formats;
	/**
	 * The unique-id by which toolstack-created vcamera devices (libxl's
	 * vcamera, written by the toolstack, not us) name this camera.
	 */
	std::string uniqueId;
	/** Cap on such a device's max-buffers (its frontend nodes are guest-writable). */
	uint8_t toolstackMaxBuffers = 8;
	int line = 0;
};

struct GuestEntry {
	std::string name;
	std::optional<xen::DomId> domid;
	std::string domainName;
	unsigned device = 0;
	std::string camera;
	uint8_t maxBuffers = 4;
	bool beAlloc = false;
	size_t maxPages = 65536;
	std::optional<std::vector<uint8_t>> controls;
	std::string uniqueId;
	int line = 0;
};

struct ServiceConfig {
	std::vector<CameraEntry> cameras;
	std::vector<GuestEntry> guests;
	const CameraEntry *camera(const std::string &name) const;
};

Result<ServiceConfig> parseServiceConfig(std::string_view text, const std::string &file);
Result<ServiceConfig> loadServiceConfig(const std::string &path);

} /* namespace xmb::service */
