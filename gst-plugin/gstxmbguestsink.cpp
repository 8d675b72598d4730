/* SPDX-License-Identifier: MIT */
/**
 * SECTION:element-xmbguestsink
 * @title: xmbguestsink
 *
 * Guest element: sends the guest pipeline's raw frames to a Dom0 pipeline
 * (xmbguestsrc) over vcodec with codec "raw".  The counterpart of
 * xmbcamerasink/xmbcamerasrc in the other direction.
 *
 * Zero copy: the element proposes a buffer pool whose buffers are the
 * INPUT pages granted to Dom0, so an upstream that allocates from it
 * (videotestsrc, videoconvert, ...) renders straight into memory the Dom0
 * pipeline reads in place.  Frames in other memory are copied into a
 * granted buffer (counted in "stats", warned about once).  A frame stays
 * granted until the Dom0 pipeline has let go of it.  The buffer timestamps
 * go to Dom0 with the frames; a GstForceKeyUnit event makes the next frame
 * a key-frame request for the Dom0 encoder; EOS drains (every frame has
 * reached the Dom0 pipeline before EOS goes on).
 *
 * Connects in the streaming thread (at the first caps), waiting up to
 * "timeout" for Dom0 to serve the device.
 *
 * ## Example
 * |[
 * gst-launch-1.0 videotestsrc is-live=true ! video/x-raw,format=NV12,width=1280,height=720 ! \
 *     xmbguestsink device=0
 * ]|
 */
#include "gstxmbguestsink.h"

#include <algorithm>
#include <memory>
#include <vector>

#include <gst/video/video.h>

#include "bridge/vcodec/codec_frontend.h"
#include "gstxmbinputpool.h"
#include "xmb_common.h"

GST_DEBUG_CATEGORY_STATIC(xmb_guest_sink_debug);
#define GST_CAT_DEFAULT xmb_guest_sink_debug

using namespace xmb;
using namespace xmb::gst;

enum {
	PROP_0,
	PROP_DEVICE,
	PROP_BUFFERS,
	PROP_TIMEOUT,
	PROP_PLATFORM,
	PROP_LOOPBACK_DOMID,
	PROP_STATS,
};

constexpr guint kDefaultBuffers = 4;
constexpr guint kDefaultTimeoutMs = 5000;

namespace {

struct GuestSinkState {
	/* properties (object lock) */
	guint device = 0;
	guint buffers = kDefaultBuffers;
	guint timeoutMs = kDefaultTimeoutMs;
	int platform = XMB_PLATFORM_XEN;
	guint loopbackDomid = 0;

	/* streaming thread */
	std::shared_ptr<VcodecConnection> conn;
	bool connected = false;
	bool open = false;
	GstVideoInfo inInfo{};	/* negotiated */
	GstVideoInfo rawInfo{}; /* the INPUT layout Dom0 chose */
	GstBufferPool *pool = nullptr;
	std::vector<GstBuffer *> inDom0; /* per INPUT index: the buffer Dom0 reads */
	bool forceKeyNext = false;
	bool warnedCopy = false;

	/* stats (object lock) */
	guint64 frames = 0, zeroCopyFrames = 0, rawBytesCopied = 0;
	gboolean dom0Allocated = FALSE; /* be-alloc: the pool's buffers are Dom0's granted pages */
};

} /* namespace */

struct _GstXmbGuestSink {
	GstBaseSink parent;
	GuestSinkState *state;
};

