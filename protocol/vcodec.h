/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * vcodec: a para-virtual video ENCODER, guest -> Dom0 (docs/vcodec.md).
 *
 * Designed in cameraif's style: XenBus device "vcodec", protocol version
 * "1", one request ring page (DEFINE_RING_TYPES) and one event page, fixed
 * 64-octet packets, buffers described by gref directories (the same form as
 * cameraif's, see gref_directory.h).  Two buffer sets: INPUT (raw frames,
 * read by Dom0 in place: never copied) and OUTPUT (bitstream, written by
 * Dom0).  All integers little-endian as the guest's native ABI on x86/arm.
 *
 * This header holds the C ABI (xenvcodec_*) and its pure C++ handling:
 * decode (single fetch already done by the ring), responses and events
 * built from zeroed copies, and event-page producer/consumer.
 */

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <variant>

extern "C" {
#include <xen/grant_table.h>
#include <xen/io/ring.h>
}

#include "protocol/result.h"
#include "protocol/event_page.h"
#include "protocol/ring.h"

/* ------------------------------------------------------------------------- */
/* The ABI                                                                    */

#define XENVCODEC_DRIVER_NAME "vcodec"
#define XENVCODEC_PROTOCOL_VERSION "1"

/* Codecs (the bitstream of OUTPUT buffers). */
#define XENVCODEC_CODEC_VP8 1
#define XENVCODEC_CODEC_VP9 2
#define XENVCODEC_CODEC_H264 3
#define XENVCODEC_CODEC_JPEG 4 /* one baseline JFIF image per frame */
/*
 * No bitstream: the raw frames are consumed in Dom0 (a Dom0 GStreamer
 * pipeline, xmbguestsrc).  OUTPUT buffers are never filled; DRAINED comes
 * once every frame queued before DRAIN was handed over; rc/bitrate ignored.
 */
#define XENVCODEC_CODEC_RAW 5
#define XENVCODEC_CODEC_HEVC 6 /* H.265 Annex-B byte stream, one access unit per buffer */
#define XENVCODEC_CODEC_FWHT 7 /* the kernel's FWHT (vicodec): one compressed frame per buffer */
#define XENVCODEC_CODEC_MAX 7

/* Rate-control modes. */
#define XENVCODEC_RC_VBR 0 /* target bitrate, variable */
#define XENVCODEC_RC_CBR 1 /* target bitrate, constant */
#define XENVCODEC_RC_CQP 2 /* constant quantiser (qp); JPEG: quality 1..100 */
#define XENVCODEC_RC_MAX 2

/* Buffer sets. */
#define XENVCODEC_BUF_INPUT 0  /* raw frames: guest writes, Dom0 reads */
#define XENVCODEC_BUF_OUTPUT 1 /* bitstream: Dom0 writes, guest reads */

#define XENVCODEC_MAX_PLANE 4
#define XENVCODEC_MAX_BUFFERS 32 /* per set; the published max-buffers may be lower */

/* Operations. */
#define XENVCODEC_OP_OPEN 0x00	      /* set the session configuration */
#define XENVCODEC_OP_GET_LAYOUT 0x01  /* raw frame + bitstream buffer layout */
#define XENVCODEC_OP_BUF_CREATE 0x02  /* type, index, gref directory */
#define XENVCODEC_OP_BUF_DESTROY 0x03 /* type, index */
#define XENVCODEC_OP_QUEUE_RAW 0x04   /* index, timestamp, flags */
#define XENVCODEC_OP_QUEUE_OUT 0x05   /* index */
#define XENVCODEC_OP_FORCE_KEY 0x06   /* next queued raw frame becomes a key frame */
#define XENVCODEC_OP_SET_BITRATE 0x07 /* bitrate, on the fly */
#define XENVCODEC_OP_DRAIN 0x08	      /* flush: EVT_DRAINED once all bitstream is out */
#define XENVCODEC_OP_STOP 0x09	      /* drop everything in flight, back to OPENed */
#define XENVCODEC_OP_MAX 0x09

/* QUEUE_RAW flags. */
#define XENVCODEC_FRAME_FLAG_KEY 0x01 /* encode this frame as a key frame */
#define XENVCODEC_FRAME_FLAGS_ALL 0x01

/* Events. */
#define XENVCODEC_EVT_INPUT_DONE 0x00	   /* raw buffer given back */
#define XENVCODEC_EVT_BITSTREAM_READY 0x01 /* output buffer holds one frame's bitstream */
#define XENVCODEC_EVT_ERROR 0x02	   /* encoder failed; session needs OPEN again */
#define XENVCODEC_EVT_DRAINED 0x03	   /* every frame queued before DRAIN is out */

