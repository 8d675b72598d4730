/* SPDX-License-Identifier: MIT */
/**
 * SECTION:element-xmbencoder
 *
 * Guest side: encodes raw video with a Dom0 encoder through the vcodec
 * para-virtual protocol (docs/vcodec.md).  The codec follows the
 * downstream caps (VP8, VP9, H.264 byte-stream, JPEG), among those Dom0
 * offers.
 *
 * Zero copy: the element proposes a buffer pool whose buffers are the
 * INPUT pages granted to Dom0, so an upstream that allocates from it
 * (videotestsrc, videoconvert, ...) renders straight into memory Dom0
 * encodes from.  Frames from other memory are copied into a granted
 * buffer (counted in the "stats" property, warned about once).  Bitstream
 * arrives in OUTPUT pages granted to Dom0 and is copied once into the
 * output GstBuffer (compressed bytes only).
 *
 * |[
 * gst-launch-1.0 videotestsrc num-buffers=300 ! video/x-raw,format=I420,width=1280,height=720 ! \
 *   xmbencoder ! video/x-h264 ! h264parse ! mp4mux ! filesink location=out.mp4
 * ]|
 */
#include "gstxmbencoder.h"

#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include <gst/video/video.h>

#include "bridge/vcodec/codec_frontend.h"
#include "gstxmbinputpool.h"
#include "service_thread.h"
#include "xmb_common.h"
#include "xmb_config.h"
#if XMB_HAVE_VCODEC_BACKEND
#include "bridge/service/event_loop.h"
#include "bridge/vcodec/codec_service.h"
#include "bridge/vcodec/gst_encoder.h"
#endif

using namespace xmb;
using namespace xmb::gst;

GST_DEBUG_CATEGORY_STATIC(xmb_encoder_debug);
#define GST_CAT_DEFAULT xmb_encoder_debug

namespace {

constexpr guint kDefaultBitrate = 2000000;
constexpr guint kDefaultQuality = 85;
constexpr guint kDefaultBuffers = 4;
constexpr guint kDefaultTimeoutMs = 5000;

enum {
	PROP_0,
	PROP_DEVICE,
	PROP_BITRATE,
	PROP_KEY_INT_MAX,
	PROP_QUALITY,
	PROP_BUFFERS,
	PROP_TIMEOUT,
	PROP_PLATFORM,
	PROP_LOOPBACK_DOMID,
	PROP_LOOPBACK_BE_ALLOC,
	PROP_STATS,
};

using Connection = VcodecConnection;

#if XMB_HAVE_VCODEC_BACKEND
/* platform=loopback: a Dom0 codec service in this process, serving our domain. */
struct LoopbackDom0 {
	std::unique_ptr<xen::Platform> dom0;
	ServiceThread service;
	std::unique_ptr<vcodec::CodecService> svc;
	~LoopbackDom0()
	{
		service.stop();
		if (svc)
			svc->stop();
	}
};
#endif

struct EncoderState {
	/* properties (object lock) */
	guint device = 0;
	guint bitrate = kDefaultBitrate;
	guint keyIntMax = 0;
	guint quality = kDefaultQuality;
	guint buffers = kDefaultBuffers;
	guint timeoutMs = kDefaultTimeoutMs;
	int platform = XMB_PLATFORM_XEN;
	guint loopbackDomid = 0;
	bool loopbackBeAlloc = false;

	/* streaming thread */
#if XMB_HAVE_VCODEC_BACKEND
	std::unique_ptr<LoopbackDom0> loopDom0;
#endif
	std::shared_ptr<Connection> conn;
	GstBufferPool *pool = nullptr;
	GstVideoInfo rawInfo{};	   /* the INPUT layout Dom0 chose */
	GstVideoCodecState *input = nullptr;
	uint32_t codec = 0;
	uint8_t numIn = 0;
	std::vector<GstBuffer *> inDom0; /* per INPUT index: the pool buffer Dom0 reads */
	bool open = false;
	bool warnedCopy = false;
	GstFlowReturn downstream = GST_FLOW_OK;

	/* stats (object lock) */
	guint64 framesIn = 0, zeroCopyFrames = 0, rawBytesCopied = 0, bitstreamBytes = 0;
	guint64 keyFrames = 0, errors = 0;
	gboolean dom0Allocated = FALSE; /* be-alloc: the pool's buffers are Dom0's granted pages */
};

} /* namespace */

struct _GstXmbEncoder {
	GstVideoEncoder parent;
	EncoderState *state;
};

G_DEFINE_TYPE(GstXmbEncoder, gst_xmb_encoder, GST_TYPE_VIDEO_ENCODER)
GST_ELEMENT_REGISTER_DEFINE(xmbencoder, "xmbencoder", GST_RANK_NONE, GST_TYPE_XMB_ENCODER)

