/* SPDX-License-Identifier: MIT */
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "v4l2/media_types.h"

namespace xmb {

/** "NV12"; big-endian variants get the cameraif "-BE" suffix. */
std::string fourccToString(uint32_t fourcc);
/** Inverse of fourccToString(); 0 if \a s is not 4 printable characters. */
uint32_t fourccFromString(std::string_view s);

/**
 * Tightly packed single-buffer layout of a \a width x \a height frame, for
 * the formats the bridge can describe to a guest without a device (NV12,
 * NV21, YUV420, YVU420, YUYV, UYVY, RGB24, BGR24, XBGR32/XRGB32 family,
 * GREY).  nullopt for other formats or sizes the format cannot take (odd
 * sizes for 4:2:0, zero).
 */
std::optional<FrameLayout> packedFrameLayout(uint32_t fourcc, uint32_t width, uint32_t height);

/**
 * Layout from a driver's single-buffer format: \a bytesPerLine and
 * \a sizeImage of memory plane 0, with the colour planes placed the way
 * V4L2 defines for that fourcc.  Falls back to one plane covering
 * \a sizeImage for formats it does not know (compressed, Bayer, ...).
 */
FrameLayout driverFrameLayout(uint32_t fourcc, uint32_t width, uint32_t height,
			      uint32_t bytesPerLine, uint32_t sizeImage);

/** True for RGB (and grey) formats, false for Y'CbCr ones. */
bool isRgbFourcc(uint32_t fourcc);

/**
 * \brief Every field of \a c explicit, by V4L2's own defaulting rules
 *
 * A colorspace of 0 becomes SMPTE 170M for Y'CbCr below 720 lines, Rec. 709
 * from 720 lines, sRGB for RGB; transfer function, Y'CbCr encoding and
 * quantization then follow V4L2_MAP_*_DEFAULT().
 */
Colorimetry resolveColorimetry(Colorimetry c, uint32_t fourcc, uint32_t height);

} /* namespace xmb */
