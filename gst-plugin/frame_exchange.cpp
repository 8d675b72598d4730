/* SPDX-License-Identifier: MIT */
#include "frame_exchange.h"

#include "protocol/base/monotonic.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <sys/eventfd.h>
#include <unistd.h>

#include <linux/videodev2.h>

GST_DEBUG_CATEGORY_EXTERN(xmb_camera_sink_debug);
#define GST_CAT_DEFAULT xmb_camera_sink_debug

namespace xmb::gst {

namespace {

/* The caps' colorimetry in V4L2's terms (what cameraif's CONFIG answers carry). */
Colorimetry colorimetryOf(const GstVideoInfo &info)
{
	const GstVideoColorimetry &c = info.colorimetry;
	Colorimetry v;
	switch (c.primaries) {
	case GST_VIDEO_COLOR_PRIMARIES_BT709:
		v.colorspace = c.transfer == GST_VIDEO_TRANSFER_SRGB ? V4L2_COLORSPACE_SRGB
								      : V4L2_COLORSPACE_REC709;
		break;
	case GST_VIDEO_COLOR_PRIMARIES_SMPTE170M:
	case GST_VIDEO_COLOR_PRIMARIES_BT470BG:
	case GST_VIDEO_COLOR_PRIMARIES_BT470M:
	case GST_VIDEO_COLOR_PRIMARIES_SMPTE240M: v.colorspace = V4L2_COLORSPACE_SMPTE170M; break;
	case GST_VIDEO_COLOR_PRIMARIES_BT2020: v.colorspace = V4L2_COLORSPACE_BT2020; break;
	case GST_VIDEO_COLOR_PRIMARIES_ADOBERGB: v.colorspace = V4L2_COLORSPACE_OPRGB; break;
	case GST_VIDEO_COLOR_PRIMARIES_SMPTERP431:
	case GST_VIDEO_COLOR_PRIMARIES_SMPTEEG432: v.colorspace = V4L2_COLORSPACE_DCI_P3; break;
	default: break;
	}
	switch (c.transfer) {
	case GST_VIDEO_TRANSFER_BT709:
	case GST_VIDEO_TRANSFER_BT601:
	case GST_VIDEO_TRANSFER_BT2020_10:
	case GST_VIDEO_TRANSFER_BT2020_12: v.xferFunc = V4L2_XFER_FUNC_709; break;
	case GST_VIDEO_TRANSFER_SRGB: v.xferFunc = V4L2_XFER_FUNC_SRGB; break;
	case GST_VIDEO_TRANSFER_GAMMA10: v.xferFunc = V4L2_XFER_FUNC_NONE; break;
	case GST_VIDEO_TRANSFER_ADOBERGB: v.xferFunc = V4L2_XFER_FUNC_OPRGB; break;
	case GST_VIDEO_TRANSFER_SMPTE2084: v.xferFunc = V4L2_XFER_FUNC_SMPTE2084; break;
	default: break;
	}
	switch (c.matrix) {
	case GST_VIDEO_COLOR_MATRIX_BT601: v.ycbcrEnc = V4L2_YCBCR_ENC_601; break;
	case GST_VIDEO_COLOR_MATRIX_BT709: v.ycbcrEnc = V4L2_YCBCR_ENC_709; break;
	case GST_VIDEO_COLOR_MATRIX_BT2020: v.ycbcrEnc = V4L2_YCBCR_ENC_BT2020; break;
	default: break;
	}
	switch (c.range) {
	case GST_VIDEO_COLOR_RANGE_0_255: v.quantization = V4L2_QUANTIZATION_FULL_RANGE; break;
	case GST_VIDEO_COLOR_RANGE_16_235: v.quantization = V4L2_QUANTIZATION_LIM_RANGE; break;
	default: break;
	}
	return v;
}

/* qdata key marking a GstMemory that wraps a guest slot. */
GQuark slotQuark()
{
	static GQuark q = g_quark_from_static_string("xmb-guest-slot");
	return q;
}


/* How long stop() waits for upstream to give back lent guest buffers. */
constexpr auto kLentGrace = std::chrono::seconds(2);

} /* namespace */

struct FrameExchange::Slot {
	enum class State { Queued, Lent, Done, Revoked };
	unsigned index = 0;
	uint64_t epoch = 0;
	CallerBuffer memory;
	State state = State::Queued;
};

struct FrameExchange::MemoryContext {
	std::shared_ptr<FrameExchange> exchange;
	std::shared_ptr<Slot> slot;
};

FrameExchange::FrameExchange(GstElement *owner)
	: owner_(owner), event_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK))
{
	gst_video_info_init(&format_.info);
}

