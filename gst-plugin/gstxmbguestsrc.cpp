/* SPDX-License-Identifier: MIT */
/**
 * SECTION:element-xmbguestsrc
 * @title: xmbguestsrc
 *
 * Dom0 element: a guest's raw frames as a live source.  The element serves
 * a vcodec device (the codec service's code) whose only codec is "raw": the
 * guest grants its frames (xmbguestsink, or `xmb-encode-guest --codec
 * raw`), Dom0 maps them once, and each frame leaves this element as a
 * GstBuffer wrapping the guest's pages in place (read-only memory with the
 * layout in a GstVideoMeta): no copy.  When the pipeline frees a buffer the
 * guest gets its frame back (INPUT_DONE).
 *
 * Caps are what the guest opened (I420, NV12 or YUY2, its size and frame
 * rate); a new session with another format renegotiates.  Timestamps are
 * the guest's: the first frame of a session at its arrival's running time,
 * later frames spaced as the guest's timestamps are.  A frame the guest
 * flags as a key frame is preceded by a downstream GstForceKeyUnit event,
 * so a Dom0 encoder makes it one.  With eos-on-drain=true the guest's drain
 * (end of its stream) ends the stream here with EOS, so muxers finish
 * their files.
 *
 * ## Examples
 * |[
 * gst-launch-1.0 -e xmbguestsrc guest=guest1 eos-on-drain=true ! videoconvert ! \
 *     x264enc tune=zerolatency ! h264parse ! mp4mux ! filesink location=guest1.mp4
 * gst-launch-1.0 xmbguestsrc guest=3 ! v4l2h264enc ! h264parse ! rtph264pay ! udpsink
 * ]|
 */
#include "gstxmbguestsrc.h"

#include <atomic>
#include <cctype>
#include <memory>
#include <mutex>
#include <string>

#include <gst/video/video.h>

#include "bridge/service/event_loop.h"
#include "bridge/vcodec/codec_service.h"
#include "guest_frame_queue.h"
#include "service_thread.h"
#include "xmb_common.h"

GST_DEBUG_CATEGORY(xmb_guest_src_debug);
#define GST_CAT_DEFAULT xmb_guest_src_debug

using namespace xmb;
using namespace xmb::gst;

enum {
	PROP_0,
	PROP_GUEST,
	PROP_DEVICE,
	PROP_MAX_BUFFERS,
	PROP_EOS_ON_DRAIN,
	PROP_BE_ALLOC,
	PROP_PLATFORM,
	PROP_LOOPBACK_GUEST_DOMID,
	PROP_STATS,
};

constexpr guint kDefaultDevice = 0;
constexpr guint kDefaultMaxBuffers = 8;

namespace {

struct GuestSrcState {
	/* properties (object lock) */
	std::string guest;
	guint device = kDefaultDevice;
	guint maxBuffers = kDefaultMaxBuffers;
	gboolean eosOnDrain = FALSE;
	gboolean beAlloc = FALSE;
	int platform = XMB_PLATFORM_XEN;
	guint loopbackGuestDomid = 0;

	/* runtime: set up in start(), torn down in stop() */
	std::unique_ptr<xen::Platform> dom0;
	std::shared_ptr<GuestFrameQueue> queue;
	std::unique_ptr<ServiceThread> service; /* the loop and its thread */
	std::unique_ptr<vcodec::CodecService> svc;
	std::string label;

	/* streaming thread */
	GstCaps *caps = nullptr; /* what the current session sends (object lock for get_caps) */
	GstVideoInfo info{};
	bool haveBase = false;
	GstClockTime baseRunning = 0;
	uint64_t baseTimestamp = 0;
	bool pushedSinceStart = false;
	guint keyCount = 0;
};

} /* namespace */

struct _GstXmbGuestSrc {
	GstPushSrc parent;
	GuestSrcState *state;
};

