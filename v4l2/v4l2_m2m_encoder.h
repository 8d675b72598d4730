/* SPDX-License-Identifier: MIT */
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "v4l2/v4l2_buffer_queue.h"
#include "v4l2/v4l2_device.h"
#include "v4l2/v4l2_video_device.h"

namespace xmb {

/** \brief Stream set-up of an encoder. */
struct EncoderConfig {
	uint32_t rawFourcc = 0;	  /**< OUTPUT (raw) format, e.g. NV12 */
	uint32_t width = 0;
	uint32_t height = 0;
	uint32_t codedFourcc = 0; /**< CAPTURE (bitstream) format, e.g. H264 */
	uint32_t codedBufferSize = 0; /**< 0: let the driver choose */
	Fraction interval{ 1, 30 };
};

/**
 * \brief Encoder parameters; each is applied only if the device has the
 * control, and setParams() reports which were.
 */
struct EncoderParams {
	std::optional<int64_t> bitrate;	    /**< V4L2_CID_MPEG_VIDEO_BITRATE, bit/s */
	std::optional<int64_t> bitrateMode; /**< V4L2_CID_MPEG_VIDEO_BITRATE_MODE */
	std::optional<int64_t> gopSize;	    /**< V4L2_CID_MPEG_VIDEO_GOP_SIZE */
	std::optional<int64_t> h264Profile; /**< V4L2_CID_MPEG_VIDEO_H264_PROFILE */
	std::optional<int64_t> h264Level;   /**< V4L2_CID_MPEG_VIDEO_H264_LEVEL */
};

/** \brief One bitstream buffer the encoder finished. */
struct EncodedFrame {
	unsigned index = 0;
	uint32_t bytesUsed = 0;
	uint32_t sequence = 0;
	uint64_t timestampNs = 0; /**< copied from the raw frame */
	bool keyFrame = false;
	bool last = false; /**< the drain's final buffer (may be empty) */
	const unsigned char *data = nullptr; /**< mapped bitstream */
};

/**
 * \brief A stateful V4L2 memory-to-memory encoder (the kernel's "stateful
 * encoder interface"): raw frames in on OUTPUT, bitstream out on CAPTURE.
 *
 * OUTPUT buffers may be MMAP, USERPTR or DMABUF (zero-copy import of the
 * frame a camera produced); CAPTURE buffers are MMAP and mapped.
 */
class V4L2M2MEncoder : public V4L2Device
{
public:
	enum class State { Closed, Open, Configured, Streaming, Draining, Drained };

	using V4L2Device::V4L2Device;
	~V4L2M2MEncoder() override;

	int open(const std::string &path);
	void close() override;
	[[nodiscard]] State state() const { return state_; }

	std::vector<uint32_t> rawFormats();
	std::vector<uint32_t> codedFormats();

	int configure(EncoderConfig &config);
	[[nodiscard]] const V4L2Format &rawFormat() const { return rawFormat_; }
	[[nodiscard]] const V4L2Format &codedFormat() const { return codedFormat_; }
	int setParams(const EncoderParams &params, EncoderParams *applied = nullptr);
	int forceKeyFrame();

	int allocateBuffers(unsigned rawCount, V4L2Memory rawMemory, unsigned codedCount);
	int start();
	int stop();

	int queueRaw(unsigned index, const V4L2QueueArgs &args);
	int dequeueRaw(unsigned &index);
	int dequeueCoded(EncodedFrame &frame);
	int requeueCoded(unsigned index);
	/**
	 * CAPTURE buffers lent to someone else (their dma-bufs granted): each
	 * starts held, start()/resume() queue only those not held, a buffer
	 * dequeued with a bitstream is held again until releaseCoded(), and a
	 * coded-format change (which would reallocate them) fails.
	 */
	void lendCoded(bool on);
	/** The borrower is done with CAPTURE buffer \a index: back to the driver. */
	int releaseCoded(unsigned index);
	/** Keep dequeued CAPTURE buffer \a index out of the driver until releaseCoded(). */
	void holdCoded(unsigned index);

	int drain();
	int resume();

	/** What handleEvents() saw. */
	struct Events {
		bool sourceChanged = false; /**< CAPTURE was reallocated */
		bool endOfStream = false;
	};
	int handleEvents(Events &events);

	[[nodiscard]] V4L2BufferQueue &output() { return *output_; }
	[[nodiscard]] V4L2BufferQueue &capture() { return *capture_; }

private:
	int reallocateCoded();
	int queueAllCoded();

	State state_ = State::Closed;
	uint32_t outputType_ = 0;
	uint32_t captureType_ = 0;
	std::unique_ptr<V4L2BufferQueue> output_;
	std::unique_ptr<V4L2BufferQueue> capture_;
	V4L2Format rawFormat_;
	V4L2Format codedFormat_;
	unsigned codedCount_ = 0;
	std::vector<bool> codedHeld_; /* lent CAPTURE buffers the borrower has (empty: not lent) */
};

/** Is \a dev (open) a stateful encoder: M2M, raw OUTPUT, compressed CAPTURE? */
bool isM2MEncoder(V4L2Device &dev);
/** Every encoder node under \a dir. */
std::vector<V4L2NodeInfo> findM2MEncoders(DeviceIO &io = DeviceIO::system(),
					  const std::string &dir = "/dev");

} /* namespace xmb */
