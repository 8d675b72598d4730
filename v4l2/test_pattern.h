/* SPDX-License-Identifier: MIT */
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "v4l2/media_types.h"

namespace xmb {

/**
 * \brief The test-pattern frame function, shared by the test-pattern
 * camera, the unit tests and guest-side checkers.
 *
 * Frame N of (fourcc, width, height) is a pure function of those four
 * values: colour bars scrolling left by width/64 pixels per frame over the
 * top three quarters, a grey ramp scrolling right below, and N as ten
 * decimal digits (black on white, 5x7 font scaled by max(1, height/135))
 * in a box at the top left.  RGB->YCbCr is integer BT.601 limited range;
 * 4:2:0/4:2:2 chroma is taken from the even (top-left) pixel of each
 * block, not averaged, so a checker can recompute it exactly.
 *
 * Supported: NV12, NV21, YUV420, YVU420, YUYV, UYVY, RGB24, BGR24,
 * XBGR32 ('XR24', bytes B,G,R,X), XRGB32 ('BX24', bytes X,R,G,B), GREY.
 * Layouts are the tightly packed ones of packedFrameLayout().
 */
namespace test_pattern {

/** Formats the pattern renders, in the order the camera advertises them. */
const std::vector<uint32_t> &formats();
bool isSupported(uint32_t fourcc);

/** The canonical (tightly packed) layout; nullopt if unsupported. */
std::optional<FrameLayout> layout(uint32_t fourcc, uint32_t width, uint32_t height);

/**
 * Render frame \a frameNumber into \a dst laid out as \a layout (any
 * strides >= the packed ones; padding bytes are zeroed).
 * \return false if \a layout is unsupported or \a dstSize too small
 */
bool render(const FrameLayout &layout, uint64_t frameNumber, uint8_t *dst, size_t dstSize);

/** Frame \a frameNumber in the canonical layout (empty if unsupported). */
std::vector<uint8_t> frame(uint32_t fourcc, uint32_t width, uint32_t height, uint64_t frameNumber);

/**
 * Compare \a data against frame \a frameNumber in the canonical layout.
 * \return nullopt if identical, else the offset of the first differing byte
 */
std::optional<size_t> firstMismatch(uint32_t fourcc, uint32_t width, uint32_t height,
				    uint64_t frameNumber, const uint8_t *data, size_t size);

/**
 * Read the counter drawn into a frame (canonical layout), so a checker that
 * does not know N can find it and then verify the frame exactly.
 * nullopt if the counter does not fit the frame or cannot be read.
 */
std::optional<uint64_t> readCounter(uint32_t fourcc, uint32_t width, uint32_t height,
				    const uint8_t *data, size_t size);

/** Number of digits drawn: frame numbers are shown modulo 10^kDigits. */
constexpr unsigned kDigits = 10;

} /* namespace test_pattern */

} /* namespace xmb */