#define gst_xmb_guest_src_parent_class parent_class
G_DEFINE_TYPE(GstXmbGuestSrc, gst_xmb_guest_src, GST_TYPE_PUSH_SRC)
GST_ELEMENT_REGISTER_DEFINE(xmbguestsrc, "xmbguestsrc", GST_RANK_NONE, GST_TYPE_XMB_GUEST_SRC)

static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE(
	"src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS(GST_VIDEO_CAPS_MAKE(XMB_VCODEC_RAW_FORMATS)));

/* "3" -> domid=3, "vm1" -> domain=vm1 */
static std::string guest_spec(const std::string &guest)
{
	bool numeric = !guest.empty() && std::all_of(guest.begin(), guest.end(), [](char c) {
		return std::isdigit(static_cast<unsigned char>(c));
	});
	return (numeric ? "domid=" : "domain=") + guest;
}

static void stop_service(GuestSrcState &st)
{
	if (st.queue)
		st.queue->setFlushing(true);
	if (st.service)
		st.service->stop();
	if (st.svc)
		st.svc->stop(); /* sessions end: frames not handed over are released */
	st.svc.reset();
	st.service.reset();
}

static gboolean gst_xmb_guest_src_start(GstBaseSrc *src)
{
	auto *self = GST_XMB_GUEST_SRC(src);
	GuestSrcState &st = *self->state;
	GST_OBJECT_LOCK(self);
	std::string guest = st.guest;
	guint device = st.device, maxBuffers = st.maxBuffers, loopDom = st.loopbackGuestDomid;
	const bool beAlloc = st.beAlloc;
	int kind = st.platform;
	GST_OBJECT_UNLOCK(self);

	if (guest.empty() && kind == XMB_PLATFORM_LOOPBACK && loopDom)
		guest = std::to_string(loopDom);
	if (guest.empty()) {
		GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS, ("No guest to take frames from"),
				  ("set guest=<domain name or domid>"));
		return FALSE;
	}
	std::string spec = guest_spec(guest) + ",device=" + std::to_string(device) +
			   ",max-buffers=" + std::to_string(maxBuffers) + ",codecs=raw,name=" +
			   GST_OBJECT_NAME(self) + (beAlloc ? ",be-alloc=yes" : "");
	auto g = vcodec::parseGuestSpec(spec);
	if (!g) {
		GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS, ("Invalid guest '%s'", guest.c_str()),
				  ("%s", g.error().message.c_str()));
		return FALSE;
	}
	if (kind == XMB_PLATFORM_LOOPBACK && loopDom) {
		if (Status s = ensureLoopbackDomain(static_cast<xen::DomId>(loopDom)); !s) {
			GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS, ("Cannot create loopback guest domain %u", loopDom),
					  ("%s", s.error().message.c_str()));
			return FALSE;
		}
	}
	auto pf = openPlatform(kind, 0);
	if (!pf) {
		GST_ELEMENT_ERROR(self, RESOURCE, OPEN_READ_WRITE,
				  ("Cannot open the %s platform as Dom0", kind == XMB_PLATFORM_XEN ? "Xen" : "loopback"),
				  ("%s%s", pf.error().message.c_str(),
				   kind == XMB_PLATFORM_XEN ? " (run in Dom0 as root; platform=loopback is for tests and demos)"
							    : ""));
		return FALSE;
	}
	st.dom0 = std::move(*pf);
	auto queue = std::make_shared<GuestFrameQueue>();
	GST_OBJECT_LOCK(self);
	st.queue = queue;
	GST_OBJECT_UNLOCK(self);
	st.service = std::make_unique<ServiceThread>();
	if (!st.service->valid()) {
		GST_ELEMENT_ERROR(self, RESOURCE, FAILED, ("Cannot create the service event loop"),
				  ("epoll/eventfd: %s", g_strerror(errno)));
		st.service.reset();
		st.dom0.reset();
		return FALSE;
	}
	st.svc = std::make_unique<vcodec::CodecService>(
		*st.dom0, st.service->loop(), std::vector<proto::CodecCaps>{ pipelineCodecCaps() },
		pipelineEncoderFactory(st.queue, GST_OBJECT_NAME(self)));
	st.label = "guest " + guest + " (vcodec " + std::to_string(device) + ")";
	if (Status s = st.svc->start({ { *g } }); !s) {
		GST_ELEMENT_ERROR(self, RESOURCE, FAILED, ("Cannot serve a vcodec device to %s", st.label.c_str()),
				  ("codec service: %s", s.error().message.c_str()));
		st.svc.reset();
		st.service.reset();
		st.dom0.reset();
		return FALSE;
	}
	st.service->start();
	st.haveBase = false;
	st.pushedSinceStart = false;
	GST_INFO_OBJECT(self, "serving raw frames of %s", st.label.c_str());
	return TRUE;
}

