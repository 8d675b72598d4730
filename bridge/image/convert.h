/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Raw camera frames to RGB24, for PNG snapshots and checks.
 *
 * YCbCr is decoded as BT.601 limited range (Y 16..235, C 16..240), the
 * encoding the test pattern and most webcams use, with integer arithmetic:
 *   R = (298(Y-16)            + 409(Cr-128) + 128) >> 8
 *   G = (298(Y-16) - 100(Cb-128) - 208(Cr-128) + 128) >> 8
 *   B = (298(Y-16) + 516(Cb-128)            + 128) >> 8   (clamped to 0..255)
 * Subsampled chroma is replicated (nearest neighbour), not interpolated.
 *
 * Formats: NV12, NV21, YUV420, YVU420, YUYV, YVYU, UYVY, VYUY, RGB24,
 * BGR24, XBGR32/ABGR32 (bytes B,G,R,X), XRGB32/ARGB32 (bytes X,R,G,B),
 * BGRX32/BGRA32 (bytes X,B,G,R), RGBX32/RGBA32 (bytes R,G,B,X), GREY.
 */

#include <cstdint>
#include <span>
#include <vector>

#include "protocol/result.h"
#include "v4l2/media_types.h"

namespace xmb::image {

/** True if toRgb24() knows \a fourcc. */
bool canConvert(uint32_t fourcc);

/**
 * Convert one frame laid out as \a layout (offsets and strides of each
 * colour plane; numPlanes as the format has) to tightly packed RGB24,
 * width*height*3 bytes.  Errors if the layout does not fit \a data.
 */
Result<std::vector<uint8_t>> toRgb24(const FrameLayout &layout, std::span<const uint8_t> data);

/** One BT.601 limited-range YCbCr sample to RGB (exposed for tests). */
void ycbcrToRgb(uint8_t y, uint8_t cb, uint8_t cr, uint8_t rgb[3]);

} /* namespace xmb::image */