/* ---- codec choice ----------------------------------------------------- */

struct CodecName {
	uint32_t codec;
	const char *media;
};
constexpr CodecName kCodecs[] = {
	{ XENVCODEC_CODEC_H264, "video/x-h264" },
	{ XENVCODEC_CODEC_HEVC, "video/x-h265" },
	{ XENVCODEC_CODEC_VP8, "video/x-vp8" },
	{ XENVCODEC_CODEC_VP9, "video/x-vp9" },
	{ XENVCODEC_CODEC_JPEG, "image/jpeg" },
	{ XENVCODEC_CODEC_FWHT, "video/x-fwht" }, /* vicodec's codec: a Dom0 with a V4L2 FWHT encoder */
};

static GstCaps *output_caps(uint32_t codec)
{
	switch (codec) {
	case XENVCODEC_CODEC_H264:
		return gst_caps_new_simple("video/x-h264", "stream-format", G_TYPE_STRING, "byte-stream",
					   "alignment", G_TYPE_STRING, "au", nullptr);
	case XENVCODEC_CODEC_HEVC:
		return gst_caps_new_simple("video/x-h265", "stream-format", G_TYPE_STRING, "byte-stream",
					   "alignment", G_TYPE_STRING, "au", nullptr);
	case XENVCODEC_CODEC_VP8:
		return gst_caps_new_empty_simple("video/x-vp8");
	case XENVCODEC_CODEC_VP9:
		return gst_caps_new_empty_simple("video/x-vp9");
	case XENVCODEC_CODEC_FWHT:
		return gst_caps_new_empty_simple("video/x-fwht");
	default:
		return gst_caps_new_empty_simple("image/jpeg");
	}
}

/* ---- events from Dom0 -------------------------------------------------- */

static void count(GstXmbEncoder *self, guint64 EncoderState::*field, guint64 n = 1)
{
	GST_OBJECT_LOCK(self);
	self->state->*field += n;
	GST_OBJECT_UNLOCK(self);
}

/* One event: finish a frame, give an INPUT buffer back, note a drain. */
static GstFlowReturn handle_event(GstXmbEncoder *self, const vcodec::CodecEvent &e, bool &drained)
{
	EncoderState &st = *self->state;
	vcodec::CodecFrontend &fe = *st.conn->fe;
	auto *enc = GST_VIDEO_ENCODER(self);
	switch (e.type) {
	case XENVCODEC_EVT_INPUT_DONE:
		if (e.index < st.inDom0.size() && st.inDom0[e.index]) {
			gst_buffer_unref(st.inDom0[e.index]); /* back to the pool */
			st.inDom0[e.index] = nullptr;
		}
		return GST_FLOW_OK;
	case XENVCODEC_EVT_BITSTREAM_READY: {
		GstVideoCodecFrame *frame =
			gst_video_encoder_get_frame(enc, static_cast<int>(e.timestamp));
		auto data = fe.outputData(e.index);
		GstFlowReturn ret = GST_FLOW_OK;
		if (frame && e.bytesUsed <= data.size()) {
			frame->output_buffer = gst_buffer_new_memdup(data.data(), e.bytesUsed);
			if (e.key)
				GST_VIDEO_CODEC_FRAME_SET_SYNC_POINT(frame);
			count(self, &EncoderState::bitstreamBytes, e.bytesUsed);
			if (e.key)
				count(self, &EncoderState::keyFrames);
			ret = gst_video_encoder_finish_frame(enc, frame);
		} else if (frame) {
			gst_video_codec_frame_unref(frame);
		} else {
			GST_WARNING_OBJECT(self, "bitstream for unknown frame %" G_GUINT64_FORMAT, e.timestamp);
		}
		if (Status s = fe.queueOut(e.index); !s) {
			GST_ELEMENT_ERROR(self, STREAM, ENCODE, ("Dom0 refused an output buffer"),
					  ("QUEUE_OUT %u: %s", e.index, s.error().message.c_str()));
			return GST_FLOW_ERROR;
		}
		return ret;
	}
	case XENVCODEC_EVT_DRAINED:
		drained = true;
		return GST_FLOW_OK;
	case XENVCODEC_EVT_ERROR:
		count(self, &EncoderState::errors);
		GST_ELEMENT_WARNING(self, STREAM, ENCODE, ("Dom0's encoder reported an error"),
				    ("status %d (a frame larger than an output buffer is dropped)", e.status));
		return GST_FLOW_OK;
	}
	return GST_FLOW_OK;
}

/*
 * Handle events until \a done() holds; waits up to the timeout for each.
 * With \a done always true it only takes what is already there.
 */
