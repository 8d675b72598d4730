/* SPDX-License-Identifier: MIT */
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "v4l2/media_types.h"

namespace xmb {

/** \brief What VIDIOC_ENUM_FRAMESIZES said for one format. */
struct FrameSizeEnum {
	enum class Type { Discrete, Stepwise, Continuous } type = Type::Discrete;
	std::vector<Size> discrete;
	/* Stepwise/continuous range (continuous: steps of 1). */
	Size min, max;
	uint32_t stepWidth = 1, stepHeight = 1;
};

/** \brief What VIDIOC_ENUM_FRAMEINTERVALS said for one format and size. */
struct FrameIntervalEnum {
	enum class Type { Discrete, Stepwise, Continuous } type = Type::Discrete;
	std::vector<Fraction> discrete;
	Fraction min, max, step; /**< stepwise/continuous range */
};

/** \brief One VIDIOC_ENUM_FMT entry with its frame sizes. */
struct FormatDescription {
	uint32_t fourcc = 0;
	uint32_t flags = 0; /**< V4L2_FMT_FLAG_* (COMPRESSED, EMULATED) */
	std::string description;
	FrameSizeEnum sizes;
};

/**
 * \brief Bounds on the flattened list.
 *
 * A continuous range has millions of sizes and a guest gets the list
 * through xenstore, so ranges are sampled at well-known sizes and rates
 * and every list is capped.
 */
struct SamplingLimits {
	unsigned maxSizesPerFormat = 12;
	unsigned maxIntervalsPerSize = 8;
	unsigned maxEntries = 256;
};

std::vector<Size> sampleFrameSizes(const FrameSizeEnum &sizes, const SamplingLimits &limits = {});
std::vector<Fraction> sampleFrameIntervals(const FrameIntervalEnum &intervals,
					   const SamplingLimits &limits = {});

/** Asks the device for the intervals of (fourcc, width, height). */
using IntervalQuery = std::function<FrameIntervalEnum(uint32_t fourcc, uint32_t width, uint32_t height)>;

std::vector<FormatEntry> flattenFormats(const std::vector<FormatDescription> &formats,
					const IntervalQuery &queryIntervals,
					const SamplingLimits &limits = {});

} /* namespace xmb */
