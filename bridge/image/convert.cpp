/* SPDX-License-Identifier: MIT */
/* Raw frames to RGB24 (BT.601 limited range, nearest-neighbour chroma). */
#include "bridge/image/convert.h"

#include <algorithm>
#include <cerrno>
#include <string>

#include <linux/videodev2.h>

namespace xmb::image {

namespace {

enum class Kind { Nv, Planar420, Packed422, Rgb, Grey };

struct Desc {
	uint32_t fourcc;
	Kind kind;
	unsigned planes;  /* colour planes used */
	unsigned bpp;     /* plane-0 bytes per pixel */
	/* Byte positions: Rgb: R,G,B in a pixel; Packed422: Y0,Cb,Y1,Cr in a
	 * macropixel; Nv: Cb,Cr in a pair; Planar420: plane of Cb, plane of Cr. */
	uint8_t a, b, c, d;
};

constexpr Desc kDescs[] = {
	{ V4L2_PIX_FMT_NV12, Kind::Nv, 2, 1, 0, 1, 0, 0 },
	{ V4L2_PIX_FMT_NV21, Kind::Nv, 2, 1, 1, 0, 0, 0 },
	{ V4L2_PIX_FMT_YUV420, Kind::Planar420, 3, 1, 1, 2, 0, 0 },
	{ V4L2_PIX_FMT_YVU420, Kind::Planar420, 3, 1, 2, 1, 0, 0 },
	{ V4L2_PIX_FMT_YUYV, Kind::Packed422, 1, 2, 0, 1, 2, 3 },
	{ V4L2_PIX_FMT_YVYU, Kind::Packed422, 1, 2, 0, 3, 2, 1 },
	{ V4L2_PIX_FMT_UYVY, Kind::Packed422, 1, 2, 1, 0, 3, 2 },
	{ V4L2_PIX_FMT_VYUY, Kind::Packed422, 1, 2, 1, 2, 3, 0 },
	{ V4L2_PIX_FMT_RGB24, Kind::Rgb, 1, 3, 0, 1, 2, 0 },
	{ V4L2_PIX_FMT_BGR24, Kind::Rgb, 1, 3, 2, 1, 0, 0 },
	{ V4L2_PIX_FMT_XBGR32, Kind::Rgb, 1, 4, 2, 1, 0, 0 },
	{ V4L2_PIX_FMT_ABGR32, Kind::Rgb, 1, 4, 2, 1, 0, 0 },
	{ V4L2_PIX_FMT_BGR32, Kind::Rgb, 1, 4, 2, 1, 0, 0 },
	{ V4L2_PIX_FMT_XRGB32, Kind::Rgb, 1, 4, 1, 2, 3, 0 },
	{ V4L2_PIX_FMT_ARGB32, Kind::Rgb, 1, 4, 1, 2, 3, 0 },
	{ V4L2_PIX_FMT_RGB32, Kind::Rgb, 1, 4, 1, 2, 3, 0 },
	{ V4L2_PIX_FMT_BGRX32, Kind::Rgb, 1, 4, 3, 2, 1, 0 },
	{ V4L2_PIX_FMT_BGRA32, Kind::Rgb, 1, 4, 3, 2, 1, 0 },
	{ V4L2_PIX_FMT_RGBX32, Kind::Rgb, 1, 4, 0, 1, 2, 0 },
	{ V4L2_PIX_FMT_RGBA32, Kind::Rgb, 1, 4, 0, 1, 2, 0 },
	{ V4L2_PIX_FMT_GREY, Kind::Grey, 1, 1, 0, 0, 0, 0 },
};

const Desc *find(uint32_t fourcc)
{
	for (const Desc &d : kDescs)
		if (d.fourcc == fourcc)
			return &d;
	return nullptr;
}

uint8_t clamp8(int v)
{
	return static_cast<uint8_t>(std::clamp(v, 0, 255));
}

std::string fourccName(uint32_t f)
{
	std::string s;
	for (int i = 0; i < 4; i++) {
		char ch = static_cast<char>((f >> (8 * i)) & 0xff);
		s += (ch >= 0x20 && ch < 0x7f) ? ch : '.';
	}
	return s;
}

} /* namespace */

void ycbcrToRgb(uint8_t y, uint8_t cb, uint8_t cr, uint8_t rgb[3])
{
	int c = y - 16, d = cb - 128, e = cr - 128;
	rgb[0] = clamp8((298 * c + 409 * e + 128) >> 8);
	rgb[1] = clamp8((298 * c - 100 * d - 208 * e + 128) >> 8);
	rgb[2] = clamp8((298 * c + 516 * d + 128) >> 8);
}

bool canConvert(uint32_t fourcc)
{
	return find(fourcc) != nullptr;
}

Result<std::vector<uint8_t>> toRgb24(const FrameLayout &l, std::span<const uint8_t> data)
{
	const Desc *d = find(l.fourcc);
	const std::string name = fourccName(l.fourcc);
	if (!d)
		return Error{ -ENOTSUP, "cannot convert " + name + " to RGB" };
	const uint32_t w = l.width, h = l.height;
	if (!w || !h || w > 16384 || h > 16384)
		return Error{ -EINVAL, name + ": bad size " + std::to_string(w) + "x" + std::to_string(h) };
	if (l.numPlanes < d->planes)
		return Error{ -EINVAL, name + ": layout has " + std::to_string(l.numPlanes) +
					       " planes, format needs " + std::to_string(d->planes) };
	const bool sub = d->kind == Kind::Nv || d->kind == Kind::Planar420 || d->kind == Kind::Packed422;
	if (sub && (w % 2))
		return Error{ -EINVAL, name + ": odd width" };
	if ((d->kind == Kind::Nv || d->kind == Kind::Planar420) && (h % 2))
		return Error{ -EINVAL, name + ": odd height" };

	/* Every row we read must be inside data. */
	for (unsigned p = 0; p < d->planes; p++) {
		uint64_t rows = p == 0 ? h : h / 2;
		uint64_t rowBytes = p == 0 ? uint64_t{ w } * d->bpp : (d->kind == Kind::Nv ? w : w / 2);
		const PlaneLayout &pl = l.planes[p];
		if (pl.stride < rowBytes)
			return Error{ -EINVAL, name + ": plane " + std::to_string(p) + " stride " +
						       std::to_string(pl.stride) + " < " +
						       std::to_string(rowBytes) };
		uint64_t end = pl.offset + (rows - 1) * pl.stride + rowBytes;
		if (end > data.size())
			return Error{ -EINVAL, name + ": plane " + std::to_string(p) + " needs " +
						       std::to_string(end) + " bytes, frame has " +
						       std::to_string(data.size()) };
	}

	std::vector<uint8_t> out(size_t{ w } * h * 3);
	const uint8_t *base = data.data();
	for (uint32_t y = 0; y < h; y++) {
		uint8_t *o = out.data() + size_t{ y } * w * 3;
		const uint8_t *row = base + l.planes[0].offset + size_t{ y } * l.planes[0].stride;
		switch (d->kind) {
		case Kind::Rgb:
			for (uint32_t x = 0; x < w; x++, o += 3) {
				const uint8_t *px = row + size_t{ x } * d->bpp;
				o[0] = px[d->a];
				o[1] = px[d->b];
				o[2] = px[d->c];
			}
			break;
		case Kind::Grey:
			for (uint32_t x = 0; x < w; x++, o += 3)
				o[0] = o[1] = o[2] = row[x];
			break;
		case Kind::Packed422:
			for (uint32_t x = 0; x < w; x += 2, o += 6) {
				const uint8_t *m = row + size_t{ x } * 2;
				ycbcrToRgb(m[d->a], m[d->b], m[d->d], o);
				ycbcrToRgb(m[d->c], m[d->b], m[d->d], o + 3);
			}
			break;
		case Kind::Nv: {
			const uint8_t *c = base + l.planes[1].offset + size_t{ y / 2 } * l.planes[1].stride;
			for (uint32_t x = 0; x < w; x++, o += 3) {
				const uint8_t *pair = c + (x / 2) * 2;
				ycbcrToRgb(row[x], pair[d->a], pair[d->b], o);
			}
			break;
		}
		case Kind::Planar420: {
			const PlaneLayout &pcb = l.planes[d->a], &pcr = l.planes[d->b];
			const uint8_t *cb = base + pcb.offset + size_t{ y / 2 } * pcb.stride;
			const uint8_t *cr = base + pcr.offset + size_t{ y / 2 } * pcr.stride;
			for (uint32_t x = 0; x < w; x++, o += 3)
				ycbcrToRgb(row[x], cb[x / 2], cr[x / 2], o);
			break;
		}
		}
	}
	return out;
}

} /* namespace xmb::image */