template<typename Done>
static GstFlowReturn pump(GstXmbEncoder *self, bool wait, Done done, bool *drained = nullptr)
{
	EncoderState &st = *self->state;
	GST_OBJECT_LOCK(self);
	guint timeoutMs = st.timeoutMs;
	GST_OBJECT_UNLOCK(self);
	bool sawDrain = false;
	while (true) {
		std::optional<vcodec::CodecEvent> e = st.conn->fe->takeEvent();
		if (!e && wait && !done(sawDrain)) {
			auto w = st.conn->fe->waitEvent(vcodec::Millis(timeoutMs));
			if (!w) {
				GST_ELEMENT_ERROR(self, STREAM, ENCODE, ("Dom0's encoder stopped answering"),
						  ("%s", w.error().message.c_str()));
				return GST_FLOW_ERROR;
			}
			e = *w;
		}
		if (!e)
			break;
		GstFlowReturn r = handle_event(self, *e, sawDrain);
		if (r != GST_FLOW_OK)
			return r;
		if (wait && done(sawDrain))
			break;
	}
	if (drained)
		*drained = sawDrain;
	return GST_FLOW_OK;
}

static unsigned in_dom0(const EncoderState &st)
{
	unsigned n = 0;
	for (GstBuffer *b : st.inDom0)
		n += b != nullptr;
	return n;
}

/* ---- GstVideoEncoder -------------------------------------------------- */

static void release_inputs(EncoderState &st)
{
	for (GstBuffer *&b : st.inDom0)
		if (b) {
			gst_buffer_unref(b);
			b = nullptr;
		}
}

static void close_session(GstXmbEncoder *self)
{
	EncoderState &st = *self->state;
	release_inputs(st);
	st.inDom0.clear();
	if (st.pool) {
		gst_buffer_pool_set_active(st.pool, FALSE);
		gst_object_unref(st.pool);
		st.pool = nullptr;
	}
	st.open = false;
}

static gboolean gst_xmb_encoder_start(GstVideoEncoder *enc)
{
	auto *self = GST_XMB_ENCODER(enc);
	EncoderState &st = *self->state;
	GST_OBJECT_LOCK(self);
	int kind = st.platform;
	guint domid = st.loopbackDomid, device = st.device, timeoutMs = st.timeoutMs;
	const bool loopbackBeAlloc = st.loopbackBeAlloc;
	st.framesIn = st.zeroCopyFrames = st.rawBytesCopied = st.bitstreamBytes = 0;
	st.keyFrames = st.errors = 0;
	GST_OBJECT_UNLOCK(self);

	if (kind == XMB_PLATFORM_LOOPBACK) {
		if (domid == 0) {
			GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS, ("platform=loopback needs loopback-domid"),
					  ("set loopback-domid=<guest domid> (1..32751)"));
			return FALSE;
		}
#if XMB_HAVE_VCODEC_BACKEND
		if (Status s = ensureLoopbackDomain(domid); !s) {
			GST_ELEMENT_ERROR(self, RESOURCE, FAILED, ("Cannot start loopback domain %u", domid),
					  ("%s", s.error().message.c_str()));
			return FALSE;
		}
		auto d = std::make_unique<LoopbackDom0>();
		auto p = openPlatform(XMB_PLATFORM_LOOPBACK, 0);
		if (!p) {
			GST_ELEMENT_ERROR(self, RESOURCE, FAILED, ("Cannot open loopback Dom0"),
					  ("%s", p.error().message.c_str()));
			return FALSE;
		}
		d->dom0 = std::move(*p);
		d->svc = std::make_unique<vcodec::CodecService>(*d->dom0, d->service.loop(), vcodec::probeGstCodecs());
		vcodec::CodecGuest g;
		g.name = "xmbencoder";
		g.domid = static_cast<xen::DomId>(domid);
		g.device = device;
		g.beAlloc = loopbackBeAlloc;
		if (Status s = d->svc->start({ { g } }); !s) {
			GST_ELEMENT_ERROR(self, RESOURCE, FAILED, ("Cannot start the loopback codec service"),
					  ("%s", s.error().message.c_str()));
			return FALSE;
		}
		d->service.start();
		st.loopDom0 = std::move(d);
#else
		GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS, ("platform=loopback needs the Dom0 codec service"),
				  ("this build has no gstreamer-app-1.0, so no vcodec backend"));
		return FALSE;
