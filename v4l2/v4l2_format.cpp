/* SPDX-License-Identifier: MIT */
/**
 * \file v4l2_format.cpp
 * \brief Translation between V4L2Format and struct v4l2_format
 */
#include "v4l2/v4l2_format.h"

#include <algorithm>
#include <cstdio>

#include "v4l2/pixel_format.h"

namespace xmb {

/** \brief True for the _MPLANE buffer types */
bool isMultiplanarType(uint32_t bufType)
{
	return bufType == V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE ||
	       bufType == V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE;
}

/** \brief True for queues the application fills (M2M OUTPUT) */
bool isOutputType(uint32_t bufType)
{
	return bufType == V4L2_BUF_TYPE_VIDEO_OUTPUT ||
	       bufType == V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE;
}

/**
 * \brief Fill \a out for \a bufType from \a f
 */
void toV4L2(const V4L2Format &f, uint32_t bufType, v4l2_format &out)
{
	out = {};
	out.type = bufType;
	if (isMultiplanarType(bufType)) {
		v4l2_pix_format_mplane &mp = out.fmt.pix_mp;
		mp.pixelformat = f.fourcc;
		mp.width = f.width;
		mp.height = f.height;
		mp.field = f.field;
		mp.colorspace = f.colorspace;
		mp.ycbcr_enc = static_cast<uint8_t>(f.ycbcrEnc);
		mp.quantization = static_cast<uint8_t>(f.quantization);
		mp.xfer_func = static_cast<uint8_t>(f.xferFunc);
		mp.num_planes = static_cast<uint8_t>(std::clamp<unsigned>(f.numPlanes, 1, VIDEO_MAX_PLANES));
		for (unsigned i = 0; i < mp.num_planes; i++) {
			mp.plane_fmt[i].bytesperline = f.planes[i].bytesPerLine;
			mp.plane_fmt[i].sizeimage = f.planes[i].sizeImage;
		}
	} else {
		v4l2_pix_format &p = out.fmt.pix;
		p.pixelformat = f.fourcc;
		p.width = f.width;
		p.height = f.height;
		p.field = f.field;
		p.colorspace = f.colorspace;
		p.ycbcr_enc = f.ycbcrEnc;
		p.quantization = f.quantization;
		p.xfer_func = f.xferFunc;
		p.bytesperline = f.planes[0].bytesPerLine;
		p.sizeimage = f.planes[0].sizeImage;
	}
}

/**
 * \brief Read a driver's format back, whatever its buffer type
 */
V4L2Format fromV4L2(const v4l2_format &in)
{
	V4L2Format f;
	if (isMultiplanarType(in.type)) {
		const v4l2_pix_format_mplane &mp = in.fmt.pix_mp;
		f.fourcc = mp.pixelformat;
		f.width = mp.width;
		f.height = mp.height;
		f.field = mp.field;
		f.colorspace = mp.colorspace;
		f.ycbcrEnc = mp.ycbcr_enc;
		f.quantization = mp.quantization;
		f.xferFunc = mp.xfer_func;
		f.numPlanes = std::clamp<unsigned>(mp.num_planes, 1, VIDEO_MAX_PLANES);
		for (unsigned i = 0; i < f.numPlanes; i++) {
			f.planes[i].bytesPerLine = mp.plane_fmt[i].bytesperline;
			f.planes[i].sizeImage = mp.plane_fmt[i].sizeimage;
		}
	} else {
		const v4l2_pix_format &p = in.fmt.pix;
		f.fourcc = p.pixelformat;
		f.width = p.width;
		f.height = p.height;
		f.field = p.field;
		f.colorspace = p.colorspace;
		f.ycbcrEnc = p.ycbcr_enc;
		f.quantization = p.quantization;
		f.xferFunc = p.xfer_func;
		f.numPlanes = 1;
		f.planes[0].bytesPerLine = p.bytesperline;
		f.planes[0].sizeImage = p.sizeimage;
	}
	return f;
}

/**
 * \brief "NV12 640x480 (1 plane: 640/460800)" for logs
 */
std::string V4L2Format::toString() const
{
	char buf[160];
	int n = std::snprintf(buf, sizeof(buf), "%s %ux%u (%u plane%s:", fourccToString(fourcc).c_str(),
			      width, height, numPlanes, numPlanes == 1 ? "" : "s");
	for (unsigned i = 0; i < numPlanes && n > 0 && n < static_cast<int>(sizeof(buf)); i++)
		n += std::snprintf(buf + n, sizeof(buf) - n, " %u/%u", planes[i].bytesPerLine,
				   planes[i].sizeImage);
	std::string s(buf);
	return s + ")";
}

/**
 * \brief Guest layout of a single-memory-plane format
 */
FrameLayout V4L2Format::frameLayout() const
{
	return driverFrameLayout(fourcc, width, height, planes[0].bytesPerLine, planes[0].sizeImage);
}

} /* namespace xmb */
