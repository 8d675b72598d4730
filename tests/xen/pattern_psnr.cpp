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

/* PSNR of \a got against \a ref over the first \a n bytes (all of them if n = 0). */
double psnr(const std::vector<uint8_t> &got, const std::vector<uint8_t> &ref, size_t n = 0)
{
	if (n == 0)
		n = ref.size();
	double se = 0;
	for (size_t i = 0; i < n; i++) {
		const double d = double(got[i]) - double(ref[i]);
		se += d * d;
	}
	const double mse = se / double(n);
	return mse == 0 ? INFINITY : 10.0 * std::log10(255.0 * 255.0 / mse);
}

bool parseSize(const char *s, uint32_t &w, uint32_t &h)
{
	return std::sscanf(s, "%ux%u", &w, &h) == 2 && w > 0 && h > 0 && w <= 8192 && h <= 8192;
}

int usage()
{
	std::fprintf(stderr, "usage: xmb-pattern-psnr FILE WxH FRAMES MIN_DB [MAX_SHIFT]\n"
			     "       xmb-pattern-psnr --write FILE WxH FRAMES\n");
	return 2;
}

} /* namespace */

int main(int argc, char **argv)
{
	if (argc != 5 && argc != 6)
		return usage();
	const bool write = std::string(argv[1]) == "--write";
	if (write && argc != 5)
		return usage();
	const char *path = write ? argv[2] : argv[1];
	uint32_t w = 0, h = 0;
	if (!parseSize(write ? argv[3] : argv[2], w, h))
		return usage();
	const unsigned long frames = std::strtoul(write ? argv[4] : argv[3], nullptr, 10);
	const double minDb = write ? 0.0 : std::strtod(argv[4], nullptr);
	const unsigned long maxShift = argc == 6 ? std::strtoul(argv[5], nullptr, 10) : 0;
	if (frames == 0 || frames > 100000 || maxShift >= frames)
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
	std::vector<std::vector<uint8_t>> refs, got;
	for (unsigned long n = 0; n < frames; n++) {
		refs.push_back(xmb::test_pattern::frame(kYU12, w, h, n));
		got.emplace_back(refs.back().size());
		if (!in.read(reinterpret_cast<char *>(got.back().data()), std::streamsize(got.back().size()))) {
			std::fprintf(stderr, "xmb-pattern-psnr: %s: only %lu whole %ux%u frames\n", path, n, w, h);
			return 1;
		}
	}
	/*
	 * Decoded frame k is pattern frame k + shift: 0 unless the decoder is
	 * known to lose leading frames (MAX_SHIFT); the shift with the best mean
	 * wins, and every frame compared must reach MIN_DB.
	 */
	unsigned long bestShift = 0;
	double bestMean = -1;
	for (unsigned long shift = 0; shift <= maxShift; shift++) {
		double sum = 0;
		for (unsigned long k = 0; k + shift < frames; k++) {
			double db = psnr(got[k], refs[k + shift]);
			sum += std::isinf(db) ? 99.0 : db;
		}
		if (double mean = sum / double(frames - shift); mean > bestMean)
			bestMean = mean, bestShift = shift;
	}
	double worst = INFINITY;
	for (unsigned long k = 0; k + bestShift < frames; k++) {
		const auto &ref = refs[k + bestShift];
		const double db = psnr(got[k], ref);
		worst = std::min(worst, db);
		/* When a frame is off, say what it resembles: another frame (order), or none (damage). */
		unsigned long best = k + bestShift;
		double bestDb = db;
		for (unsigned long m = 0; m < frames; m++)
			if (double d = psnr(got[k], refs[m]); d > bestDb)
				best = m, bestDb = d;
		std::printf("decoded frame %lu = pattern frame %lu: PSNR %.2f dB (luma %.2f dB)", k, k + bestShift,
			    db, psnr(got[k], ref, size_t(w) * h));
		if (best != k + bestShift)
			std::printf(", closer to pattern frame %lu: %.2f dB", best, bestDb);
		std::printf("\n");
	}
	std::printf("PSNR over %lu frames (decoded frame k = pattern frame k + %lu): min %.2f dB, mean %.2f dB "
		    "(bound %.1f dB)\n",
		    frames - bestShift, bestShift, worst, bestMean, minDb);
	return worst >= minDb ? 0 : 1;
}
