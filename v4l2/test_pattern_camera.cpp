/* SPDX-License-Identifier: MIT */
/**
 * \file test_pattern_camera.cpp
 * \brief The built-in test-pattern camera
 */
#include "v4l2/test_pattern_camera.h"

#include "protocol/base/monotonic.h"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <xen/io/cameraif.h>

#include "protocol/base/log.h"
#include "v4l2/pixel_format.h"
#include "v4l2/test_pattern.h"

namespace xmb {

XMB_LOG_DEFINE_CATEGORY(logTestPattern, "testpattern");

namespace {

/* Controls the pattern stores; same ranges as a typical UVC webcam. */
constexpr CameraControlInfo kControls[] = {
	{ XENCAMERA_CTRL_BRIGHTNESS, 0, 0, 255, 1, 128 },
	{ XENCAMERA_CTRL_CONTRAST, 0, 0, 255, 1, 128 },
	{ XENCAMERA_CTRL_SATURATION, 0, 0, 255, 1, 128 },
	{ XENCAMERA_CTRL_HUE, 0, -180, 180, 1, 0 },
};


} /* namespace */

/**
 * \brief A pattern camera advertising \a options
 */
TestPatternCamera::TestPatternCamera(TestPatternOptions options) : options_(std::move(options))
{
	if (options_.formats.empty())
		options_.formats = test_pattern::formats();
	std::erase_if(options_.formats, [](uint32_t f) { return !test_pattern::isSupported(f); });
	std::erase_if(options_.sizes, [](const Size &s) {
		return !packedFrameLayout(V4L2_PIX_FMT_NV12, s.width, s.height);
	});
	std::erase_if(options_.intervals, [](const Fraction &f) { return !f.isValid(); });
	if (options_.intervals.empty())
		options_.intervals = { { 1, 30 } };
	std::sort(options_.intervals.begin(), options_.intervals.end());

	for (const CameraControlInfo &c : kControls)
		controlValues_[c.type] = c.defaultValue;

	timer_ = UniqueFD(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
	if (!timer_)
		XMB_LOG(logTestPattern, Error, "%s: timerfd_create failed: %s", options_.id.c_str(),
			strerror(errno));
}

TestPatternCamera::~TestPatternCamera()
{
	stop();
}

std::string TestPatternCamera::description() const
{
	return "test pattern (" + options_.id + ")";
}

/**
 * \brief Every (format, size) with every interval; 3840x2160 is offered at
 * 30 fps and slower only, to keep software rendering within one core
 */
std::vector<FormatEntry> TestPatternCamera::formats()
{
	std::vector<FormatEntry> out;
	for (uint32_t fourcc : options_.formats)
		for (const Size &s : options_.sizes) {
			if (!test_pattern::layout(fourcc, s.width, s.height))
				continue;
			FormatEntry e;
			e.fourcc = fourcc;
			e.width = s.width;
			e.height = s.height;
			for (const Fraction &f : options_.intervals)
				if (uint64_t{ s.width } * s.height <= 1920u * 1080u ||
				    f >= Fraction{ 1, 30 })
					e.intervals.push_back(f);
			if (e.intervals.empty())
				e.intervals.push_back(options_.intervals.back());
			out.push_back(std::move(e));
		}
	return out;
}

/**
 * \brief All three tiers: the pattern can render into any CPU-writable memory
 */
MemoryTypes TestPatternCamera::supportedMemory() const
{
	return MemoryType::UserPtr | MemoryType::DmaBufImport |
	       static_cast<uint32_t>(MemoryType::MmapExport);
}

Fraction TestPatternCamera::nearestInterval(Fraction wanted) const
{
	if (!wanted.isValid())
		return options_.intervals.back();
	Fraction best = options_.intervals.front();
	double bestDiff = 1e9;
	for (const Fraction &f : options_.intervals) {
		double diff = std::abs(f.toDouble() - wanted.toDouble());
		if (diff < bestDiff) {
			bestDiff = diff;
			best = f;
		}
	}
	return best;
}

/**
 * \brief Adjust \a config to the nearest advertised format, size and interval
 * \return 0 (the config is always made valid), -ENODEV if nothing is advertised
 */
int TestPatternCamera::tryConfigure(StreamConfig &config)
{
	if (options_.formats.empty() || options_.sizes.empty())
		return -ENODEV;
	if (std::find(options_.formats.begin(), options_.formats.end(), config.fourcc) ==
	    options_.formats.end())
		config.fourcc = options_.formats.front();

	const Size *best = &options_.sizes.front();
	uint64_t bestDiff = UINT64_MAX;
	for (const Size &s : options_.sizes) {
		uint64_t dw = s.width > config.width ? s.width - config.width : config.width - s.width;
		uint64_t dh = s.height > config.height ? s.height - config.height : config.height - s.height;
		if (dw + dh < bestDiff) {
			bestDiff = dw + dh;
			best = &s;
		}
	}
	config.width = best->width;
	config.height = best->height;
	config.interval = nearestInterval(config.interval);
	config.layout = *test_pattern::layout(config.fourcc, config.width, config.height);
	/* test_pattern draws Y'CbCr as BT.601 limited range, RGB as full-range sRGB. */
	config.colorimetry = isRgbFourcc(config.fourcc)
		? Colorimetry{ V4L2_COLORSPACE_SRGB, V4L2_XFER_FUNC_SRGB, V4L2_YCBCR_ENC_601,
			       V4L2_QUANTIZATION_FULL_RANGE }
		: Colorimetry{ V4L2_COLORSPACE_SMPTE170M, V4L2_XFER_FUNC_709, V4L2_YCBCR_ENC_601,
			       V4L2_QUANTIZATION_LIM_RANGE };
	return 0;
}

/**
 * \brief Set the format; only while stopped with no buffers
 */
int TestPatternCamera::configure(StreamConfig &config)
{
	if (streaming_ || !buffers_.empty())
		return -EBUSY;
	int ret = tryConfigure(config);
	if (ret < 0)
		return ret;
	config_ = config;
	configured_ = true;
	XMB_LOG(logTestPattern, Info, "%s: %s %ux%u at %u/%u s", options_.id.c_str(),
		fourccToString(config.fourcc).c_str(), config.width, config.height,
		config.interval.numerator, config.interval.denominator);
	return 0;
}

/**
 * \brief Change the frame rate, also while streaming
 */
int TestPatternCamera::setFrameInterval(Fraction &interval)
{
	interval = nearestInterval(interval);
	config_.interval = interval;
	return streaming_ ? armTimer(true) : 0;
}

/**
 * \brief Prepare \a count buffer slots of \a memory type
 *
 * MmapExport allocates the memory here (memfd, wrapped as a dma-buf when
 * /dev/udmabuf exists); the other tiers get their memory at queueBuffer().
 *
 * \return the count, or -errno (nothing is kept on failure)
 */
int TestPatternCamera::allocateBuffers(MemoryType memory, unsigned count)
{
	if (streaming_)
		return -EBUSY;
	if (!configured_)
		return -EINVAL;
	releaseBuffers();
	if (count == 0)
		return 0;
	count = std::min(count, options_.maxBuffers);

	std::vector<Buffer> buffers(count);
	if (memory == MemoryType::MmapExport) {
		for (unsigned i = 0; i < count; i++) {
			Buffer &b = buffers[i];
			int ret = allocateSharedBuffer(config_.layout.size, "xmb-test-pattern",
						       options_.exportDmaBuf, b.own);
			if (ret < 0)
				return ret;
			void *p = ::mmap(nullptr, b.own.length, PROT_READ | PROT_WRITE, MAP_SHARED,
					 b.own.memfd.get(), 0);
			if (p == MAP_FAILED)
				return -errno;
			b.mapping = MappedRegion(&DeviceIO::system(), p, b.own.length);
			b.data = b.mapping.bytes();
			b.length = b.own.length;
			b.syncFd = b.own.dmabuf.isValid() ? b.own.dmabuf.get() : -1;
		}
	}
	buffers_ = std::move(buffers);
	memory_ = memory;
	return static_cast<int>(count);
}

/**
 * \brief Hand out an fd of MmapExport buffer \a index (a new descriptor
 * each call; the caller owns it)
 */
int TestPatternCamera::exportBuffer(unsigned index, ExportedBuffer &out)
{
	if (memory_ != MemoryType::MmapExport || index >= buffers_.size())
		return -EINVAL;
	const Buffer &b = buffers_[index];
	out.isDmaBuf = b.own.dmabuf.isValid();
	out.fd = out.isDmaBuf ? b.own.dmabuf.dup() : b.own.memfd.dup();
	out.length = b.own.length;
	return out.fd ? 0 : -errno;
}

/**
 * \brief Queue buffer \a index; the next tick renders into it
 *
 * UserPtr: \a memory.data/length is written directly.  DmaBufImport: the
 * fd is mapped here (and kept mapped until the buffer is re-queued with
 * another fd or released), so the frame is rendered into the dma-buf.
 */
int TestPatternCamera::queueBuffer(unsigned index, const CallerBuffer &memory)
{
	if (index >= buffers_.size())
		return -EINVAL;
	Buffer &b = buffers_[index];
	if (b.queued)
		return -EBUSY;

	switch (memory_) {
	case MemoryType::UserPtr:
		if (!memory.data || memory.length < config_.layout.size)
			return -EINVAL;
		b.data = static_cast<uint8_t *>(memory.data);
		b.length = memory.length;
		break;
	case MemoryType::DmaBufImport: {
		if (memory.dmabufFd < 0)
			return -EBADF;
		size_t length = memory.length;
		if (!length) {
			off_t end = ::lseek(memory.dmabufFd, 0, SEEK_END);
			length = end > 0 ? static_cast<size_t>(end) : 0;
		}
		if (length < config_.layout.size)
			return -EINVAL;
		/* Re-queueing the same buffer is the common case: keep the map. */
		if (b.syncFd != memory.dmabufFd || b.length != length || !b.mapping.isValid()) {
			MappedRegion m;
			int ret = MappedRegion::map(DeviceIO::system(), memory.dmabufFd, length,
						    PROT_READ | PROT_WRITE, 0, m);
			if (ret < 0) {
				XMB_LOG(logTestPattern, Error, "%s: cannot map dma-buf %d: %s",
					options_.id.c_str(), memory.dmabufFd, strerror(-ret));
				return ret;
			}
			b.mapping = std::move(m);
		}
		b.data = b.mapping.bytes();
		b.length = length;
		b.syncFd = memory.dmabufFd;
		break;
	}
	case MemoryType::MmapExport:
		break;
	}
	b.queued = true;
	pending_.push_back(index);
	return 0;
}

/**
 * \brief Forget all buffers (stopping first); exported fds stay valid
 */
int TestPatternCamera::releaseBuffers()
{
	if (streaming_)
		stop();
	pending_.clear();
	done_.clear();
	buffers_.clear();
	return 0;
}

int TestPatternCamera::armTimer(bool on)
{
	itimerspec its{};
	if (on) {
		uint64_t ns = uint64_t{ config_.interval.numerator } * 1000000000ull /
			      config_.interval.denominator;
		if (!ns)
			ns = 1;
		its.it_interval.tv_sec = static_cast<time_t>(ns / 1000000000ull);
		its.it_interval.tv_nsec = static_cast<long>(ns % 1000000000ull);
		its.it_value = its.it_interval;
	}
	if (::timerfd_settime(timer_.get(), 0, &its, nullptr) < 0)
		return -errno;
	return 0;
}

/**
 * \brief Start ticking; the sequence restarts at 0 as V4L2's does
 */
int TestPatternCamera::start()
{
	if (!configured_ || buffers_.empty())
		return -EINVAL;
	if (!timer_)
		return -ENODEV;
	if (streaming_)
		return 0;
	sequence_ = 0;
	dropped_ = 0;
	int ret = armTimer(true);
	if (ret < 0)
		return ret;
	streaming_ = true;
	return 0;
}

/**
 * \brief Stop ticking; queued and undelivered buffers go back to the caller
 */
int TestPatternCamera::stop()
{
	if (!streaming_)
		return 0;
	armTimer(false);
	/* Drain a tick that fired before the disarm so it cannot leak into the next start. */
	uint64_t ticks;
	while (::read(timer_.get(), &ticks, sizeof(ticks)) < 0 && errno == EINTR) {
	}
	streaming_ = false;
	pending_.clear();
	done_.clear();
	for (Buffer &b : buffers_)
		b.queued = false;
	return 0;
}

uint32_t TestPatternCamera::pollEvents() const
{
	return EPOLLIN;
}

void TestPatternCamera::produce(uint64_t sequence)
{
	if (pending_.empty()) {
		dropped_++;
		return;
	}
	unsigned index = pending_.front();
	pending_.pop_front();
	Buffer &b = buffers_[index];
	b.queued = false;

	if (b.syncFd >= 0)
		dmaBufBeginCpuAccess(b.syncFd, true);
	bool ok = test_pattern::render(config_.layout, sequence, b.data, b.length);
	if (b.syncFd >= 0)
		dmaBufEndCpuAccess(b.syncFd, true);

	CompletedFrame f;
	f.index = index;
	f.bytesUsed = ok ? config_.layout.size : 0;
	f.sequence = static_cast<uint32_t>(sequence);
	f.timestampNs = monotonicNs();
	f.error = !ok;
	done_.push_back(f);
}

/**
 * \brief Consume timer ticks and return the oldest finished frame
 *
 * One frame per wake-up: if the loop was late and several ticks expired,
 * the older ones are dropped (sequence gap) rather than rendered late.
 *
 * \return 0, or -EAGAIN when no frame is ready
 */
int TestPatternCamera::dequeueFrame(CompletedFrame &frame)
{
	if (streaming_) {
		uint64_t ticks = 0;
		ssize_t n;
		do {
			n = ::read(timer_.get(), &ticks, sizeof(ticks));
		} while (n < 0 && errno == EINTR);
		if (n == sizeof(ticks) && ticks > 0) {
			if (ticks > 1) {
				dropped_ += ticks - 1;
				sequence_ += ticks - 1;
			}
			produce(sequence_++);
		}
	}
	if (done_.empty())
		return -EAGAIN;
	frame = done_.front();
	done_.pop_front();
	return 0;
}

std::vector<CameraControlInfo> TestPatternCamera::controls()
{
	return { std::begin(kControls), std::end(kControls) };
}

int TestPatternCamera::getControl(uint8_t type, int64_t &value)
{
	if (type >= controlValues_.size())
		return -EINVAL;
	value = controlValues_[type];
	return 0;
}

int TestPatternCamera::setControl(uint8_t type, int64_t &value)
{
	if (type >= controlValues_.size())
		return -EINVAL;
	value = clampControlValue(kControls[type], value);
	controlValues_[type] = value;
	return 0;
}

} /* namespace xmb */
