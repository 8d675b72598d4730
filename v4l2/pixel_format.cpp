/* SPDX-License-Identifier: MIT */
/**
 * \file pixel_format.cpp
 * \brief FourCC names and buffer layouts of the raw formats the bridge knows
 */
#include "v4l2/pixel_format.h"

#include <linux/videodev2.h>

namespace xmb {

namespace {

/* How a format's colour planes hang off plane 0's stride. */
struct FormatShape {
	uint32_t fourcc;
	unsigned bytesPerPixel; /* plane 0, per pixel */
	unsigned numPlanes;	/* colour planes in the one buffer */
	unsigned hsub, vsub;	/* chroma subsampling of planes 1.. */
	bool interleavedChroma; /* NV12-style: one CbCr plane, 2 bytes per sample */
};

constexpr FormatShape kShapes[] = {
	{ V4L2_PIX_FMT_NV12, 1, 2, 2, 2, true },
	{ V4L2_PIX_FMT_NV21, 1, 2, 2, 2, true },
	{ V4L2_PIX_FMT_NV16, 1, 2, 2, 1, true },
	{ V4L2_PIX_FMT_YUV420, 1, 3, 2, 2, false },
	{ V4L2_PIX_FMT_YVU420, 1, 3, 2, 2, false },
	{ V4L2_PIX_FMT_YUV422P, 1, 3, 2, 1, false },
	{ V4L2_PIX_FMT_YUYV, 2, 1, 1, 1, false },
	{ V4L2_PIX_FMT_YVYU, 2, 1, 1, 1, false },
	{ V4L2_PIX_FMT_UYVY, 2, 1, 1, 1, false },
	{ V4L2_PIX_FMT_VYUY, 2, 1, 1, 1, false },
	{ V4L2_PIX_FMT_RGB565, 2, 1, 1, 1, false },
	{ V4L2_PIX_FMT_RGB24, 3, 1, 1, 1, false },
	{ V4L2_PIX_FMT_BGR24, 3, 1, 1, 1, false },
	{ V4L2_PIX_FMT_XBGR32, 4, 1, 1, 1, false },
	{ V4L2_PIX_FMT_XRGB32, 4, 1, 1, 1, false },
	{ V4L2_PIX_FMT_BGRX32, 4, 1, 1, 1, false },
	{ V4L2_PIX_FMT_RGBX32, 4, 1, 1, 1, false },
	{ V4L2_PIX_FMT_ABGR32, 4, 1, 1, 1, false },
	{ V4L2_PIX_FMT_ARGB32, 4, 1, 1, 1, false },
	{ V4L2_PIX_FMT_BGR32, 4, 1, 1, 1, false },
	{ V4L2_PIX_FMT_RGB32, 4, 1, 1, 1, false },
	{ V4L2_PIX_FMT_GREY, 1, 1, 1, 1, false },
};

const FormatShape *findShape(uint32_t fourcc)
{
	for (const FormatShape &s : kShapes)
		if (s.fourcc == fourcc)
			return &s;
	return nullptr;
}

FrameLayout layoutFor(const FormatShape &s, uint32_t fourcc, uint32_t width,
		      uint32_t height, uint32_t stride0)
{
	FrameLayout l;
	l.fourcc = fourcc;
	l.width = width;
	l.height = height;
	l.numPlanes = s.numPlanes;
	l.planes[0] = { 0, stride0, stride0 * height };
	uint32_t offset = l.planes[0].size;
	for (unsigned p = 1; p < s.numPlanes; p++) {
		/* V4L2 defines chroma strides as derived from luma's. */
		uint32_t stride = s.interleavedChroma ? stride0 * 2 / s.hsub : stride0 / s.hsub;
		uint32_t size = stride * (height / s.vsub);
		l.planes[p] = { offset, stride, size };
		offset += size;
	}
	l.size = offset;
	return l;
}

} /* namespace */

/**
 * \brief Printable name of a fourcc, e.g. "NV12" or "AR15-BE"
 */
std::string fourccToString(uint32_t fourcc)
{
	std::string s;
	for (int i = 0; i < 4; i++) {
		char c = static_cast<char>((fourcc >> (8 * i)) & 0x7f);
		s += (c >= 0x20 && c < 0x7f) ? c : '.';
	}
	if (fourcc & (1u << 31))
		s += "-BE";
	return s;
}

/**
 * \brief Parse "NV12" or "AR15-BE" back into a fourcc
 */
uint32_t fourccFromString(std::string_view s)
{
	bool bigEndian = false;
	if (s.size() == 7 && s.substr(4) == "-BE") {
		bigEndian = true;
		s = s.substr(0, 4);
	}
	if (s.size() != 4)
		return 0;
	uint32_t v = 0;
	for (int i = 0; i < 4; i++) {
		unsigned char c = static_cast<unsigned char>(s[i]);
		if (c < 0x20 || c >= 0x7f)
			return 0;
		v |= static_cast<uint32_t>(c) << (8 * i);
	}
	return bigEndian ? v | (1u << 31) : v;
}

/**
 * \brief Tightly packed layout, the one the test pattern renders into
 */
std::optional<FrameLayout> packedFrameLayout(uint32_t fourcc, uint32_t width, uint32_t height)
{
	const FormatShape *s = findShape(fourcc);
	if (!s || !width || !height || width > 16384 || height > 16384)
		return std::nullopt;
	/* Subsampled chroma needs whole chroma samples. */
	bool packedYuv = s->numPlanes == 1 && s->bytesPerPixel == 2 &&
			 fourcc != V4L2_PIX_FMT_RGB565;
	if ((s->numPlanes > 1 || packedYuv) && (width % 2))
		return std::nullopt;
	if (s->numPlanes > 1 && s->vsub == 2 && (height % 2))
		return std::nullopt;
	return layoutFor(*s, fourcc, width, height, width * s->bytesPerPixel);
}

/**
 * \brief Layout of a driver-chosen single-buffer format
 */
FrameLayout driverFrameLayout(uint32_t fourcc, uint32_t width, uint32_t height,
			      uint32_t bytesPerLine, uint32_t sizeImage)
{
	const FormatShape *s = findShape(fourcc);
	if (s && bytesPerLine) {
		FrameLayout l = layoutFor(*s, fourcc, width, height, bytesPerLine);
		/* Drivers may pad the end; never report less than they need. */
		if (sizeImage > l.size)
			l.size = sizeImage;
		return l;
	}
	FrameLayout l;
	l.fourcc = fourcc;
	l.width = width;
	l.height = height;
	l.numPlanes = 1;
	l.planes[0] = { 0, bytesPerLine, sizeImage };
	l.size = sizeImage;
	return l;
}

namespace {

struct MultiBufferName {
	uint32_t fourcc;
	const char *name;
};

constexpr MultiBufferName kMultiBufferNames[] = {
	{ V4L2_PIX_FMT_NV12M, "NV12M" },     { V4L2_PIX_FMT_NV21M, "NV21M" },
	{ V4L2_PIX_FMT_NV16M, "NV16M" },     { V4L2_PIX_FMT_YUV420M, "YUV420M" },
	{ V4L2_PIX_FMT_YVU420M, "YVU420M" }, { V4L2_PIX_FMT_YUV422M, "YUV422M" },
};

} /* namespace */

uint32_t multiBufferFourccByName(std::string_view name)
{
	for (const auto &n : kMultiBufferNames)
		if (name == n.name)
			return n.fourcc;
	return 0;
}

std::string pixelFormatName(uint32_t fourcc)
{
	for (const auto &n : kMultiBufferNames)
		if (fourcc == n.fourcc)
			return n.name;
	return fourccToString(fourcc);
}

uint32_t oneBufferTwin(uint32_t fourcc)
{
	/* Only twins whose colour planes the bridge can describe (kShapes). */
	switch (fourcc) {
	case V4L2_PIX_FMT_NV12M:
		return V4L2_PIX_FMT_NV12;
	case V4L2_PIX_FMT_NV21M:
		return V4L2_PIX_FMT_NV21;
	case V4L2_PIX_FMT_NV16M:
		return V4L2_PIX_FMT_NV16;
	case V4L2_PIX_FMT_YUV420M:
		return V4L2_PIX_FMT_YUV420;
	case V4L2_PIX_FMT_YVU420M:
		return V4L2_PIX_FMT_YVU420;
	case V4L2_PIX_FMT_YUV422M:
		return V4L2_PIX_FMT_YUV422P;
	default:
		return 0;
	}
}

bool isRgbFourcc(uint32_t fourcc)
{
	switch (fourcc) {
	case V4L2_PIX_FMT_NV12: case V4L2_PIX_FMT_NV21: case V4L2_PIX_FMT_NV16:
	case V4L2_PIX_FMT_NV12M: case V4L2_PIX_FMT_NV21M:
	case V4L2_PIX_FMT_YUV420: case V4L2_PIX_FMT_YVU420: case V4L2_PIX_FMT_YUV422P:
	case V4L2_PIX_FMT_YUYV: case V4L2_PIX_FMT_YVYU: case V4L2_PIX_FMT_UYVY:
	case V4L2_PIX_FMT_VYUY: case V4L2_PIX_FMT_MJPEG: case V4L2_PIX_FMT_JPEG:
	case V4L2_PIX_FMT_GREY: /* luma */
		return false;
	default:
		return true;
	}
}

Colorimetry resolveColorimetry(Colorimetry c, uint32_t fourcc, uint32_t height)
{
	const bool rgb = isRgbFourcc(fourcc);
	if (c.colorspace == V4L2_COLORSPACE_DEFAULT)
		c.colorspace = rgb ? V4L2_COLORSPACE_SRGB
				   : V4L2_MAP_COLORSPACE_DEFAULT(height < 720, height >= 720);
	if (c.xferFunc == V4L2_XFER_FUNC_DEFAULT)
		c.xferFunc = V4L2_MAP_XFER_FUNC_DEFAULT(c.colorspace);
	if (c.ycbcrEnc == V4L2_YCBCR_ENC_DEFAULT)
		c.ycbcrEnc = V4L2_MAP_YCBCR_ENC_DEFAULT(c.colorspace);
	if (c.quantization == V4L2_QUANTIZATION_DEFAULT)
		c.quantization = V4L2_MAP_QUANTIZATION_DEFAULT(rgb, c.colorspace, c.ycbcrEnc);
	return c;
}

} /* namespace xmb */
