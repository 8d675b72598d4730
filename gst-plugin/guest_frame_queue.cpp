/* SPDX-License-Identifier: MIT */
/**
 * \file guest_frame_queue.cpp
 * \brief Guest frames from a vcodec raw session into a Dom0 pipeline
 */
#include "guest_frame_queue.h"

#include <cerrno>
#include <chrono>

#include "bridge/vcodec/gst_encoder.h"
#include "bridge/vcodec/gst_guest_frame.h"
#include "xmb_common.h"

GST_DEBUG_CATEGORY_EXTERN(xmb_guest_src_debug);
#define GST_CAT_DEFAULT xmb_guest_src_debug

namespace xmb::gst {

GuestFrameQueue::~GuestFrameQueue()
{
	setFlushing(true);
	std::deque<GuestItem> left;
	{
		std::lock_guard<std::mutex> l(lock_);
		left.swap(items_);
	}
	for (GuestItem &i : left) {
		if (i.caps)
			gst_caps_unref(i.caps);
		if (i.buffer)
			gst_buffer_unref(i.buffer);
	}
}

void GuestFrameQueue::push(GuestItem item)
{
	std::lock_guard<std::mutex> l(lock_);
	if (item.kind == GuestItem::Kind::Frame)
		stats_.framesIn++;
	items_.push_back(std::move(item));
	cond_.notify_all();
}

std::optional<GuestItem> GuestFrameQueue::pop()
{
	std::unique_lock<std::mutex> l(lock_);
	cond_.wait(l, [&] { return flushing_ || !items_.empty(); });
	if (flushing_)
		return std::nullopt;
	GuestItem i = std::move(items_.front());
	items_.pop_front();
	return i;
}

void GuestFrameQueue::setFlushing(bool flushing)
{
	std::lock_guard<std::mutex> l(lock_);
	flushing_ = flushing;
	cond_.notify_all();
}

void GuestFrameQueue::drop(uint64_t session)
{
	std::deque<GuestItem> dropped;
	{
		std::lock_guard<std::mutex> l(lock_);
		for (auto it = items_.begin(); it != items_.end();) {
			if (it->session == session) {
				dropped.push_back(std::move(*it));
				it = items_.erase(it);
			} else {
				++it;
			}
		}
	}
	/* Outside the lock: a buffer's destroy notify comes back here. */
	for (GuestItem &i : dropped) {
		if (i.caps)
			gst_caps_unref(i.caps);
		if (i.buffer)
			gst_buffer_unref(i.buffer);
	}
}

bool GuestFrameQueue::waitIdle(uint64_t session, int timeoutMs)
{
	std::unique_lock<std::mutex> l(lock_);
	return cond_.wait_for(l, std::chrono::milliseconds(timeoutMs), [&] {
		auto it = live_.find(session);
		return it == live_.end() || it->second == 0;
	});
}

uint64_t GuestFrameQueue::newSession()
{
	std::lock_guard<std::mutex> l(lock_);
	stats_.sessions++;
	return nextSession_++;
}

GuestQueueStats GuestFrameQueue::stats() const
{
	std::lock_guard<std::mutex> l(lock_);
	GuestQueueStats s = stats_;
	s.framesLive = 0;
	for (const auto &[k, n] : live_)
		s.framesLive += n;
	return s;
}

void GuestFrameQueue::frameCreated(uint64_t session)
{
	std::lock_guard<std::mutex> l(lock_);
	live_[session]++;
}

void GuestFrameQueue::frameFreed(uint64_t session)
{
	std::lock_guard<std::mutex> l(lock_);
	auto it = live_.find(session);
	if (it != live_.end() && it->second && --it->second == 0)
		live_.erase(it);
	cond_.notify_all();
}

void GuestFrameQueue::framePushed()
{
	std::lock_guard<std::mutex> l(lock_);
	stats_.framesPushed++;
}

/* ------------------------------------------------------------------------- */

namespace {

/* What a wrapped guest frame keeps alive, and gives back when freed. */
struct FrameRef {
	std::weak_ptr<GuestFrameQueue> queue;
	uint64_t session;
	std::function<void()> release;
};

/**
 * The Encoder a raw vcodec session gets: frames are wrapped, not copied,
 * and queued for the element's streaming thread.
 */
class PipelineEncoder final : public vcodec::Encoder
{
public:
	PipelineEncoder(std::shared_ptr<GuestFrameQueue> q, std::string name, GstVideoInfo info,
			vcodec::RawLayout layout, vcodec::EncoderSink sink)
		: queue_(std::move(q)), name_(std::move(name)), info_(info), layout_(layout),
		  sink_(std::move(sink))
	{
		session_ = queue_->newSession();
		GuestItem caps;
		caps.kind = GuestItem::Kind::Caps;
		caps.caps = gst_video_info_to_caps(&info_);
		caps.session = session_;
		queue_->push(std::move(caps));
	}
	~PipelineEncoder() override { stop(); }

