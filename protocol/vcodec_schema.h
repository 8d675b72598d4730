/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The vcodec XenStore schema (docs/vcodec.md): what the backend/toolstack
 * writes into the frontend directory (capabilities) and what the frontend
 * publishes (transport).  Parsed strictly: the frontend directory is the
 * guest's, so everything in it is hostile.  Errors name key and value.
 *
 *   codecs                       "vp8,vp9,jpeg"
 *   codec/<name>/raw-formats     "YU12,NV12"         V4L2 FOURCC labels
 *   codec/<name>/rc-modes        "vbr,cbr,cqp"
 *   codec/<name>/profiles        "constrained-baseline"  index = config.profile
 *   codec/<name>/levels          "0,31,40"           h264 level_idc; 0 = auto
 *   min-size / max-size          "16x16" / "4096x4096"
 *   max-buffers                  "8"                 per buffer set
 *   max-bitrate                  "100000000"
 *   be-alloc                     "1"   optional: Dom0 allocates the buffers and
 *                                      grants them (cameraif's be-alloc rules)
 *   input-dmabuf                 "1"   optional: Dom0 hands the guest's INPUT
 *                                      pages to its encoder as a dma-buf
 *                                      (gntdev exp_from_refs, which maps grants
 *                                      writable): grant INPUT pages writable.
 *                                      Dom0 still never writes them.
 */

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "protocol/result.h"
#include "protocol/xenstore_schema.h"

namespace xmb::proto {

constexpr size_t kMaxCodecs = 8;
constexpr size_t kMaxCodecListItems = 16;

struct CodecCaps {
	uint32_t codec = 0; /* XENVCODEC_CODEC_* */
	std::vector<uint32_t> rawFormats;
	std::vector<uint8_t> rcModes;
	std::vector<std::string> profiles;
	std::vector<uint32_t> levels;
	bool operator==(const CodecCaps &) const = default;
};

struct VcodecConfig {
	std::vector<CodecCaps> codecs;
	uint32_t minWidth = 0, minHeight = 0, maxWidth = 0, maxHeight = 0;
	uint8_t maxBuffers = 0;
	uint32_t maxBitrate = 0;
	bool beAlloc = false; /**< Dom0 allocates INPUT/OUTPUT buffers and fills the guest's directory */
	bool inputDmaBuf = false; /**< Dom0 imports INPUT pages as dma-bufs: the guest grants them writable */
	bool operator==(const VcodecConfig &) const = default;
	[[nodiscard]] const CodecCaps *find(uint32_t codec) const;
};

/** Same keys as cameraif's transport (version, req-ring-ref, req-event-channel, evt-...). */
struct VcodecTransport {
	std::string version;
	uint32_t reqRingRef = 0;
	uint32_t reqEventChannel = 0;
	uint32_t evtRingRef = 0;
	uint32_t evtEventChannel = 0;
	bool operator==(const VcodecTransport &) const = default;
};

Result<VcodecConfig> parseVcodecConfig(const XsView &dir);
std::map<std::string, std::string> formatVcodecConfig(const VcodecConfig &config);

Result<VcodecTransport> parseVcodecTransport(const XsView &dir,
					     const std::vector<std::string> &supportedVersions);
std::map<std::string, std::string> formatVcodecTransport(const VcodecTransport &t);

} /* namespace xmb::proto */
