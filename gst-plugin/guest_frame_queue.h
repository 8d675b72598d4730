/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * xmbguestsrc's two halves: the vcodec Encoder that a guest's raw session
 * gets in Dom0 (PipelineEncoder, on the service's event loop) and the
 * queue that carries its frames to the element's streaming thread.
 *
 * A frame is a GstBuffer wrapping the guest's INPUT pages where Dom0
 * mapped them (read-only memory, Dom0's strides in a GstVideoMeta): no
 * copy.  Its destroy notify is the session's release: when the last
 * reference downstream goes, the guest gets INPUT_DONE.
 */

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include <gst/gst.h>
#include <gst/video/video.h>

#include "bridge/vcodec/codec_session.h"
#include "bridge/vcodec/encoder.h"

namespace xmb::gst {

/** One item for the streaming thread, in the order the guest sent them. */
struct GuestItem {
	enum class Kind { Caps, Frame, Drain } kind = Kind::Frame;
	GstCaps *caps = nullptr;     /**< Caps: owned */
	GstBuffer *buffer = nullptr; /**< Frame: owned */
	uint64_t timestamp = 0;	     /**< Frame: the guest's, in ns */
	bool key = false;	     /**< Frame: the guest asked for a key frame */
	std::function<void()> drained; /**< Drain: tell the session */
	uint64_t session = 0;	     /**< which encoder (OPEN) made it */
};

struct GuestQueueStats {
	uint64_t framesIn = 0;	   /**< frames the guest queued */
	uint64_t framesPushed = 0; /**< handed downstream */
	uint64_t framesLive = 0;   /**< guest frames alive in the pipeline now */
	uint64_t sessions = 0;	   /**< OPENs */
};

class GuestFrameQueue
{
public:
	GuestFrameQueue() = default;
	~GuestFrameQueue();
	GuestFrameQueue(const GuestFrameQueue &) = delete;
	GuestFrameQueue &operator=(const GuestFrameQueue &) = delete;

	void push(GuestItem item);
	/** Wait for the next item; nullopt once flushing. */
	std::optional<GuestItem> pop();
	void setFlushing(bool flushing);
	/** Release what \a session queued and the streaming thread did not take yet. */
	void drop(uint64_t session);
	/** Wait until no frame of \a session is alive in the pipeline, or \a timeoutMs. */
	bool waitIdle(uint64_t session, int timeoutMs);

	uint64_t newSession();
	[[nodiscard]] GuestQueueStats stats() const;

	/* Bookkeeping of wrapped frames (any thread). */
	void frameCreated(uint64_t session);
	void frameFreed(uint64_t session);
	void framePushed();

private:
	mutable std::mutex lock_;
	std::condition_variable cond_;
	std::deque<GuestItem> items_;
	bool flushing_ = false;
	uint64_t nextSession_ = 1;
	std::map<uint64_t, uint64_t> live_; /* session -> frames alive */
	GuestQueueStats stats_;
};

/**
 * The factory CodecService uses for sessions of xmbguestsrc \a name: each
 * OPEN makes a PipelineEncoder feeding \a queue.
 */
vcodec::EncoderFactory pipelineEncoderFactory(std::shared_ptr<GuestFrameQueue> queue, std::string name);

/** What xmbguestsrc publishes: codec "raw" from YU12, NV12, YUYV. */
proto::CodecCaps pipelineCodecCaps();

} /* namespace xmb::gst */