#endif
	}

	auto pf = openPlatform(kind, static_cast<xen::DomId>(domid));
	if (!pf) {
		GST_ELEMENT_ERROR(self, RESOURCE, OPEN_READ,
				  ("Cannot open the %s platform", kind == XMB_PLATFORM_XEN ? "Xen" : "loopback"),
				  ("%s", pf.error().message.c_str()));
		return FALSE;
	}
	auto conn = std::make_shared<Connection>();
	conn->platform = std::move(*pf);
	conn->fe = std::make_unique<vcodec::CodecFrontend>(*conn->platform);
	conn->fe->setTimeout(vcodec::Millis(timeoutMs));
	if (Status s = conn->fe->connect(device, vcodec::Millis(timeoutMs)); !s) {
		GST_ELEMENT_ERROR(self, RESOURCE, OPEN_READ_WRITE,
				  ("No Dom0 encoder at vcodec device %u of dom%u", device, conn->platform->self),
				  ("%s (is xmb-codec-service serving this guest?)", s.error().message.c_str()));
		return FALSE;
	}
	GST_OBJECT_LOCK(self); /* getcaps reads it from other threads */
	st.dom0Allocated = conn->fe->caps().beAlloc;
	st.conn = std::move(conn);
	GST_OBJECT_UNLOCK(self);
	st.downstream = GST_FLOW_OK;
	GST_INFO_OBJECT(self, "connected to vcodec device %u", device);
	return TRUE;
}

static gboolean gst_xmb_encoder_stop(GstVideoEncoder *enc)
{
	auto *self = GST_XMB_ENCODER(enc);
	EncoderState &st = *self->state;
	if (st.conn) {
		GST_OBJECT_LOCK(self);
		GST_INFO_OBJECT(self,
				"%" G_GUINT64_FORMAT " frames in, %" G_GUINT64_FORMAT " zero-copy, %" G_GUINT64_FORMAT
				" raw bytes copied, %" G_GUINT64_FORMAT " bitstream bytes, %" G_GUINT64_FORMAT " key frames",
				st.framesIn, st.zeroCopyFrames, st.rawBytesCopied, st.bitstreamBytes, st.keyFrames);
		GST_OBJECT_UNLOCK(self);
	}
	close_session(self);
	if (st.input) {
		gst_video_codec_state_unref(st.input);
		st.input = nullptr;
	}
	std::shared_ptr<Connection> last;
	GST_OBJECT_LOCK(self);
	last.swap(st.conn);
	GST_OBJECT_UNLOCK(self);
	last.reset(); /* the device closes once upstream has let go of every pool buffer */
#if XMB_HAVE_VCODEC_BACKEND
	st.loopDom0.reset();
#endif
	return TRUE;
}

