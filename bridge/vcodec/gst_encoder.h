/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Software encoding through GStreamer: appsrc ! <encoder> [! capsfilter] ! appsink.
 *
 * Raw frames are never copied: each is a GstBuffer wrapping the caller's
 * memory (gst_buffer_new_wrapped_full, read-only) with a GstVideoMeta for
 * the backend-chosen strides/offsets; its destroy notify is the release
 * callback.  stop() sets the pipeline to NULL (synchronous for NULL) and
 * then checks that no wrapped buffer is alive, so guest pages are never
 * unmapped while GStreamer could read them.
 */

#include <atomic>
#include <memory>
#include <optional>

#include "bridge/vcodec/encoder.h"
#include "protocol/vcodec_schema.h"

namespace xmb::vcodec {

/** Initialise GStreamer once (idempotent, thread-safe). */
void initGstreamer();

/** GStreamer element used for \a codec ("vp8enc"...), nullptr if unknown. */
const char *gstEncoderElement(uint32_t codec);

/**
 * What the installed GStreamer encoders can do: one CodecCaps per codec
 * whose element exists, raw formats from its sink template (YU12, NV12, YUYV).
 */
std::vector<proto::CodecCaps> probeGstCodecs();

/** Layout of an INPUT buffer for \a fourcc at \a w x \a h; nullopt if unsupported. */
std::optional<RawLayout> gstRawLayout(uint32_t fourcc, uint32_t w, uint32_t h);

class GstEncoder final : public Encoder
{
public:
	static Result<std::unique_ptr<GstEncoder>> create(const EncodeParams &params,
							  const proto::CodecCaps &caps, EncoderSink sink);
	~GstEncoder() override;

	[[nodiscard]] std::string description() const override;
	[[nodiscard]] const RawLayout &layout() const override { return layout_; }
	Status encode(const uint8_t *data, uint64_t seq, uint64_t timestamp, bool forceKey,
		      std::function<void()> release) override;
	Status setBitrate(uint32_t bitsPerSecond) override;
	Status drain() override;
	void stop() override;
	Status restart() override;

	/** Wrapped guest frames GStreamer still holds (0 after stop()). */
	[[nodiscard]] long liveInputs() const { return live_->load(); }

	struct Impl;

private:
	GstEncoder() = default;
	std::unique_ptr<Impl> impl_;
	RawLayout layout_;
	std::shared_ptr<std::atomic<long>> live_ = std::make_shared<std::atomic<long>>(0);
};

} /* namespace xmb::vcodec */