#define gst_xmb_guest_sink_parent_class parent_class
G_DEFINE_TYPE(GstXmbGuestSink, gst_xmb_guest_sink, GST_TYPE_BASE_SINK)
GST_ELEMENT_REGISTER_DEFINE(xmbguestsink, "xmbguestsink", GST_RANK_NONE, GST_TYPE_XMB_GUEST_SINK)

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE(
	"sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS(GST_VIDEO_CAPS_MAKE(XMB_VCODEC_RAW_FORMATS)));

/*
 * GstBaseSink calls set_caps and event() for serialized events with its
 * preroll lock held, and only unlocks after them.  A wait for Dom0 there (the
 * first caps, EOS's drain) must let state changes through meanwhile, or a
 * PAUSED->PLAYING waits for Dom0 too; unlock() ends the wait itself.
 */
class PrerollUnlocked
{
public:
	explicit PrerollUnlocked(GstBaseSink *sink) : sink_(sink) { GST_BASE_SINK_PREROLL_UNLOCK(sink_); }
	~PrerollUnlocked() { GST_BASE_SINK_PREROLL_LOCK(sink_); }
	PrerollUnlocked(const PrerollUnlocked &) = delete;
	PrerollUnlocked &operator=(const PrerollUnlocked &) = delete;

private:
	GstBaseSink *sink_;
};

static void count(GstXmbGuestSink *self, guint64 GuestSinkState::*field, guint64 n = 1)
{
	GST_OBJECT_LOCK(self);
	self->state->*field += n;
	GST_OBJECT_UNLOCK(self);
}

static unsigned in_dom0(const GuestSinkState &st)
{
	return static_cast<unsigned>(std::count_if(st.inDom0.begin(), st.inDom0.end(),
						   [](GstBuffer *b) { return b != nullptr; }));
}

/*
 * Take Dom0's events until \a done(drained): INPUT_DONE gives a buffer back
 * to the pool.  Waits up to the timeout for each event.
 */
template<typename Done>
static GstFlowReturn pump(GstXmbGuestSink *self, Done done)
{
	GuestSinkState &st = *self->state;
	GST_OBJECT_LOCK(self);
	guint timeoutMs = st.timeoutMs;
	GST_OBJECT_UNLOCK(self);
	bool drained = false;
	while (!done(drained)) {
		auto e = st.conn->fe->waitEvent(vcodec::Millis(timeoutMs));
		if (!e && e.error().code == -EINTR)
			return GST_FLOW_FLUSHING; /* unlock(): stopping or flushing */
		if (!e) {
			GST_ELEMENT_ERROR(self, RESOURCE, WRITE, ("The Dom0 pipeline stopped taking frames"),
					  ("%s (is its xmbguestsrc still PLAYING?)", e.error().message.c_str()));
			return GST_FLOW_ERROR;
		}
		switch (e->type) {
		case XENVCODEC_EVT_INPUT_DONE:
			if (e->index < st.inDom0.size() && st.inDom0[e->index]) {
				gst_buffer_unref(st.inDom0[e->index]); /* back to the pool */
				st.inDom0[e->index] = nullptr;
			}
			break;
		case XENVCODEC_EVT_DRAINED:
			drained = true;
			break;
		case XENVCODEC_EVT_ERROR:
			GST_ELEMENT_ERROR(self, RESOURCE, WRITE, ("Dom0 reported an error"), ("status %d", e->status));
			return GST_FLOW_ERROR;
		default:
			break;
		}
	}
	return GST_FLOW_OK;
}

static void close_session(GuestSinkState &st)
{
	for (GstBuffer *&b : st.inDom0)
		if (b) {
			gst_buffer_unref(b);
			b = nullptr;
		}
	st.inDom0.clear();
	if (st.pool) {
		gst_buffer_pool_set_active(st.pool, FALSE);
		gst_object_unref(st.pool);
		st.pool = nullptr;
	}
	st.open = false;
}

static gboolean gst_xmb_guest_sink_start(GstBaseSink *sink)
{
	auto *self = GST_XMB_GUEST_SINK(sink);
	GuestSinkState &st = *self->state;
	GST_OBJECT_LOCK(self);
	int kind = st.platform;
	guint domid = st.loopbackDomid, timeoutMs = st.timeoutMs;
	st.frames = st.zeroCopyFrames = st.rawBytesCopied = 0;
	GST_OBJECT_UNLOCK(self);
	if (kind == XMB_PLATFORM_LOOPBACK) {
		if (!domid) {
			GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS, ("platform=loopback needs loopback-domid"),
					  ("set loopback-domid=<guest domid> (1..32751)"));
			return FALSE;
		}
		if (Status s = ensureLoopbackDomain(static_cast<xen::DomId>(domid)); !s) {
			GST_ELEMENT_ERROR(self, RESOURCE, FAILED, ("Cannot start loopback domain %u", domid),
					  ("%s", s.error().message.c_str()));
			return FALSE;
		}
	}
	auto pf = openPlatform(kind, static_cast<xen::DomId>(domid));
	if (!pf) {
		GST_ELEMENT_ERROR(self, RESOURCE, OPEN_WRITE,
				  ("Cannot open the %s platform", kind == XMB_PLATFORM_XEN ? "Xen" : "loopback"),
				  ("%s", pf.error().message.c_str()));
		return FALSE;
	}
	st.conn = std::make_shared<VcodecConnection>();
	st.conn->platform = std::move(*pf);
	st.conn->fe = std::make_unique<vcodec::CodecFrontend>(*st.conn->platform);
	st.conn->fe->setTimeout(vcodec::Millis(timeoutMs));
	/*
	 * unlock() ends the waits for Dom0 under way; a wait begun on a flushing
	 * (or deactivated) pad ends at once.  Together they need no polling:
	 * GstBaseSink flags the pad flushing, then calls unlock() and, as soon
	 * as it holds the preroll lock a wait in set_caps let go of,
	 * unlock_stop() - a wait begun after that sees the pad flushing.
	 */
	/* The pad is referenced: the connection may outlive the element (pool buffers). */
	std::shared_ptr<GstPad> pad(GST_PAD(gst_object_ref(GST_BASE_SINK_PAD(sink))),
				    [](GstPad *p) { gst_object_unref(p); });
	st.conn->fe->setCancelCheck([pad] { return GST_PAD_IS_FLUSHING(pad.get()); });
	st.connected = false;
	st.forceKeyNext = false;
	st.warnedCopy = false;
	return TRUE;
}

