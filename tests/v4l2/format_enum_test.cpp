/* SPDX-License-Identifier: MIT */
#include <gtest/gtest.h>
#include <linux/videodev2.h>

#include <algorithm>

#include "v4l2/format_enum.h"

using namespace xmb;

namespace {

FrameSizeEnum stepwise(Size min, Size max, uint32_t sw, uint32_t sh)
{
	FrameSizeEnum s;
	s.type = FrameSizeEnum::Type::Stepwise;
	s.min = min;
	s.max = max;
	s.stepWidth = sw;
	s.stepHeight = sh;
	return s;
}

bool contains(const std::vector<Size> &v, Size s)
{
	return std::find(v.begin(), v.end(), s) != v.end();
}

} /* namespace */

TEST(FormatSampling, DiscreteSizesAreKeptInOrder)
{
	FrameSizeEnum s;
	s.discrete = { { 640, 480 }, { 1280, 720 }, { 640, 480 } };
	auto out = sampleFrameSizes(s);
	EXPECT_EQ(out, (std::vector<Size>{ { 640, 480 }, { 1280, 720 } }));
}

TEST(FormatSampling, StepwiseSizesIncludeEndsAndCommonSizesOnGrid)
{
	auto out = sampleFrameSizes(stepwise({ 64, 64 }, { 1920, 1080 }, 16, 8));
	EXPECT_EQ(out.front(), (Size{ 64, 64 }));
	EXPECT_EQ(out.back(), (Size{ 1920, 1080 }));
	EXPECT_TRUE(contains(out, { 640, 480 }));
	EXPECT_TRUE(contains(out, { 1280, 720 }));
	EXPECT_FALSE(contains(out, { 320, 180 })) << "180 is off the 8-line grid from 64";
	for (const Size &s : out) {
		EXPECT_EQ((s.width - 64) % 16, 0u);
		EXPECT_EQ((s.height - 64) % 8, 0u);
	}
}

TEST(FormatSampling, StepwiseTopSizeIsSnappedOntoGrid)
{
	auto out = sampleFrameSizes(stepwise({ 100, 100 }, { 1000, 1000 }, 64, 64));
	EXPECT_EQ(out.back(), (Size{ 996, 996 }));
}

TEST(FormatSampling, ContinuousRangeIsBounded)
{
	FrameSizeEnum s = stepwise({ 1, 1 }, { 16384, 16384 }, 1, 1);
	s.type = FrameSizeEnum::Type::Continuous;
	SamplingLimits lim;
	lim.maxSizesPerFormat = 6;
	auto out = sampleFrameSizes(s, lim);
	EXPECT_EQ(out.size(), 6u);
	EXPECT_EQ(out.front(), (Size{ 1, 1 }));
	EXPECT_EQ(out.back(), (Size{ 16384, 16384 }));
}

TEST(FormatSampling, InvalidRangeGivesNothing)
{
	EXPECT_TRUE(sampleFrameSizes(stepwise({ 640, 480 }, { 320, 240 }, 1, 1)).empty());
	EXPECT_TRUE(sampleFrameSizes(stepwise({ 0, 0 }, { 320, 240 }, 1, 1)).empty());
}

TEST(FormatSampling, DiscreteIntervalsAreReducedAndSortedFastestFirst)
{
	FrameIntervalEnum i;
	i.discrete = { { 1, 15 }, { 2, 60 }, { 1, 60 } };
	auto out = sampleFrameIntervals(i);
	ASSERT_EQ(out.size(), 3u);
	EXPECT_EQ(out[0].denominator, 60u);
	EXPECT_EQ(out[1].numerator, 1u) << "2/60 is reduced";
	EXPECT_EQ(out[1].denominator, 30u);
	EXPECT_EQ(out[2].denominator, 15u);
}

