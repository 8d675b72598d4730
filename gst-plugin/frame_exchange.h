/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Where xmbcamerasink's pipeline meets the camera service.
 *
 * The service (CameraHub) sees a CameraSource (PipelineCameraSource) that
 * supports MemoryType::UserPtr: it hands over the leading guest's queued
 * buffers (their granted pages mapped in Dom0, or Dom0 pages granted to the
 * guest in be-alloc mode) with queueBuffer().  FrameExchange keeps those
 * "slots" and gives them to the pipeline two ways:
 *
 *  - zero copy: the sink's buffer pool (GstXmbGuestPool) lends a queued
 *    slot to upstream as a GstBuffer wrapping the guest memory; upstream
 *    renders into it; render() of that buffer completes the slot (a frame
 *    for the guest).  A lent slot that comes back unrendered (dropped,
 *    flushed) returns to the queue.  A slot is never given back to the
 *    service while upstream holds it; stop() waits for lent slots.
 *  - copy: any other buffer (system memory, dma-buf, a pool scratch buffer)
 *    is copied into a queued slot, counted, and logged once.
 *
 * With no slot queued a frame is dropped (counted; the guest sees a
 * sequence gap).  Thread safety: one mutex; the service loop thread calls
 * the CameraSource side, streaming threads the pipeline side.
 */

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <gst/gst.h>
#include <gst/video/video.h>

#include "protocol/base/unique_fd.h"
#include "v4l2/camera_source.h"

namespace xmb::gst {

/** The stream the sink's caps describe. */
struct StreamFormat {
	uint32_t fourcc = 0;
	GstVideoInfo info{};
	Fraction interval{ 1, 30 };
	FrameLayout layout;
};

struct ExchangeStats {
	uint64_t zeroCopyFrames = 0;
	uint64_t copiedFrames = 0;
	uint64_t bytesCopied = 0;
	uint64_t droppedFrames = 0;
	uint64_t scratchBuffers = 0; /**< pool buffers handed out without a guest slot */
	uint64_t lentBuffers = 0;    /**< guest slots lent to upstream in total */
};

class FrameExchange : public std::enable_shared_from_this<FrameExchange>
{
public:
	explicit FrameExchange(GstElement *owner);
	~FrameExchange();

	void setFormat(const StreamFormat &format);
	StreamFormat format() const;
	bool hasFormat() const;

	/* ---- CameraSource side (service loop thread) ---- */
	int allocate(unsigned count);
	int queue(unsigned index, const CallerBuffer &memory);
	int release();
	int start();
	int stop();
	int dequeue(CompletedFrame &frame);
	[[nodiscard]] int pollFd() const { return event_.get(); }

	/* ---- pipeline side ---- */
	/**
	 * A GstMemory wrapping a queued guest slot of at least \a size bytes,
	 * lent to upstream; waits up to \a timeoutUs for one while streaming.
	 * nullptr: none (not streaming, timed out, or \a cancelled became true).
	 */
	GstMemory *lend(gsize size, gint64 timeoutUs, const volatile gint *cancelled);
	/** Whether \a mem wraps a slot of this exchange. */
	bool owns(GstMemory *mem) const;
	/** Deliver one buffer to the guest: complete the slot it wraps, or copy it. */
	void render(GstBuffer *buffer);
	/** Wake lend() waiters (pool flushing). */
	void wakeAll();

	ExchangeStats stats() const;
	[[nodiscard]] bool streaming() const;

private:
	struct Slot;
	struct MemoryContext;
	static void memoryReleased(gpointer data);
	void signalLocked();
	bool copyInto(GstBuffer *buffer, const Slot &slot, size_t &bytes);

	GstElement *owner_; /* for logs; not referenced */
	mutable std::mutex lock_;
	std::condition_variable cond_;
	UniqueFD event_;
	StreamFormat format_;
	bool hasFormat_ = false;
	unsigned count_ = 0;
	bool streaming_ = false;
	uint64_t epoch_ = 1;
	std::deque<std::shared_ptr<Slot>> queued_;
	unsigned lent_ = 0;
	std::deque<CompletedFrame> done_;
	uint32_t sequence_ = 0;
	bool loggedCopy_ = false;
	ExchangeStats stats_;
};

/** The pipeline as a camera for CameraService/CameraHub. */
class PipelineCameraSource final : public CameraSource
{
public:
	PipelineCameraSource(std::shared_ptr<FrameExchange> exchange, std::string id);

	[[nodiscard]] std::string id() const override { return id_; }
	[[nodiscard]] std::string description() const override;
	std::vector<FormatEntry> formats() override;
	[[nodiscard]] MemoryTypes supportedMemory() const override;
	int tryConfigure(StreamConfig &config) override;
	int configure(StreamConfig &config) override;
	int setFrameInterval(Fraction &interval) override;
	int allocateBuffers(MemoryType memory, unsigned count) override;
	int exportBuffer(unsigned index, ExportedBuffer &out) override;
	int queueBuffer(unsigned index, const CallerBuffer &memory = {}) override;
	int releaseBuffers() override;
	int start() override;
	int stop() override;
	[[nodiscard]] int pollFd() const override { return exchange_->pollFd(); }
	int dequeueFrame(CompletedFrame &frame) override;
	std::vector<CameraControlInfo> controls() override { return {}; }
	int getControl(uint8_t type, int64_t &value) override;
	int setControl(uint8_t type, int64_t &value) override;

private:
	std::shared_ptr<FrameExchange> exchange_;
	std::string id_;
};

} /* namespace xmb::gst */