static gboolean gst_xmb_guest_src_stop(GstBaseSrc *src)
{
	auto *self = GST_XMB_GUEST_SRC(src);
	GuestSrcState &st = *self->state;
	stop_service(st);
	GST_OBJECT_LOCK(self);
	st.queue.reset(); /* frames still downstream keep only their own pages */
	GST_OBJECT_UNLOCK(self);
	st.dom0.reset();
	GST_OBJECT_LOCK(self);
	if (st.caps)
		gst_caps_unref(st.caps);
	st.caps = nullptr;
	GST_OBJECT_UNLOCK(self);
	return TRUE;
}

static GstCaps *gst_xmb_guest_src_get_caps(GstBaseSrc *src, GstCaps *filter)
{
	auto *self = GST_XMB_GUEST_SRC(src);
	GST_OBJECT_LOCK(self);
	GstCaps *caps = self->state->caps ? gst_caps_ref(self->state->caps)
					  : gst_pad_get_pad_template_caps(GST_BASE_SRC_PAD(src));
	GST_OBJECT_UNLOCK(self);
	if (filter) {
		GstCaps *i = gst_caps_intersect_full(filter, caps, GST_CAPS_INTERSECT_FIRST);
		gst_caps_unref(caps);
		caps = i;
	}
	return caps;
}

/* Caps come from the guest's OPEN: until then there is nothing to negotiate. */
static gboolean gst_xmb_guest_src_negotiate(GstBaseSrc *src)
{
	auto *self = GST_XMB_GUEST_SRC(src);
	GST_OBJECT_LOCK(self);
	GstCaps *caps = self->state->caps ? gst_caps_ref(self->state->caps) : nullptr;
	GST_OBJECT_UNLOCK(self);
	if (!caps)
		return TRUE;
	gboolean ok = gst_base_src_set_caps(src, caps);
	gst_caps_unref(caps);
	return ok;
}

static gboolean gst_xmb_guest_src_unlock(GstBaseSrc *src)
{
	auto *self = GST_XMB_GUEST_SRC(src);
	if (self->state->queue)
		self->state->queue->setFlushing(true);
	return TRUE;
}

static gboolean gst_xmb_guest_src_unlock_stop(GstBaseSrc *src)
{
	auto *self = GST_XMB_GUEST_SRC(src);
	if (self->state->queue)
		self->state->queue->setFlushing(false);
	return TRUE;
}

static gboolean gst_xmb_guest_src_query(GstBaseSrc *src, GstQuery *query)
{
	auto *self = GST_XMB_GUEST_SRC(src);
	if (GST_QUERY_TYPE(query) == GST_QUERY_LATENCY) {
		const GstVideoInfo &vi = self->state->info;
		/* A frame's first timestamp is its arrival: up to one frame late. */
		GstClockTime lat = GST_VIDEO_INFO_FPS_N(&vi) > 0
					   ? gst_util_uint64_scale(GST_SECOND, GST_VIDEO_INFO_FPS_D(&vi),
								   GST_VIDEO_INFO_FPS_N(&vi))
					   : 0;
		gst_query_set_latency(query, TRUE, lat, GST_CLOCK_TIME_NONE);
		return TRUE;
	}
	return GST_BASE_SRC_CLASS(parent_class)->query(src, query);
}

