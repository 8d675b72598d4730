/* SPDX-License-Identifier: MIT */
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "v4l2/camera_source.h"

namespace xmb {

/** \brief A camera libcamera's CameraManager knows. */
struct LibcameraCameraInfo {
	std::string id;	   /**< libcamera's camera id */
	std::string model; /**< properties::Model, if any */
};

/**
 * Cameras libcamera can see (starts the process-wide CameraManager on
 * first use).  Empty when there are none or the build has no libcamera.
 */
std::vector<LibcameraCameraInfo> listLibcameraCameras();

/**
 * \brief CameraSource over a libcamera camera (one VideoRecording stream).
 *
 * Memory: MmapExport (FrameBufferAllocator's buffers are dma-bufs) and
 * DmaBufImport (caller fds wrapped in FrameBuffers); libcamera has no user
 * pointer path, so no UserPtr.  libcamera completes requests on its own
 * thread: completions are queued under a lock and an eventfd wakes the
 * service's loop, where dequeueFrame() hands them out.
 *
 * Controls: brightness, contrast and saturation are floats in libcamera
 * (brightness -1..1, 0 neutral; contrast and saturation 1.0 neutral); the
 * cameraif integer is the float times 1000.  libcamera has no hue.
 * New values go out with the next queued request.
 *
 * Only built with libcamera (XMB_HAVE_LIBCAMERA); the header is always
 * there so callers can name the type.
 */
class LibcameraSource final : public CameraSource
{
public:
	/** cameraif integer = libcamera float * kControlScale */
	static constexpr int64_t kControlScale = 1000;

	LibcameraSource();
	~LibcameraSource() override;

	int open(const std::string &cameraId);

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

	[[nodiscard]] int pollFd() const override;
	[[nodiscard]] uint32_t pollEvents() const override;
	int dequeueFrame(CompletedFrame &frame) override;

	std::vector<CameraControlInfo> controls() override;
	int getControl(uint8_t type, int64_t &value) override;
	int setControl(uint8_t type, int64_t &value) override;

	struct Private;

private:
	std::unique_ptr<Private> d_;
};

/** libcamera (DRM) fourcc -> V4L2 fourcc, as cameraif speaks V4L2's. */
uint32_t v4l2FourccFromDrm(uint32_t drm);
/** V4L2 fourcc -> libcamera (DRM) fourcc. */
uint32_t drmFourccFromV4L2(uint32_t v4l2);

} /* namespace xmb */
