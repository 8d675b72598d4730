/* SPDX-License-Identifier: MIT */
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "v4l2/camera_source.h"
#include "v4l2/v4l2_video_device.h"

namespace xmb {

/**
 * \brief CameraSource over a V4L2 capture node.
 *
 * Native formats use the driver's queue directly in any tier it supports:
 * USERPTR into the caller's pages, DMABUF import, or MMAP + EXPBUF.
 * Formats only libv4l2 can produce (FormatEntry::emulated) switch the node
 * to libv4l2: it converts each frame into its own buffer and the source
 * copies that into the caller's memory, so only UserPtr is offered then
 * and emulatedCopyBytesPerFrame() reports the cost.  Multi-buffer formats
 * (NV12M) are served as their one-buffer twins (NV12): the caller's one
 * buffer is handed to the driver as one USERPTR per memory plane.
 */
class V4L2CameraSource final : public CameraSource
{
public:
	explicit V4L2CameraSource(DeviceIO &io = DeviceIO::system());
	~V4L2CameraSource() override;

	int open(const std::string &path);
	[[nodiscard]] V4L2VideoDevice &device() { return *device_; }

	[[nodiscard]] std::string id() const override;
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

	[[nodiscard]] int pollFd() const override { return device_ ? device_->fd() : -1; }
	int dequeueFrame(CompletedFrame &frame) override;
	int dequeueEvent(SourceEvent &event) override;

	std::vector<CameraControlInfo> controls() override;
	int getControl(uint8_t type, int64_t &value) override;
	int setControl(uint8_t type, int64_t &value) override;

	[[nodiscard]] uint64_t emulatedCopyBytesPerFrame() const override;
	[[nodiscard]] uint64_t emulatedCopyBytesTotal() const override { return copiedTotal_; }

private:
	int reopen(bool emulated);
	bool isEmulatedOnly(uint32_t fourcc);
	uint32_t deviceFourccFor(const StreamConfig &config);
	int acceptFormat(const V4L2Format &f, uint32_t device, StreamConfig &config);
	static bool oneBufferLayout(const V4L2Format &f, uint32_t fourcc, FrameLayout &out);
	void subscribeEvents();

	DeviceIO *nativeIO_;
	std::unique_ptr<V4L2VideoDevice> device_;
	bool emulated_ = false; /* device_ is opened through libv4l2 */
	bool subscribed_ = false; /* to any event: else DQEVENT is never asked */
	std::string path_;
	std::string busInfo_, card_, driver_;
	std::vector<FormatEntry> formatCache_;
	bool configured_ = false;
	StreamConfig config_;
	MemoryType memory_ = MemoryType::MmapExport;
	std::vector<CallerBuffer> callerBuffers_; /* emulation, copyPlanes_: where to copy */
	bool copyPlanes_ = false;		  /* multi-buffer format, no USERPTR: copy each plane */
	bool loggedPlaneCopy_ = false;
	uint64_t copiedTotal_ = 0;
};

} /* namespace xmb */
