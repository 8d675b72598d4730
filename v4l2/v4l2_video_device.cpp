/* SPDX-License-Identifier: MIT */
/**
 * \file v4l2_video_device.cpp
 * \brief V4L2 capture node: format enumeration and negotiation, frame rate
 */
#include "v4l2/v4l2_video_device.h"

#include <cerrno>
#include <cstring>

#include "protocol/base/log.h"
#include "v4l2/pixel_format.h"

namespace xmb {

XMB_LOG_DEFINE_CATEGORY(logCapture, "v4l2");

namespace {

/* Enumerations end with EINVAL; this bounds drivers that never say so. */
constexpr unsigned kMaxEnumEntries = 512;

} /* namespace */

V4L2VideoDevice::~V4L2VideoDevice()
{
	/* The queue frees its buffers through the fd: before the fd closes. */
	queue_.reset();
}

/**
 * \brief Open capture node \a path
 *
 * Multi-planar is used when the node offers it: it is a superset (one plane
 * formats work through it) and some drivers offer nothing else.
 *
 * \return 0, -ENODEV if the node cannot stream video capture, or -errno
 */
int V4L2VideoDevice::open(const std::string &path)
{
	close();
	int ret = V4L2Device::open(path);
	if (ret < 0)
		return ret;
	if (!caps().isVideoCapture() || !caps().hasStreaming()) {
		XMB_LOG(logCapture, Error, "%s: not a streaming video capture device (caps 0x%08x)",
			logName(), caps().deviceCaps());
		V4L2Device::close();
		return -ENODEV;
	}
	bufType_ = caps().isCaptureMultiplanar() ? V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE
						 : V4L2_BUF_TYPE_VIDEO_CAPTURE;
	queue_ = std::make_unique<V4L2BufferQueue>(*this, bufType_);
	return 0;
}

void V4L2VideoDevice::close()
{
	queue_.reset();
	V4L2Device::close();
}

/**
 * \brief Every pixel format with its frame sizes (VIDIOC_ENUM_FMT and
 * VIDIOC_ENUM_FRAMESIZES)
 */
std::vector<FormatDescription> V4L2VideoDevice::enumerateFormats()
{
	std::vector<FormatDescription> out;
	for (unsigned i = 0; i < kMaxEnumEntries; i++) {
		v4l2_fmtdesc desc{};
		desc.index = i;
		desc.type = bufType_;
		if (ioctl(VIDIOC_ENUM_FMT, &desc) < 0)
			break;
		FormatDescription f;
		f.fourcc = desc.pixelformat;
		f.flags = desc.flags;
		f.description.assign(reinterpret_cast<const char *>(desc.description),
				     strnlen(reinterpret_cast<const char *>(desc.description),
					     sizeof(desc.description)));
		f.sizes = enumerateFrameSizes(f.fourcc);
		out.push_back(std::move(f));
	}
	return out;
}

/**
 * \brief Frame sizes of \a fourcc; a driver without ENUM_FRAMESIZES gets
 * its current size as the single discrete entry
 */
FrameSizeEnum V4L2VideoDevice::enumerateFrameSizes(uint32_t fourcc)
{
	FrameSizeEnum sizes;
	for (unsigned i = 0; i < kMaxEnumEntries; i++) {
		v4l2_frmsizeenum fs{};
		fs.index = i;
		fs.pixel_format = fourcc;
		if (ioctl(VIDIOC_ENUM_FRAMESIZES, &fs) < 0)
			break;
		if (fs.type == V4L2_FRMSIZE_TYPE_DISCRETE) {
			sizes.type = FrameSizeEnum::Type::Discrete;
			sizes.discrete.push_back({ fs.discrete.width, fs.discrete.height });
			continue;
		}
		sizes.type = fs.type == V4L2_FRMSIZE_TYPE_STEPWISE ? FrameSizeEnum::Type::Stepwise
								   : FrameSizeEnum::Type::Continuous;
		sizes.min = { fs.stepwise.min_width, fs.stepwise.min_height };
		sizes.max = { fs.stepwise.max_width, fs.stepwise.max_height };
		sizes.stepWidth = fs.stepwise.step_width;
		sizes.stepHeight = fs.stepwise.step_height;
		break; /* a range is always the only entry */
	}
	if (sizes.type == FrameSizeEnum::Type::Discrete && sizes.discrete.empty()) {
		V4L2Format cur;
		if (getFormat(cur) == 0 && cur.fourcc == fourcc)
			sizes.discrete.push_back({ cur.width, cur.height });
	}
	return sizes;
}

/**
 * \brief Frame intervals of \a fourcc at \a width x \a height
 * (empty when the driver does not enumerate them)
 */
FrameIntervalEnum V4L2VideoDevice::enumerateFrameIntervals(uint32_t fourcc, uint32_t width,
							   uint32_t height)
{
	FrameIntervalEnum ivals;
	for (unsigned i = 0; i < kMaxEnumEntries; i++) {
		v4l2_frmivalenum fi{};
		fi.index = i;
		fi.pixel_format = fourcc;
		fi.width = width;
		fi.height = height;
		if (ioctl(VIDIOC_ENUM_FRAMEINTERVALS, &fi) < 0)
			break;
		if (fi.type == V4L2_FRMIVAL_TYPE_DISCRETE) {
			ivals.type = FrameIntervalEnum::Type::Discrete;
			ivals.discrete.push_back({ fi.discrete.numerator, fi.discrete.denominator });
			continue;
		}
		ivals.type = fi.type == V4L2_FRMIVAL_TYPE_STEPWISE ? FrameIntervalEnum::Type::Stepwise
								   : FrameIntervalEnum::Type::Continuous;
		ivals.min = { fi.stepwise.min.numerator, fi.stepwise.min.denominator };
		ivals.max = { fi.stepwise.max.numerator, fi.stepwise.max.denominator };
		ivals.step = { fi.stepwise.step.numerator, fi.stepwise.step.denominator };
		break;
	}
	return ivals;
}

/**
 * \brief The flat (fourcc, w, h, intervals) list the service publishes
 */
std::vector<FormatEntry> V4L2VideoDevice::flatFormats(const SamplingLimits &limits)
{
	return flattenFormats(
		enumerateFormats(),
		[this](uint32_t fourcc, uint32_t w, uint32_t h) {
			return enumerateFrameIntervals(fourcc, w, h);
		},
		limits);
}

int V4L2VideoDevice::formatIoctl(unsigned long request, const char *name, V4L2Format &format)
{
	v4l2_format f;
	toV4L2(format, bufType_, f);
	int ret = ioctl(request, &f);
	if (ret < 0) {
		/* TRY/S_FMT refusals are the caller's to judge; G_FMT failing is not. */
		if (request == VIDIOC_G_FMT)
			XMB_LOG(logCapture, Error, "%s: %s failed: %s", logName(), name, strerror(-ret));
		else
			XMB_LOG(logCapture, Warn, "%s: %s %s failed: %s", logName(), name,
				format.toString().c_str(), strerror(-ret));
		return ret;
	}
	format = fromV4L2(f);
	return 0;
}

/** \brief Current format (VIDIOC_G_FMT) */
int V4L2VideoDevice::getFormat(V4L2Format &format)
{
	return formatIoctl(VIDIOC_G_FMT, "VIDIOC_G_FMT", format);
}

/**
 * \brief Set the format (VIDIOC_S_FMT); \a format becomes what the driver
 * chose, which may differ in fourcc and size: callers compare.
 *
 * \return 0, -EBUSY while buffers are allocated, or -errno
 */
int V4L2VideoDevice::setFormat(V4L2Format &format)
{
	int ret = formatIoctl(VIDIOC_S_FMT, "VIDIOC_S_FMT", format);
	if (ret == 0)
		XMB_LOG(logCapture, Debug, "%s: format %s", logName(), format.toString().c_str());
	return ret;
}

/** \brief What S_FMT would choose, without changing anything (VIDIOC_TRY_FMT) */
int V4L2VideoDevice::tryFormat(V4L2Format &format)
{
	return formatIoctl(VIDIOC_TRY_FMT, "VIDIOC_TRY_FMT", format);
}

/**
 * \brief Current frame interval (VIDIOC_G_PARM)
 * \return 0, -ENOTTY if the driver has no frame rate control, or -errno
 */
int V4L2VideoDevice::getFrameInterval(Fraction &interval)
{
	v4l2_streamparm parm{};
	parm.type = bufType_;
	int ret = ioctl(VIDIOC_G_PARM, &parm);
	if (ret < 0)
		return ret;
	interval = { parm.parm.capture.timeperframe.numerator,
		     parm.parm.capture.timeperframe.denominator };
	return 0;
}

/**
 * \brief Set the frame interval (VIDIOC_S_PARM); \a interval becomes what
 * the driver chose
 * \return 0, -ENOTTY if the driver cannot change it, or -errno
 */
int V4L2VideoDevice::setFrameInterval(Fraction &interval)
{
	v4l2_streamparm parm{};
	parm.type = bufType_;
	int ret = ioctl(VIDIOC_G_PARM, &parm);
	if (ret == 0 && !(parm.parm.capture.capability & V4L2_CAP_TIMEPERFRAME))
		return -ENOTTY;
	parm = {};
	parm.type = bufType_;
	parm.parm.capture.timeperframe = { interval.numerator, interval.denominator };
	ret = ioctl(VIDIOC_S_PARM, &parm);
	if (ret < 0) {
		XMB_LOG(logCapture, Warn, "%s: VIDIOC_S_PARM %u/%u failed: %s", logName(),
			interval.numerator, interval.denominator, strerror(-ret));
		return ret;
	}
	interval = { parm.parm.capture.timeperframe.numerator,
		     parm.parm.capture.timeperframe.denominator };
	return 0;
}

} /* namespace xmb */
