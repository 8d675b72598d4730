/* SPDX-License-Identifier: MIT */
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "v4l2/format_enum.h"
#include "v4l2/v4l2_buffer_queue.h"
#include "v4l2/v4l2_device.h"

namespace xmb {

/** \brief Identity of a V4L2 node found by a scan of /dev/video*. */
struct V4L2NodeInfo {
	std::string path;
	std::string driver;
	std::string card;
	std::string busInfo;
	uint32_t deviceCaps = 0;
};

/** \brief Which node to pick: empty fields match anything. */
struct V4L2NodeMatch {
	std::string driver;	     /**< exact, e.g. "vivid", "uvcvideo" */
	std::string card;	     /**< substring */
	std::string busInfo;	     /**< exact, e.g. "platform:vivid-000" */
	uint32_t requiredCaps = 0;   /**< all of these device caps */
};

std::vector<V4L2NodeInfo> scanV4L2Nodes(DeviceIO &io = DeviceIO::system(),
					const std::string &dir = "/dev");
std::optional<V4L2NodeInfo> findV4L2Node(const V4L2NodeMatch &match,
					 DeviceIO &io = DeviceIO::system(),
					 const std::string &dir = "/dev");

/**
 * \brief A V4L2 video capture node (single- or multi-planar).
 *
 * Format enumeration and negotiation, frame intervals, and one capture
 * queue.  Control and event calls come from V4L2Device.
 */
class V4L2VideoDevice : public V4L2Device
{
public:
	using V4L2Device::V4L2Device;
	~V4L2VideoDevice() override;

	int open(const std::string &path);
	void close() override;

	[[nodiscard]] uint32_t bufferType() const { return bufType_; }
	[[nodiscard]] V4L2BufferQueue &queue() { return *queue_; }

	std::vector<FormatDescription> enumerateFormats();
	FrameSizeEnum enumerateFrameSizes(uint32_t fourcc);
	FrameIntervalEnum enumerateFrameIntervals(uint32_t fourcc, uint32_t width, uint32_t height);
	std::vector<FormatEntry> flatFormats(const SamplingLimits &limits = {});

	int getFormat(V4L2Format &format);
	int setFormat(V4L2Format &format);
	int tryFormat(V4L2Format &format);

	int getFrameInterval(Fraction &interval);
	int setFrameInterval(Fraction &interval);

private:
	int formatIoctl(unsigned long request, const char *name, V4L2Format &format);

	uint32_t bufType_ = V4L2_BUF_TYPE_VIDEO_CAPTURE;
	std::unique_ptr<V4L2BufferQueue> queue_;
};

} /* namespace xmb */
