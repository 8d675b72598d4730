/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * cameraif wire handling: the ABI from <xen/io/cameraif.h>, decoded into
 * validated C++ values, and responses/events built fully initialised.
 *
 * Decoding checks only what the bytes alone can tell (known operation,
 * reserved fields, ranges that do not depend on session state).  Checks
 * that need state (index < num_bufs, not streaming...) belong to the
 * session, which works on the decoded copy, never on the ring.
 */

#include <cstdint>
#include <optional>
#include <string>
#include <variant>

extern "C" {
#include <xen/grant_table.h>
#include <xen/io/cameraif.h>
#include <xen/io/ring.h>
}

#include "protocol/result.h"
#include "protocol/event_page.h"
#include "protocol/ring.h"

namespace xmb::proto {

static_assert(sizeof(xencamera_req) == 64, "cameraif requests are 64 octets");
static_assert(sizeof(xencamera_resp) == 64, "cameraif responses are 64 octets");
static_assert(sizeof(xencamera_evt) == 64, "cameraif events are 64 octets");
static_assert(sizeof(xencamera_event_page) == 64);

constexpr size_t kXenPageSize = 4096;

using CameraBackRing = BackRing<xen_cameraif_sring, xencamera_req, xencamera_resp>;
using CameraFrontRing = FrontRing<xen_cameraif_sring, xencamera_req, xencamera_resp>;

/* Limits the backend enforces on sizes a guest asks for (not in the ABI). */
constexpr uint32_t kMaxWidth = 8192;
constexpr uint32_t kMaxHeight = 8192;

/** One decoded request; \a op tells which member of the body is meaningful. */
struct CameraRequest {
	uint16_t id = 0;
	uint8_t op = 0;

	struct Config { uint32_t fourcc, width, height; };
	struct FrameRate { uint32_t num, den; };
	struct BufRequest { uint8_t numBufs; };
	struct BufCreate {
		uint8_t index;
		uint32_t planeOffset[XENCAMERA_MAX_PLANE];
		grant_ref_t grefDirectory;
	};
	struct Index { uint8_t index; };
	struct CtrlSet { uint8_t type; int64_t value; };
	struct CtrlGet { uint8_t type; };
	struct None {};

	std::variant<None, Config, FrameRate, BufRequest, BufCreate, Index, CtrlSet, CtrlGet> body;
};

/**
 * Decode a request already copied out of the ring.  On failure the Error
 * code is the -XEN_E* status to answer with (e.g. -XEN_ENOSYS for an
 * unknown operation, -XEN_EINVAL for a malformed body).
 */
Result<CameraRequest> decodeCameraRequest(const xencamera_req &raw);

/** Name of an operation for logs ("BUF_CREATE"), or "op 0x%02x". */
std::string cameraOpName(uint8_t op);

/** Name of a control type ("brightness") or nullptr if unknown. */
const char *cameraCtrlName(uint8_t type);
std::optional<uint8_t> cameraCtrlFromName(std::string_view name);

/* ---- responses: every byte initialised ---- */
xencamera_resp makeCameraResponse(uint16_t id, uint8_t op, int32_t status);

/* ---- events ---- */
xencamera_evt makeFrameAvailEvent(uint16_t id, uint8_t index, uint32_t usedSize, uint32_t seq);
xencamera_evt makeCtrlChangeEvent(uint16_t id, uint8_t type, int64_t value);

/** A CONFIG response's colour fields (XENCAMERA_COLORSPACE_* etc.). */
struct CameraColorimetry {
	uint32_t colorspace = XENCAMERA_COLORSPACE_DEFAULT;
	uint32_t xferFunc = XENCAMERA_XFER_FUNC_DEFAULT;
	uint32_t ycbcrEnc = XENCAMERA_YCBCR_ENC_IGNORE;
	uint32_t quantization = XENCAMERA_QUANTIZATION_DEFAULT;
};

/**
 * cameraif's values for V4L2's enum v4l2_colorspace, v4l2_xfer_func,
 * v4l2_ycbcr_encoding and v4l2_quantization values (resolved ones: V4L2's
 * DEFAULT maps to cameraif's DEFAULT).  V4L2 values cameraif lacks map to
 * their nearest kin: 470 System M/BG and SMPTE 240M to SMPTE 170M
 * primaries, JPEG and RAW to sRGB, xv/SYCC/240M encodings to 601/709.
 */
CameraColorimetry cameraColorimetryFromV4L2(uint32_t colorspace, uint32_t xferFunc,
					    uint32_t ycbcrEnc, uint32_t quantization);

/** The cameraif event page (in_prod ours, in_cons the guest's): protocol/event_page.h. */
using CameraEventPage = EventPageLayout<xencamera_event_page, xencamera_evt, XENCAMERA_EVENT_PAGE_SIZE>;
static_assert(CameraEventPage::kLength == XENCAMERA_IN_RING_LEN);
static_assert(CameraEventPage::kOffset == XENCAMERA_IN_RING_OFFS);
using EventPageWriter = EventWriter<CameraEventPage>;
using EventPageReader = EventReader<CameraEventPage>;

} /* namespace xmb::proto */