static gboolean gst_xmb_encoder_set_format(GstVideoEncoder *enc, GstVideoCodecState *state)
{
	auto *self = GST_XMB_ENCODER(enc);
	EncoderState &st = *self->state;
	vcodec::CodecFrontend &fe = *st.conn->fe;
	const GstVideoInfo &in = state->info;

	if (st.open) {
		if (gst_video_info_is_equal(&in, &st.input->info))
			return TRUE;
		GST_ELEMENT_ERROR(self, CORE, NEGOTIATION, ("The raw format cannot change mid-stream"),
				  ("restart the pipeline to encode another format or size"));
		return FALSE;
	}
	uint32_t fourcc = fourccFromVideoFormat(GST_VIDEO_INFO_FORMAT(&in));
	const proto::VcodecConfig &caps = fe.caps();

	/* The first downstream codec that Dom0 has for this raw format. */
	GstCaps *allowed = gst_pad_get_allowed_caps(GST_VIDEO_ENCODER_SRC_PAD(enc));
	uint32_t codec = 0;
	for (guint i = 0; allowed && i < gst_caps_get_size(allowed) && !codec; i++) {
		const char *name = gst_structure_get_name(gst_caps_get_structure(allowed, i));
		for (const auto &c : kCodecs) {
			const proto::CodecCaps *cc = caps.find(c.codec);
			if (g_str_equal(name, c.media) && cc &&
			    std::find(cc->rawFormats.begin(), cc->rawFormats.end(), fourcc) != cc->rawFormats.end()) {
				codec = c.codec;
				break;
			}
		}
	}
	if (allowed)
		gst_caps_unref(allowed);
	if (!codec) {
		GST_ELEMENT_ERROR(self, CORE, NEGOTIATION, ("Dom0 has no encoder for what downstream accepts"),
				  ("raw %s; Dom0 offers %zu codecs (xmb-encode-guest --caps lists them)",
				   gst_video_format_to_string(GST_VIDEO_INFO_FORMAT(&in)), caps.codecs.size()));
		return FALSE;
	}

	GST_OBJECT_LOCK(self);
	xenvcodec_config cfg{};
	cfg.codec = codec;
	cfg.raw_fourcc = fourcc;
	cfg.width = GST_VIDEO_INFO_WIDTH(&in);
	cfg.height = GST_VIDEO_INFO_HEIGHT(&in);
	cfg.frame_rate_numer = GST_VIDEO_INFO_FPS_N(&in) > 0 ? GST_VIDEO_INFO_FPS_N(&in) : 30;
	cfg.frame_rate_denom = GST_VIDEO_INFO_FPS_N(&in) > 0 ? GST_VIDEO_INFO_FPS_D(&in) : 1;
	cfg.rc_mode = codec == XENVCODEC_CODEC_H264   ? XENVCODEC_RC_CBR
		      : codec == XENVCODEC_CODEC_JPEG ? XENVCODEC_RC_CQP
						      : XENVCODEC_RC_VBR;
	cfg.bitrate = st.bitrate;
	cfg.gop = st.keyIntMax;
	cfg.qp = static_cast<uint8_t>(st.quality);
	guint wantBuffers = st.buffers;
	GST_OBJECT_UNLOCK(self);

	auto opened = fe.open(cfg);
	if (!opened) {
		GST_ELEMENT_ERROR(self, STREAM, ENCODE, ("Dom0 refused the encoding session"),
				  ("OPEN: %s", opened.error().message.c_str()));
		return FALSE;
	}
	auto layout = fe.getLayout();
	if (!layout) {
		GST_ELEMENT_ERROR(self, STREAM, ENCODE, ("No buffer layout from Dom0"), ("%s", layout.error().message.c_str()));
		return FALSE;
	}
	uint8_t n = static_cast<uint8_t>(std::clamp<guint>(wantBuffers, std::max<guint>(layout->minBuffers, 2),
							 std::max<guint>(layout->maxBuffers, 2)));
	if (Status s = fe.createBuffers(n, n); !s) {
		GST_ELEMENT_ERROR(self, RESOURCE, NO_SPACE_LEFT, ("Cannot share buffers with Dom0"),
				  ("%s", s.error().message.c_str()));
		return FALSE;
	}
	for (uint8_t i = 0; i < n; i++)
		if (Status s = fe.queueOut(i); !s) {
			GST_ELEMENT_ERROR(self, STREAM, ENCODE, ("Dom0 refused an output buffer"), ("%s", s.error().message.c_str()));
			return FALSE;
		}

	/* The granted INPUT buffers as GStreamer sees them: Dom0's offsets and strides. */
	st.rawInfo = inputInfoFromLayout(in, *layout);
	st.numIn = n;
	st.inDom0.assign(n, nullptr);

	GstBufferPool *pool = inputPoolNew(st.conn, st.rawInfo, n);
	if (!pool) {
		GST_ELEMENT_ERROR(self, RESOURCE, FAILED, ("Cannot configure the input buffer pool"), (nullptr));
		return FALSE;
	}
	st.pool = pool;
	st.codec = codec;
	st.open = true;
	if (st.input)
		gst_video_codec_state_unref(st.input);
	st.input = gst_video_codec_state_ref(state);

	GstVideoCodecState *out = gst_video_encoder_set_output_state(enc, output_caps(codec), state);
	gst_video_codec_state_unref(out);
	GST_INFO_OBJECT(self, "encoding %s %ux%u as %s in Dom0, %u buffers per set",
			gst_video_format_to_string(GST_VIDEO_INFO_FORMAT(&in)), cfg.width, cfg.height,
			proto::codecName(codec), n);
	return gst_video_encoder_negotiate(enc);
}

/*
 * The raw formats Dom0 can encode into what downstream accepts, so that
 * upstream negotiates one of them (YUY2 is no use for an H.264 encoder
 * that only takes I420).
 */
static GstCaps *gst_xmb_encoder_getcaps(GstVideoEncoder *enc, GstCaps *filter)
{
	auto *self = GST_XMB_ENCODER(enc);
	EncoderState &st = *self->state;
	/* Any thread may ask: hold our own reference to the connection. */
	GST_OBJECT_LOCK(self);
	std::shared_ptr<Connection> conn = st.conn;
	GST_OBJECT_UNLOCK(self);
	if (!conn)
		return gst_video_encoder_proxy_getcaps(enc, nullptr, filter);
	const proto::VcodecConfig &caps = conn->fe->caps();
	GstCaps *peer = gst_pad_peer_query_caps(GST_VIDEO_ENCODER_SRC_PAD(enc), nullptr);
	std::vector<GstVideoFormat> formats;
	for (GstVideoFormat f : { GST_VIDEO_FORMAT_I420, GST_VIDEO_FORMAT_NV12, GST_VIDEO_FORMAT_YUY2 }) {
		uint32_t fourcc = fourccFromVideoFormat(f);
		bool ok = false;
		for (const auto &c : kCodecs) {
			const proto::CodecCaps *cc = caps.find(c.codec);
			if (!cc || std::find(cc->rawFormats.begin(), cc->rawFormats.end(), fourcc) == cc->rawFormats.end())
				continue;
			GstCaps *one = output_caps(c.codec);
			ok = !peer || gst_caps_can_intersect(one, peer);
			gst_caps_unref(one);
			if (ok)
				break;
		}
		if (ok)
			formats.push_back(f);
	}
	if (peer)
		gst_caps_unref(peer);
	GstCaps *tmpl = gst_caps_new_empty();
	for (GstVideoFormat f : formats)
		gst_caps_append_structure(
			tmpl, gst_structure_new("video/x-raw", "format", G_TYPE_STRING, gst_video_format_to_string(f),
						"width", GST_TYPE_INT_RANGE, std::max<gint>(16, caps.minWidth),
						std::max<gint>(16, std::min<gint>(4096, caps.maxWidth)), "height",
						GST_TYPE_INT_RANGE, std::max<gint>(16, caps.minHeight),
						std::max<gint>(16, std::min<gint>(4096, caps.maxHeight)), "framerate",
						GST_TYPE_FRACTION_RANGE, 0, 1, G_MAXINT, 1, nullptr));
	GstCaps *out = gst_video_encoder_proxy_getcaps(enc, tmpl, filter);
	gst_caps_unref(tmpl);
	return out;
}

