/* SPDX-License-Identifier: MIT */
/**
 * \file v4l2_device.cpp
 * \brief Opening a V4L2 node, the ioctl wrapper and event handling
 */
#include "v4l2/v4l2_device.h"

#include <cerrno>
#include <cstring>

#include <fcntl.h>

#include "protocol/base/log.h"

namespace xmb {

XMB_LOG_DEFINE_CATEGORY(logV4L2, "v4l2");

namespace {

std::string fromFixed(const __u8 *s, size_t n)
{
	return std::string(reinterpret_cast<const char *>(s), strnlen(reinterpret_cast<const char *>(s), n));
}

} /* namespace */

/** \brief Driver name, e.g. "vivid" */
std::string V4L2Capability::driver() const { return fromFixed(raw.driver, sizeof(raw.driver)); }
/** \brief Card name, e.g. "vivid" or "HD Pro Webcam C920" */
std::string V4L2Capability::card() const { return fromFixed(raw.card, sizeof(raw.card)); }
/** \brief Bus info, e.g. "platform:vivid-000" or "usb-0000:00:14.0-1" */
std::string V4L2Capability::busInfo() const { return fromFixed(raw.bus_info, sizeof(raw.bus_info)); }

/**
 * \brief Create a closed device whose calls go through \a io
 */
V4L2Device::V4L2Device(DeviceIO &io) : io_(&io) {}

V4L2Device::~V4L2Device() = default;

/**
 * \brief Open \a path non-blocking and query its capabilities
 *
 * Non-blocking because the service runs one epoll loop: DQBUF must answer
 * EAGAIN rather than stall every guest behind one camera.
 *
 * \return 0 or -errno (the device is left closed on failure)
 */
int V4L2Device::open(const std::string &path)
{
	close();
	path_ = path;
	int fd = io_->open(path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		XMB_LOG(logV4L2, Error, "%s: open failed: %s", logName(), strerror(-fd));
		return fd;
	}
	fd_ = DeviceFD(io_, fd);

	int ret = ioctl(VIDIOC_QUERYCAP, &caps_.raw);
	if (ret < 0) {
		XMB_LOG(logV4L2, Error, "%s: VIDIOC_QUERYCAP failed: %s", logName(), strerror(-ret));
		close();
		return ret;
	}
	XMB_LOG(logV4L2, Debug, "%s: driver '%s' card '%s' bus '%s' caps 0x%08x", logName(),
		caps_.driver().c_str(), caps_.card().c_str(), caps_.busInfo().c_str(),
		caps_.deviceCaps());
	return 0;
}

/**
 * \brief Close the device; safe to call when closed
 */
void V4L2Device::close()
{
	fd_.reset();
	caps_ = {};
	controlTypes_.clear();
}

/**
 * \brief The one ioctl wrapper: retries EINTR, returns -errno
 *
 * Callers log; this does not, because an error here is often expected
 * (EAGAIN from DQBUF, EINVAL ending an enumeration).
 */
int V4L2Device::ioctl(unsigned long request, void *arg)
{
	if (!fd_.isValid())
		return -EBADF;
	int ret;
	do {
		ret = io_->ioctl(fd_.get(), request, arg);
	} while (ret == -EINTR);
	return ret;
}

/**
 * \brief Subscribe to a V4L2 event (control change, source change, EOS)
 * \return 0 or -errno
 */
int V4L2Device::subscribeEvent(uint32_t type, uint32_t id, uint32_t flags)
{
	v4l2_event_subscription sub{};
	sub.type = type;
	sub.id = id;
	sub.flags = flags;
	int ret = ioctl(VIDIOC_SUBSCRIBE_EVENT, &sub);
	if (ret < 0)
		XMB_LOG(logV4L2, Debug, "%s: cannot subscribe to event %u/%u: %s", logName(), type,
			id, strerror(-ret));
	return ret;
}

int V4L2Device::unsubscribeEvent(uint32_t type, uint32_t id)
{
	v4l2_event_subscription sub{};
	sub.type = type;
	sub.id = id;
	return ioctl(VIDIOC_UNSUBSCRIBE_EVENT, &sub);
}

/**
 * \brief Dequeue one pending event
 *
 * Events raise POLLPRI on the device fd; drain them until this returns
 * -EAGAIN.  (The kernel says ENOENT for "none pending"; EAGAIN is what the
 * rest of the non-blocking API says, so it is translated.)
 */
int V4L2Device::dequeueEvent(v4l2_event &event)
{
	event = {};
	int ret = ioctl(VIDIOC_DQEVENT, &event);
	if (ret == -ENOENT)
		return -EAGAIN;
	return ret < 0 ? ret : 0;
}

} /* namespace xmb */
