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

/**
 * \brief The one-buffer format a multi-buffer (V4L2 "M") format is served as
 *
 * A cameraif buffer is one region of pages with its planes at offsets, and
 * Linux's xen-camera-front uses V4L2's single-planar API: a camera's NV12M
 * (Y and CbCr in two memory planes) reaches the guest as NV12, each memory
 * plane placed at its plane's offset in the guest's one buffer.
 * \return the twin (NV12 for NV12M, ...), or 0 if \a fourcc is not a
 * multi-buffer format the bridge can serve this way
 */
uint32_t oneBufferTwin(uint32_t fourcc);

/**
 * \brief The fourcc of a multi-buffer format by its V4L2 name
 *
 * V4L2 calls NV12M's fourcc 'NM12'; people write "NV12M".  \return the
 * fourcc for "NV12M", "NV21M", "NV16M", "YUV420M", "YVU420M", "YUV422M",
 * or 0
 */
uint32_t multiBufferFourccByName(std::string_view name);
/** "NV12M" for 'NM12' and the others above, else fourccToString(). */
std::string pixelFormatName(uint32_t fourcc);

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
