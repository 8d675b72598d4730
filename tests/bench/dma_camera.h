/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A camera that "captures" like DMA hardware: frames complete on a timer
 * without the CPU touching pixel memory.  The bench uses it so that what
 * it measures is the bridge (rings, events, notifications, and copies in
 * copy mode), not the cost of drawing a test pattern.
 */
#include <array>
#include <atomic>
#include <deque>
#include <optional>
#include <vector>

#include "v4l2/camera_source.h"
#include "v4l2/dma_buf.h"

namespace xmb::bench {

class DmaCamera final : public CameraSource
{
public:
	DmaCamera(uint32_t fourcc, uint32_t width, uint32_t height, unsigned fps);
	~DmaCamera() override;

	std::string id() const override { return "dma-camera"; }
	std::string description() const override { return "bench camera (no CPU writes)"; }
	std::vector<FormatEntry> formats() override;
	MemoryTypes supportedMemory() const override;
	int tryConfigure(StreamConfig &config) override;
	int configure(StreamConfig &config) override;
	int setFrameInterval(Fraction &) override { return 0; }
	int allocateBuffers(MemoryType memory, unsigned count) override;
	int exportBuffer(unsigned index, ExportedBuffer &out) override;
	int queueBuffer(unsigned index, const CallerBuffer &memory = {}) override;
	int releaseBuffers() override;
	int start() override;
	int stop() override;
	int pollFd() const override { return timer_.get(); }
	int dequeueFrame(CompletedFrame &frame) override;
	/**
	 * When frame \a sequence completed (CLOCK_MONOTONIC ns), if it is one of
	 * the last 256; callable from any thread (the bench's guests, for latency).
	 */
	std::optional<uint64_t> completedAt(uint32_t sequence) const;
	std::vector<CameraControlInfo> controls() override { return {}; }
	int getControl(uint8_t, int64_t &) override { return -EINVAL; }
	int setControl(uint8_t, int64_t &) override { return -EINVAL; }

private:
	FrameLayout layout_;
	unsigned fps_;
	UniqueFD timer_;
	MemoryType memory_ = MemoryType::UserPtr;
	std::vector<SharedBuffer> own_;
	std::deque<unsigned> queued_;
	uint32_t seq_ = 0;
	bool running_ = false;
	/* Seqlock-like slots: ns written before seq (release), read back seq, ns, seq. */
	struct Completion {
		std::atomic<uint64_t> seq{ ~0ull };
		std::atomic<uint64_t> ns{ 0 };
	};
	std::array<Completion, 256> completed_;
};

} /* namespace xmb::bench */
