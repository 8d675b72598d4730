/* SPDX-License-Identifier: MIT */
/* Pixel conversion to RGB24 and the PNG writer (decoded back with libpng). */
#include <array>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <gtest/gtest.h>
#include <linux/videodev2.h>
#include <unistd.h>

#include "bridge/image/convert.h"
#include "bridge/image/png_writer.h"
#include "v4l2/pixel_format.h"
#include "v4l2/test_pattern.h"

using namespace xmb;
using namespace xmb::image;

namespace {

struct Yuv {
	uint8_t y, cb, cr;
};

/* The test pattern's encoder (BT.601 limited range, integer). */
Yuv encode(int r, int g, int b)
{
	return { static_cast<uint8_t>(((66 * r + 129 * g + 25 * b + 128) >> 8) + 16),
		 static_cast<uint8_t>(((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128),
		 static_cast<uint8_t>(((112 * r - 94 * g - 18 * b + 128) >> 8) + 128) };
}

void expectNear(const uint8_t *got, int r, int g, int b, int tol, const std::string &what)
{
	EXPECT_NEAR(got[0], r, tol) << what;
	EXPECT_NEAR(got[1], g, tol) << what;
	EXPECT_NEAR(got[2], b, tol) << what;
}

std::string tempDir()
{
	char tmpl[] = "/tmp/xmb-image-test-XXXXXX";
	char *d = mkdtemp(tmpl);
	return d ? d : "/tmp";
}

} /* namespace */

TEST(Convert, Bt601LimitedRangeEndpoints)
{
	uint8_t rgb[3];
	ycbcrToRgb(16, 128, 128, rgb);
	expectNear(rgb, 0, 0, 0, 0, "black");
	ycbcrToRgb(235, 128, 128, rgb);
	expectNear(rgb, 255, 255, 255, 0, "white");
	for (auto [r, g, b] : { std::array{ 255, 0, 0 }, std::array{ 0, 255, 0 },
				std::array{ 0, 0, 255 }, std::array{ 255, 255, 0 },
				std::array{ 128, 64, 32 } }) {
		Yuv c = encode(r, g, b);
		ycbcrToRgb(c.y, c.cb, c.cr, rgb);
		expectNear(rgb, r, g, b, 3, "colour " + std::to_string(r) + "," + std::to_string(g) +
						    "," + std::to_string(b));
	}
}

/* Every supported test-pattern format converts to the RGB24 frame within
 * YCbCr rounding, except where subsampled chroma straddles a colour edge. */
TEST(Convert, TestPatternFormatsMatchRgb24)
{
	const uint32_t w = 128, h = 96;
	const uint64_t n = 7;
	auto ref = test_pattern::frame(V4L2_PIX_FMT_RGB24, w, h, n);
	ASSERT_EQ(ref.size(), size_t{ w } * h * 3);
	for (uint32_t fourcc : test_pattern::formats()) {
		SCOPED_TRACE(fourccToString(fourcc));
		ASSERT_TRUE(canConvert(fourcc));
		auto layout = test_pattern::layout(fourcc, w, h);
		ASSERT_TRUE(layout);
		auto raw = test_pattern::frame(fourcc, w, h, n);
		auto rgb = toRgb24(*layout, raw);
		ASSERT_TRUE(rgb) << rgb.error().message;
		ASSERT_EQ(rgb->size(), ref.size());
		bool yuv = fourcc != V4L2_PIX_FMT_RGB24 && fourcc != V4L2_PIX_FMT_BGR24 &&
			   fourcc != V4L2_PIX_FMT_XBGR32 && fourcc != V4L2_PIX_FMT_XRGB32;
		size_t bad = 0;
		for (uint32_t y = 0; y < h; y++)
			for (uint32_t x = 0; x < w; x++) {
				const uint8_t *want = &ref[(size_t{ y } * w + x) * 3];
				const uint8_t *got = &(*rgb)[(size_t{ y } * w + x) * 3];
				if (!yuv) {
					bad += std::memcmp(want, got, 3) != 0;
					continue;
				}
				/* Compare only where the chroma block is uniform. */
				uint32_t x0 = x & ~1u, y0 = y & ~1u;
				bool uniform = true;
				for (uint32_t dy = 0; dy < 2; dy++)
					for (uint32_t dx = 0; dx < 2; dx++)
						uniform &= std::memcmp(&ref[(size_t{ y0 + dy } * w + x0 + dx) * 3],
								       &ref[(size_t{ y0 } * w + x0) * 3], 3) == 0;
				if (!uniform)
					continue;
				int tol = fourcc == V4L2_PIX_FMT_GREY ? 255 : 3;
				for (int c = 0; c < 3; c++)
					bad += std::abs(int(want[c]) - int(got[c])) > tol;
			}
		EXPECT_EQ(bad, 0u);
	}
}

TEST(Convert, GreyIsLuma)
{
	FrameLayout l = *packedFrameLayout(V4L2_PIX_FMT_GREY, 2, 1);
	std::vector<uint8_t> raw = { 0, 200 };
	auto rgb = toRgb24(l, raw);
	ASSERT_TRUE(rgb);
	EXPECT_EQ(*rgb, (std::vector<uint8_t>{ 0, 0, 0, 200, 200, 200 }));
}

TEST(Convert, HonoursStridesAndOffsets)
{
	/* NV12 2x2, luma stride 8, chroma plane at offset 32 with stride 8. */
	FrameLayout l;
	l.fourcc = V4L2_PIX_FMT_NV12;
	l.width = 2;
	l.height = 2;
	l.numPlanes = 2;
	l.planes[0] = { 0, 8, 16 };
	l.planes[1] = { 32, 8, 8 };
	l.size = 40;
	std::vector<uint8_t> raw(40, 0xee);
	Yuv red = encode(255, 0, 0);
	raw[0] = raw[1] = raw[8] = raw[9] = red.y;
	raw[32] = red.cb;
	raw[33] = red.cr;
	auto rgb = toRgb24(l, raw);
	ASSERT_TRUE(rgb) << rgb.error().message;
	for (int p = 0; p < 4; p++)
		expectNear(&(*rgb)[p * 3], 255, 0, 0, 3, "pixel " + std::to_string(p));
}

TEST(Convert, RejectsLayoutsOutsideTheData)
{
	FrameLayout l = *packedFrameLayout(V4L2_PIX_FMT_YUYV, 16, 16);
	std::vector<uint8_t> raw(l.size - 1);
	auto r = toRgb24(l, raw);
	ASSERT_FALSE(r);
	EXPECT_NE(r.error().message.find("needs"), std::string::npos);
	l.planes[0].stride = 4; /* less than a row */
	raw.resize(l.size);
	EXPECT_FALSE(toRgb24(l, raw));
	l = *packedFrameLayout(V4L2_PIX_FMT_NV12, 16, 16);
	l.numPlanes = 1;
	EXPECT_FALSE(toRgb24(l, std::vector<uint8_t>(l.size)));
	l.fourcc = v4l2_fourcc('M', 'J', 'P', 'G');
	EXPECT_FALSE(canConvert(l.fourcc));
	EXPECT_FALSE(toRgb24(l, std::vector<uint8_t>(l.size)));
}

TEST(Png, WritesWhatReadsBack)
{
	std::string dir = tempDir();
	const uint32_t w = 37, h = 11;
	std::vector<uint8_t> rgb(size_t{ w } * h * 3);
	for (size_t i = 0; i < rgb.size(); i++)
		rgb[i] = static_cast<uint8_t>(i * 7 + i / 3);
	std::string path = dir + "/t.png";
	Status s = writePng(path, w, h, rgb);
	ASSERT_TRUE(s) << s.error().message;
	auto img = readPng(path);
	ASSERT_TRUE(img) << img.error().message;
	EXPECT_EQ(img->width, w);
	EXPECT_EQ(img->height, h);
	EXPECT_EQ(img->rgb, rgb);
	std::filesystem::remove_all(dir);
}

TEST(Png, TestPatternSnapshotRoundTrips)
{
	std::string dir = tempDir();
	auto raw = test_pattern::frame(V4L2_PIX_FMT_XRGB32, 64, 48, 3);
	auto rgb = toRgb24(*test_pattern::layout(V4L2_PIX_FMT_XRGB32, 64, 48), raw);
	ASSERT_TRUE(rgb);
	ASSERT_TRUE(writePng(dir + "/p.png", 64, 48, *rgb));
	auto img = readPng(dir + "/p.png");
	ASSERT_TRUE(img);
	EXPECT_EQ(img->rgb, test_pattern::frame(V4L2_PIX_FMT_RGB24, 64, 48, 3));
	std::filesystem::remove_all(dir);
}

TEST(Png, ErrorsNameTheFile)
{
	std::vector<uint8_t> rgb(12);
	Status s = writePng("/nonexistent-dir/x.png", 2, 2, rgb);
	ASSERT_FALSE(s);
	EXPECT_NE(s.error().message.find("/nonexistent-dir/x.png"), std::string::npos);
	EXPECT_FALSE(writePng("/tmp/x.png", 3, 2, rgb)); /* size mismatch */
	auto r = readPng("/nonexistent-dir/x.png");
	ASSERT_FALSE(r);
	EXPECT_NE(r.error().message.find("/nonexistent-dir/x.png"), std::string::npos);
}