static gboolean gst_xmb_encoder_propose_allocation(GstVideoEncoder *enc, GstQuery *query)
{
	auto *self = GST_XMB_ENCODER(enc);
	EncoderState &st = *self->state;
	gst_query_add_allocation_meta(query, GST_VIDEO_META_API_TYPE, nullptr);
	if (st.pool)
		gst_query_add_allocation_pool(query, st.pool, static_cast<guint>(st.rawInfo.size), st.numIn,
					      st.numIn);
	return GST_VIDEO_ENCODER_CLASS(gst_xmb_encoder_parent_class)->propose_allocation(enc, query);
}

static GstFlowReturn gst_xmb_encoder_handle_frame(GstVideoEncoder *enc, GstVideoCodecFrame *frame)
{
	auto *self = GST_XMB_ENCODER(enc);
	EncoderState &st = *self->state;
	if (!st.open) {
		gst_video_codec_frame_unref(frame);
		return GST_FLOW_NOT_NEGOTIATED;
	}
	vcodec::CodecFrontend &fe = *st.conn->fe;

	GstBuffer *buf = nullptr;
	int index = inputPoolIndex(st.pool, frame->input_buffer);
	if (index >= 0 && index < st.numIn && !st.inDom0[index]) {
		buf = gst_buffer_ref(frame->input_buffer); /* upstream rendered into granted pages */
		count(self, &EncoderState::zeroCopyFrames);
	} else {
		/* Other memory: one copy into a granted buffer (counted). */
		std::string why;
		buf = inputPoolCopy(st.pool, st.rawInfo, st.input->info, frame->input_buffer, &index, &why);
		if (!buf) {
			gst_video_codec_frame_unref(frame);
			GST_ELEMENT_ERROR(self, STREAM, FORMAT, ("Cannot copy an input frame into granted pages"),
					  ("%s", why.c_str()));
			return GST_FLOW_ERROR;
		}
		count(self, &EncoderState::rawBytesCopied, GST_VIDEO_INFO_SIZE(&st.input->info));
		if (!st.warnedCopy) {
			st.warnedCopy = true;
			GST_ELEMENT_WARNING(self, RESOURCE, SETTINGS, ("Input frames are copied into granted pages"),
					    ("upstream does not allocate from this element's pool; put it right "
					     "after an element that does (videotestsrc, videoconvert) to avoid it"));
		}
	}

	st.inDom0[index] = buf;
	/*
	 * The frame would keep its input until the bitstream is back; Dom0's
	 * INPUT_DONE is what frees the pages, so only our reference counts.
	 */
	gst_buffer_replace(&frame->input_buffer, nullptr);
	uint8_t flags = GST_VIDEO_CODEC_FRAME_IS_FORCE_KEYFRAME(frame) ? XENVCODEC_FRAME_FLAG_KEY : 0;
	uint32_t sfn = frame->system_frame_number;
	gst_video_codec_frame_unref(frame);
	if (Status s = fe.queueRaw(static_cast<uint8_t>(index), sfn, flags); !s) {
		gst_buffer_unref(st.inDom0[index]);
		st.inDom0[index] = nullptr;
		GST_ELEMENT_ERROR(self, STREAM, ENCODE, ("Dom0 refused a frame"), ("QUEUE_RAW: %s", s.error().message.c_str()));
		return GST_FLOW_ERROR;
	}
	count(self, &EncoderState::framesIn);

	/*
	 * Leave with a free INPUT buffer: upstream's next acquire from the
	 * pool must not block, since only this thread hears INPUT_DONE.
	 */
	return pump(self, true, [&st](bool) { return in_dom0(st) < st.numIn; });
}

