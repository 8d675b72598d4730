/* SPDX-License-Identifier: MIT */
/*
 * xmb-pattern-psnr: how close decoded frames are to the test pattern that
 * was encoded (frame N of v4l2/test_pattern.h, what xmb-encode-guest sends).
 *
 *   xmb-pattern-psnr FILE WxH FRAMES MIN_DB     FILE: tightly packed I420
 *   xmb-pattern-psnr --write FILE WxH FRAMES    write the pattern itself
 *
 * Prints the PSNR of each of the first FRAMES frames of FILE against
 * pattern frames 0..FRAMES-1 (over all Y, U and V bytes) and exits 1 if the
 * file is short or any frame is below MIN_DB.  Written in C++ because the
 * real-Xen tests run it in a TCG Dom0, where a Python loop over every byte
 * of a 640x480 frame takes tens of seconds.
 */

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "v4l2/test_pattern.h"

namespace {

constexpr uint32_t kYU12 = 0x32315559;

bool parseSize(const char *s, uint32_t &w, uint32_t &h)
{
	return std::sscanf(s, "%ux%u", &w, &h) == 2 && w > 0 && h > 0 && w <= 8192 && h <= 8192;
}

int usage()
{
	std::fprintf(stderr, "usage: xmb-pattern-psnr FILE WxH FRAMES MIN_DB\n"
			     "       xmb-pattern-psnr --write FILE WxH FRAMES\n");
	return 2;
}

} /* namespace */

int main(int argc, char **argv)
{
	if (argc != 5)
		return usage();
	const bool write = std::string(argv[1]) == "--write";
	const char *path = write ? argv[2] : argv[1];
	uint32_t w = 0, h = 0;
	if (!parseSize(write ? argv[3] : argv[2], w, h))
		return usage();
	const unsigned long frames = std::strtoul(write ? argv[4] : argv[3], nullptr, 10);
	const double minDb = write ? 0.0 : std::strtod(argv[4], nullptr);
	if (frames == 0 || frames > 100000)
		return usage();

	if (write) {
		std::ofstream out(path, std::ios::binary);
		for (unsigned long n = 0; n < frames && out; n++) {
			auto f = xmb::test_pattern::frame(kYU12, w, h, n);
			out.write(reinterpret_cast<const char *>(f.data()), std::streamsize(f.size()));
		}
		return out ? 0 : 1;
	}

	std::ifstream in(path, std::ios::binary);
	if (!in) {
		std::fprintf(stderr, "xmb-pattern-psnr: %s: cannot open\n", path);
		return 1;
	}
	double worst = INFINITY, sum = 0;
	for (unsigned long n = 0; n < frames; n++) {
		auto ref = xmb::test_pattern::frame(kYU12, w, h, n);
		std::vector<uint8_t> got(ref.size());
		if (!in.read(reinterpret_cast<char *>(got.data()), std::streamsize(got.size()))) {
			std::fprintf(stderr, "xmb-pattern-psnr: %s: only %lu whole %ux%u frames\n", path, n, w, h);
			return 1;
		}
		double se = 0;
		for (size_t i = 0; i < ref.size(); i++) {
			const double d = double(got[i]) - double(ref[i]);
			se += d * d;
		}
		const double mse = se / double(ref.size());
		const double db = mse == 0 ? INFINITY : 10.0 * std::log10(255.0 * 255.0 / mse);
		worst = std::min(worst, db);
		sum += std::isinf(db) ? 99.0 : db;
		std::printf("frame %lu: PSNR %.2f dB\n", n, db);
	}
	std::printf("PSNR over %lu frames: min %.2f dB, mean %.2f dB (bound %.1f dB)\n", frames, worst,
		    sum / double(frames), minDb);
	return worst >= minDb ? 0 : 1;
}
