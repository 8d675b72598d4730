/* SPDX-License-Identifier: MIT */
#include <gtest/gtest.h>
#include <linux/videodev2.h>

#include <algorithm>

#include "v4l2/pixel_format.h"
#include "v4l2/test_pattern.h"

using namespace xmb;

namespace {

class PatternFormat : public ::testing::TestWithParam<uint32_t>
{
};

} /* namespace */

TEST(TestPattern, AdvertisesNv12YuyvAndRgbFormats)
{
	const auto &f = test_pattern::formats();
	for (uint32_t want : { V4L2_PIX_FMT_NV12, V4L2_PIX_FMT_YUYV, V4L2_PIX_FMT_RGB24,
			       V4L2_PIX_FMT_XBGR32 })
		EXPECT_NE(std::find(f.begin(), f.end(), want), f.end()) << fourccToString(want);
}

TEST(TestPattern, CanonicalLayoutIsTightlyPacked)
{
	auto l = test_pattern::layout(V4L2_PIX_FMT_NV12, 640, 480);
	ASSERT_TRUE(l);
	EXPECT_EQ(l->numPlanes, 2u);
	EXPECT_EQ(l->planes[0].stride, 640u);
	EXPECT_EQ(l->planes[1].offset, 640u * 480u);
	EXPECT_EQ(l->planes[1].stride, 640u);
	EXPECT_EQ(l->size, 640u * 480u * 3 / 2);

	auto y = test_pattern::layout(V4L2_PIX_FMT_YUYV, 640, 480);
	ASSERT_TRUE(y);
	EXPECT_EQ(y->planes[0].stride, 1280u);
	EXPECT_EQ(y->size, 640u * 480u * 2);
}

TEST(TestPattern, RejectsUnsupportedFormatAndOddChromaSizes)
{
	EXPECT_FALSE(test_pattern::layout(V4L2_PIX_FMT_MJPEG, 640, 480));
	EXPECT_FALSE(test_pattern::layout(V4L2_PIX_FMT_NV12, 641, 480));
	EXPECT_TRUE(test_pattern::frame(V4L2_PIX_FMT_H264, 64, 64, 0).empty());
}

TEST_P(PatternFormat, SameFrameNumberGivesIdenticalBytes)
{
	auto a = test_pattern::frame(GetParam(), 320, 240, 42);
	auto b = test_pattern::frame(GetParam(), 320, 240, 42);
	ASSERT_FALSE(a.empty());
	EXPECT_EQ(a, b);
}

TEST_P(PatternFormat, ConsecutiveFramesDiffer)
{
	auto a = test_pattern::frame(GetParam(), 320, 240, 7);
	auto b = test_pattern::frame(GetParam(), 320, 240, 8);
	EXPECT_NE(a, b);
}

TEST_P(PatternFormat, CounterReadsBackAsFrameNumber)
{
	for (uint64_t n : { 0ull, 1ull, 9ull, 1234567ull, 9876543210ull }) {
		auto f = test_pattern::frame(GetParam(), 320, 240, n);
		auto read = test_pattern::readCounter(GetParam(), 320, 240, f.data(), f.size());
		ASSERT_TRUE(read) << "frame " << n;
		EXPECT_EQ(*read, n);
	}
}

TEST_P(PatternFormat, FirstMismatchFindsNoneForOwnFrameAndOneForOther)
{
	auto f = test_pattern::frame(GetParam(), 160, 120, 3);
	EXPECT_FALSE(test_pattern::firstMismatch(GetParam(), 160, 120, 3, f.data(), f.size()));
	EXPECT_TRUE(test_pattern::firstMismatch(GetParam(), 160, 120, 4, f.data(), f.size()));
}

namespace {

std::string formatName(const ::testing::TestParamInfo<uint32_t> &p)
{
	std::string s = fourccToString(p.param);
	std::replace_if(s.begin(), s.end(), [](char c) { return !isalnum(c); }, '_');
	return s;
}

} /* namespace */

INSTANTIATE_TEST_SUITE_P(AllFormats, PatternFormat, ::testing::ValuesIn(test_pattern::formats()),
			 formatName);

TEST(TestPattern, CounterReadsBackAt4K)
{
	auto f = test_pattern::frame(V4L2_PIX_FMT_NV12, 3840, 2160, 123456);
	ASSERT_EQ(f.size(), 3840u * 2160u * 3 / 2);
	EXPECT_EQ(test_pattern::readCounter(V4L2_PIX_FMT_NV12, 3840, 2160, f.data(), f.size()),
		  123456u);
}

TEST(TestPattern, RendersIntoPaddedLayoutWithSamePixels)
{
	auto packed = *test_pattern::layout(V4L2_PIX_FMT_NV12, 64, 32);
	FrameLayout padded = packed;
	padded.planes[0].stride = 128;
	padded.planes[0].size = 128 * 32;
	padded.planes[1] = { 128 * 32, 128, 128 * 16 };
	padded.size = 128 * 48;
	std::vector<uint8_t> buf(padded.size, 0xaa);
	ASSERT_TRUE(test_pattern::render(padded, 5, buf.data(), buf.size()));

	auto ref = test_pattern::frame(V4L2_PIX_FMT_NV12, 64, 32, 5);
	for (unsigned y = 0; y < 32; y++)
		EXPECT_TRUE(std::equal(ref.begin() + y * 64, ref.begin() + y * 64 + 64,
				       buf.begin() + y * 128)) << "row " << y;
	EXPECT_EQ(buf[64], 0) << "padding is zeroed";
}

TEST(TestPattern, RenderRefusesTooSmallBuffer)
{
	auto l = *test_pattern::layout(V4L2_PIX_FMT_YUYV, 64, 32);
	std::vector<uint8_t> buf(l.size - 1);
	EXPECT_FALSE(test_pattern::render(l, 0, buf.data(), buf.size()));
}

TEST(TestPattern, TopLeftBarIsWhiteAtFrameZeroOutsideCounterBox)
{
	/* Row 100 of a 320x240 frame is in the bars band, below the box. */
	auto f = test_pattern::frame(V4L2_PIX_FMT_RGB24, 320, 240, 0);
	const uint8_t *px = &f[(100 * 320 + 0) * 3];
	EXPECT_EQ(px[0], 255);
	EXPECT_EQ(px[1], 255);
	EXPECT_EQ(px[2], 255);
	/* The last bar is black. */
	const uint8_t *last = &f[(100 * 320 + 319) * 3];
	EXPECT_EQ(last[0] + last[1] + last[2], 0);
}

TEST(TestPattern, CounterTooLargeForFrameIsNotRead)
{
	auto f = test_pattern::frame(V4L2_PIX_FMT_GREY, 32, 16, 1);
	ASSERT_FALSE(f.empty());
	EXPECT_FALSE(test_pattern::readCounter(V4L2_PIX_FMT_GREY, 32, 16, f.data(), f.size()));
}
