/* SPDX-License-Identifier: MIT */
/* PNG through libpng's simplified API (no setjmp in our code). */
#include "bridge/image/png_writer.h"

#include <cerrno>
#include <cstring>

#include <png.h>

namespace xmb::image {

Status writePng(const std::string &path, uint32_t width, uint32_t height,
		std::span<const uint8_t> rgb)
{
	if (!width || !height || rgb.size() != size_t{ width } * height * 3)
		return Error{ -EINVAL, path + ": " + std::to_string(rgb.size()) + " bytes for a " +
					       std::to_string(width) + "x" + std::to_string(height) +
					       " RGB image" };
	png_image img;
	std::memset(&img, 0, sizeof(img));
	img.version = PNG_IMAGE_VERSION;
	img.width = width;
	img.height = height;
	img.format = PNG_FORMAT_RGB;
	if (!png_image_write_to_file(&img, path.c_str(), 0, rgb.data(),
				     static_cast<png_int_32>(width * 3), nullptr)) {
		std::string msg = img.message;
		png_image_free(&img);
		return Error{ -EIO, path + ": writing PNG: " + msg };
	}
	return {};
}

Result<DecodedImage> readPng(const std::string &path)
{
	png_image img;
	std::memset(&img, 0, sizeof(img));
	img.version = PNG_IMAGE_VERSION;
	if (!png_image_begin_read_from_file(&img, path.c_str())) {
		std::string msg = img.message;
		png_image_free(&img);
		return Error{ -EIO, path + ": reading PNG: " + msg };
	}
	img.format = PNG_FORMAT_RGB;
	DecodedImage out;
	out.width = img.width;
	out.height = img.height;
	out.rgb.resize(PNG_IMAGE_SIZE(img));
	if (!png_image_finish_read(&img, nullptr, out.rgb.data(), 0, nullptr)) {
		std::string msg = img.message;
		png_image_free(&img);
		return Error{ -EIO, path + ": decoding PNG: " + msg };
	}
	return out;
}

} /* namespace xmb::image */