FrameExchange::~FrameExchange() = default;

void FrameExchange::setFormat(const StreamFormat &format)
{
	std::lock_guard<std::mutex> l(lock_);
	format_ = format;
	hasFormat_ = true;
}

StreamFormat FrameExchange::format() const
{
	std::lock_guard<std::mutex> l(lock_);
	return format_;
}

bool FrameExchange::hasFormat() const
{
	std::lock_guard<std::mutex> l(lock_);
	return hasFormat_;
}

bool FrameExchange::streaming() const
{
	std::lock_guard<std::mutex> l(lock_);
	return streaming_;
}

ExchangeStats FrameExchange::stats() const
{
	std::lock_guard<std::mutex> l(lock_);
	return stats_;
}

void FrameExchange::signalLocked()
{
	uint64_t one = 1;
	[[maybe_unused]] ssize_t r = ::write(event_.get(), &one, sizeof(one));
}

int FrameExchange::allocate(unsigned count)
{
	std::lock_guard<std::mutex> l(lock_);
	if (streaming_)
		return -EBUSY;
	queued_.clear();
	done_.clear();
	count_ = count;
	epoch_++;
	return static_cast<int>(count);
}

int FrameExchange::queue(unsigned index, const CallerBuffer &memory)
{
	std::lock_guard<std::mutex> l(lock_);
	if (index >= count_ || !memory.data || memory.length < format_.layout.size)
		return -EINVAL;
	for (const auto &s : queued_)
		if (s->index == index)
			return -EBUSY;
	auto slot = std::make_shared<Slot>();
	slot->index = index;
	slot->epoch = epoch_;
	slot->memory = memory;
	queued_.push_back(std::move(slot));
	cond_.notify_all();
	return 0;
}

int FrameExchange::release()
{
	std::lock_guard<std::mutex> l(lock_);
	if (streaming_)
		return -EBUSY;
	queued_.clear();
	done_.clear();
	count_ = 0;
	epoch_++;
	return 0;
}

int FrameExchange::start()
{
	std::lock_guard<std::mutex> l(lock_);
	if (!hasFormat_)
		return -EINVAL;
	streaming_ = true;
	sequence_ = 0;
	cond_.notify_all();
	GST_INFO_OBJECT(owner_, "guest stream started: %u guest buffers", count_);
	return 0;
}

int FrameExchange::stop()
{
	std::unique_lock<std::mutex> l(lock_);
	streaming_ = false;
	for (auto &s : queued_)
		s->state = Slot::State::Revoked;
	queued_.clear();
	done_.clear();
	cond_.notify_all();
	/*
	 * The service is about to hand these buffers back to the guest (or
	 * unmap them): upstream must be done writing into the ones it holds.
	 */
	if (!cond_.wait_for(l, kLentGrace, [this] { return lent_ == 0; }))
		GST_WARNING_OBJECT(owner_,
				   "%u guest buffers still held upstream %lld s after the guest stream "
				   "stopped; they will not reach the guest, and their pages stay mapped "
				   "in Dom0 until upstream releases them",
				   lent_, static_cast<long long>(kLentGrace.count()));
	epoch_++;
	uint64_t v;
	[[maybe_unused]] ssize_t r = ::read(event_.get(), &v, sizeof(v));
	GST_INFO_OBJECT(owner_, "guest stream stopped");
	return 0;
}

int FrameExchange::dequeue(CompletedFrame &frame)
{
	std::lock_guard<std::mutex> l(lock_);
	if (done_.empty()) {
		uint64_t v;
		[[maybe_unused]] ssize_t r = ::read(event_.get(), &v, sizeof(v));
		return -EAGAIN;
	}
	frame = done_.front();
	done_.pop_front();
	return 0;
}

void FrameExchange::memoryReleased(gpointer data)
{
	auto *ctx = static_cast<MemoryContext *>(data);
	{
		FrameExchange &ex = *ctx->exchange;
		std::lock_guard<std::mutex> l(ex.lock_);
		Slot &slot = *ctx->slot;
		if (slot.state == Slot::State::Lent) {
			ex.lent_--;
			if (ex.streaming_ && slot.epoch == ex.epoch_) {
				/* Upstream dropped it unrendered: the guest buffer is free again. */
				slot.state = Slot::State::Queued;
				ex.queued_.push_front(ctx->slot);
			} else {
				slot.state = Slot::State::Revoked;
			}
			ex.cond_.notify_all();
		}
	}
	delete ctx;
}