static GstClockTime running_time_now(GstElement *e)
{
	GstClock *clock = gst_element_get_clock(e);
	if (!clock)
		return 0;
	GstClockTime now = gst_clock_get_time(clock);
	gst_object_unref(clock);
	GstClockTime base = gst_element_get_base_time(e);
	return now > base ? now - base : 0;
}

/* A session's caps: negotiate them downstream before its first frame. */
static GstFlowReturn take_caps(GstXmbGuestSrc *self, GstCaps *caps)
{
	GuestSrcState &st = *self->state;
	GstVideoInfo info;
	if (!gst_video_info_from_caps(&info, caps)) {
		gst_caps_unref(caps);
		return GST_FLOW_NOT_NEGOTIATED;
	}
	GST_OBJECT_LOCK(self);
	if (st.caps)
		gst_caps_unref(st.caps);
	st.caps = gst_caps_ref(caps);
	GST_OBJECT_UNLOCK(self);
	st.info = info;
	st.haveBase = false; /* a new session: its timestamps start afresh */
	gboolean ok = gst_base_src_set_caps(GST_BASE_SRC(self), caps);
	if (!ok) {
		GST_ELEMENT_ERROR(self, CORE, NEGOTIATION,
				  ("Downstream refuses the guest's format %" GST_PTR_FORMAT, caps),
				  ("put videoconvert/videoscale after xmbguestsrc"));
		gst_caps_unref(caps);
		return GST_FLOW_NOT_NEGOTIATED;
	}
	GST_INFO_OBJECT(self, "guest sends %" GST_PTR_FORMAT, caps);
	gst_caps_unref(caps);
	return GST_FLOW_OK;
}

static GstFlowReturn gst_xmb_guest_src_create(GstPushSrc *src, GstBuffer **out)
{
	auto *self = GST_XMB_GUEST_SRC(src);
	GuestSrcState &st = *self->state;
	while (true) {
		std::optional<GuestItem> item = st.queue->pop();
		if (!item)
			return GST_FLOW_FLUSHING;
		switch (item->kind) {
		case GuestItem::Kind::Caps:
			if (GstFlowReturn r = take_caps(self, item->caps); r != GST_FLOW_OK)
				return r;
			continue;
		case GuestItem::Kind::Drain: {
			if (item->drained)
				item->drained(); /* every earlier frame was handed over */
			GST_OBJECT_LOCK(self);
			bool eos = st.eosOnDrain;
			GST_OBJECT_UNLOCK(self);
			if (eos) {
				GST_INFO_OBJECT(self, "the guest drained: end of stream");
				return GST_FLOW_EOS;
			}
			continue;
		}
		case GuestItem::Kind::Frame:
			break;
		}
		GstBuffer *buf = item->buffer;
		if (!st.haveBase) {
			st.haveBase = true;
			st.baseRunning = running_time_now(GST_ELEMENT(self));
			st.baseTimestamp = item->timestamp;
		}
		uint64_t delta = item->timestamp >= st.baseTimestamp ? item->timestamp - st.baseTimestamp : 0;
		GST_BUFFER_PTS(buf) = st.baseRunning + delta;
		GST_BUFFER_DTS(buf) = GST_CLOCK_TIME_NONE;
		if (GST_VIDEO_INFO_FPS_N(&st.info) > 0)
			GST_BUFFER_DURATION(buf) = gst_util_uint64_scale(GST_SECOND, GST_VIDEO_INFO_FPS_D(&st.info),
									 GST_VIDEO_INFO_FPS_N(&st.info));
		if (item->key && st.pushedSinceStart) {
			/* Ask the Dom0 encoder downstream for a key frame at this one. */
			gst_pad_push_event(GST_BASE_SRC_PAD(src),
					   gst_video_event_new_downstream_force_key_unit(
						   GST_BUFFER_PTS(buf), GST_CLOCK_TIME_NONE, GST_BUFFER_PTS(buf), TRUE,
						   ++st.keyCount));
		}
		st.pushedSinceStart = true;
		st.queue->framePushed();
		*out = buf;
		return GST_FLOW_OK;
	}
}

