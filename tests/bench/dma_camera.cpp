/* SPDX-License-Identifier: MIT */
#include "dma_camera.h"

#include <cerrno>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "v4l2/test_pattern.h"

namespace xmb::bench {

DmaCamera::DmaCamera(uint32_t fourcc, uint32_t width, uint32_t height, unsigned fps)
	: fps_(fps), timer_(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK))
{
	layout_ = *test_pattern::layout(fourcc, width, height);
}

DmaCamera::~DmaCamera() = default;

std::vector<FormatEntry> DmaCamera::formats()
{
	return { { layout_.fourcc, layout_.width, layout_.height, { { 1, fps_ } }, false } };
}

MemoryTypes DmaCamera::supportedMemory() const
{
	/* DmaBufImport: the camera's own exported buffers fed back (device buffers granted). */
	return MemoryType::UserPtr | MemoryType::MmapExport |
	       static_cast<uint32_t>(MemoryType::DmaBufImport);
}

int DmaCamera::tryConfigure(StreamConfig &c)
{
	c.fourcc = layout_.fourcc;
	c.width = layout_.width;
	c.height = layout_.height;
	c.interval = { 1, fps_ };
	c.layout = layout_;
	return 0;
}

int DmaCamera::configure(StreamConfig &c)
{
	return tryConfigure(c);
}

int DmaCamera::allocateBuffers(MemoryType memory, unsigned count)
{
	memory_ = memory;
	own_.clear();
	queued_.clear();
	if (memory == MemoryType::MmapExport) {
		own_.resize(count);
		for (auto &b : own_)
			if (allocateSharedBuffer(layout_.size, "dma-camera", false, b) < 0)
				return -ENOMEM;
	}
	return static_cast<int>(count);
}

int DmaCamera::exportBuffer(unsigned index, ExportedBuffer &out)
{
	if (index >= own_.size())
		return -EINVAL;
	out.fd = own_[index].memfd.dup();
	out.length = own_[index].length;
	out.isDmaBuf = false;
	return out.fd ? 0 : -errno;
}

int DmaCamera::queueBuffer(unsigned index, const CallerBuffer &)
{
	queued_.push_back(index);
	return 0;
}

int DmaCamera::releaseBuffers()
{
	own_.clear();
	queued_.clear();
	return 0;
}

int DmaCamera::start()
{
	itimerspec its{};
	its.it_interval.tv_nsec = 1000000000L / fps_;
	its.it_value = its.it_interval;
	running_ = true;
	seq_ = 0;
	return ::timerfd_settime(timer_.get(), 0, &its, nullptr) < 0 ? -errno : 0;
}

int DmaCamera::stop()
{
	itimerspec its{};
	::timerfd_settime(timer_.get(), 0, &its, nullptr);
	running_ = false;
	queued_.clear();
	return 0;
}

int DmaCamera::dequeueFrame(CompletedFrame &f)
{
	uint64_t ticks = 0;
	if (::read(timer_.get(), &ticks, sizeof(ticks)) != sizeof(ticks) || !running_)
		return -EAGAIN;
	/* One frame per wake-up; missed ticks are drops, as a real sensor's. */
	seq_ += ticks - 1;
	if (queued_.empty()) {
		seq_++;
		return -EAGAIN;
	}
	f.index = queued_.front();
	queued_.pop_front();
	f.bytesUsed = layout_.size;
	f.sequence = seq_++;
	timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	f.timestampNs = uint64_t(now.tv_sec) * 1000000000ull + uint64_t(now.tv_nsec);
	Completion &c = completed_[f.sequence % completed_.size()];
	c.seq.store(~0ull, std::memory_order_release);
	c.ns.store(f.timestampNs, std::memory_order_release);
	c.seq.store(f.sequence, std::memory_order_release);
	return 0;
}

std::optional<uint64_t> DmaCamera::completedAt(uint32_t sequence) const
{
	const Completion &c = completed_[sequence % completed_.size()];
	if (c.seq.load(std::memory_order_acquire) != sequence)
		return std::nullopt;
	uint64_t ns = c.ns.load(std::memory_order_acquire);
	if (c.seq.load(std::memory_order_acquire) != sequence)
		return std::nullopt;
	return ns;
}

} /* namespace xmb::bench */