static gboolean gst_xmb_guest_sink_stop(GstBaseSink *sink)
{
	auto *self = GST_XMB_GUEST_SINK(sink);
	GuestSinkState &st = *self->state;
	if (st.open) {
		GST_OBJECT_LOCK(self);
		GST_INFO_OBJECT(self,
				"%" G_GUINT64_FORMAT " frames sent, %" G_GUINT64_FORMAT " zero-copy, %" G_GUINT64_FORMAT
				" raw bytes copied",
				st.frames, st.zeroCopyFrames, st.rawBytesCopied);
		GST_OBJECT_UNLOCK(self);
	}
	close_session(st);
	st.connected = false;
	/* The device closes once upstream has let go of every pool buffer. */
	st.conn.reset();
	return TRUE;
}

/* Connect (first caps), open a raw session for \a caps, share the INPUT buffers. */
static gboolean gst_xmb_guest_sink_set_caps(GstBaseSink *sink, GstCaps *caps)
{
	auto *self = GST_XMB_GUEST_SINK(sink);
	GuestSinkState &st = *self->state;
	GstVideoInfo in;
	if (!gst_video_info_from_caps(&in, caps))
		return FALSE;
	if (st.open) {
		if (gst_video_info_is_equal(&in, &st.inInfo))
			return TRUE;
		GST_ELEMENT_ERROR(self, CORE, NEGOTIATION, ("The raw format cannot change mid-stream"),
				  ("restart the pipeline to send another format or size"));
		return FALSE;
	}
	GST_OBJECT_LOCK(self);
	guint device = st.device, timeoutMs = st.timeoutMs, wantBuffers = st.buffers;
	GST_OBJECT_UNLOCK(self);
	vcodec::CodecFrontend &fe = *st.conn->fe;
	if (!st.connected) {
		Status s;
		{
			PrerollUnlocked unlocked(sink);
			s = fe.connect(device, vcodec::Millis(timeoutMs));
		}
		if (!s) {
			if (s.error().code == -EINTR)
				return FALSE; /* unlock(): the element is stopping */
			GST_ELEMENT_ERROR(self, RESOURCE, OPEN_WRITE,
					  ("No Dom0 pipeline at vcodec device %u of dom%u", device,
					   st.conn->platform->self),
					  ("%s (is an xmbguestsrc serving this guest?)", s.error().message.c_str()));
			return FALSE;
		}
		st.connected = true;
		GST_OBJECT_LOCK(self);
		st.dom0Allocated = fe.caps().beAlloc;
		GST_OBJECT_UNLOCK(self);
	}
	uint32_t fourcc = fourccFromVideoFormat(GST_VIDEO_INFO_FORMAT(&in));
	const proto::CodecCaps *raw = fe.caps().find(XENVCODEC_CODEC_RAW);
	if (!raw) {
		GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS,
				  ("vcodec device %u takes no raw frames: it is a Dom0 encoder", device),
				  ("use xmbencoder for it, or serve this device with xmbguestsrc"));
		return FALSE;
	}
	if (std::find(raw->rawFormats.begin(), raw->rawFormats.end(), fourcc) == raw->rawFormats.end()) {
		GST_ELEMENT_ERROR(self, CORE, NEGOTIATION, ("Dom0 does not take %s frames",
							    gst_video_format_to_string(GST_VIDEO_INFO_FORMAT(&in))),
				  ("put videoconvert before xmbguestsink"));
		return FALSE;
	}
	xenvcodec_config cfg{};
	cfg.codec = XENVCODEC_CODEC_RAW;
	cfg.raw_fourcc = fourcc;
	cfg.width = GST_VIDEO_INFO_WIDTH(&in);
	cfg.height = GST_VIDEO_INFO_HEIGHT(&in);
	cfg.frame_rate_numer = GST_VIDEO_INFO_FPS_N(&in) > 0 ? GST_VIDEO_INFO_FPS_N(&in) : 30;
	cfg.frame_rate_denom = GST_VIDEO_INFO_FPS_N(&in) > 0 ? GST_VIDEO_INFO_FPS_D(&in) : 1;
	cfg.rc_mode = XENVCODEC_RC_VBR;
	if (auto r = fe.open(cfg); !r) {
		GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS, ("Dom0 refused the raw session"),
				  ("OPEN: %s", r.error().message.c_str()));
		return FALSE;
	}
	auto layout = fe.getLayout();
	if (!layout) {
		GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS, ("No buffer layout from Dom0"),
				  ("%s", layout.error().message.c_str()));
		return FALSE;
	}
	uint8_t n = static_cast<uint8_t>(std::clamp<guint>(wantBuffers, std::max<guint>(layout->minBuffers, 2),
							 std::max<guint>(layout->maxBuffers, 2)));
	if (Status s = fe.createBuffers(n, 0); !s) {
		GST_ELEMENT_ERROR(self, RESOURCE, NO_SPACE_LEFT, ("Cannot share buffers with Dom0"),
				  ("%s", s.error().message.c_str()));
		return FALSE;
	}
	/* The granted INPUT buffers as GStreamer sees them: Dom0's offsets and strides. */
	st.rawInfo = inputInfoFromLayout(in, *layout);
	st.pool = inputPoolNew(st.conn, st.rawInfo, n);
	if (!st.pool) {
		GST_ELEMENT_ERROR(self, RESOURCE, FAILED, ("Cannot configure the granted buffer pool"), (nullptr));
		return FALSE;
	}
	st.inDom0.assign(n, nullptr);
	st.inInfo = in;
	st.open = true;
	GST_INFO_OBJECT(self, "sending %s %ux%u to Dom0, %u granted buffers",
			gst_video_format_to_string(GST_VIDEO_INFO_FORMAT(&in)), cfg.width, cfg.height, n);
	return TRUE;
}