GstMemory *FrameExchange::lend(gsize size, gint64 timeoutUs, const volatile gint *cancelled)
{
	std::unique_lock<std::mutex> l(lock_);
	auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(timeoutUs);
	while (streaming_ && queued_.empty()) {
		if (cancelled && g_atomic_int_get(cancelled))
			return nullptr;
		auto step = std::min(deadline, std::chrono::steady_clock::now() + std::chrono::milliseconds(10));
		if (cond_.wait_until(l, step) == std::cv_status::timeout &&
		    std::chrono::steady_clock::now() >= deadline)
			break;
	}
	if (!streaming_ || queued_.empty() || size > format_.layout.size) {
		if (!(cancelled && g_atomic_int_get(cancelled)))
			stats_.scratchBuffers++;
		return nullptr;
	}
	std::shared_ptr<Slot> slot = queued_.front();
	queued_.pop_front();
	slot->state = Slot::State::Lent;
	lent_++;
	stats_.lentBuffers++;
	auto *ctx = new MemoryContext{ shared_from_this(), slot };
	GstMemory *mem = gst_memory_new_wrapped(static_cast<GstMemoryFlags>(0), slot->memory.data,
						slot->memory.length, 0, size, ctx, memoryReleased);
	gst_mini_object_set_qdata(GST_MINI_OBJECT_CAST(mem), slotQuark(), ctx, nullptr);
	GST_LOG_OBJECT(owner_, "lent guest buffer %u to upstream", slot->index);
	return mem;
}

bool FrameExchange::owns(GstMemory *mem) const
{
	auto *ctx = static_cast<MemoryContext *>(
		gst_mini_object_get_qdata(GST_MINI_OBJECT_CAST(mem), slotQuark()));
	return ctx && ctx->exchange.get() == this;
}

void FrameExchange::wakeAll()
{
	std::lock_guard<std::mutex> l(lock_);
	cond_.notify_all();
}

bool FrameExchange::copyInto(GstBuffer *buffer, const Slot &slot, size_t &bytes)
{
	auto *dst = static_cast<uint8_t *>(slot.memory.data);
	const FrameLayout &layout = format_.layout;
	GstVideoFrame frame;
	GstVideoInfo info = format_.info;
	if (gst_video_frame_map(&frame, &info, buffer, GST_MAP_READ)) {
		bytes = 0;
		for (unsigned p = 0; p < layout.numPlanes && p < GST_VIDEO_FRAME_N_PLANES(&frame); p++) {
			const auto *src = static_cast<const uint8_t *>(GST_VIDEO_FRAME_PLANE_DATA(&frame, p));
			size_t srcStride = static_cast<size_t>(GST_VIDEO_FRAME_PLANE_STRIDE(&frame, p));
			const PlaneLayout &pl = layout.planes[p];
			if (!pl.stride)
				continue;
			size_t rows = pl.size / pl.stride;
			size_t row = std::min<size_t>(srcStride, pl.stride);
			if (srcStride == pl.stride) {
				std::memcpy(dst + pl.offset, src, rows * pl.stride);
			} else {
				for (size_t y = 0; y < rows; y++)
					std::memcpy(dst + pl.offset + y * pl.stride, src + y * srcStride, row);
			}
			bytes += rows * pl.stride;
		}
		gst_video_frame_unmap(&frame);
		bytes = layout.size;
		return true;
	}
	/* Not describable as our video info: copy what fits. */
	bytes = gst_buffer_extract(buffer, 0, dst, std::min<size_t>(layout.size, slot.memory.length));
	return bytes > 0;
}