/* BITSTREAM_READY flags. */
#define XENVCODEC_BS_FLAG_KEY 0x01

struct xenvcodec_config {
	uint32_t codec;		/* XENVCODEC_CODEC_* */
	uint32_t raw_fourcc;	/* V4L2 fourcc of INPUT frames (YU12, NV12) */
	uint32_t width;
	uint32_t height;
	uint32_t frame_rate_numer;
	uint32_t frame_rate_denom;
	uint32_t bitrate;	/* bit/s (VBR, CBR) */
	uint32_t gop;		/* key frame every gop frames; 0: encoder default */
	uint8_t rc_mode;	/* XENVCODEC_RC_* */
	uint8_t qp;		/* CQP: quantiser (vp8/vp9 0..63, h264 0..51), JPEG quality 1..100 */
	uint8_t profile;	/* codec profile index (see docs), 0: default */
	uint8_t level;		/* h264 level_idc (e.g. 40), 0: auto */
	uint8_t reserved[20];
};

struct xenvcodec_buf_create_req {
	uint8_t type;  /* XENVCODEC_BUF_* */
	uint8_t index;
	uint8_t reserved[2];
	uint32_t size;	/* must equal the layout's size for this set */
	grant_ref_t gref_directory;
	uint32_t plane_offset[XENVCODEC_MAX_PLANE]; /* INPUT: must equal the layout's */
	uint8_t reserved2[28];
};

struct xenvcodec_buf_index_req {
	uint8_t type;
	uint8_t index;
	uint8_t reserved[54];
};

struct xenvcodec_queue_raw_req {
	uint8_t index;
	uint8_t flags; /* XENVCODEC_FRAME_FLAG_* */
	uint8_t reserved[6];
	uint64_t timestamp; /* opaque to Dom0, returned in INPUT_DONE/BITSTREAM_READY */
	uint8_t reserved2[40];
};

struct xenvcodec_bitrate_req {
	uint32_t bitrate;
	uint8_t reserved[52];
};

struct xenvcodec_req {
	uint16_t id;
	uint8_t operation;
	uint8_t reserved[5];
	union {
		struct xenvcodec_config config;
		struct xenvcodec_buf_create_req buf_create;
		struct xenvcodec_buf_index_req buf_index;
		struct xenvcodec_queue_raw_req queue_raw;
		struct xenvcodec_bitrate_req bitrate;
		uint8_t reserved[56];
	} req;
};

struct xenvcodec_layout_resp {
	uint32_t raw_size;     /* INPUT buffer size */
	uint32_t out_size;     /* OUTPUT buffer size */
	uint8_t num_planes;
	uint8_t min_buffers;   /* INPUT buffers the encoder needs in flight to run well */
	uint8_t max_buffers;   /* per set */
	uint8_t reserved;
	uint32_t plane_offset[XENVCODEC_MAX_PLANE];
	uint32_t plane_stride[XENVCODEC_MAX_PLANE];
	uint8_t reserved2[12];
};

struct xenvcodec_resp {
	uint16_t id;
	uint8_t operation;
	uint8_t reserved;
	int32_t status;
	union {
		struct xenvcodec_config config; /* OPEN: what is in effect */
		struct xenvcodec_layout_resp layout;
		uint8_t reserved[56];
	} resp;
};

struct xenvcodec_input_done_evt {
	uint8_t index;
	uint8_t reserved[7];
	uint64_t timestamp;
	uint8_t reserved2[40];
};

struct xenvcodec_bitstream_evt {
	uint8_t index; /* OUTPUT buffer */
	uint8_t flags; /* XENVCODEC_BS_FLAG_* */
	uint8_t reserved[2];
	uint32_t bytes_used;
	uint64_t timestamp; /* of the raw frame this encodes */
	uint32_t seq;	    /* frame number since OPEN */
	uint8_t reserved2[36];
};

struct xenvcodec_error_evt {
	int32_t status;
	uint8_t reserved[52];
};

struct xenvcodec_evt {
	uint16_t id;
	uint8_t type;
	uint8_t reserved[5];
	union {
		struct xenvcodec_input_done_evt input_done;
		struct xenvcodec_bitstream_evt bitstream;
		struct xenvcodec_error_evt error;
		uint8_t reserved[56];
	} evt;
};

struct xenvcodec_event_page {
	uint32_t in_cons;
	uint32_t in_prod;
	uint8_t reserved[56];
};