/* Another thread stops or flushes us: a wait for Dom0 returns at once. */
static gboolean gst_xmb_guest_sink_unlock(GstBaseSink *sink)
{
	auto *self = GST_XMB_GUEST_SINK(sink);
	if (self->state->conn)
		self->state->conn->fe->interrupt();
	return TRUE;
}

static gboolean gst_xmb_guest_sink_unlock_stop(GstBaseSink *sink)
{
	auto *self = GST_XMB_GUEST_SINK(sink);
	if (self->state->conn)
		self->state->conn->fe->clearInterrupt();
	return TRUE;
}

static gboolean gst_xmb_guest_sink_propose_allocation(GstBaseSink *sink, GstQuery *query)
{
	auto *self = GST_XMB_GUEST_SINK(sink);
	GuestSinkState &st = *self->state;
	gst_query_add_allocation_meta(query, GST_VIDEO_META_API_TYPE, nullptr);
	if (st.pool)
		gst_query_add_allocation_pool(query, st.pool, static_cast<guint>(st.rawInfo.size),
					      static_cast<guint>(st.inDom0.size()),
					      static_cast<guint>(st.inDom0.size()));
	return TRUE;
}

/* A buffer from elsewhere: one copy into a granted buffer (counted, warned once). */
static GstFlowReturn copy_into_pool(GstXmbGuestSink *self, GstBuffer *src, GstBuffer **out, int *index)
{
	GuestSinkState &st = *self->state;
	std::string why;
	*out = inputPoolCopy(st.pool, st.rawInfo, st.inInfo, src, index, &why);
	if (!*out) {
		GST_ELEMENT_ERROR(self, STREAM, FORMAT, ("Cannot copy a frame into granted memory"), ("%s", why.c_str()));
		return GST_FLOW_ERROR;
	}
	count(self, &GuestSinkState::rawBytesCopied, GST_VIDEO_INFO_SIZE(&st.inInfo));
	if (!st.warnedCopy) {
		st.warnedCopy = true;
		GST_ELEMENT_WARNING(self, RESOURCE, SETTINGS, ("Frames are copied into granted pages"),
				    ("upstream does not allocate from this element's pool; put it right after "
				     "an element that does (videotestsrc, videoconvert) to avoid it"));
	}
	return GST_FLOW_OK;
}

