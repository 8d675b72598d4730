/* SPDX-License-Identifier: MIT */
/**
 * \file fourcc_drm.cpp
 * \brief DRM (libcamera) <-> V4L2 fourcc translation
 *
 * Most raw formats share a code; the 24-bit RGB ones are named after
 * opposite ends (DRM by register order, V4L2 by memory order).
 */
#include <cstdint>

#include <linux/videodev2.h>

#include "v4l2/libcamera_source.h"

namespace xmb {

namespace {

constexpr uint32_t fourcc(char a, char b, char c, char d)
{
	return static_cast<uint32_t>(a) | static_cast<uint32_t>(b) << 8 |
	       static_cast<uint32_t>(c) << 16 | static_cast<uint32_t>(d) << 24;
}

struct Pair {
	uint32_t drm, v4l2;
};

constexpr Pair kPairs[] = {
	{ fourcc('R', 'G', '2', '4'), V4L2_PIX_FMT_BGR24 }, /* DRM RGB888: B,G,R bytes */
	{ fourcc('B', 'G', '2', '4'), V4L2_PIX_FMT_RGB24 }, /* DRM BGR888: R,G,B bytes */
	{ fourcc('X', 'R', '2', '4'), V4L2_PIX_FMT_XBGR32 },
	{ fourcc('X', 'B', '2', '4'), V4L2_PIX_FMT_RGBX32 },
	{ fourcc('A', 'R', '2', '4'), V4L2_PIX_FMT_ABGR32 },
	{ fourcc('R', 'G', '1', '6'), V4L2_PIX_FMT_RGB565 },
};

} /* namespace */

uint32_t v4l2FourccFromDrm(uint32_t drm)
{
	for (const Pair &p : kPairs)
		if (p.drm == drm)
			return p.v4l2;
	return drm;
}

uint32_t drmFourccFromV4L2(uint32_t v4l2)
{
	for (const Pair &p : kPairs)
		if (p.v4l2 == v4l2)
			return p.drm;
	return v4l2;
}

} /* namespace xmb */
