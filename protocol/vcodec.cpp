/* SPDX-License-Identifier: MIT */
#include "protocol/vcodec.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

extern "C" {
#include <xen/errno.h>
}

#include "protocol/shared_memory.h"

namespace xmb::proto {

namespace {

template<size_t N>
bool allZero(const uint8_t (&bytes)[N])
{
	for (size_t i = 0; i < N; i++)
		if (bytes[i])
			return false;
	return true;
}

Error invalid(uint8_t op, const std::string &what)
{
	return { -XEN_EINVAL, codecOpName(op) + ": " + what };
}

constexpr const char *kCodecNames[] = { nullptr, "vp8", "vp9", "h264", "jpeg", "raw", "hevc", "fwht" };
constexpr const char *kRcNames[] = { "vbr", "cbr", "cqp" };

} /* namespace */

/**
 * \brief Decode and check one vcodec request.
 *
 * Unlike cameraif (where Linux's frontend leaves stale bytes), vcodec is
 * new: every reserved byte, in the header and in the operation's body,
 * must be zero, so a later version can give them a meaning.
 */
Result<CodecRequest> decodeCodecRequest(const xenvcodec_req &raw)
{
	CodecRequest r;
	r.id = raw.id;
	r.op = raw.operation;
	const uint8_t op = raw.operation;

	if (op > XENVCODEC_OP_MAX)
		return Error{ -XEN_ENOSYS, codecOpName(op) + ": unknown operation" };
	if (!allZero(raw.reserved))
		return invalid(op, "reserved header bytes not zero");

	switch (op) {
	case XENVCODEC_OP_OPEN: {
		const auto &c = raw.req.config;
		if (!allZero(c.reserved))
			return invalid(op, "reserved bytes not zero");
		if (c.codec == 0 || c.codec > XENVCODEC_CODEC_MAX)
			return invalid(op, "unknown codec " + std::to_string(c.codec));
		if (!c.width || !c.height || c.width > kCodecMaxWidth || c.height > kCodecMaxHeight ||
		    (c.width & 1) || (c.height & 1)) {
			char buf[96];
			std::snprintf(buf, sizeof(buf), "size %ux%u: not even within 2x2..%ux%u", c.width,
				      c.height, kCodecMaxWidth, kCodecMaxHeight);
			return invalid(op, buf);
		}
		/* Terms bounded too: encoders take them as int (GStreamer fractions, V4L2 S_PARM). */
		if (!c.frame_rate_numer || !c.frame_rate_denom ||
		    c.frame_rate_numer / c.frame_rate_denom > 1000 ||
		    c.frame_rate_numer > kMaxFrameRateTerm || c.frame_rate_denom > kMaxFrameRateTerm)
			return invalid(op, "frame rate " + std::to_string(c.frame_rate_numer) + "/" +
						   std::to_string(c.frame_rate_denom) + " outside (0, 1000] or a term above " +
						   std::to_string(kMaxFrameRateTerm));
		if (c.rc_mode > XENVCODEC_RC_MAX)
			return invalid(op, "unknown rate-control mode " + std::to_string(c.rc_mode));
		/* raw: no encoder, so no rate control to check */
		if (c.codec != XENVCODEC_CODEC_RAW && c.rc_mode != XENVCODEC_RC_CQP &&
		    (c.bitrate < 1000 || c.bitrate > 1000000000u))
			return invalid(op, "bitrate " + std::to_string(c.bitrate) + " outside 1000..10^9");
		if (c.rc_mode == XENVCODEC_RC_CQP && c.qp > 100)
			return invalid(op, "qp " + std::to_string(c.qp) + " > 100");
		if (c.gop > 100000)
			return invalid(op, "gop " + std::to_string(c.gop) + " > 100000");
		r.body = CodecRequest::Open{ c.codec, c.raw_fourcc, c.width, c.height,
					     c.frame_rate_numer, c.frame_rate_denom, c.bitrate, c.gop,
					     c.rc_mode, c.qp, c.profile, c.level };
		break;
	}
	case XENVCODEC_OP_BUF_CREATE: {
		const auto &b = raw.req.buf_create;
		if (!allZero(b.reserved) || !allZero(b.reserved2))
			return invalid(op, "reserved bytes not zero");
		if (b.type > XENVCODEC_BUF_OUTPUT)
			return invalid(op, "unknown buffer type " + std::to_string(b.type));
		if (b.index >= XENVCODEC_MAX_BUFFERS)
			return invalid(op, "index " + std::to_string(b.index) + " >= " +
						   std::to_string(XENVCODEC_MAX_BUFFERS));
		if (b.gref_directory == 0)
			return invalid(op, "gref_directory is 0 (never a valid PV grant)");
		if (b.size == 0)
			return invalid(op, "size 0");
		CodecRequest::BufCreate bc{};
		bc.type = b.type;
		bc.index = b.index;
		bc.size = b.size;
		bc.grefDirectory = b.gref_directory;
		std::memcpy(bc.planeOffset, b.plane_offset, sizeof(bc.planeOffset));
		if (b.type == XENVCODEC_BUF_OUTPUT)
			for (uint32_t o : bc.planeOffset)
				if (o)
					return invalid(op, "plane offsets on an OUTPUT buffer");
		r.body = bc;
		break;
	}
	case XENVCODEC_OP_BUF_DESTROY:
	case XENVCODEC_OP_QUEUE_OUT: {
		const auto &b = raw.req.buf_index;
		if (!allZero(b.reserved))
			return invalid(op, "reserved bytes not zero");
		if (b.type > XENVCODEC_BUF_OUTPUT)
			return invalid(op, "unknown buffer type " + std::to_string(b.type));
		if (op == XENVCODEC_OP_QUEUE_OUT && b.type != XENVCODEC_BUF_OUTPUT)
			return invalid(op, "type must be OUTPUT");
		if (b.index >= XENVCODEC_MAX_BUFFERS)
			return invalid(op, "index " + std::to_string(b.index) + " >= " +
						   std::to_string(XENVCODEC_MAX_BUFFERS));
		r.body = CodecRequest::BufIndex{ b.type, b.index };
		break;
	}
	case XENVCODEC_OP_QUEUE_RAW: {
		const auto &q = raw.req.queue_raw;
		if (!allZero(q.reserved) || !allZero(q.reserved2))
			return invalid(op, "reserved bytes not zero");
		if (q.flags & ~XENVCODEC_FRAME_FLAGS_ALL)
			return invalid(op, "unknown flags 0x" + std::to_string(q.flags));
		if (q.index >= XENVCODEC_MAX_BUFFERS)
			return invalid(op, "index " + std::to_string(q.index) + " >= " +
						   std::to_string(XENVCODEC_MAX_BUFFERS));
		r.body = CodecRequest::QueueRaw{ q.index, q.flags, q.timestamp };
		break;
	}
	case XENVCODEC_OP_SET_BITRATE: {
		const auto &b = raw.req.bitrate;
		if (!allZero(b.reserved))
			return invalid(op, "reserved bytes not zero");
		if (b.bitrate < 1000 || b.bitrate > 1000000000u)
			return invalid(op, "bitrate " + std::to_string(b.bitrate) + " outside 1000..10^9");
		r.body = CodecRequest::Bitrate{ b.bitrate };
		break;
	}
	case XENVCODEC_OP_GET_LAYOUT:
	case XENVCODEC_OP_FORCE_KEY:
	case XENVCODEC_OP_DRAIN:
	case XENVCODEC_OP_STOP:
		if (!allZero(raw.req.reserved))
			return invalid(op, "body not zero");
		break;
	}
	return r;
}

std::string codecOpName(uint8_t op)
{
	static constexpr const char *names[] = {
		"OPEN", "GET_LAYOUT", "BUF_CREATE", "BUF_DESTROY", "QUEUE_RAW",
		"QUEUE_OUT", "FORCE_KEY", "SET_BITRATE", "DRAIN", "STOP",
	};
	if (op < std::size(names))
		return names[op];
	char buf[16];
	std::snprintf(buf, sizeof(buf), "op 0x%02x", op);
	return buf;
}

const char *codecName(uint32_t codec)
{
	return codec < std::size(kCodecNames) ? kCodecNames[codec] : nullptr;
}

std::optional<uint32_t> codecFromName(std::string_view name)
{
	for (uint32_t i = 1; i < std::size(kCodecNames); i++)
		if (name == kCodecNames[i])
			return i;
	return std::nullopt;
}

const char *rcModeName(uint8_t mode)
{
	return mode < std::size(kRcNames) ? kRcNames[mode] : nullptr;
}

std::optional<uint8_t> rcModeFromName(std::string_view name)
{
	for (uint8_t i = 0; i < std::size(kRcNames); i++)
		if (name == kRcNames[i])
			return i;
	return std::nullopt;
}

xenvcodec_req makeCodecRequest(uint16_t id, uint8_t op)
{
	xenvcodec_req r;
	std::memset(&r, 0, sizeof(r));
	r.id = id;
	r.operation = op;
	return r;
}

xenvcodec_resp makeCodecResponse(uint16_t id, uint8_t op, int32_t status)
{
	xenvcodec_resp r;
	std::memset(&r, 0, sizeof(r)); /* padding too (XSA-216) */
	r.id = id;
	r.operation = op;
	r.status = status;
	return r;
}

static xenvcodec_evt makeEvent(uint16_t id, uint8_t type)
{
	xenvcodec_evt e;
	std::memset(&e, 0, sizeof(e));
	e.id = id;
	e.type = type;
	return e;
}

xenvcodec_evt makeInputDoneEvent(uint16_t id, uint8_t index, uint64_t timestamp)
{
	xenvcodec_evt e = makeEvent(id, XENVCODEC_EVT_INPUT_DONE);
	e.evt.input_done.index = index;
	e.evt.input_done.timestamp = timestamp;
	return e;
}

xenvcodec_evt makeBitstreamEvent(uint16_t id, uint8_t index, uint32_t bytes, bool key,
				 uint64_t timestamp, uint32_t seq)
{
	xenvcodec_evt e = makeEvent(id, XENVCODEC_EVT_BITSTREAM_READY);
	e.evt.bitstream.index = index;
	e.evt.bitstream.flags = key ? XENVCODEC_BS_FLAG_KEY : 0;
	e.evt.bitstream.bytes_used = bytes;
	e.evt.bitstream.timestamp = timestamp;
	e.evt.bitstream.seq = seq;
	return e;
}

xenvcodec_evt makeCodecErrorEvent(uint16_t id, int32_t status)
{
	xenvcodec_evt e = makeEvent(id, XENVCODEC_EVT_ERROR);
	e.evt.error.status = status;
	return e;
}

xenvcodec_evt makeDrainedEvent(uint16_t id)
{
	return makeEvent(id, XENVCODEC_EVT_DRAINED);
}

int fuzzCodecRequests(const uint8_t *data, size_t size)
{
	for (size_t off = 0; off + sizeof(xenvcodec_req) <= size; off += sizeof(xenvcodec_req)) {
		auto raw = copyOut<xenvcodec_req>(data + off);
		auto r = decodeCodecRequest(raw);
		if (!r) {
			/* Errors are always a negative Xen errno with a message. */
			if (r.error().code >= 0 || r.error().message.empty())
				std::abort();
			if (raw.operation <= XENVCODEC_OP_MAX && r.error().code == -XEN_ENOSYS)
				std::abort();
			continue;
		}
		if (r->op != raw.operation || r->id != raw.id || r->op > XENVCODEC_OP_MAX)
			std::abort();
		if (auto *o = std::get_if<CodecRequest::Open>(&r->body)) {
			if (!o->width || o->width > kCodecMaxWidth || !o->height ||
			    o->height > kCodecMaxHeight || !o->rateDen || !codecName(o->codec))
				std::abort();
		} else if (auto *b = std::get_if<CodecRequest::BufCreate>(&r->body)) {
			if (b->index >= XENVCODEC_MAX_BUFFERS || b->type > 1 || !b->grefDirectory || !b->size)
				std::abort();
		} else if (auto *q = std::get_if<CodecRequest::QueueRaw>(&r->body)) {
			if (q->index >= XENVCODEC_MAX_BUFFERS || (q->flags & ~XENVCODEC_FRAME_FLAGS_ALL))
				std::abort();
		} else if (auto *i = std::get_if<CodecRequest::BufIndex>(&r->body)) {
			if (i->index >= XENVCODEC_MAX_BUFFERS || i->type > 1)
				std::abort();
		}
		/* Round trip: a response built for it is fully defined. */
		xenvcodec_resp resp = makeCodecResponse(r->id, r->op, 0);
		if (resp.reserved != 0)
			std::abort();
	}
	return 0;
}

} /* namespace xmb::proto */