static GstFlowReturn gst_xmb_guest_sink_render(GstBaseSink *sink, GstBuffer *buffer)
{
	auto *self = GST_XMB_GUEST_SINK(sink);
	GuestSinkState &st = *self->state;
	if (!st.open)
		return GST_FLOW_NOT_NEGOTIATED;
	GstBuffer *buf = nullptr;
	int index = inputPoolIndex(st.pool, buffer);
	if (index >= 0 && index < static_cast<int>(st.inDom0.size()) && !st.inDom0[index]) {
		buf = gst_buffer_ref(buffer); /* upstream rendered into granted pages */
		count(self, &GuestSinkState::zeroCopyFrames);
	} else if (GstFlowReturn r = copy_into_pool(self, buffer, &buf, &index); r != GST_FLOW_OK) {
		return r;
	}
	uint64_t ts = GST_BUFFER_PTS_IS_VALID(buffer) ? GST_BUFFER_PTS(buffer) : 0;
	uint8_t flags = st.forceKeyNext ? XENVCODEC_FRAME_FLAG_KEY : 0;
	st.forceKeyNext = false;
	if (Status s = st.conn->fe->queueRaw(static_cast<uint8_t>(index), ts, flags); !s) {
		gst_buffer_unref(buf);
		GST_ELEMENT_ERROR(self, RESOURCE, WRITE, ("Dom0 refused a frame"), ("QUEUE_RAW: %s", s.error().message.c_str()));
		return GST_FLOW_ERROR;
	}
	st.inDom0[index] = buf;
	count(self, &GuestSinkState::frames);
	/*
	 * Leave with a free granted buffer: upstream's next acquire from the
	 * pool must not block, since only this thread hears INPUT_DONE.
	 */
	return pump(self, [&st](bool) { return in_dom0(st) < st.inDom0.size(); });
}

