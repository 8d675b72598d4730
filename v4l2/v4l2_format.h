/* SPDX-License-Identifier: MIT */
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include <linux/videodev2.h>

#include "v4l2/media_types.h"

namespace xmb {

/**
 * \brief A V4L2 format independent of single- vs multi-planar buffer types.
 *
 * Callers fill fourcc/size (and for OUTPUT queues sizeImage); drivers fill
 * the rest.  toV4L2()/fromV4L2() translate to the buffer type in use.
 */
struct V4L2Format {
	uint32_t fourcc = 0;
	uint32_t width = 0;
	uint32_t height = 0;
	uint32_t field = V4L2_FIELD_NONE;
	uint32_t colorspace = 0;
	uint32_t ycbcrEnc = 0;
	uint32_t quantization = 0;
	uint32_t xferFunc = 0;
	unsigned numPlanes = 1; /**< memory planes (buffers per frame) */
	struct Plane {
		uint32_t bytesPerLine = 0;
		uint32_t sizeImage = 0;
	};
	std::array<Plane, VIDEO_MAX_PLANES> planes{};

	[[nodiscard]] std::string toString() const;
	/** Guest layout when the format has one memory plane. */
	[[nodiscard]] FrameLayout frameLayout() const;
};

bool isMultiplanarType(uint32_t bufType);
bool isOutputType(uint32_t bufType);
void toV4L2(const V4L2Format &f, uint32_t bufType, v4l2_format &out);
V4L2Format fromV4L2(const v4l2_format &f);

} /* namespace xmb */
