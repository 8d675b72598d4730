/* SPDX-License-Identifier: MIT */
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <linux/videodev2.h>

#include "v4l2/device_io.h"

namespace xmb {

/** \brief VIDIOC_QUERYCAP result with the questions callers ask of it. */
struct V4L2Capability {
	v4l2_capability raw{};

	/** The caps of this node (device_caps when the driver reports them). */
	[[nodiscard]] uint32_t deviceCaps() const
	{
		return (raw.capabilities & V4L2_CAP_DEVICE_CAPS) ? raw.device_caps
								 : raw.capabilities;
	}
	[[nodiscard]] std::string driver() const;
	[[nodiscard]] std::string card() const;
	[[nodiscard]] std::string busInfo() const;
	[[nodiscard]] bool isVideoCapture() const
	{
		return deviceCaps() & (V4L2_CAP_VIDEO_CAPTURE | V4L2_CAP_VIDEO_CAPTURE_MPLANE);
	}
	[[nodiscard]] bool isCaptureMultiplanar() const
	{
		return deviceCaps() & V4L2_CAP_VIDEO_CAPTURE_MPLANE;
	}
	[[nodiscard]] bool isM2M() const
	{
		return deviceCaps() & (V4L2_CAP_VIDEO_M2M | V4L2_CAP_VIDEO_M2M_MPLANE);
	}
	[[nodiscard]] bool isM2MMultiplanar() const
	{
		return deviceCaps() & V4L2_CAP_VIDEO_M2M_MPLANE;
	}
	[[nodiscard]] bool hasStreaming() const { return deviceCaps() & V4L2_CAP_STREAMING; }
};

/** \brief One V4L2 control as VIDIOC_QUERY_EXT_CTRL and QUERYMENU report it. */
struct V4L2ControlInfo {
	uint32_t id = 0;
	uint32_t type = 0; /**< V4L2_CTRL_TYPE_* */
	std::string name;
	int64_t minimum = 0;
	int64_t maximum = 0;
	uint64_t step = 0;
	int64_t defaultValue = 0;
	uint32_t flags = 0; /**< V4L2_CTRL_FLAG_* */
	/** Menu entries by index: name, or the value for integer menus. */
	std::vector<std::pair<uint32_t, std::string>> menu;
};

/**
 * \brief An open V4L2 device node: the single ioctl wrapper, capabilities,
 * controls and events.  Capture devices and M2M codecs build on it.
 *
 * Every method returns 0 (or a count) on success and -errno on failure and
 * logs with the device path as prefix, so callers get both a code to act on
 * and a line that says which device did what.
 */
class V4L2Device
{
public:
	explicit V4L2Device(DeviceIO &io = DeviceIO::system());
	virtual ~V4L2Device();
	V4L2Device(const V4L2Device &) = delete;
	V4L2Device &operator=(const V4L2Device &) = delete;

	int open(const std::string &path);
	virtual void close();
	[[nodiscard]] bool isOpen() const { return fd_.isValid(); }
	[[nodiscard]] int fd() const { return fd_.get(); }
	[[nodiscard]] const std::string &path() const { return path_; }
	[[nodiscard]] const V4L2Capability &caps() const { return caps_; }
	[[nodiscard]] DeviceIO &io() const { return *io_; }

	int ioctl(unsigned long request, void *arg);

	std::vector<V4L2ControlInfo> queryControls();
	int queryControl(uint32_t id, V4L2ControlInfo &info);
	int getControl(uint32_t id, int64_t &value);
	int setControl(uint32_t id, int64_t &value);

	int subscribeEvent(uint32_t type, uint32_t id = 0, uint32_t flags = 0);
	int unsubscribeEvent(uint32_t type, uint32_t id = 0);
	int dequeueEvent(v4l2_event &event);

protected:
	/** Log prefix: the device path. */
	[[nodiscard]] const char *logName() const { return path_.c_str(); }

private:
	int controlType(uint32_t id, uint32_t &type);

	DeviceIO *io_;
	DeviceFD fd_;
	std::string path_;
	V4L2Capability caps_;
	std::map<uint32_t, uint32_t> controlTypes_;
};

} /* namespace xmb */