TEST(FormatSampling, ContinuousIntervalsSampleCommonRatesWithinRange)
{
	FrameIntervalEnum i;
	i.type = FrameIntervalEnum::Type::Continuous;
	i.min = { 1, 60 };
	i.max = { 1, 1 };
	auto out = sampleFrameIntervals(i);
	EXPECT_EQ(out.front(), (Fraction{ 1, 60 }));
	EXPECT_EQ(out.back(), (Fraction{ 1, 1 }));
	EXPECT_NE(std::find(out.begin(), out.end(), Fraction{ 1, 30 }), out.end());
	EXPECT_LE(out.size(), SamplingLimits{}.maxIntervalsPerSize);
	EXPECT_TRUE(std::is_sorted(out.begin(), out.end()));
}

TEST(FormatSampling, StepwiseIntervalsStayOnTheStepGrid)
{
	/* 1/10 s .. 1 s in steps of 1/10 s: 10 fps, 5 fps (2/10), 1 fps. */
	FrameIntervalEnum i;
	i.type = FrameIntervalEnum::Type::Stepwise;
	i.min = { 1, 10 };
	i.max = { 1, 1 };
	i.step = { 1, 10 };
	auto out = sampleFrameIntervals(i);
	for (const Fraction &f : out)
		EXPECT_EQ((f.numerator * 10) % f.denominator, 0u) << f.numerator << "/" << f.denominator;
	EXPECT_NE(std::find(out.begin(), out.end(), Fraction{ 1, 5 }), out.end());
	EXPECT_EQ(std::find(out.begin(), out.end(), Fraction{ 1, 30 }), out.end());
}

TEST(FormatFlattening, ProducesOneEntryPerFormatAndSizeWithIntervals)
{
	std::vector<FormatDescription> fmts(2);
	fmts[0].fourcc = V4L2_PIX_FMT_YUYV;
	fmts[0].sizes.discrete = { { 640, 480 }, { 1280, 720 } };
	fmts[1].fourcc = V4L2_PIX_FMT_NV12;
	fmts[1].flags = V4L2_FMT_FLAG_EMULATED;
	fmts[1].sizes.discrete = { { 320, 240 } };
	int queries = 0;
	auto out = flattenFormats(fmts, [&](uint32_t, uint32_t w, uint32_t) {
		queries++;
		FrameIntervalEnum i;
		i.discrete = { { 1, w == 640 ? 30u : 15u } };
		return i;
	});
	ASSERT_EQ(out.size(), 3u);
	EXPECT_EQ(queries, 3);
	EXPECT_EQ(out[0].fourcc, V4L2_PIX_FMT_YUYV);
	EXPECT_EQ(out[0].intervals, (std::vector<Fraction>{ { 1, 30 } }));
	EXPECT_EQ(out[1].intervals, (std::vector<Fraction>{ { 1, 15 } }));
	EXPECT_FALSE(out[0].emulated);
	EXPECT_TRUE(out[2].emulated);
}

TEST(FormatFlattening, TotalEntriesAreBounded)
{
	std::vector<FormatDescription> fmts(50);
	for (unsigned i = 0; i < fmts.size(); i++) {
		fmts[i].fourcc = 0x30303030 + i;
		fmts[i].sizes = stepwise({ 16, 16 }, { 8192, 8192 }, 2, 2);
	}
	SamplingLimits lim;
	lim.maxEntries = 100;
	auto out = flattenFormats(fmts, nullptr, lim);
	EXPECT_EQ(out.size(), 100u);
}

TEST(FormatFlattening, MissingIntervalEnumerationGivesEmptyList)
{
	std::vector<FormatDescription> fmts(1);
	fmts[0].fourcc = V4L2_PIX_FMT_YUYV;
	fmts[0].sizes.discrete = { { 640, 480 } };
	auto out = flattenFormats(fmts, [](uint32_t, uint32_t, uint32_t) { return FrameIntervalEnum{}; });
	ASSERT_EQ(out.size(), 1u);
	EXPECT_TRUE(out[0].intervals.empty());
}
