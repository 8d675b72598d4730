/* SPDX-License-Identifier: MIT */
/*
 * xmb-pattern-check: are the frames of a raw stream dump the test pattern,
 * pixel-exact?  For dumps written by tools this project does not own (e.g.
 * `v4l2-ctl --stream-to` in a DomU running Linux's xen-camera-front against
 * the camera service's test-pattern camera).
 *
 *   xmb-pattern-check FILE FOURCC WxH MIN_FRAMES
 *
 * FILE holds whole frames in the canonical (tightly packed) layout of
 * v4l2/test_pattern.h, one after another. Each frame's counter is read,
 * the frame compared byte for byte with pattern frame <counter>, and the
 * counters must increase. Exit 0 when at least MIN_FRAMES frames were
 * read and every one is exact; 1 otherwise (the first bad frame is named).
 */

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "v4l2/test_pattern.h"

namespace {

int usage()
{
	std::fprintf(stderr, "usage: xmb-pattern-check FILE FOURCC WxH MIN_FRAMES\n");
	return 2;
}

} /* namespace */

int main(int argc, char **argv)
{
	if (argc != 5 || std::strlen(argv[2]) != 4)
		return usage();
	const char *path = argv[1];
	const uint32_t fourcc = uint32_t(uint8_t(argv[2][0])) | uint32_t(uint8_t(argv[2][1])) << 8 |
				uint32_t(uint8_t(argv[2][2])) << 16 | uint32_t(uint8_t(argv[2][3])) << 24;
	uint32_t w = 0, h = 0;
	if (std::sscanf(argv[3], "%ux%u", &w, &h) != 2 || w == 0 || h == 0 || w > 8192 || h > 8192)
		return usage();
	const unsigned long minFrames = std::strtoul(argv[4], nullptr, 10);
	const auto layout = xmb::test_pattern::layout(fourcc, w, h);
	if (!layout) {
		std::fprintf(stderr, "xmb-pattern-check: %s %ux%u: not a test-pattern format\n", argv[2], w, h);
		return 2;
	}
	const size_t size = layout->size;
	std::ifstream in(path, std::ios::binary);
	if (!in) {
		std::fprintf(stderr, "xmb-pattern-check: %s: cannot open\n", path);
		return 1;
	}
	std::vector<uint8_t> buf(size);
	unsigned long frames = 0, gaps = 0;
	uint64_t first = 0, last = 0;
	while (in.read(reinterpret_cast<char *>(buf.data()), std::streamsize(size))) {
		const auto n = xmb::test_pattern::readCounter(fourcc, w, h, buf.data(), size);
		if (!n) {
			std::printf("xmb-pattern-check: frame %lu of %s: no readable counter (not the pattern)\n",
				    frames, path);
			return 1;
		}
		if (auto at = xmb::test_pattern::firstMismatch(fourcc, w, h, *n, buf.data(), size)) {
			std::printf("xmb-pattern-check: frame %lu of %s (pattern frame %llu): byte %zu differs\n",
				    frames, path, static_cast<unsigned long long>(*n), *at);
			return 1;
		}
		if (frames > 0 && *n <= last) {
			std::printf("xmb-pattern-check: frame %lu of %s is pattern frame %llu after %llu: out of order\n",
				    frames, path, static_cast<unsigned long long>(*n),
				    static_cast<unsigned long long>(last));
			return 1;
		}
		if (frames == 0)
			first = *n;
		else if (*n != last + 1)
			gaps++;
		last = *n;
		frames++;
	}
	if (in.gcount() != 0)
		std::printf("xmb-pattern-check: %s ends with %lld bytes of a partial frame (ignored)\n", path,
			    static_cast<long long>(in.gcount()));
	std::printf("xmb-pattern-check: %lu %s %ux%u frames pixel-exact (pattern frames %llu..%llu, %lu gaps)\n",
		    frames, argv[2], w, h, static_cast<unsigned long long>(first),
		    static_cast<unsigned long long>(last), gaps);
	if (frames < minFrames) {
		std::printf("xmb-pattern-check: fewer than %lu frames\n", minFrames);
		return 1;
	}
	return 0;
}