	[[nodiscard]] std::string description() const override
	{
		char buf[160];
		std::snprintf(buf, sizeof(buf), "Dom0 pipeline %s (%s %dx%d, frames wrapped in place)",
			      name_.c_str(), gst_video_format_to_string(GST_VIDEO_INFO_FORMAT(&info_)),
			      GST_VIDEO_INFO_WIDTH(&info_), GST_VIDEO_INFO_HEIGHT(&info_));
		return buf;
	}
	[[nodiscard]] const vcodec::RawLayout &layout() const override { return layout_; }

	Status encode(const uint8_t *data, uint64_t /*seq*/, uint64_t timestamp, bool forceKey,
		      std::function<void()> release) override
	{
		auto *ref = new FrameRef{ queue_, session_, std::move(release) };
		queue_->frameCreated(session_);
		GstBuffer *buf = vcodec::wrapGuestFrame(
			data, layout_, GST_VIDEO_INFO_FORMAT(&info_), GST_VIDEO_INFO_WIDTH(&info_),
			GST_VIDEO_INFO_HEIGHT(&info_), ref, [](gpointer p) {
				auto *r = static_cast<FrameRef *>(p);
				if (r->release)
					r->release(); /* INPUT_DONE to the guest */
				if (auto q = r->queue.lock())
					q->frameFreed(r->session);
				delete r;
			});
		GuestItem item;
		item.kind = GuestItem::Kind::Frame;
		item.buffer = buf;
		item.timestamp = timestamp;
		item.key = forceKey;
		item.session = session_;
		queue_->push(std::move(item));
		return {};
	}

	Status setBitrate(uint32_t) override
	{
		return Error{ -ENOTSUP, "raw frames to a Dom0 pipeline: no bitrate" };
	}

	/* Drained once every frame before it was handed downstream. */
	Status drain() override
	{
		GuestItem d;
		d.kind = GuestItem::Kind::Drain;
		d.drained = sink_.drained;
		d.session = session_;
		queue_->push(std::move(d));
		return {};
	}

	/*
	 * Frames not yet handed over are released now; frames downstream holds
	 * are waited for (bounded).  One still held after that keeps its pages
	 * mapped (its release owns the mapping) until the pipeline lets go.
	 */
	void stop() override
	{
		queue_->drop(session_);
		if (!queue_->waitIdle(session_, 1000))
			GST_WARNING("%s: the pipeline still holds guest frames after 1 s; their pages stay "
				    "mapped until it lets go",
				    name_.c_str());
	}

	Status restart() override { return {}; }

private:
	std::shared_ptr<GuestFrameQueue> queue_;
	std::string name_;
	GstVideoInfo info_;
	vcodec::RawLayout layout_;
	vcodec::EncoderSink sink_;
	uint64_t session_ = 0;
};

} /* namespace */

proto::CodecCaps pipelineCodecCaps()
{
	proto::CodecCaps c;
	c.codec = XENVCODEC_CODEC_RAW;
	c.rawFormats.assign(std::begin(proto::kVcodecRawFormats), std::end(proto::kVcodecRawFormats));
	c.rcModes = { XENVCODEC_RC_VBR };
	c.profiles = { "raw" };
	c.levels = { 0 };
	return c;
}

vcodec::EncoderFactory pipelineEncoderFactory(std::shared_ptr<GuestFrameQueue> queue, std::string name)
{
	return [queue, name](const vcodec::EncodeParams &p, const proto::CodecCaps &,
			     vcodec::EncoderSink sink) -> Result<std::unique_ptr<vcodec::Encoder>> {
		if (p.codec != XENVCODEC_CODEC_RAW)
			return Error{ -ENOTSUP, name + ": serves raw frames only (codec raw)" };
		auto layout = vcodec::gstRawLayout(p.rawFourcc, p.width, p.height);
		GstVideoFormat fmt = videoFormatFromFourcc(p.rawFourcc);
		if (!layout || fmt == GST_VIDEO_FORMAT_UNKNOWN)
			return Error{ -EINVAL, name + ": raw format not offered" };
		GstVideoInfo info;
		if (!gst_video_info_set_format(&info, fmt, p.width, p.height))
			return Error{ -EINVAL, name + ": size not valid for the format" };
		GST_VIDEO_INFO_FPS_N(&info) = static_cast<gint>(p.rateNum);
		GST_VIDEO_INFO_FPS_D(&info) = static_cast<gint>(p.rateDen);
		return std::unique_ptr<vcodec::Encoder>(
			std::make_unique<PipelineEncoder>(queue, name, info, *layout, std::move(sink)));
	};
}

} /* namespace xmb::gst */