static GstStructure *make_stats(GstXmbGuestSrc *self)
{
	GuestSrcState &st = *self->state;
	/* The property may be read from any thread while start/stop swap the queue. */
	GST_OBJECT_LOCK(self);
	std::shared_ptr<GuestFrameQueue> queue = st.queue;
	GST_OBJECT_UNLOCK(self);
	GuestQueueStats q = queue ? queue->stats() : GuestQueueStats{};
	return gst_structure_new("xmbguestsrc-stats", "frames-in", G_TYPE_UINT64, q.framesIn,
				 "frames-pushed", G_TYPE_UINT64, q.framesPushed, "frames-in-pipeline",
				 G_TYPE_UINT64, q.framesLive, "sessions", G_TYPE_UINT64, q.sessions,
				 "raw-bytes-copied", G_TYPE_UINT64, G_GUINT64_CONSTANT(0), nullptr);
}

static void gst_xmb_guest_src_set_property(GObject *object, guint id, const GValue *value, GParamSpec *pspec)
{
	auto *self = GST_XMB_GUEST_SRC(object);
	GuestSrcState &st = *self->state;
	GST_OBJECT_LOCK(self);
	switch (id) {
	case PROP_GUEST: st.guest = g_value_get_string(value) ? g_value_get_string(value) : ""; break;
	case PROP_DEVICE: st.device = g_value_get_uint(value); break;
	case PROP_MAX_BUFFERS: st.maxBuffers = g_value_get_uint(value); break;
	case PROP_EOS_ON_DRAIN: st.eosOnDrain = g_value_get_boolean(value); break;
	case PROP_BE_ALLOC: st.beAlloc = g_value_get_boolean(value); break;
	case PROP_PLATFORM: st.platform = g_value_get_enum(value); break;
	case PROP_LOOPBACK_GUEST_DOMID: st.loopbackGuestDomid = g_value_get_uint(value); break;
	default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, id, pspec); break;
	}
	GST_OBJECT_UNLOCK(self);
}

static void gst_xmb_guest_src_get_property(GObject *object, guint id, GValue *value, GParamSpec *pspec)
{
	auto *self = GST_XMB_GUEST_SRC(object);
	GuestSrcState &st = *self->state;
	if (id == PROP_STATS) {
		g_value_take_boxed(value, make_stats(self));
		return;
	}
	GST_OBJECT_LOCK(self);
	switch (id) {
	case PROP_GUEST: g_value_set_string(value, st.guest.empty() ? nullptr : st.guest.c_str()); break;
	case PROP_DEVICE: g_value_set_uint(value, st.device); break;
	case PROP_MAX_BUFFERS: g_value_set_uint(value, st.maxBuffers); break;
	case PROP_EOS_ON_DRAIN: g_value_set_boolean(value, st.eosOnDrain); break;
	case PROP_BE_ALLOC: g_value_set_boolean(value, st.beAlloc); break;
	case PROP_PLATFORM: g_value_set_enum(value, st.platform); break;
	case PROP_LOOPBACK_GUEST_DOMID: g_value_set_uint(value, st.loopbackGuestDomid); break;
	default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, id, pspec); break;
	}
	GST_OBJECT_UNLOCK(self);
}

static void gst_xmb_guest_src_finalize(GObject *object)
{
	auto *self = GST_XMB_GUEST_SRC(object);
	stop_service(*self->state);
	if (self->state->caps)
		gst_caps_unref(self->state->caps);
	delete self->state;
	G_OBJECT_CLASS(parent_class)->finalize(object);
}

static void gst_xmb_guest_src_init(GstXmbGuestSrc *self)
{
	self->state = new GuestSrcState();
	gst_video_info_init(&self->state->info);
	gst_base_src_set_live(GST_BASE_SRC(self), TRUE);
	gst_base_src_set_format(GST_BASE_SRC(self), GST_FORMAT_TIME);
}

