/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The camera's own buffers, granted to guests: tier "device buffers
 * granted (dma-buf)" (docs/camera-service.md).
 *
 * The camera allocates them (V4L2 MMAP, exported with VIDIOC_EXPBUF; a
 * libcamera FrameBuffer's dma-buf), then gives its allocation back: the
 * exported dma-bufs keep the memory, the camera is fed them again as
 * imported dma-bufs (V4L2_MEMORY_DMABUF) for every stream.  The memory
 * therefore outlives any one stream, format restart or copy-mode spell,
 * and each member guest holds a gntdev import (imp_to_refs) of each buffer.
 *
 * One ownership state per buffer: in the camera, idle, or held by the
 * guests it was delivered to.  It returns to the camera only when every
 * holder has given it back; a guest holding more than its share misses
 * frames instead of stalling the camera (quota()).
 */

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <vector>

#include "protocol/base/unique_fd.h"
#include "protocol/result.h"
#include "v4l2/camera_source.h"

namespace xmb::service {

class HubClient;

class DevicePool
{
public:
	struct Buffer {
		UniqueFD fd;	      /* the dma-buf (or memfd where the source has no dma-buf) */
		uint8_t *data = nullptr; /* Dom0's view, for copies into it */
		size_t length = 0;
		bool inCamera = false;
		std::set<const HubClient *> holders;
	};

	/**
	 * Allocate \a count buffers from \a source (configured, not streaming)
	 * and give the source's allocation back.  \a count may be adjusted by
	 * the source.
	 */
	static Result<std::shared_ptr<DevicePool>> allocate(CameraSource &source, unsigned count);
	~DevicePool();
	DevicePool(const DevicePool &) = delete;
	DevicePool &operator=(const DevicePool &) = delete;

	[[nodiscard]] unsigned size() const { return static_cast<unsigned>(bufs_.size()); }
	[[nodiscard]] const Buffer &buffer(unsigned i) const { return bufs_[i]; }
	[[nodiscard]] bool isDmaBuf() const { return isDmaBuf_; }

	/** Buffers to give to the camera now: neither in it nor held by a guest. */
	[[nodiscard]] std::vector<unsigned> idle() const;
	void setInCamera(unsigned i, bool in) { bufs_[i].inCamera = in; }
	[[nodiscard]] bool isIdle(unsigned i) const { return !bufs_[i].inCamera && bufs_[i].holders.empty(); }

	/**
	 * Frames a guest may hold at once with \a streaming guests on the
	 * pool: together they hold at most size() - 1, so the camera always
	 * has a buffer to fill.
	 */
	[[nodiscard]] unsigned quota(size_t streaming) const;
	/** Give buffer \a i's frame to \a c if it is under \a quota; false: it misses the frame. */
	bool give(unsigned i, const HubClient *c, unsigned quota);
	/** \a c gave buffer \a i back (or never had it); true if \a i is now idle. */
	bool giveBack(unsigned i, const HubClient *c);
	/** \a c stops streaming or goes away: everything it holds is given back. */
	void forget(const HubClient *c);
	[[nodiscard]] unsigned held(const HubClient *c) const;

private:
	DevicePool() = default;
	std::vector<Buffer> bufs_;
	std::map<const HubClient *, unsigned> held_;
	bool isDmaBuf_ = false;
};

} /* namespace xmb::service */