static gboolean gst_xmb_guest_sink_event(GstBaseSink *sink, GstEvent *event)
{
	auto *self = GST_XMB_GUEST_SINK(sink);
	GuestSinkState &st = *self->state;
	if (gst_video_event_is_force_key_unit(event)) {
		st.forceKeyNext = true; /* the next frame goes with a key-frame request */
	} else if (GST_EVENT_TYPE(event) == GST_EVENT_EOS && st.open) {
		/* Every frame reaches the Dom0 pipeline before EOS goes on. */
		if (Status s = st.conn->fe->drain(); !s) {
			GST_ELEMENT_ERROR(self, RESOURCE, WRITE, ("Dom0 cannot drain"), ("%s", s.error().message.c_str()));
		} else {
			PrerollUnlocked unlocked(sink);
			if (pump(self, [](bool drained) { return drained; }) == GST_FLOW_OK)
				GST_DEBUG_OBJECT(self, "drained");
		}
	}
	return GST_BASE_SINK_CLASS(parent_class)->event(sink, event);
}

static GstStructure *make_stats(GstXmbGuestSink *self)
{
	GuestSinkState &st = *self->state;
	GST_OBJECT_LOCK(self);
	GstStructure *s = gst_structure_new("xmbguestsink-stats", "frames", G_TYPE_UINT64, st.frames,
					    "zero-copy-frames", G_TYPE_UINT64, st.zeroCopyFrames,
					    "raw-bytes-copied", G_TYPE_UINT64, st.rawBytesCopied,
					    "dom0-allocated", G_TYPE_BOOLEAN, st.dom0Allocated, nullptr);
	GST_OBJECT_UNLOCK(self);
	return s;
}

static void gst_xmb_guest_sink_set_property(GObject *object, guint id, const GValue *value, GParamSpec *pspec)
{
	auto *self = GST_XMB_GUEST_SINK(object);
	GuestSinkState &st = *self->state;
	GST_OBJECT_LOCK(self);
	switch (id) {
	case PROP_DEVICE: st.device = g_value_get_uint(value); break;
	case PROP_BUFFERS: st.buffers = g_value_get_uint(value); break;
	case PROP_TIMEOUT: st.timeoutMs = g_value_get_uint(value); break;
	case PROP_PLATFORM: st.platform = g_value_get_enum(value); break;
	case PROP_LOOPBACK_DOMID: st.loopbackDomid = g_value_get_uint(value); break;
	default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, id, pspec); break;
	}
	GST_OBJECT_UNLOCK(self);
}

static void gst_xmb_guest_sink_get_property(GObject *object, guint id, GValue *value, GParamSpec *pspec)
{
	auto *self = GST_XMB_GUEST_SINK(object);
	GuestSinkState &st = *self->state;
	if (id == PROP_STATS) {
		g_value_take_boxed(value, make_stats(self));
		return;
	}
	GST_OBJECT_LOCK(self);
	switch (id) {
	case PROP_DEVICE: g_value_set_uint(value, st.device); break;
	case PROP_BUFFERS: g_value_set_uint(value, st.buffers); break;
	case PROP_TIMEOUT: g_value_set_uint(value, st.timeoutMs); break;
	case PROP_PLATFORM: g_value_set_enum(value, st.platform); break;
	case PROP_LOOPBACK_DOMID: g_value_set_uint(value, st.loopbackDomid); break;
	default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, id, pspec); break;
	}
	GST_OBJECT_UNLOCK(self);
}

