/* SPDX-License-Identifier: MIT */
#pragma once

#include <array>
#include <deque>
#include <string>
#include <vector>

#include "v4l2/camera_source.h"
#include "v4l2/device_io.h"
#include "v4l2/dma_buf.h"

namespace xmb {

/** \brief What the test-pattern camera advertises. */
struct TestPatternOptions {
	std::string id = "test-pattern";
	std::vector<uint32_t> formats;	   /**< empty: test_pattern::formats() */
	std::vector<Size> sizes = {
		{ 320, 240 }, { 640, 480 }, { 1280, 720 }, { 1920, 1080 }, { 3840, 2160 },
	};
	std::vector<Fraction> intervals = { { 1, 60 }, { 1, 30 }, { 1, 15 } };
	unsigned maxBuffers = 32;
	bool exportDmaBuf = true; /**< MmapExport via /dev/udmabuf when present */
};

/**
 * \brief A camera with no device: renders test_pattern::render() frame N
 * (N = sequence number) into the next queued buffer at each tick of a
 * timerfd.
 *
 * Rendering into the caller's buffer is how the frame is produced, so all
 * three memory tiers are zero-copy.  Ticks with no buffer queued, or that
 * the event loop was too late for, are dropped and show as sequence gaps.
 * Controls are kept and read back but do not change the picture: frames
 * stay a pure function of (format, size, N).
 */
class TestPatternCamera final : public CameraSource
{
public:
	explicit TestPatternCamera(TestPatternOptions options = {});
	~TestPatternCamera() override;

	[[nodiscard]] std::string id() const override { return options_.id; }
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

	[[nodiscard]] int pollFd() const override { return timer_.get(); }
	[[nodiscard]] uint32_t pollEvents() const override;
	int dequeueFrame(CompletedFrame &frame) override;

	std::vector<CameraControlInfo> controls() override;
	int getControl(uint8_t type, int64_t &value) override;
	int setControl(uint8_t type, int64_t &value) override;

	/** Ticks dropped because no buffer was queued or the loop was late. */
	[[nodiscard]] uint64_t droppedFrames() const { return dropped_; }

private:
	struct Buffer {
		bool queued = false;
		uint8_t *data = nullptr; /* where the next frame goes */
		size_t length = 0;
		int syncFd = -1;	 /* dma-buf to bracket writes with, or -1 */
		MappedRegion mapping;	 /* DmaBufImport: our map of the caller's fd */
		SharedBuffer own;	 /* MmapExport: our memory */
	};

	int armTimer(bool on);
	void produce(uint64_t sequence);
	Fraction nearestInterval(Fraction wanted) const;

	TestPatternOptions options_;
	UniqueFD timer_;
	bool configured_ = false;
	bool streaming_ = false;
	StreamConfig config_;
	MemoryType memory_ = MemoryType::UserPtr;
	std::vector<Buffer> buffers_;
	std::deque<unsigned> pending_;	  /* queued, in order */
	std::deque<CompletedFrame> done_; /* rendered, not yet dequeued */
	uint64_t sequence_ = 0;
	uint64_t dropped_ = 0;
	std::array<int64_t, 4> controlValues_{};
};

} /* namespace xmb */
