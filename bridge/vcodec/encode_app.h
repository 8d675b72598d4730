/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The guest encoding application (xmb-encode-guest), as a library so the
 * tests run exactly what the CLI runs: raw frames from a file or the test
 * pattern, encoded by Dom0 through vcodec, written as a playable file:
 *   vp8/vp9 -> IVF (32-byte file header, 12-byte frame headers)
 *   h264    -> Annex-B byte stream (.h264)
 *   jpeg    -> concatenated JPEG images (.mjpeg: "jpegparse ! jpegdec" plays it)
 */

#include <cstdint>
#include <cstdio>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "bridge/vcodec/codec_frontend.h"

namespace xmb::vcodec {

/** Writes encoded frames into a container file. */
class ContainerWriter
{
public:
	~ContainerWriter();
	/** \a codec XENVCODEC_CODEC_*; IVF for vp8/vp9, raw concatenation otherwise. */
	Status open(const std::string &path, uint32_t codec, uint32_t width, uint32_t height,
		    uint32_t rateNum, uint32_t rateDen);
	Status write(const uint8_t *data, size_t size, uint64_t pts);
	Status close(); /* patches the IVF frame count */

private:
	FILE *f_ = nullptr;
	bool ivf_ = false;
	uint32_t frames_ = 0;
};

struct EncodeOptions {
	std::string codec = "vp8";
	uint32_t rawFourcc = 0x32315559; /* 'YU12' */
	uint32_t width = 640, height = 480;
	uint32_t rateNum = 30, rateDen = 1;
	uint32_t frames = 60;
	std::string rc = "vbr";
	uint32_t bitrate = 2000000;
	uint8_t qp = 85; /* jpeg quality / vpx quantiser (cqp) */
	uint32_t gop = 0;
	uint8_t profile = 0;
	uint8_t buffers = 4; /* per set */
	std::string input;   /* raw file (tightly packed frames); empty: test pattern */
	std::string output;  /* empty: no file */
	std::vector<uint32_t> keyFrames;	       /* frame numbers to force as key frames */
	std::optional<std::pair<uint32_t, uint32_t>> bitrateAt; /* at frame N, set bitrate B */
	bool drainAtEnd = true;
};

struct EncodedInfo {
	uint32_t seq = 0;
	uint64_t timestamp = 0;
	uint32_t bytes = 0;
	bool key = false;
};

struct EncodeResult {
	uint32_t framesIn = 0;
	std::vector<EncodedInfo> frames; /* in bitstream order */
	uint64_t bytes = 0;
	double seconds = 0;
	double fps = 0;
	bool drained = false;
	uint32_t errors = 0;
};

/** Run the whole encode on a connected frontend.  \a onBitstream sees each frame's bytes. */
Result<EncodeResult> runEncode(CodecFrontend &fe, const EncodeOptions &opt,
			       const std::function<void(std::span<const uint8_t>, const EncodedInfo &)>
				       &onBitstream = {});

/** "frames 60, 24.1 fps, 123456 bytes, 2 key frames..." */
std::string formatResult(const EncodeResult &r, const EncodeOptions &opt);

} /* namespace xmb::vcodec */