void FrameExchange::render(GstBuffer *buffer)
{
	std::lock_guard<std::mutex> l(lock_);
	if (!streaming_)
		return; /* no guest is streaming: nothing to do */

	/* Zero copy: upstream filled a guest slot from our pool. */
	if (gst_buffer_n_memory(buffer) == 1) {
		GstMemory *mem = gst_buffer_peek_memory(buffer, 0);
		auto *ctx = static_cast<MemoryContext *>(
			gst_mini_object_get_qdata(GST_MINI_OBJECT_CAST(mem), slotQuark()));
		if (ctx && ctx->exchange.get() == this && ctx->slot->state == Slot::State::Lent &&
		    ctx->slot->epoch == epoch_) {
			Slot &slot = *ctx->slot;
			slot.state = Slot::State::Done;
			lent_--;
			cond_.notify_all();
			CompletedFrame f;
			f.index = slot.index;
			f.bytesUsed = static_cast<uint32_t>(std::min<gsize>(gst_buffer_get_size(buffer), format_.layout.size));
			f.sequence = sequence_++;
			f.timestampNs = monotonicNs();
			done_.push_back(f);
			stats_.zeroCopyFrames++;
			signalLocked();
			GST_LOG_OBJECT(owner_, "guest buffer %u filled in place (seq %u)", f.index, f.sequence);
			return;
		}
	}

	/* Copy tier. */
	if (queued_.empty()) {
		stats_.droppedFrames++;
		sequence_++;
		GST_LOG_OBJECT(owner_, "no guest buffer queued: frame dropped");
		return;
	}
	std::shared_ptr<Slot> slot = queued_.front();
	size_t bytes = 0;
	if (!copyInto(buffer, *slot, bytes)) {
		stats_.droppedFrames++;
		sequence_++;
		GST_WARNING_OBJECT(owner_, "cannot read the input buffer: frame dropped");
		return;
	}
	queued_.pop_front();
	slot->state = Slot::State::Done;
	if (!loggedCopy_) {
		GstMemory *mem = gst_buffer_peek_memory(buffer, 0);
		GST_ELEMENT_WARNING(owner_, STREAM, FAILED,
				    ("Copying frames into guest buffers (%zu bytes each)", bytes),
				    ("upstream did not use the sink's guest buffer pool (input is %s "
				     "memory); let upstream allocate from the pool (e.g. v4l2src "
				     "io-mode=userptr, videoconvert, videotestsrc) for zero copy",
				     mem && mem->allocator ? mem->allocator->mem_type : "unknown"));
		loggedCopy_ = true;
	}
	CompletedFrame f;
	f.index = slot->index;
	f.bytesUsed = static_cast<uint32_t>(bytes);
	f.sequence = sequence_++;
	f.timestampNs = monotonicNs();
	done_.push_back(f);
	stats_.copiedFrames++;
	stats_.bytesCopied += bytes;
	signalLocked();
}

/* ---- PipelineCameraSource ---------------------------------------------- */

PipelineCameraSource::PipelineCameraSource(std::shared_ptr<FrameExchange> exchange, std::string id)
	: exchange_(std::move(exchange)), id_(std::move(id))
{
}

std::string PipelineCameraSource::description() const
{
	return "GStreamer pipeline (" + id_ + ")";
}

std::vector<FormatEntry> PipelineCameraSource::formats()
{
	StreamFormat f = exchange_->format();
	FormatEntry e;
	e.fourcc = f.fourcc;
	e.width = f.layout.width;
	e.height = f.layout.height;
	e.intervals = { f.interval };
	return { e };
}

MemoryTypes PipelineCameraSource::supportedMemory() const
{
	return static_cast<MemoryTypes>(MemoryType::UserPtr);
}

int PipelineCameraSource::tryConfigure(StreamConfig &config)
{
	StreamFormat f = exchange_->format();
	if (config.fourcc != f.fourcc || config.width != f.layout.width ||
	    config.height != f.layout.height)
		return -EINVAL;
	config.interval = f.interval;
	config.layout = f.layout;
	config.colorimetry = colorimetryOf(f.info);
	return 0;
}

int PipelineCameraSource::configure(StreamConfig &config)
{
	return tryConfigure(config);
}

int PipelineCameraSource::setFrameInterval(Fraction &interval)
{
	/* The pipeline's rate is what it is: report it. */
	interval = exchange_->format().interval;
	return 0;
}

int PipelineCameraSource::allocateBuffers(MemoryType memory, unsigned count)
{
	if (memory != MemoryType::UserPtr)
		return -ENOTSUP;
	return exchange_->allocate(count);
}

int PipelineCameraSource::exportBuffer(unsigned, ExportedBuffer &)
{
	return -ENOTSUP;
}

int PipelineCameraSource::queueBuffer(unsigned index, const CallerBuffer &memory)
{
	return exchange_->queue(index, memory);
}

int PipelineCameraSource::releaseBuffers()
{
	return exchange_->release();
}

int PipelineCameraSource::start()
{
	return exchange_->start();
}

int PipelineCameraSource::stop()
{
	return exchange_->stop();
}

int PipelineCameraSource::dequeueFrame(CompletedFrame &frame)
{
	return exchange_->dequeue(frame);
}

int PipelineCameraSource::getControl(uint8_t, int64_t &)
{
	return -EINVAL;
}

int PipelineCameraSource::setControl(uint8_t, int64_t &)
{
	return -EINVAL;
}

} /* namespace xmb::gst */