#define XENVCODEC_EVENT_PAGE_SIZE 4096
#define XENVCODEC_IN_RING_OFFS (sizeof(struct xenvcodec_event_page))
#define XENVCODEC_IN_RING_LEN \
	((XENVCODEC_EVENT_PAGE_SIZE - XENVCODEC_IN_RING_OFFS) / sizeof(struct xenvcodec_evt))

DEFINE_RING_TYPES(xen_vcodec, struct xenvcodec_req, struct xenvcodec_resp);

/* ------------------------------------------------------------------------- */
/* C++ handling                                                               */

namespace xmb::proto {

/** Largest numerator or denominator of a frame rate (1000000/1001-style rates fit). */
constexpr uint32_t kMaxFrameRateTerm = 1000000;


/** The raw formats (V4L2 FOURCCs) vcodec INPUT frames come in: YU12, NV12, YUYV. */
inline constexpr uint32_t kVcodecRawFormats[] = { 0x32315559 /* YU12 */, 0x3231564e /* NV12 */,
						  0x56595559 /* YUYV */ };

static_assert(sizeof(xenvcodec_config) == 56);
static_assert(sizeof(xenvcodec_req) == 64, "vcodec requests are 64 octets");
static_assert(sizeof(xenvcodec_resp) == 64, "vcodec responses are 64 octets");
static_assert(sizeof(xenvcodec_evt) == 64, "vcodec events are 64 octets");
static_assert(sizeof(xenvcodec_event_page) == 64);
static_assert(XENVCODEC_IN_RING_LEN == 63);

using CodecBackRing = BackRing<xen_vcodec_sring, xenvcodec_req, xenvcodec_resp>;
using CodecFrontRing = FrontRing<xen_vcodec_sring, xenvcodec_req, xenvcodec_resp>;

constexpr uint32_t kCodecMaxWidth = 8192;
constexpr uint32_t kCodecMaxHeight = 8192;

/** One decoded request; \a op tells which member of the body is meaningful. */
struct CodecRequest {
	uint16_t id = 0;
	uint8_t op = 0;

	struct Open {
		uint32_t codec, rawFourcc, width, height, rateNum, rateDen, bitrate, gop;
		uint8_t rcMode, qp, profile, level;
	};
	struct BufCreate {
		uint8_t type, index;
		uint32_t size;
		uint32_t grefDirectory;
		uint32_t planeOffset[XENVCODEC_MAX_PLANE];
	};
	struct BufIndex { uint8_t type, index; };
	struct QueueRaw { uint8_t index, flags; uint64_t timestamp; };
	struct Bitrate { uint32_t bitrate; };
	struct None {};

	std::variant<None, Open, BufCreate, BufIndex, QueueRaw, Bitrate> body;
};

/**
 * Decode a request already copied out of the ring: known operation, zero
 * reserved bytes, ranges that do not depend on session state.  On failure
 * Error.code is the -XEN_E* status to answer (-XEN_ENOSYS: unknown op).
 */
Result<CodecRequest> decodeCodecRequest(const xenvcodec_req &raw);

std::string codecOpName(uint8_t op);
const char *codecName(uint32_t codec); /* "vp8", nullptr if unknown */
std::optional<uint32_t> codecFromName(std::string_view name);
const char *rcModeName(uint8_t mode);
std::optional<uint8_t> rcModeFromName(std::string_view name);

xenvcodec_req makeCodecRequest(uint16_t id, uint8_t op);
xenvcodec_resp makeCodecResponse(uint16_t id, uint8_t op, int32_t status);
xenvcodec_evt makeInputDoneEvent(uint16_t id, uint8_t index, uint64_t timestamp);
xenvcodec_evt makeBitstreamEvent(uint16_t id, uint8_t index, uint32_t bytes, bool key,
				 uint64_t timestamp, uint32_t seq);
xenvcodec_evt makeCodecErrorEvent(uint16_t id, int32_t status);
xenvcodec_evt makeDrainedEvent(uint16_t id);

/** The vcodec event page, same rules as cameraif's: protocol/event_page.h. */
using CodecEventPage = EventPageLayout<xenvcodec_event_page, xenvcodec_evt, XENVCODEC_EVENT_PAGE_SIZE>;
static_assert(CodecEventPage::kLength == XENVCODEC_IN_RING_LEN);
using CodecEventWriter = EventWriter<CodecEventPage>;
using CodecEventReader = EventReader<CodecEventPage>;

/**
 * libFuzzer-style entry point: the bytes are a sequence of 64-octet
 * requests (the rest ignored), each decoded; decoded values are checked
 * against the decoder's invariants (abort on violation).  Always returns 0.
 */
int fuzzCodecRequests(const uint8_t *data, size_t size);

} /* namespace xmb::proto */