static GstFlowReturn gst_xmb_encoder_finish(GstVideoEncoder *enc)
{
	auto *self = GST_XMB_ENCODER(enc);
	EncoderState &st = *self->state;
	if (!st.open)
		return GST_FLOW_OK;
	if (Status s = st.conn->fe->drain(); !s) {
		GST_ELEMENT_ERROR(self, STREAM, ENCODE, ("Dom0 cannot drain the encoder"), ("%s", s.error().message.c_str()));
		return GST_FLOW_ERROR;
	}
	bool drained = false;
	GstFlowReturn r = pump(self, true, [](bool d) { return d; }, &drained);
	GST_DEBUG_OBJECT(self, "drained: %d", drained);
	return r;
}

static gboolean gst_xmb_encoder_flush(GstVideoEncoder *enc)
{
	auto *self = GST_XMB_ENCODER(enc);
	EncoderState &st = *self->state;
	if (!st.open)
		return TRUE;
	/* STOP drops what is in flight; every INPUT comes back (INPUT_DONE). */
	if (Status s = st.conn->fe->stop(); !s)
		GST_WARNING_OBJECT(self, "STOP: %s", s.error().message.c_str());
	pump(self, true, [&st](bool) { return in_dom0(st) == 0; });
	release_inputs(st);
	return TRUE;
}

/* ---- properties -------------------------------------------------------- */

static void gst_xmb_encoder_set_property(GObject *object, guint id, const GValue *value, GParamSpec *pspec)
{
	auto *self = GST_XMB_ENCODER(object);
	EncoderState &st = *self->state;
	GST_OBJECT_LOCK(self);
	switch (id) {
	case PROP_DEVICE: st.device = g_value_get_uint(value); break;
	case PROP_BITRATE: st.bitrate = g_value_get_uint(value); break;
	case PROP_KEY_INT_MAX: st.keyIntMax = g_value_get_uint(value); break;
	case PROP_QUALITY: st.quality = g_value_get_uint(value); break;
	case PROP_BUFFERS: st.buffers = g_value_get_uint(value); break;
	case PROP_TIMEOUT: st.timeoutMs = g_value_get_uint(value); break;
	case PROP_PLATFORM: st.platform = g_value_get_enum(value); break;
	case PROP_LOOPBACK_DOMID: st.loopbackDomid = g_value_get_uint(value); break;
	case PROP_LOOPBACK_BE_ALLOC: st.loopbackBeAlloc = g_value_get_boolean(value); break;
	default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, id, pspec); break;
	}
	GST_OBJECT_UNLOCK(self);
}

static void gst_xmb_encoder_get_property(GObject *object, guint id, GValue *value, GParamSpec *pspec)
{
	auto *self = GST_XMB_ENCODER(object);
	EncoderState &st = *self->state;
	GST_OBJECT_LOCK(self);
	switch (id) {
	case PROP_DEVICE: g_value_set_uint(value, st.device); break;
	case PROP_BITRATE: g_value_set_uint(value, st.bitrate); break;
	case PROP_KEY_INT_MAX: g_value_set_uint(value, st.keyIntMax); break;
	case PROP_QUALITY: g_value_set_uint(value, st.quality); break;
	case PROP_BUFFERS: g_value_set_uint(value, st.buffers); break;
	case PROP_TIMEOUT: g_value_set_uint(value, st.timeoutMs); break;
	case PROP_PLATFORM: g_value_set_enum(value, st.platform); break;
	case PROP_LOOPBACK_DOMID: g_value_set_uint(value, st.loopbackDomid); break;
	case PROP_LOOPBACK_BE_ALLOC: g_value_set_boolean(value, st.loopbackBeAlloc); break;
	case PROP_STATS:
		g_value_take_boxed(value, gst_structure_new("xmbencoder-stats",
			"frames-in", G_TYPE_UINT64, st.framesIn,
			"zero-copy-frames", G_TYPE_UINT64, st.zeroCopyFrames,
			"raw-bytes-copied", G_TYPE_UINT64, st.rawBytesCopied,
			"bitstream-bytes", G_TYPE_UINT64, st.bitstreamBytes,
			"key-frames", G_TYPE_UINT64, st.keyFrames,
			"errors", G_TYPE_UINT64, st.errors,
			"dom0-allocated", G_TYPE_BOOLEAN, st.dom0Allocated, nullptr));
		break;
	default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, id, pspec); break;
	}
	GST_OBJECT_UNLOCK(self);
}

static void gst_xmb_encoder_finalize(GObject *object)
{
	auto *self = GST_XMB_ENCODER(object);
	delete self->state;
	G_OBJECT_CLASS(gst_xmb_encoder_parent_class)->finalize(object);
}