static void gst_xmb_guest_sink_finalize(GObject *object)
{
	auto *self = GST_XMB_GUEST_SINK(object);
	close_session(*self->state);
	delete self->state;
	G_OBJECT_CLASS(parent_class)->finalize(object);
}

static void gst_xmb_guest_sink_init(GstXmbGuestSink *self)
{
	self->state = new GuestSinkState();
	gst_video_info_init(&self->state->inInfo);
	gst_video_info_init(&self->state->rawInfo);
	/* Serving frames, not presenting them: no preroll wait on the Dom0 side. */
	gst_base_sink_set_async_enabled(GST_BASE_SINK(self), FALSE);
}

static void gst_xmb_guest_sink_class_init(GstXmbGuestSinkClass *klass)
{
	auto *object_class = G_OBJECT_CLASS(klass);
	auto *element_class = GST_ELEMENT_CLASS(klass);
	auto *basesink_class = GST_BASE_SINK_CLASS(klass);

	object_class->set_property = gst_xmb_guest_sink_set_property;
	object_class->get_property = gst_xmb_guest_sink_get_property;
	object_class->finalize = gst_xmb_guest_sink_finalize;

	const auto rw = static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
						 GST_PARAM_MUTABLE_READY);
	g_object_class_install_property(
		object_class, PROP_DEVICE,
		g_param_spec_uint("device", "Device", "vcodec device index of this domain", 0, 255, 0, rw));
	g_object_class_install_property(
		object_class, PROP_BUFFERS,
		g_param_spec_uint("buffers", "Buffers",
				  "Frames to grant to Dom0 (clamped to the device's max-buffers)", 2, 32,
				  kDefaultBuffers, rw));
	g_object_class_install_property(
		object_class, PROP_TIMEOUT,
		g_param_spec_uint("timeout", "Timeout",
				  "Milliseconds to wait for Dom0 to serve the device, and for it to give a "
				  "frame back, before an error",
				  1, G_MAXUINT, kDefaultTimeoutMs, rw));
	installPlatformProperties(object_class, PROP_PLATFORM, PROP_LOOPBACK_DOMID, false);
	g_object_class_install_property(
		object_class, PROP_STATS,
		g_param_spec_boxed("stats", "Statistics",
				   "frames, zero-copy-frames (upstream rendered into granted pages), "
				   "raw-bytes-copied, dom0-allocated (be-alloc: the pool is Dom0's pages)",
				   GST_TYPE_STRUCTURE,
				   static_cast<GParamFlags>(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS)));

	gst_element_class_set_static_metadata(
		element_class, "Xen guest frame sink", "Sink/Video",
		"Guest: raw frames to a Dom0 pipeline (xmbguestsrc) over vcodec, from granted pages "
		"upstream renders into (zero copy)",
		"xen-media-bridge");
	gst_element_class_add_static_pad_template(element_class, &sink_template);

	basesink_class->start = GST_DEBUG_FUNCPTR(gst_xmb_guest_sink_start);
	basesink_class->stop = GST_DEBUG_FUNCPTR(gst_xmb_guest_sink_stop);
	basesink_class->set_caps = GST_DEBUG_FUNCPTR(gst_xmb_guest_sink_set_caps);
	basesink_class->propose_allocation = GST_DEBUG_FUNCPTR(gst_xmb_guest_sink_propose_allocation);
	basesink_class->render = GST_DEBUG_FUNCPTR(gst_xmb_guest_sink_render);
	basesink_class->unlock = GST_DEBUG_FUNCPTR(gst_xmb_guest_sink_unlock);
	basesink_class->unlock_stop = GST_DEBUG_FUNCPTR(gst_xmb_guest_sink_unlock_stop);
	basesink_class->event = GST_DEBUG_FUNCPTR(gst_xmb_guest_sink_event);

	GST_DEBUG_CATEGORY_INIT(xmb_guest_sink_debug, "xmbguestsink", 0, "Xen guest frame sink (guest)");
}
