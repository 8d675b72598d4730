/* SPDX-License-Identifier: MIT */
/**
 * \file test_pattern.cpp
 * \brief The deterministic test-pattern frame function
 *
 * Fast enough for 3840x2160 in software: all rows of a band are the same
 * but for the counter box, so each band row is converted once per frame and
 * copied, and only the box rows are built pixel by pixel.
 */
#include "v4l2/test_pattern.h"

#include <algorithm>
#include <array>
#include <cstring>

#include <linux/videodev2.h>

#include "v4l2/pixel_format.h"

namespace xmb::test_pattern {

namespace {

struct Rgb {
	uint8_t r, g, b;
};

/* 100% colour bars: white, yellow, cyan, green, magenta, red, blue, black. */
constexpr Rgb kBars[8] = {
	{ 255, 255, 255 }, { 255, 255, 0 }, { 0, 255, 255 }, { 0, 255, 0 },
	{ 255, 0, 255 },   { 255, 0, 0 },	{ 0, 0, 255 },	 { 0, 0, 0 },
};

/* 5x7 digits, one byte per row, bit 4 = leftmost column. */
constexpr uint8_t kFont[10][7] = {
	{ 0x0e, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0e }, /* 0 */
	{ 0x04, 0x0c, 0x04, 0x04, 0x04, 0x04, 0x0e }, /* 1 */
	{ 0x0e, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1f }, /* 2 */
	{ 0x1f, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0e }, /* 3 */
	{ 0x02, 0x06, 0x0a, 0x12, 0x1f, 0x02, 0x02 }, /* 4 */
	{ 0x1f, 0x10, 0x1e, 0x01, 0x01, 0x11, 0x0e }, /* 5 */
	{ 0x06, 0x08, 0x10, 0x1e, 0x11, 0x11, 0x0e }, /* 6 */
	{ 0x1f, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08 }, /* 7 */
	{ 0x0e, 0x11, 0x11, 0x0e, 0x11, 0x11, 0x0e }, /* 8 */
	{ 0x0e, 0x11, 0x11, 0x0f, 0x01, 0x02, 0x0c }, /* 9 */
};

const std::vector<uint32_t> kFormats = {
	V4L2_PIX_FMT_NV12,   V4L2_PIX_FMT_YUYV,	 V4L2_PIX_FMT_RGB24,  V4L2_PIX_FMT_XBGR32,
	V4L2_PIX_FMT_NV21,   V4L2_PIX_FMT_YUV420, V4L2_PIX_FMT_YVU420, V4L2_PIX_FMT_UYVY,
	V4L2_PIX_FMT_BGR24,  V4L2_PIX_FMT_XRGB32, V4L2_PIX_FMT_GREY,
};

uint8_t lumaOf(Rgb c)
{
	return static_cast<uint8_t>(((66 * c.r + 129 * c.g + 25 * c.b + 128) >> 8) + 16);
}
uint8_t cbOf(Rgb c)
{
	return static_cast<uint8_t>(((-38 * c.r - 74 * c.g + 112 * c.b + 128) >> 8) + 128);
}
uint8_t crOf(Rgb c)
{
	return static_cast<uint8_t>(((112 * c.r - 94 * c.g - 18 * c.b + 128) >> 8) + 128);
}

/* Geometry of the counter box for a frame size. */
struct Box {
	unsigned scale, x0, y0, width, height;