static void gst_xmb_encoder_init(GstXmbEncoder *self)
{
	self->state = new EncoderState();
}

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE(
	"sink", GST_PAD_SINK, GST_PAD_ALWAYS,
	GST_STATIC_CAPS("video/x-raw, format = (string) { I420, NV12, YUY2 }, "
			"width = (int) [ 16, 4096 ], height = (int) [ 16, 4096 ], "
			"framerate = (fraction) [ 0/1, MAX ]"));

static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE(
	"src", GST_PAD_SRC, GST_PAD_ALWAYS,
	GST_STATIC_CAPS("video/x-h264, stream-format = (string) byte-stream, alignment = (string) au; "
			"video/x-h265, stream-format = (string) byte-stream, alignment = (string) au; "
			"video/x-vp8; video/x-vp9; image/jpeg; video/x-fwht"));

static void gst_xmb_encoder_class_init(GstXmbEncoderClass *klass)
{
	auto *oc = G_OBJECT_CLASS(klass);
	oc->set_property = gst_xmb_encoder_set_property;
	oc->get_property = gst_xmb_encoder_get_property;
	oc->finalize = gst_xmb_encoder_finalize;
	auto rw = static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
					   GST_PARAM_MUTABLE_READY);
	g_object_class_install_property(oc, PROP_DEVICE,
		g_param_spec_uint("device", "Device", "vcodec device index in this guest", 0, 255, 0, rw));
	g_object_class_install_property(oc, PROP_BITRATE,
		g_param_spec_uint("bitrate", "Bitrate", "Target bitrate in bit/s (VBR for VP8/VP9, CBR for H.264)",
				  1000, 100000000, kDefaultBitrate, rw));
	g_object_class_install_property(oc, PROP_KEY_INT_MAX,
		g_param_spec_uint("key-int-max", "Key frame interval",
				  "A key frame at least every this many frames (0: Dom0 encoder's default)", 0,
				  100000, 0, rw));
	g_object_class_install_property(oc, PROP_QUALITY,
		g_param_spec_uint("quality", "JPEG quality", "JPEG quality", 1, 100, kDefaultQuality, rw));
	g_object_class_install_property(oc, PROP_BUFFERS,
		g_param_spec_uint("buffers", "Buffers",
				  "Granted buffers per set (input, output); Dom0's max-buffers caps it", 2, 32,
				  kDefaultBuffers, rw));
	g_object_class_install_property(oc, PROP_TIMEOUT,
		g_param_spec_uint("timeout", "Timeout", "Milliseconds to wait for Dom0 (connect, each event)",
				  100, 600000, kDefaultTimeoutMs, rw));
	installPlatformProperties(oc, PROP_PLATFORM, PROP_LOOPBACK_DOMID, false);
	g_object_class_install_property(oc, PROP_LOOPBACK_BE_ALLOC,
		g_param_spec_boolean("loopback-be-alloc", "Loopback be-alloc",
				     "platform=loopback: the in-process Dom0 allocates the buffers and grants "
				     "them (be-alloc); the pool's buffers are then Dom0's pages",
				     FALSE, rw));
	g_object_class_install_property(oc, PROP_STATS,
		g_param_spec_boxed("stats", "Statistics",
				   "frames-in, zero-copy-frames, raw-bytes-copied (0 when upstream renders "
				   "into the granted pages), bitstream-bytes, key-frames, errors, dom0-allocated "
				   "(be-alloc: the pool's buffers are pages Dom0 allocated and granted)",
				   GST_TYPE_STRUCTURE, static_cast<GParamFlags>(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS)));

	auto *ec = GST_ELEMENT_CLASS(klass);
	gst_element_class_add_static_pad_template(ec, &sink_template);
	gst_element_class_add_static_pad_template(ec, &src_template);
	gst_element_class_set_static_metadata(
		ec, "Xen Dom0 video encoder", "Codec/Encoder/Video",
		"Encodes in Dom0 through the vcodec para-virtual protocol; input frames are rendered "
		"into pages granted to Dom0 (no copy)",
		"xen-media-bridge");

	auto *vc = GST_VIDEO_ENCODER_CLASS(klass);
	vc->start = gst_xmb_encoder_start;
	vc->stop = gst_xmb_encoder_stop;
	vc->set_format = gst_xmb_encoder_set_format;
	vc->propose_allocation = gst_xmb_encoder_propose_allocation;
	vc->getcaps = gst_xmb_encoder_getcaps;
	vc->handle_frame = gst_xmb_encoder_handle_frame;
	vc->finish = gst_xmb_encoder_finish;
	vc->flush = gst_xmb_encoder_flush;

	GST_DEBUG_CATEGORY_INIT(xmb_encoder_debug, "xmbencoder", 0, "xen-media-bridge guest encoder");
}
