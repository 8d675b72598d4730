/* SPDX-License-Identifier: MIT */
#pragma once

/* PNG files through libpng: RGB24 out (snapshots), and back in (tests). */

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "protocol/result.h"

namespace xmb::image {

/** Write \a rgb (width*height*3 bytes, packed rows) as an 8-bit RGB PNG. */
Status writePng(const std::string &path, uint32_t width, uint32_t height,
		std::span<const uint8_t> rgb);

struct DecodedImage {
	uint32_t width = 0;
	uint32_t height = 0;
	std::vector<uint8_t> rgb; /* packed RGB24 */
};

/** Read a PNG as RGB24 (palette/grey/alpha/16-bit are converted). */
Result<DecodedImage> readPng(const std::string &path);

} /* namespace xmb::image */