	static Box forSize(uint32_t w, uint32_t h)
	{
		Box b;
		b.scale = std::max(1u, h / 135);
		b.x0 = 2 * b.scale;
		b.y0 = 2 * b.scale;
		b.width = (kDigits * 6 + 1) * b.scale;
		b.height = 9 * b.scale;
		(void)w;
		return b;
	}
	bool containsRow(unsigned y) const { return y >= y0 && y < y0 + height; }
	bool fits(uint32_t w, uint32_t h) const { return x0 + width <= w && y0 + height <= h; }
};

/* Digit d (0 = most significant) of n, shown modulo 10^kDigits. */
unsigned digitOf(uint64_t n, unsigned d)
{
	for (unsigned i = d + 1; i < kDigits; i++)
		n /= 10;
	return static_cast<unsigned>(n % 10);
}

/* Whether (x, y), inside the box, is a lit (black) font pixel. */
bool fontPixel(const Box &box, uint64_t n, unsigned x, unsigned y)
{
	unsigned cx = (x - box.x0) / box.scale; /* font-pixel column in box */
	unsigned cy = (y - box.y0) / box.scale;
	if (cx < 1 || cy < 1 || cy > 7)
		return false;
	unsigned digit = (cx - 1) / 6, col = (cx - 1) % 6;
	if (digit >= kDigits || col >= 5)
		return false;
	return kFont[digitOf(n, digit)][cy - 1] & (0x10 >> col);
}

/* The RGB content of row y: the one place the picture is defined. */
void rgbRow(uint32_t w, uint32_t h, uint64_t n, unsigned y, std::vector<Rgb> &row)
{
	row.resize(w);
	uint64_t speed = std::max<uint32_t>(1, w / 64);
	uint64_t shift = (n * speed) % w;
	if (y < h - h / 4) {
		for (unsigned x = 0; x < w; x++)
			row[x] = kBars[((x + shift) % w) * 8 / w];
	} else {
		for (unsigned x = 0; x < w; x++) {
			uint8_t v = static_cast<uint8_t>(((x + w - shift) % w) * 256 / w);
			row[x] = { v, v, v };
		}
	}
	Box box = Box::forSize(w, h);
	if (box.containsRow(y)) {
		unsigned end = std::min<unsigned>(w, box.x0 + box.width);
		for (unsigned x = box.x0; x < end; x++)
			row[x] = fontPixel(box, n, x, y) ? Rgb{ 0, 0, 0 } : Rgb{ 255, 255, 255 };
	}
}

/* Bytes of a packed row (plane 0) of \a fourcc; 0 if not packed. */
void packRow(uint32_t fourcc, const std::vector<Rgb> &row, uint8_t *dst)
{
	size_t w = row.size();
	switch (fourcc) {
	case V4L2_PIX_FMT_RGB24:
		for (size_t x = 0; x < w; x++) {
			dst[3 * x] = row[x].r;
			dst[3 * x + 1] = row[x].g;
			dst[3 * x + 2] = row[x].b;
		}
		break;
	case V4L2_PIX_FMT_BGR24:
		for (size_t x = 0; x < w; x++) {
			dst[3 * x] = row[x].b;
			dst[3 * x + 1] = row[x].g;
			dst[3 * x + 2] = row[x].r;
		}
		break;
	case V4L2_PIX_FMT_XBGR32: /* B G R X in memory */
		for (size_t x = 0; x < w; x++) {
			dst[4 * x] = row[x].b;
			dst[4 * x + 1] = row[x].g;
			dst[4 * x + 2] = row[x].r;
			dst[4 * x + 3] = 0xff;
		}
		break;
	case V4L2_PIX_FMT_XRGB32: /* X R G B in memory */
		for (size_t x = 0; x < w; x++) {
			dst[4 * x] = 0xff;
			dst[4 * x + 1] = row[x].r;
			dst[4 * x + 2] = row[x].g;
			dst[4 * x + 3] = row[x].b;
		}
		break;
	case V4L2_PIX_FMT_YUYV:
	case V4L2_PIX_FMT_UYVY:
		for (size_t x = 0; x + 1 < w; x += 2) {
			uint8_t y0 = lumaOf(row[x]), y1 = lumaOf(row[x + 1]);
			uint8_t u = cbOf(row[x]), v = crOf(row[x]);
			uint8_t *p = dst + 2 * x;
			if (fourcc == V4L2_PIX_FMT_YUYV) {
				p[0] = y0; p[1] = u; p[2] = y1; p[3] = v;
			} else {
				p[0] = u; p[1] = y0; p[2] = v; p[3] = y1;
			}
		}
		break;
	default: /* planar: plane 0 is luma */
		for (size_t x = 0; x < w; x++)
			dst[x] = lumaOf(row[x]);
		break;
	}
}

/* Chroma row (from luma row 2j's RGB) of a 4:2:0 format into its planes. */
void chromaRow(uint32_t fourcc, const std::vector<Rgb> &row, uint8_t *p1, uint8_t *p2)
{
	size_t cw = row.size() / 2;
	for (size_t i = 0; i < cw; i++) {
		uint8_t u = cbOf(row[2 * i]), v = crOf(row[2 * i]);
		switch (fourcc) {
		case V4L2_PIX_FMT_NV12:
			p1[2 * i] = u;
			p1[2 * i + 1] = v;
			break;
		case V4L2_PIX_FMT_NV21:
			p1[2 * i] = v;
			p1[2 * i + 1] = u;
			break;
		case V4L2_PIX_FMT_YUV420:
			p1[i] = u;
			p2[i] = v;
			break;
		case V4L2_PIX_FMT_YVU420:
			p1[i] = v;
			p2[i] = u;
			break;
		}
	}
}

/* Row bytes plane 0 needs (packed). */
size_t rowBytes(uint32_t fourcc, uint32_t w)
{
	std::optional<FrameLayout> l = packedFrameLayout(fourcc, w, 2);
	return l ? l->planes[0].stride : 0;
}

bool validLayout(const FrameLayout &l, size_t dstSize)
{
	std::optional<FrameLayout> packed = packedFrameLayout(l.fourcc, l.width, l.height);
	if (!packed || !isSupported(l.fourcc) || l.numPlanes != packed->numPlanes)
		return false;
	for (unsigned p = 0; p < l.numPlanes; p++) {
		const PlaneLayout &pl = l.planes[p];
		if (pl.stride < packed->planes[p].stride)
			return false;
		unsigned rows = p == 0 ? l.height : l.height / 2;
		if (static_cast<uint64_t>(pl.offset) + static_cast<uint64_t>(pl.stride) * rows > dstSize)
			return false;
	}
	return true;
}

} /* namespace */

const std::vector<uint32_t> &formats()
{
	return kFormats;
}

bool isSupported(uint32_t fourcc)
{
	return std::find(kFormats.begin(), kFormats.end(), fourcc) != kFormats.end();
}

std::optional<FrameLayout> layout(uint32_t fourcc, uint32_t width, uint32_t height)
{
	if (!isSupported(fourcc))
		return std::nullopt;
	return packedFrameLayout(fourcc, width, height);
}

/**
 * \brief Render frame \a frameNumber; see the header for what it looks like
 */
bool render(const FrameLayout &l, uint64_t frameNumber, uint8_t *dst, size_t dstSize)
{
	if (!dst || !validLayout(l, dstSize))
		return false;

	const uint32_t w = l.width, h = l.height;
	const Box box = Box::forSize(w, h);
	const size_t packed = rowBytes(l.fourcc, w);
	const bool planar = l.numPlanes > 1;
	const unsigned bandSplit = h - h / 4;

	std::vector<Rgb> rgb;
	/* Converted rows of the two bands, built on first use. */
	std::array<std::vector<uint8_t>, 2> bandRow;
	std::vector<uint8_t> scratch(packed);

	for (unsigned y = 0; y < h; y++) {
		uint8_t *out = dst + l.planes[0].offset + static_cast<size_t>(y) * l.planes[0].stride;
		unsigned band = y < bandSplit ? 0 : 1;
		if (!box.containsRow(y)) {
			if (bandRow[band].empty()) {
				bandRow[band].resize(packed);
				rgbRow(w, h, frameNumber, y, rgb);
				packRow(l.fourcc, rgb, bandRow[band].data());
			}
			std::memcpy(out, bandRow[band].data(), packed);
		} else {
			rgbRow(w, h, frameNumber, y, rgb);
			packRow(l.fourcc, rgb, out);
		}
		std::memset(out + packed, 0, l.planes[0].stride - packed);
	}

	if (planar) {
		const PlaneLayout &p1 = l.planes[1];
		const PlaneLayout &p2 = l.planes[l.numPlanes > 2 ? 2 : 1];
		size_t c1 = l.numPlanes > 2 ? w / 2 : w;
		for (unsigned j = 0; j < h / 2; j++) {
			rgbRow(w, h, frameNumber, 2 * j, rgb);
			uint8_t *o1 = dst + p1.offset + static_cast<size_t>(j) * p1.stride;
			uint8_t *o2 = dst + p2.offset + static_cast<size_t>(j) * p2.stride;
			chromaRow(l.fourcc, rgb, o1, o2);
			std::memset(o1 + c1, 0, p1.stride - c1);
			if (l.numPlanes > 2)
				std::memset(o2 + w / 2, 0, p2.stride - w / 2);
		}
	}
	return true;
}

std::vector<uint8_t> frame(uint32_t fourcc, uint32_t width, uint32_t height, uint64_t frameNumber)
{
	std::optional<FrameLayout> l = layout(fourcc, width, height);
	if (!l)
		return {};
	std::vector<uint8_t> out(l->size);
	render(*l, frameNumber, out.data(), out.size());
	return out;
}

std::optional<size_t> firstMismatch(uint32_t fourcc, uint32_t width, uint32_t height,
				    uint64_t frameNumber, const uint8_t *data, size_t size)
{
	std::vector<uint8_t> expected = frame(fourcc, width, height, frameNumber);
	if (expected.empty() || size < expected.size())
		return 0;
	auto [e, d] = std::mismatch(expected.begin(), expected.end(), data);
	if (e == expected.end())
		return std::nullopt;
	return static_cast<size_t>(e - expected.begin());
}

/**
 * \brief Read the ten digits back by sampling each font pixel's centre
 */
std::optional<uint64_t> readCounter(uint32_t fourcc, uint32_t width, uint32_t height,
				    const uint8_t *data, size_t size)
{
	std::optional<FrameLayout> l = layout(fourcc, width, height);
	Box box = Box::forSize(width, height);
	if (!l || !data || size < l->size || !box.fits(width, height))
		return std::nullopt;

	/* Brightness of pixel (x, y): luma, or green for RGB formats. */
	auto bright = [&](unsigned x, unsigned y) -> int {
		const uint8_t *row = data + l->planes[0].offset + static_cast<size_t>(y) * l->planes[0].stride;
		switch (fourcc) {
		case V4L2_PIX_FMT_RGB24:
		case V4L2_PIX_FMT_BGR24:
			return row[3 * x + 1];
		case V4L2_PIX_FMT_XBGR32:
			return row[4 * x + 1];
		case V4L2_PIX_FMT_XRGB32:
			return row[4 * x + 2];
		case V4L2_PIX_FMT_YUYV:
			return row[2 * x];
		case V4L2_PIX_FMT_UYVY:
			return row[2 * x + 1];
		default:
			return row[x];
		}
	};

	uint64_t n = 0;
	for (unsigned d = 0; d < kDigits; d++) {
		uint8_t glyph[7] = {};
		for (unsigned r = 0; r < 7; r++)
			for (unsigned c = 0; c < 5; c++) {
				unsigned x = box.x0 + (1 + d * 6 + c) * box.scale + box.scale / 2;
				unsigned y = box.y0 + (1 + r) * box.scale + box.scale / 2;
				if (bright(x, y) < 128)
					glyph[r] |= 0x10 >> c;
			}
		int match = -1;
		for (int g = 0; g < 10; g++)
			if (std::memcmp(glyph, kFont[g], 7) == 0)
				match = g;
		if (match < 0)
			return std::nullopt;
		n = n * 10 + static_cast<unsigned>(match);
	}
	return n;
}

} /* namespace xmb::test_pattern */