static void gst_xmb_guest_src_class_init(GstXmbGuestSrcClass *klass)
{
	auto *object_class = G_OBJECT_CLASS(klass);
	auto *element_class = GST_ELEMENT_CLASS(klass);
	auto *basesrc_class = GST_BASE_SRC_CLASS(klass);
	auto *pushsrc_class = GST_PUSH_SRC_CLASS(klass);

	object_class->set_property = gst_xmb_guest_src_set_property;
	object_class->get_property = gst_xmb_guest_src_get_property;
	object_class->finalize = gst_xmb_guest_src_finalize;

	const auto rw = static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
						 GST_PARAM_MUTABLE_READY);
	g_object_class_install_property(
		object_class, PROP_GUEST,
		g_param_spec_string("guest", "Guest", "Domain name or domid whose frames to take", nullptr, rw));
	g_object_class_install_property(
		object_class, PROP_DEVICE,
		g_param_spec_uint("device", "Device", "vcodec device index in the guest", 0, 255, kDefaultDevice, rw));
	g_object_class_install_property(
		object_class, PROP_MAX_BUFFERS,
		g_param_spec_uint("max-buffers", "Max buffers",
				  "Frames the guest may have granted at once (published as max-buffers)", 1, 32,
				  kDefaultMaxBuffers, rw));
	g_object_class_install_property(
		object_class, PROP_EOS_ON_DRAIN,
		g_param_spec_boolean("eos-on-drain", "EOS on drain",
				     "End the stream (EOS) when the guest drains, e.g. at the end of its "
				     "stream, so muxers finish their files",
				     FALSE, rw));
	g_object_class_install_property(
		object_class, PROP_BE_ALLOC,
		g_param_spec_boolean("be-alloc", "Backend allocation",
				     "Dom0 allocates the guest's buffers and grants them (vcodec be-alloc): "
				     "the guest renders into Dom0's pages",
				     FALSE, rw));
	installPlatformProperties(object_class, PROP_PLATFORM, PROP_LOOPBACK_GUEST_DOMID, true);
	g_object_class_install_property(
		object_class, PROP_STATS,
		g_param_spec_boxed("stats", "Statistics",
				   "frames-in, frames-pushed, frames-in-pipeline (guest frames downstream "
				   "holds now), sessions, raw-bytes-copied (always 0: frames are wrapped)",
				   GST_TYPE_STRUCTURE,
				   static_cast<GParamFlags>(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS)));

	gst_element_class_set_static_metadata(
		element_class, "Xen guest frame source", "Source/Video",
		"Dom0: a Xen guest's raw frames (vcodec codec 'raw') as a live source; buffers wrap "
		"the guest's granted pages (zero copy)",
		"xen-media-bridge");
	gst_element_class_add_static_pad_template(element_class, &src_template);

	basesrc_class->start = GST_DEBUG_FUNCPTR(gst_xmb_guest_src_start);
	basesrc_class->stop = GST_DEBUG_FUNCPTR(gst_xmb_guest_src_stop);
	basesrc_class->get_caps = GST_DEBUG_FUNCPTR(gst_xmb_guest_src_get_caps);
	basesrc_class->negotiate = GST_DEBUG_FUNCPTR(gst_xmb_guest_src_negotiate);
	basesrc_class->unlock = GST_DEBUG_FUNCPTR(gst_xmb_guest_src_unlock);
	basesrc_class->unlock_stop = GST_DEBUG_FUNCPTR(gst_xmb_guest_src_unlock_stop);
	basesrc_class->query = GST_DEBUG_FUNCPTR(gst_xmb_guest_src_query);
	pushsrc_class->create = GST_DEBUG_FUNCPTR(gst_xmb_guest_src_create);

	gst_type_mark_as_plugin_api(platformEnumType(), static_cast<GstPluginAPIFlags>(0));
	GST_DEBUG_CATEGORY_INIT(xmb_guest_src_debug, "xmbguestsrc", 0, "Xen guest frame source (Dom0)");
}
