/* SPDX-License-Identifier: MIT */
/**
 * \file v4l2_m2m_encoder.cpp
 * \brief Stateful V4L2 M2M encoder: negotiation, streaming, drain
 *
 * Follows the kernel's "Memory-to-Memory Stateful Video Encoder Interface":
 * CAPTURE (coded) format first, then OUTPUT (raw); drain with
 * V4L2_ENC_CMD_STOP until a CAPTURE buffer carries V4L2_BUF_FLAG_LAST (and
 * DQBUF then fails with EPIPE); resume with V4L2_ENC_CMD_START.
 */
#include "v4l2/v4l2_m2m_encoder.h"

#include <cerrno>
#include <cstring>

#include "protocol/base/log.h"
#include "v4l2/pixel_format.h"

namespace xmb {

XMB_LOG_DEFINE_CATEGORY(logEncoder, "v4l2-enc");

namespace {

std::vector<uint32_t> formatsOn(V4L2Device &dev, uint32_t type, bool compressed)
{
	std::vector<uint32_t> out;
	for (unsigned i = 0; i < 256; i++) {
		v4l2_fmtdesc d{};
		d.index = i;
		d.type = type;
		if (dev.ioctl(VIDIOC_ENUM_FMT, &d) < 0)
			break;
		if (static_cast<bool>(d.flags & V4L2_FMT_FLAG_COMPRESSED) == compressed)
			out.push_back(d.pixelformat);
	}
	return out;
}

uint32_t outputTypeOf(const V4L2Capability &caps)
{
	return caps.isM2MMultiplanar() ? V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE : V4L2_BUF_TYPE_VIDEO_OUTPUT;
}
uint32_t captureTypeOf(const V4L2Capability &caps)
{
	return caps.isM2MMultiplanar() ? V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE
				       : V4L2_BUF_TYPE_VIDEO_CAPTURE;
}

} /* namespace */

/**
 * \brief Encoder discovery is by capability and formats, not by name
 */
bool isM2MEncoder(V4L2Device &dev)
{
	if (!dev.isOpen() || !dev.caps().isM2M() || !dev.caps().hasStreaming())
		return false;
	return !formatsOn(dev, outputTypeOf(dev.caps()), false).empty() &&
	       !formatsOn(dev, captureTypeOf(dev.caps()), true).empty();
}

std::vector<V4L2NodeInfo> findM2MEncoders(DeviceIO &io, const std::string &dir)
{
	std::vector<V4L2NodeInfo> out;
	for (V4L2NodeInfo &n : scanV4L2Nodes(io, dir)) {
		if (!(n.deviceCaps & (V4L2_CAP_VIDEO_M2M | V4L2_CAP_VIDEO_M2M_MPLANE)))
			continue;
		V4L2Device dev(io);
		if (dev.open(n.path) == 0 && isM2MEncoder(dev))
			out.push_back(std::move(n));
	}
	return out;
}

V4L2M2MEncoder::~V4L2M2MEncoder()
{
	close();
}

/**
 * \brief Open \a path and check it is an encoder
 * \return 0, -ENODEV if it is not an encoder, or -errno
 */
int V4L2M2MEncoder::open(const std::string &path)
{
	close();
	int ret = V4L2Device::open(path);
	if (ret < 0)
		return ret;
	if (!isM2MEncoder(*this)) {
		XMB_LOG(logEncoder, Error, "%s: not a stateful M2M encoder", logName());
		V4L2Device::close();
		return -ENODEV;
	}
	outputType_ = outputTypeOf(caps());
	captureType_ = captureTypeOf(caps());
	output_ = std::make_unique<V4L2BufferQueue>(*this, outputType_);
	capture_ = std::make_unique<V4L2BufferQueue>(*this, captureType_);
	/* Both optional: drains also end on LAST alone, and few encoders
	 * ever change the coded format on their own. */
	subscribeEvent(V4L2_EVENT_EOS);
	subscribeEvent(V4L2_EVENT_SOURCE_CHANGE);
	state_ = State::Open;
	return 0;
}

void V4L2M2MEncoder::close()
{
	/* Queues free their buffers through the fd: before it closes. */
	output_.reset();
	capture_.reset();
	V4L2Device::close();
	state_ = State::Closed;
}

std::vector<uint32_t> V4L2M2MEncoder::rawFormats()
{
	return formatsOn(*this, outputType_, false);
}

std::vector<uint32_t> V4L2M2MEncoder::codedFormats()
{
	return formatsOn(*this, captureType_, true);
}

/**
 * \brief Negotiate formats: CAPTURE (coded) first, then OUTPUT (raw), then
 * the frame rate on OUTPUT.  \a config is updated to what the driver chose.
 *
 * \return 0, -EINVAL if the driver substituted a different fourcc, or -errno
 */
int V4L2M2MEncoder::configure(EncoderConfig &config)
{
	if (state_ != State::Open && state_ != State::Configured)
		return -EBUSY;

	v4l2_format f;
	V4L2Format coded;
	coded.fourcc = config.codedFourcc;
	coded.width = config.width;
	coded.height = config.height;
	coded.planes[0].sizeImage = config.codedBufferSize;
	toV4L2(coded, captureType_, f);
	int ret = ioctl(VIDIOC_S_FMT, &f);
	if (ret < 0) {
		XMB_LOG(logEncoder, Error, "%s: S_FMT coded %s failed: %s", logName(),
			fourccToString(config.codedFourcc).c_str(), strerror(-ret));
		return ret;
	}
	codedFormat_ = fromV4L2(f);
	if (codedFormat_.fourcc != config.codedFourcc) {
		XMB_LOG(logEncoder, Error, "%s: coded format %s not supported (driver chose %s)",
			logName(), fourccToString(config.codedFourcc).c_str(),
			fourccToString(codedFormat_.fourcc).c_str());
		return -EINVAL;
	}

	V4L2Format raw;
	raw.fourcc = config.rawFourcc;
	raw.width = config.width;
	raw.height = config.height;
	toV4L2(raw, outputType_, f);
	ret = ioctl(VIDIOC_S_FMT, &f);
	if (ret < 0) {
		XMB_LOG(logEncoder, Error, "%s: S_FMT raw %s %ux%u failed: %s", logName(),
			fourccToString(config.rawFourcc).c_str(), config.width, config.height,
			strerror(-ret));
		return ret;
	}
	rawFormat_ = fromV4L2(f);
	if (rawFormat_.fourcc != config.rawFourcc) {
		XMB_LOG(logEncoder, Error, "%s: raw format %s not supported (driver chose %s)", logName(),
			fourccToString(config.rawFourcc).c_str(),
			fourccToString(rawFormat_.fourcc).c_str());
		return -EINVAL;
	}
	/* The raw size may have been aligned; the coded size follows it. */
	config.width = rawFormat_.width;
	config.height = rawFormat_.height;
	config.codedBufferSize = codedFormat_.planes[0].sizeImage;

	if (config.interval.isValid()) {
		v4l2_streamparm parm{};
		parm.type = outputType_;
		parm.parm.output.timeperframe = { config.interval.numerator, config.interval.denominator };
		if (ioctl(VIDIOC_S_PARM, &parm) == 0)
			config.interval = { parm.parm.output.timeperframe.numerator,
					    parm.parm.output.timeperframe.denominator };
		else
			XMB_LOG(logEncoder, Debug, "%s: no frame rate control", logName());
	}
	state_ = State::Configured;
	XMB_LOG(logEncoder, Info, "%s: %s -> %s", logName(), rawFormat_.toString().c_str(),
		codedFormat_.toString().c_str());
	return 0;
}

/**
 * \brief Apply the parameters the device has controls for
 *
 * Missing controls are skipped (not every encoder has a profile or level
 * control); a control the device has but refuses is an error.
 *
 * \return 0 or -errno; \a applied gets the values that took effect
 */
int V4L2M2MEncoder::setParams(const EncoderParams &params, EncoderParams *applied)
{
	struct Item {
		const std::optional<int64_t> &value;
		uint32_t id;
		std::optional<int64_t> EncoderParams::*out;
	};
	const Item items[] = {
		{ params.bitrateMode, V4L2_CID_MPEG_VIDEO_BITRATE_MODE, &EncoderParams::bitrateMode },
		{ params.bitrate, V4L2_CID_MPEG_VIDEO_BITRATE, &EncoderParams::bitrate },
		{ params.gopSize, V4L2_CID_MPEG_VIDEO_GOP_SIZE, &EncoderParams::gopSize },
		{ params.h264Profile, V4L2_CID_MPEG_VIDEO_H264_PROFILE, &EncoderParams::h264Profile },
		{ params.h264Level, V4L2_CID_MPEG_VIDEO_H264_LEVEL, &EncoderParams::h264Level },
	};
	EncoderParams result;
	for (const Item &item : items) {
		if (!item.value)
			continue;
		V4L2ControlInfo info;
		if (queryControl(item.id, info) < 0 || (info.flags & V4L2_CTRL_FLAG_DISABLED)) {
			XMB_LOG(logEncoder, Debug, "%s: no control 0x%08x, skipped", logName(), item.id);
			continue;
		}
		int64_t v = *item.value;
		int ret = setControl(item.id, v);
		if (ret < 0)
			return ret;
		result.*(item.out) = v;
	}
	if (applied)
		*applied = result;
	return 0;
}

/**
 * \brief Make the next encoded frame a key frame
 * \return 0, -ENOTSUP without the control, or -errno
 */
int V4L2M2MEncoder::forceKeyFrame()
{
	V4L2ControlInfo info;
	if (queryControl(V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME, info) < 0)
		return -ENOTSUP;
	int64_t v = 1;
	return setControl(V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME, v);
}

/**
 * \brief Allocate OUTPUT buffers of \a rawMemory and mapped MMAP CAPTURE buffers
 * \return 0 or -errno; on failure no buffers stay allocated
 */
int V4L2M2MEncoder::allocateBuffers(unsigned rawCount, V4L2Memory rawMemory, unsigned codedCount)
{
	if (state_ != State::Configured)
		return -EBUSY;
	int ret = output_->requestBuffers(rawCount, rawMemory);
	if (ret < 0)
		return ret;
	ret = capture_->requestBuffers(codedCount, V4L2Memory::Mmap);
	if (ret < 0) {
		output_->releaseBuffers();
		return ret;
	}
	codedCount_ = static_cast<unsigned>(ret);
	codedHeld_.clear(); /* new buffers: lent again only if asked */
	for (unsigned i = 0; i < capture_->count(); i++) {
		ret = capture_->mapBuffer(i);
		if (ret < 0) {
			capture_->releaseBuffers();
			output_->releaseBuffers();
			return ret;
		}
	}
	return 0;
}

int V4L2M2MEncoder::queueAllCoded()
{
	for (unsigned i = 0; i < capture_->count(); i++) {
		if (capture_->isQueued(i) || (i < codedHeld_.size() && codedHeld_[i]))
			continue;
		int ret = capture_->queueBuffer(i);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/**
 * \brief Queue every CAPTURE buffer and stream both queues
 */
int V4L2M2MEncoder::start()
{
	if (state_ != State::Configured || !output_->count() || !capture_->count())
		return -EBUSY;
	int ret = queueAllCoded();
	if (ret == 0)
		ret = capture_->streamOn();
	if (ret == 0)
		ret = output_->streamOn();
	if (ret < 0) {
		capture_->streamOff();
		return ret;
	}
	state_ = State::Streaming;
	return 0;
}

/**
 * \brief Stop both queues; buffers stay allocated, the encoder can start()
 * again after a reset
 */
int V4L2M2MEncoder::stop()
{
	if (state_ == State::Closed || state_ == State::Open)
		return 0;
	int r1 = output_->streamOff();
	int r2 = capture_->streamOff();
	state_ = State::Configured;
	return r1 < 0 ? r1 : r2;
}

/**
 * \brief Queue raw frame \a index (bytesUsed and timestamp in \a args)
 */
int V4L2M2MEncoder::queueRaw(unsigned index, const V4L2QueueArgs &args)
{
	if (state_ != State::Streaming)
		return -EBUSY;
	return output_->queueBuffer(index, args);
}

/**
 * \brief Get back a raw buffer the encoder has consumed
 * \return 0 or -EAGAIN
 */
int V4L2M2MEncoder::dequeueRaw(unsigned &index)
{
	V4L2DequeuedBuffer b;
	int ret = output_->dequeueBuffer(b);
	if (ret == 0)
		index = b.index;
	return ret;
}

/**
 * \brief Dequeue one bitstream buffer
 *
 * \return 0; -EAGAIN when none is ready; -EPIPE once drained (the LAST
 * buffer was returned earlier; drivers may also answer EPIPE straight away)
 */
int V4L2M2MEncoder::dequeueCoded(EncodedFrame &frame)
{
	V4L2DequeuedBuffer b;
	int ret = capture_->dequeueBuffer(b);
	if (ret == -EPIPE) {
		if (state_ == State::Draining)
			state_ = State::Drained;
		return ret;
	}
	if (ret < 0)
		return ret;
	frame = {};
	frame.index = b.index;
	frame.bytesUsed = b.bytesUsed[0] - std::min(b.bytesUsed[0], b.dataOffset[0]);
	frame.sequence = b.sequence;
	frame.timestampNs = b.timestampNs;
	frame.keyFrame = b.isKeyFrame();
	frame.last = b.isLast();
	const unsigned char *base = capture_->planeData(b.index, 0);
	frame.data = base ? base + b.dataOffset[0] : nullptr;
	if (frame.last) {
		state_ = State::Drained;
		XMB_LOG(logEncoder, Debug, "%s: drained", logName());
	}
	return 0;
}

int V4L2M2MEncoder::requeueCoded(unsigned index)
{
	if (state_ == State::Closed || state_ == State::Open)
		return -EBUSY;
	return capture_->queueBuffer(index);
}

void V4L2M2MEncoder::lendCoded(bool on)
{
	codedHeld_.assign(on ? capture_->count() : 0, true);
}

void V4L2M2MEncoder::holdCoded(unsigned index)
{
	if (index < codedHeld_.size())
		codedHeld_[index] = true;
}

int V4L2M2MEncoder::releaseCoded(unsigned index)
{
	if (index >= codedHeld_.size() || !codedHeld_[index])
		return -EINVAL;
	codedHeld_[index] = false;
	/* Stopped or drained: start()/resume() queue it. */
	if (state_ != State::Streaming && state_ != State::Draining)
		return 0;
	return capture_->isQueued(index) ? 0 : capture_->queueBuffer(index);
}

/**
 * \brief Start a drain (V4L2_ENC_CMD_STOP): queued frames are encoded and
 * the last bitstream buffer comes back flagged LAST
 *
 * \return 0, -ENOTSUP if the driver has no encoder commands, or -errno
 */
int V4L2M2MEncoder::drain()
{
	if (state_ != State::Streaming)
		return -EBUSY;
	v4l2_encoder_cmd cmd{};
	cmd.cmd = V4L2_ENC_CMD_STOP;
	int ret = ioctl(VIDIOC_TRY_ENCODER_CMD, &cmd);
	if (ret == -ENOTTY)
		return -ENOTSUP;
	if (ret == 0)
		ret = ioctl(VIDIOC_ENCODER_CMD, &cmd);
	if (ret < 0) {
		XMB_LOG(logEncoder, Error, "%s: V4L2_ENC_CMD_STOP failed: %s", logName(), strerror(-ret));
		return ret;
	}
	state_ = State::Draining;
	return 0;
}

/**
 * \brief Continue after a drain (V4L2_ENC_CMD_START), CAPTURE buffers requeued
 */
int V4L2M2MEncoder::resume()
{
	if (state_ != State::Drained)
		return -EBUSY;
	v4l2_encoder_cmd cmd{};
	cmd.cmd = V4L2_ENC_CMD_START;
	int ret = ioctl(VIDIOC_ENCODER_CMD, &cmd);
	if (ret < 0) {
		XMB_LOG(logEncoder, Error, "%s: V4L2_ENC_CMD_START failed: %s", logName(), strerror(-ret));
		return ret;
	}
	state_ = State::Streaming;
	return queueAllCoded();
}

/**
 * \brief The coded format changed under us: reallocate CAPTURE for it
 */
int V4L2M2MEncoder::reallocateCoded()
{
	if (!codedHeld_.empty()) {
		XMB_LOG(logEncoder, Error, "%s: the coded format changed while its CAPTURE buffers are lent",
			logName());
		return -EBUSY;
	}
	capture_->streamOff();
	v4l2_format f{};
	f.type = captureType_;
	int ret = ioctl(VIDIOC_G_FMT, &f);
	if (ret < 0)
		return ret;
	codedFormat_ = fromV4L2(f);
	ret = capture_->requestBuffers(codedCount_ ? codedCount_ : 4, V4L2Memory::Mmap);
	if (ret < 0)
		return ret;
	for (unsigned i = 0; i < capture_->count(); i++)
		if ((ret = capture_->mapBuffer(i)) < 0)
			return ret;
	if ((ret = queueAllCoded()) < 0)
		return ret;
	XMB_LOG(logEncoder, Info, "%s: coded format now %s", logName(), codedFormat_.toString().c_str());
	return capture_->streamOn();
}

/**
 * \brief Process pending events (call when the fd reports POLLPRI)
 */
int V4L2M2MEncoder::handleEvents(Events &events)
{
	events = {};
	for (;;) {
		v4l2_event ev;
		int ret = dequeueEvent(ev);
		if (ret == -EAGAIN)
			return 0;
		if (ret < 0)
			return ret;
		if (ev.type == V4L2_EVENT_EOS) {
			events.endOfStream = true;
		} else if (ev.type == V4L2_EVENT_SOURCE_CHANGE &&
			   (ev.u.src_change.changes & V4L2_EVENT_SRC_CH_RESOLUTION)) {
			events.sourceChanged = true;
			if (state_ == State::Streaming || state_ == State::Draining) {
				ret = reallocateCoded();
				if (ret < 0)
					return ret;
			}
		}
	}
}

} /* namespace xmb */
