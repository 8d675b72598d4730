/* SPDX-License-Identifier: MIT */
/**
 * \file format_enum.cpp
 * \brief Turning a device's format enumeration into the flat, bounded list
 * the service publishes as formats/<FOURCC>/<W>x<H>/frame-rates
 *
 * Pure functions: the device queries are injected, so the sampling rules
 * are unit-tested without a device.
 */
#include "v4l2/format_enum.h"

#include <algorithm>
#include <numeric>
#include <set>
#include <tuple>

#include <linux/videodev2.h>

namespace xmb {

namespace {

/* Sizes a guest application is likely to ask for, smallest first. */
constexpr Size kCommonSizes[] = {
	{ 160, 120 },	{ 176, 144 },	{ 320, 180 },	{ 320, 240 },	{ 352, 288 },
	{ 640, 360 },	{ 640, 480 },	{ 800, 600 },	{ 1024, 768 },	{ 1280, 720 },
	{ 1280, 960 },	{ 1920, 1080 }, { 2560, 1440 }, { 3840, 2160 }, { 4096, 2160 },
};

/* Frame rates a guest application is likely to ask for, fastest first. */
constexpr uint32_t kCommonRates[] = { 240, 120, 60, 50, 30, 25, 24, 20, 15, 10, 5, 1 };

bool onGrid(uint32_t v, uint32_t min, uint32_t max, uint32_t step)
{
	if (v < min || v > max)
		return false;
	return step <= 1 || (v - min) % step == 0;
}

Fraction reduce(Fraction f)
{
	uint32_t g = std::gcd(f.numerator, f.denominator);
	if (g > 1) {
		f.numerator /= g;
		f.denominator /= g;
	}
	return f;
}

/* Is \a v = min + k * step for an integer k >= 0?  Exact, in 128 bits. */
bool onIntervalGrid(Fraction v, Fraction min, Fraction step)
{
	using u128 = unsigned __int128;
	if (v < min)
		return false;
	if (!step.isValid())
		return true;
	/* (v - min) / step = (vn*md - mn*vd) * sd / (vd*md*sn) */
	u128 num = (static_cast<u128>(v.numerator) * min.denominator -
		    static_cast<u128>(min.numerator) * v.denominator) * step.denominator;
	u128 den = static_cast<u128>(v.denominator) * min.denominator * step.numerator;
	return den && num % den == 0;
}

/* Keep the two ends and evenly spaced picks in between. */
template<typename T>
std::vector<T> thin(const std::vector<T> &in, unsigned max)
{
	if (max == 0)
		return {};
	if (in.size() <= max)
		return in;
	if (max == 1)
		return { in.front() };
	std::vector<T> out;
	for (unsigned i = 0; i < max; i++)
		out.push_back(in[static_cast<size_t>(i) * (in.size() - 1) / (max - 1)]);
	return out;
}

} /* namespace */

/**
 * \brief The sizes to publish for one format
 *
 * Discrete lists are kept (capped); a stepwise or continuous range becomes
 * its ends plus the common sizes that fall on its grid, smallest first.
 */
std::vector<Size> sampleFrameSizes(const FrameSizeEnum &sizes, const SamplingLimits &limits)
{
	std::vector<Size> out;
	if (sizes.type == FrameSizeEnum::Type::Discrete) {
		for (const Size &s : sizes.discrete)
			if (s.width && s.height &&
			    std::find(out.begin(), out.end(), s) == out.end())
				out.push_back(s);
		return thin(out, limits.maxSizesPerFormat);
	}

	uint32_t sw = sizes.type == FrameSizeEnum::Type::Continuous ? 1 : std::max(sizes.stepWidth, 1u);
	uint32_t sh = sizes.type == FrameSizeEnum::Type::Continuous ? 1 : std::max(sizes.stepHeight, 1u);
	if (!sizes.min.width || !sizes.min.height || sizes.max.width < sizes.min.width ||
	    sizes.max.height < sizes.min.height)
		return {};

	out.push_back(sizes.min);
	for (const Size &s : kCommonSizes)
		if (onGrid(s.width, sizes.min.width, sizes.max.width, sw) &&
		    onGrid(s.height, sizes.min.height, sizes.max.height, sh))
			out.push_back(s);
	/* The largest size on the grid, which max itself may not be. */
	Size top{ sizes.max.width - (sizes.max.width - sizes.min.width) % sw,
		  sizes.max.height - (sizes.max.height - sizes.min.height) % sh };
	out.push_back(top);

	std::sort(out.begin(), out.end(), [](const Size &a, const Size &b) {
		return std::make_tuple(uint64_t{ a.width } * a.height, a.width) <
		       std::make_tuple(uint64_t{ b.width } * b.height, b.width);
	});
	out.erase(std::unique(out.begin(), out.end()), out.end());
	return thin(out, limits.maxSizesPerFormat);
}

/**
 * \brief The frame intervals to publish for one format and size
 *
 * Discrete lists are kept; a range becomes its ends plus the common frame
 * rates that fall on its grid.  Shortest interval (fastest rate) first,
 * reduced to lowest terms, capped.
 */
std::vector<Fraction> sampleFrameIntervals(const FrameIntervalEnum &intervals,
					   const SamplingLimits &limits)
{
	std::vector<Fraction> out;
	if (intervals.type == FrameIntervalEnum::Type::Discrete) {
		for (const Fraction &f : intervals.discrete)
			if (f.isValid())
				out.push_back(reduce(f));
	} else {
		if (!intervals.min.isValid() || !intervals.max.isValid() ||
		    intervals.max < intervals.min)
			return {};
		Fraction step = intervals.type == FrameIntervalEnum::Type::Continuous
					? Fraction{} : intervals.step;
		out.push_back(reduce(intervals.min));
		for (uint32_t rate : kCommonRates) {
			Fraction f{ 1, rate };
			if (f <= intervals.max && onIntervalGrid(f, intervals.min, step))
				out.push_back(f);
		}
		out.push_back(reduce(intervals.max));
	}
	std::stable_sort(out.begin(), out.end());
	out.erase(std::unique(out.begin(), out.end()), out.end());
	return thin(out, limits.maxIntervalsPerSize);
}

/**
 * \brief Flatten a format enumeration into (fourcc, w, h, intervals) entries
 *
 * \a queryIntervals is called once per published size; an empty answer
 * (driver without VIDIOC_ENUM_FRAMEINTERVALS) gives an entry with no
 * intervals, which the service reads as "whatever G_PARM says".
 */
std::vector<FormatEntry> flattenFormats(const std::vector<FormatDescription> &formats,
					const IntervalQuery &queryIntervals,
					const SamplingLimits &limits)
{
	std::vector<FormatEntry> out;
	std::set<std::tuple<uint32_t, uint32_t, uint32_t>> seen;
	for (const FormatDescription &fmt : formats) {
		for (const Size &size : sampleFrameSizes(fmt.sizes, limits)) {
			if (out.size() >= limits.maxEntries)
				return out;
			if (!seen.insert({ fmt.fourcc, size.width, size.height }).second)
				continue;
			FormatEntry e;
			e.fourcc = fmt.fourcc;
			e.width = size.width;
			e.height = size.height;
			e.emulated = fmt.flags & V4L2_FMT_FLAG_EMULATED;
			if (queryIntervals)
				e.intervals = sampleFrameIntervals(
					queryIntervals(fmt.fourcc, size.width, size.height), limits);
			out.push_back(std::move(e));
		}
	}
	return out;
}

} /* namespace xmb */
