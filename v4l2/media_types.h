/* SPDX-License-Identifier: MIT */
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <vector>

namespace xmb {

/**
 * \brief A frame interval in seconds (V4L2's timeperframe): 1/30 is 30 fps.
 *
 * The guest-visible "frame-rates" are the inverse (denominator/numerator);
 * keeping V4L2's convention here avoids a conversion per device call.
 */
struct Fraction {
	uint32_t numerator = 0;
	uint32_t denominator = 0;

	[[nodiscard]] bool isValid() const { return numerator && denominator; }
	[[nodiscard]] double toDouble() const
	{
		return denominator ? static_cast<double>(numerator) / denominator : 0.0;
	}
	/* Compared by value (1/30 == 2/60), exactly, in 64-bit arithmetic. */
	friend bool operator==(const Fraction &a, const Fraction &b)
	{
		return static_cast<uint64_t>(a.numerator) * b.denominator ==
		       static_cast<uint64_t>(b.numerator) * a.denominator;
	}
	friend std::strong_ordering operator<=>(const Fraction &a, const Fraction &b)
	{
		return static_cast<uint64_t>(a.numerator) * b.denominator <=>
		       static_cast<uint64_t>(b.numerator) * a.denominator;
	}
};

/** \brief A frame size in pixels. */
struct Size {
	uint32_t width = 0;
	uint32_t height = 0;

	friend bool operator==(const Size &, const Size &) = default;
};

/** \brief Placement of one colour plane inside a frame buffer, in bytes. */
struct PlaneLayout {
	uint32_t offset = 0;
	uint32_t stride = 0;
	uint32_t size = 0;

	friend bool operator==(const PlaneLayout &, const PlaneLayout &) = default;
};

/**
 * \brief How one frame is laid out in one buffer (one memory plane).
 *
 * This is what XENCAMERA_OP_BUF_GET_LAYOUT reports to a guest, so at most
 * four planes (XENCAMERA_MAX_PLANE) and a single contiguous buffer.
 */
struct FrameLayout {
	uint32_t fourcc = 0;
	uint32_t width = 0;
	uint32_t height = 0;
	uint32_t size = 0; /**< bytes the buffer must hold */
	unsigned numPlanes = 0;
	std::array<PlaneLayout, 4> planes{};

	friend bool operator==(const FrameLayout &, const FrameLayout &) = default;
};

/**
 * \brief How a source's pixel values are to be read, in V4L2's terms
 *
 * enum v4l2_colorspace, v4l2_xfer_func, v4l2_ycbcr_encoding and
 * v4l2_quantization values; 0 is V4L2's DEFAULT ("derive it"), which
 * resolveColorimetry() turns into explicit values.
 */
struct Colorimetry {
	uint32_t colorspace = 0;
	uint32_t xferFunc = 0;
	uint32_t ycbcrEnc = 0;
	uint32_t quantization = 0;

	friend bool operator==(const Colorimetry &, const Colorimetry &) = default;
};

/**
 * \brief One entry of the flattened format list published to guests as
 * formats/<FOURCC>/<W>x<H>/frame-rates.
 */
struct FormatEntry {
	uint32_t fourcc = 0;
	uint32_t width = 0;
	uint32_t height = 0;
	std::vector<Fraction> intervals; /**< frame intervals, shortest first */
	bool emulated = false;		 /**< produced by libv4l2 conversion (copies) */
	/**
	 * The device's own format behind \a fourcc when they differ: a
	 * multi-buffer format (NV12M) served as its one-buffer twin (NV12),
	 * see oneBufferTwin().  0: the device produces \a fourcc itself.
	 */
	uint32_t deviceFourcc = 0;

	friend bool operator==(const FormatEntry &, const FormatEntry &) = default;
};

} /* namespace xmb */
