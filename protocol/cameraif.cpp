/* SPDX-License-Identifier: MIT */
#include "protocol/cameraif.h"

#include <linux/videodev2.h>

#include <array>
#include <cstdio>
#include <cstring>

extern "C" {
#include <xen/errno.h>
}

namespace xmb::proto {

namespace {

Error invalid(const std::string &what)
{
	return { -XEN_EINVAL, what };
}

constexpr std::array<const char *, XENCAMERA_MAX_CTRL> kCtrlNames = {
	XENCAMERA_CTRL_BRIGHTNESS_STR,
	XENCAMERA_CTRL_CONTRAST_STR,
	XENCAMERA_CTRL_SATURATION_STR,
	XENCAMERA_CTRL_HUE_STR,
};

} /* namespace */

/**
 * \brief Decode and check one cameraif request.
 * \param raw The request, already copied out of the shared ring
 *
 * Reserved and unused bytes are ignored, deliberately: Linux's
 * xen-camera-front fills only id, operation and the body it uses, so the
 * rest of a ring slot still holds the previous response (a non-zero status
 * in the reserved header bytes).  Nothing is read from them, so accepting
 * them cannot hurt Dom0; our own requests and responses zero them.
 */
Result<CameraRequest> decodeCameraRequest(const xencamera_req &raw)
{
	CameraRequest r;
	r.id = raw.id;
	r.op = raw.operation;

	switch (raw.operation) {
	case XENCAMERA_OP_CONFIG_SET:
	case XENCAMERA_OP_CONFIG_VALIDATE: {
		const auto &c = raw.req.config;
		if (!c.width || !c.height || c.width > kMaxWidth || c.height > kMaxHeight) {
			char buf[96];
			std::snprintf(buf, sizeof(buf), "%ux%u outside 1x1..%ux%u",
				      c.width, c.height, kMaxWidth, kMaxHeight);
			return invalid(cameraOpName(raw.operation) + ": size " + buf);
		}
		r.body = CameraRequest::Config{ c.pixel_format, c.width, c.height };
		break;
	}
	case XENCAMERA_OP_FRAME_RATE_SET: {
		const auto &f = raw.req.frame_rate;
		/* A zero term is V4L2's "use the default" (Linux's driver sends
		 * 0/0, and 1/0 for S_PARM 0/1): decoded as it is; the backend
		 * keeps its rate.  S_PARM adjusts, it does not fail. */
		r.body = CameraRequest::FrameRate{ f.frame_rate_numer, f.frame_rate_denom };
		break;
	}
	case XENCAMERA_OP_BUF_REQUEST:
		r.body = CameraRequest::BufRequest{ raw.req.buf_request.num_bufs };
		break;
	case XENCAMERA_OP_BUF_CREATE: {
		const auto &b = raw.req.buf_create;
		if (b.gref_directory == 0)
			return invalid("BUF_CREATE: gref_directory is 0 (never a valid PV grant)");
		CameraRequest::BufCreate bc{};
		bc.index = b.index;
		std::memcpy(bc.planeOffset, b.plane_offset, sizeof(bc.planeOffset));
		bc.grefDirectory = b.gref_directory;
		r.body = bc;
		break;
	}
	case XENCAMERA_OP_BUF_DESTROY:
	case XENCAMERA_OP_BUF_QUEUE:
	case XENCAMERA_OP_BUF_DEQUEUE:
		r.body = CameraRequest::Index{ raw.req.index.index };
		break;
	case XENCAMERA_OP_CTRL_ENUM:
		if (raw.req.index.index >= XENCAMERA_MAX_CTRL)
			return invalid("CTRL_ENUM: index " + std::to_string(raw.req.index.index) +
				       " >= " + std::to_string(XENCAMERA_MAX_CTRL));
		r.body = CameraRequest::Index{ raw.req.index.index };
		break;
	case XENCAMERA_OP_CTRL_SET: {
		const auto &v = raw.req.ctrl_value;
		if (v.type >= XENCAMERA_MAX_CTRL)
			return invalid("CTRL_SET: unknown control type " + std::to_string(v.type));
		r.body = CameraRequest::CtrlSet{ v.type, v.value };
		break;
	}
	case XENCAMERA_OP_CTRL_GET:
		if (raw.req.get_ctrl.type >= XENCAMERA_MAX_CTRL)
			return invalid("CTRL_GET: unknown control type " +
				       std::to_string(raw.req.get_ctrl.type));
		r.body = CameraRequest::CtrlGet{ raw.req.get_ctrl.type };
		break;
	case XENCAMERA_OP_CONFIG_GET:
	case XENCAMERA_OP_BUF_GET_LAYOUT:
	case XENCAMERA_OP_STREAM_START:
	case XENCAMERA_OP_STREAM_STOP:
		break;
	default:
		return Error{ -XEN_ENOSYS, cameraOpName(raw.operation) + ": unknown operation" };
	}
	return r;
}

std::string cameraOpName(uint8_t op)
{
	static constexpr const char *names[] = {
		"CONFIG_SET", "CONFIG_GET", "CONFIG_VALIDATE", "FRAME_RATE_SET",
		"BUF_GET_LAYOUT", "BUF_REQUEST", "BUF_CREATE", "BUF_DESTROY",
		"BUF_QUEUE", "BUF_DEQUEUE", "CTRL_ENUM", "CTRL_SET", "CTRL_GET",
		"STREAM_START", "STREAM_STOP",
	};
	if (op < std::size(names))
		return names[op];
	char buf[16];
	std::snprintf(buf, sizeof(buf), "op 0x%02x", op);
	return buf;
}

const char *cameraCtrlName(uint8_t type)
{
	return type < kCtrlNames.size() ? kCtrlNames[type] : nullptr;
}

std::optional<uint8_t> cameraCtrlFromName(std::string_view name)
{
	for (size_t i = 0; i < kCtrlNames.size(); i++)
		if (name == kCtrlNames[i])
			return static_cast<uint8_t>(i);
	return std::nullopt;
}

xencamera_resp makeCameraResponse(uint16_t id, uint8_t op, int32_t status)
{
	xencamera_resp resp;
	/* memset, not {}: padding must be zero too (XSA-216 leaked it). */
	std::memset(&resp, 0, sizeof(resp));
	resp.id = id;
	resp.operation = op;
	resp.status = status;
	return resp;
}

xencamera_evt makeFrameAvailEvent(uint16_t id, uint8_t index, uint32_t usedSize, uint32_t seq)
{
	xencamera_evt evt;
	std::memset(&evt, 0, sizeof(evt));
	evt.id = id;
	evt.type = XENCAMERA_EVT_FRAME_AVAIL;
	evt.evt.frame_avail.index = index;
	evt.evt.frame_avail.used_sz = usedSize;
	evt.evt.frame_avail.seq_num = seq;
	return evt;
}

xencamera_evt makeCtrlChangeEvent(uint16_t id, uint8_t type, int64_t value)
{
	xencamera_evt evt;
	std::memset(&evt, 0, sizeof(evt));
	evt.id = id;
	evt.type = XENCAMERA_EVT_CTRL_CHANGE;
	evt.evt.ctrl_value.type = type;
	evt.evt.ctrl_value.value = value;
	return evt;
}

CameraColorimetry cameraColorimetryFromV4L2(uint32_t colorspace, uint32_t xferFunc,
					    uint32_t ycbcrEnc, uint32_t quantization)
{
	CameraColorimetry c;
	switch (colorspace) {
	case V4L2_COLORSPACE_SMPTE170M:
	case V4L2_COLORSPACE_SMPTE240M:
	case V4L2_COLORSPACE_470_SYSTEM_M:
	case V4L2_COLORSPACE_470_SYSTEM_BG: c.colorspace = XENCAMERA_COLORSPACE_SMPTE170M; break;
	case V4L2_COLORSPACE_REC709: c.colorspace = XENCAMERA_COLORSPACE_REC709; break;
	case V4L2_COLORSPACE_JPEG:
	case V4L2_COLORSPACE_RAW:
	case V4L2_COLORSPACE_SRGB: c.colorspace = XENCAMERA_COLORSPACE_SRGB; break;
	case V4L2_COLORSPACE_OPRGB: c.colorspace = XENCAMERA_COLORSPACE_OPRGB; break;
	case V4L2_COLORSPACE_BT2020: c.colorspace = XENCAMERA_COLORSPACE_BT2020; break;
	case V4L2_COLORSPACE_DCI_P3: c.colorspace = XENCAMERA_COLORSPACE_DCI_P3; break;
	default: break;
	}
	switch (xferFunc) {
	case V4L2_XFER_FUNC_709:
	case V4L2_XFER_FUNC_SMPTE240M: c.xferFunc = XENCAMERA_XFER_FUNC_709; break;
	case V4L2_XFER_FUNC_SRGB: c.xferFunc = XENCAMERA_XFER_FUNC_SRGB; break;
	case V4L2_XFER_FUNC_OPRGB: c.xferFunc = XENCAMERA_XFER_FUNC_OPRGB; break;
	case V4L2_XFER_FUNC_NONE: c.xferFunc = XENCAMERA_XFER_FUNC_NONE; break;
	case V4L2_XFER_FUNC_DCI_P3: c.xferFunc = XENCAMERA_XFER_FUNC_DCI_P3; break;
	case V4L2_XFER_FUNC_SMPTE2084: c.xferFunc = XENCAMERA_XFER_FUNC_SMPTE2084; break;
	default: break;
	}
	switch (ycbcrEnc) {
	case V4L2_YCBCR_ENC_601:
	case V4L2_YCBCR_ENC_SYCC: c.ycbcrEnc = XENCAMERA_YCBCR_ENC_601; break;
	case V4L2_YCBCR_ENC_709:
	case V4L2_YCBCR_ENC_SMPTE240M: c.ycbcrEnc = XENCAMERA_YCBCR_ENC_709; break;
	case V4L2_YCBCR_ENC_XV601: c.ycbcrEnc = XENCAMERA_YCBCR_ENC_XV601; break;
	case V4L2_YCBCR_ENC_XV709: c.ycbcrEnc = XENCAMERA_YCBCR_ENC_XV709; break;
	case V4L2_YCBCR_ENC_BT2020: c.ycbcrEnc = XENCAMERA_YCBCR_ENC_BT2020; break;
	case V4L2_YCBCR_ENC_BT2020_CONST_LUM: c.ycbcrEnc = XENCAMERA_YCBCR_ENC_BT2020_CONST_LUM; break;
	default: break;
	}
	switch (quantization) {
	case V4L2_QUANTIZATION_FULL_RANGE: c.quantization = XENCAMERA_QUANTIZATION_FULL_RANGE; break;
	case V4L2_QUANTIZATION_LIM_RANGE: c.quantization = XENCAMERA_QUANTIZATION_LIM_RANGE; break;
	default: break;
	}
	return c;
}

} /* namespace xmb::proto */
