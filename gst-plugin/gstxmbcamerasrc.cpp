/* SPDX-License-Identifier: MIT */
/**
 * SECTION:element-xmbcamerasrc
 * @title: xmbcamerasrc
 *
 * Guest element: the Dom0 camera (a vcamera device served by
 * xmb-camera-service or xmbcamerasink) as a live source, through the
 * project's cameraif frontend library.  Caps are the formats, sizes and
 * frame rates Dom0 publishes for the device.
 *
 * Zero copy: output buffers wrap the guest's buffers the frames arrived in
 * (pages this guest granted to Dom0, or Dom0's pages mapped read-only in
 * be-alloc mode); a buffer goes back to Dom0 (BUF_QUEUE) when the last
 * GstBuffer referencing it is freed.  Timestamps are the frames' arrival
 * times on the pipeline clock.
 *
 * ## Example
 * |[
 * gst-launch-1.0 xmbcamerasrc device=0 ! videoconvert ! autovideosink
 * ]|
 */
#include "gstxmbcamerasrc.h"

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <gst/video/video.h>

#include "protocol/base/unique_fd.h"
#include "bridge/frontend/camera_frontend.h"
#include "v4l2/pixel_format.h"
#include "xmb_common.h"

GST_DEBUG_CATEGORY_STATIC(xmb_camera_src_debug);
#define GST_CAT_DEFAULT xmb_camera_src_debug

using namespace xmb;
using namespace xmb::gst;
using SteadyClock = std::chrono::steady_clock;

enum {
	PROP_0,
	PROP_DEVICE,
	PROP_PLATFORM,
	PROP_LOOPBACK_DOMID,
	PROP_BUFFERS,
	PROP_TIMEOUT,
};

constexpr guint kDefaultDevice = 0;
constexpr guint kDefaultBuffers = 4;
constexpr guint kDefaultTimeoutMs = 10000;

namespace {

/*
 * The connection to Dom0.  Shared with every output buffer's memory: the
 * frontend (and the pages it maps or grants) lives until the last buffer is
 * freed, even after the element stopped.
 */
struct Connection {
	std::unique_ptr<xen::Platform> platform;
	std::unique_ptr<frontend::CameraFrontend> fe;
	UniqueFD wake{ ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK) };

	std::mutex lock;
	std::condition_variable cond;
	std::vector<uint8_t> requeue; /* freed by the pipeline, to give back to Dom0 */
	unsigned outstanding = 0;     /* buffers in the pipeline */
	uint64_t generation = 1;      /* buffers of an older generation are not re-queued */
	bool stopped = false;
	bool connecting = false;      /* connect_device() is waiting: unlock() interrupts it (lock) */

	~Connection()
	{
		fe.reset(); /* disconnect: destroys buffers, closes the device */
		platform.reset();
	}
	void wakeUp()
	{
		uint64_t one = 1;
		[[maybe_unused]] ssize_t r = ::write(wake.get(), &one, sizeof(one));
	}
	void drainWake()
	{
		uint64_t v;
		[[maybe_unused]] ssize_t r = ::read(wake.get(), &v, sizeof(v));
	}
};

struct BufferContext {
	std::shared_ptr<Connection> conn;
	uint8_t index;
	uint64_t generation;
};

void bufferFreed(gpointer data)
{
	auto *ctx = static_cast<BufferContext *>(data);
	{
		Connection &c = *ctx->conn;
		std::lock_guard<std::mutex> l(c.lock);
		c.outstanding--;
		if (!c.stopped && ctx->generation == c.generation) {
			c.requeue.push_back(ctx->index);
			c.wakeUp();
		}
		c.cond.notify_all();
	}
	delete ctx; /* may destroy the connection (disconnect) if the element stopped */
}

struct SrcState {
	/* properties (object lock) */
	guint device = kDefaultDevice;
	int platform = XMB_PLATFORM_XEN;
	guint loopbackDomid = 0;
	guint buffers = kDefaultBuffers;
	guint timeoutMs = kDefaultTimeoutMs;

	/* streaming */
	std::shared_ptr<Connection> conn;
	gint unlocking = 0;
	GstVideoInfo info{};
	bool beAlloc = false;
	std::shared_ptr<const proto::VcameraConfig> published; /* object lock; set once connected */
	uint64_t frames = 0;
};

} /* namespace */

struct _GstXmbCameraSrc {
	GstPushSrc parent;
	SrcState *state;
};

#define gst_xmb_camera_src_parent_class parent_class
G_DEFINE_TYPE(GstXmbCameraSrc, gst_xmb_camera_src, GST_TYPE_PUSH_SRC)
GST_ELEMENT_REGISTER_DEFINE(xmbcamerasrc, "xmbcamerasrc", GST_RANK_NONE, GST_TYPE_XMB_CAMERA_SRC)

static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE(
	"src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS(GST_VIDEO_CAPS_MAKE(XMB_VIDEO_FORMATS)));

static gboolean gst_xmb_camera_src_start(GstBaseSrc *src)
{
	auto *self = GST_XMB_CAMERA_SRC(src);
	SrcState &st = *self->state;
	GST_OBJECT_LOCK(self);
	int kind = st.platform;
	guint domid = st.loopbackDomid;
	GST_OBJECT_UNLOCK(self);
	if (kind == XMB_PLATFORM_LOOPBACK && domid == 0) {
		GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS, ("platform=loopback needs loopback-domid"),
				  ("set loopback-domid=<guest domid> (1..32751): the loopback domain "
				   "this element runs in"));
		return FALSE;
	}
	auto pf = openPlatform(kind, static_cast<xen::DomId>(domid));
	if (!pf) {
		GST_ELEMENT_ERROR(self, RESOURCE, OPEN_READ_WRITE,
				  ("Cannot open the %s platform", kind == XMB_PLATFORM_XEN ? "Xen" : "loopback"),
				  ("%s%s", pf.error().message.c_str(),
				   kind == XMB_PLATFORM_XEN ? " (run in a Xen guest as root)" : ""));
		return FALSE;
	}
	auto conn = std::make_shared<Connection>();
	conn->platform = std::move(*pf);
	conn->fe = std::make_unique<frontend::CameraFrontend>(*conn->platform);
	st.conn = std::move(conn);
	st.frames = 0;
	gst_video_info_init(&st.info);
	return TRUE;
}

static gboolean gst_xmb_camera_src_stop(GstBaseSrc *src)
{
	auto *self = GST_XMB_CAMERA_SRC(src);
	SrcState &st = *self->state;
	if (!st.conn)
		return TRUE;
	{
		std::lock_guard<std::mutex> l(st.conn->lock);
		st.conn->stopped = true;
		if (st.conn->outstanding)
			GST_DEBUG_OBJECT(self, "%u buffers still downstream: disconnect when they are freed",
					 st.conn->outstanding);
	}
	if (st.conn->fe->streaming())
		(void)st.conn->fe->streamStop();
	st.conn.reset(); /* the last output buffer freed disconnects */
	GST_OBJECT_LOCK(self);
	st.published.reset();
	GST_OBJECT_UNLOCK(self);
	return TRUE;
}

/* Wait until Dom0 serves the device and connect (streaming thread). */
static gboolean connect_device(GstXmbCameraSrc *self)
{
	SrcState &st = *self->state;
	Connection &c = *st.conn;
	GST_OBJECT_LOCK(self);
	guint device = st.device, timeoutMs = st.timeoutMs;
	GST_OBJECT_UNLOCK(self);
	auto deadline = SteadyClock::now() + std::chrono::milliseconds(timeoutMs);
	std::string last;
	for (;;) {
		/*
		 * connect() waits on XenStore watches for the device's nodes and the
		 * backend's state until the deadline: no wake-up while nothing
		 * changes. unlock() interrupts it (under c.lock, which also guards
		 * replacing c.fe here).
		 */
		auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
		{
			std::lock_guard<std::mutex> l(c.lock);
			if (g_atomic_int_get(&st.unlocking))
				return FALSE;
			c.connecting = true;
		}
		Status s = c.fe->connect(device, std::max(left, std::chrono::milliseconds(1)));
		{
			std::lock_guard<std::mutex> l(c.lock);
			c.connecting = false;
		}
		if (s) {
			st.beAlloc = c.fe->device().config.beAlloc;
			auto cfg = std::make_shared<const proto::VcameraConfig>(c.fe->device().config);
			GST_OBJECT_LOCK(self);
			st.published = std::move(cfg);
			GST_OBJECT_UNLOCK(self);
			GST_INFO_OBJECT(self, "connected to vcamera %u (backend dom%u, %s)", device,
					c.fe->device().backendId, st.beAlloc ? "be-alloc" : "guest-allocated buffers");
			return TRUE;
		}
		last = s.error().message;
		GST_DEBUG_OBJECT(self, "vcamera %u not ready: %s", device, last.c_str());
		{
			/* Start over with a fresh frontend (one per platform, clean state). */
			std::lock_guard<std::mutex> l(c.lock);
			c.fe.reset();
			c.fe = std::make_unique<frontend::CameraFrontend>(*c.platform);
		}
		if (g_atomic_int_get(&st.unlocking))
			return FALSE;
		if (SteadyClock::now() >= deadline)
			break;
		/* A handshake that failed (not a missing device): back off before retrying. */
		pollfd p{ c.wake.get(), POLLIN, 0 };
		(void)::poll(&p, 1, 50);
		if (g_atomic_int_get(&st.unlocking))
			return FALSE;
	}
	GST_ELEMENT_ERROR(self, RESOURCE, NOT_FOUND,
			  ("No Dom0 camera at vcamera device %u of dom%u", device, c.platform->self),
			  ("%s (waited %u ms; is xmb-camera-service or xmbcamerasink serving this "
			   "domain and device?)",
			   last.c_str(), timeoutMs));
	return FALSE;
}

static GstCaps *published_caps(const proto::VcameraConfig &cfg)
{
	GstCaps *caps = gst_caps_new_empty();
	for (const auto &f : cfg.formats) {
		GstVideoFormat vf = videoFormatFromFourcc(f.fourcc);
		if (vf == GST_VIDEO_FORMAT_UNKNOWN)
			continue;
		for (const auto &r : f.resolutions) {
			GstStructure *s = gst_structure_new("video/x-raw", "format", G_TYPE_STRING,
							    gst_video_format_to_string(vf), "width", G_TYPE_INT,
							    static_cast<gint>(r.width), "height", G_TYPE_INT,
							    static_cast<gint>(r.height), nullptr);
			GValue list = G_VALUE_INIT;
			gst_value_list_init(&list, r.frameRates.size());
			for (const auto &fr : r.frameRates) {
				if (!fr.num || !fr.den)
					continue;
				GValue v = G_VALUE_INIT;
				g_value_init(&v, GST_TYPE_FRACTION);
				gst_value_set_fraction(&v, static_cast<gint>(fr.num), static_cast<gint>(fr.den));
				gst_value_list_append_and_take_value(&list, &v);
			}
			if (gst_value_list_get_size(&list) == 1)
				gst_structure_set_value(s, "framerate", gst_value_list_get_value(&list, 0));
			else if (gst_value_list_get_size(&list) > 1)
				gst_structure_set_value(s, "framerate", &list);
			else
				gst_structure_set(s, "framerate", GST_TYPE_FRACTION, 0, 1, nullptr);
			g_value_unset(&list);
			gst_caps_append_structure(caps, s);
		}
	}
	return caps;
}

static GstCaps *gst_xmb_camera_src_get_caps(GstBaseSrc *src, GstCaps *filter)
{
	auto *self = GST_XMB_CAMERA_SRC(src);
	SrcState &st = *self->state;
	GstCaps *caps = nullptr;
	GST_OBJECT_LOCK(self);
	std::shared_ptr<const proto::VcameraConfig> published = st.published;
	GST_OBJECT_UNLOCK(self);
	if (published)
		caps = published_caps(*published);
	else
		caps = gst_pad_get_pad_template_caps(GST_BASE_SRC_PAD(src));
	if (filter) {
		GstCaps *tmp = gst_caps_intersect_full(filter, caps, GST_CAPS_INTERSECT_FIRST);
		gst_caps_unref(caps);
		caps = tmp;
	}
	return caps;
}

static gboolean gst_xmb_camera_src_negotiate(GstBaseSrc *src)
{
	auto *self = GST_XMB_CAMERA_SRC(src);
	SrcState &st = *self->state;
	if (!st.conn)
		return FALSE;
	if (!st.conn->fe->connected() && !connect_device(self))
		return FALSE;
	return GST_BASE_SRC_CLASS(parent_class)->negotiate(src);
}

static GstCaps *gst_xmb_camera_src_fixate(GstBaseSrc *src, GstCaps *caps)
{
	caps = gst_caps_make_writable(caps);
	GstStructure *s = gst_caps_get_structure(caps, 0);
	/* Highest published rate. */
	gst_structure_fixate_field_nearest_fraction(s, "framerate", G_MAXINT, 1);
	return GST_BASE_SRC_CLASS(parent_class)->fixate(src, caps);
}

/* Wait until every buffer of the current stream came back from the pipeline. */
static bool wait_buffers_back(GstXmbCameraSrc *self, Connection &c)
{
	std::unique_lock<std::mutex> l(c.lock);
	bool ok = c.cond.wait_for(l, std::chrono::milliseconds(self->state->timeoutMs),
				  [&] { return c.outstanding == 0; });
	c.requeue.clear();
	c.generation++;
	return ok;
}

static gboolean gst_xmb_camera_src_set_caps(GstBaseSrc *src, GstCaps *caps)
{
	auto *self = GST_XMB_CAMERA_SRC(src);
	SrcState &st = *self->state;
	if (!st.conn)
		return FALSE;
	Connection &c = *st.conn;
	frontend::CameraFrontend &fe = *c.fe;
	GstVideoInfo info;
	if (!gst_video_info_from_caps(&info, caps))
		return FALSE;
	uint32_t fourcc = fourccFromVideoFormat(GST_VIDEO_INFO_FORMAT(&info));
	auto fail = [&](const char *what, const Error &e) {
		GST_ELEMENT_ERROR(self, STREAM, FAILED, ("Dom0 refused %s for %" GST_PTR_FORMAT, what, caps),
				  ("%s", e.message.c_str()));
		return FALSE;
	};

	if (fe.streaming() || fe.numBuffers()) {
		/* Renegotiation: the old buffers must come home before they are freed. */
		if (fe.streaming())
			(void)fe.streamStop();
		if (!wait_buffers_back(self, c)) {
			GST_ELEMENT_ERROR(self, STREAM, FAILED, ("Cannot renegotiate"),
					  ("downstream still holds %u buffers of the previous format", c.outstanding));
			return FALSE;
		}
		if (Status s = fe.freeBuffers(); !s)
			return fail("BUF_REQUEST 0", s.error());
	}

	auto cfg = fe.configSet(fourcc, static_cast<uint32_t>(GST_VIDEO_INFO_WIDTH(&info)),
				static_cast<uint32_t>(GST_VIDEO_INFO_HEIGHT(&info)));
	if (!cfg)
		return fail("the configuration", cfg.error());
	if (cfg->fourcc != fourcc || cfg->width != static_cast<uint32_t>(GST_VIDEO_INFO_WIDTH(&info)) ||
	    cfg->height != static_cast<uint32_t>(GST_VIDEO_INFO_HEIGHT(&info)))
		return fail("the configuration",
			    Error{ -EINVAL, "Dom0 answered " + fourccToString(cfg->fourcc) + " " +
						    std::to_string(cfg->width) + "x" + std::to_string(cfg->height) });
	if (GST_VIDEO_INFO_FPS_N(&info) > 0) {
		Status s = fe.frameRateSet(static_cast<uint32_t>(GST_VIDEO_INFO_FPS_N(&info)),
					   static_cast<uint32_t>(GST_VIDEO_INFO_FPS_D(&info)));
		if (!s)
			GST_WARNING_OBJECT(self, "frame rate %d/%d: %s", GST_VIDEO_INFO_FPS_N(&info),
					   GST_VIDEO_INFO_FPS_D(&info), s.error().message.c_str());
	}
	auto layout = fe.getLayout();
	if (!layout)
		return fail("BUF_GET_LAYOUT", layout.error());
	/* Dom0's strides and plane offsets (the output buffers carry them as GstVideoMeta). */
	for (unsigned p = 0; p < GST_VIDEO_INFO_N_PLANES(&info) && p < layout->numPlanes; p++) {
		info.stride[p] = static_cast<gint>(layout->planeStride[p]);
		info.offset[p] = layout->planeOffset(p);
	}
	info.size = layout->size;
	GST_OBJECT_LOCK(self);
	guint want = st.buffers;
	GST_OBJECT_UNLOCK(self);
	uint8_t maxBufs = fe.device().config.maxBuffers;
	if (maxBufs && want > maxBufs)
		want = maxBufs;
	auto n = fe.allocateBuffers(static_cast<uint8_t>(want));
	if (!n)
		return fail("buffer allocation", n.error());
	if (Status s = fe.queueAll(); !s)
		return fail("BUF_QUEUE", s.error());
	if (Status s = fe.streamStart(); !s)
		return fail("STREAM_START", s.error());
	st.info = info;
	GST_INFO_OBJECT(self, "streaming %" GST_PTR_FORMAT " with %u buffers (%s)", caps, *n,
			st.beAlloc ? "Dom0's pages, read-only" : "our pages, granted to Dom0");
	return TRUE;
}

static GstBuffer *wrap_frame(GstXmbCameraSrc *self, const frontend::Frame &f)
{
	SrcState &st = *self->state;
	Connection &c = *st.conn;
	auto data = c.fe->bufferData(f.index);
	auto *ctx = new BufferContext{ st.conn, f.index, 0 };
	{
		std::lock_guard<std::mutex> l(c.lock);
		ctx->generation = c.generation;
		c.outstanding++;
	}
	gsize used = std::min<gsize>(f.usedSize ? f.usedSize : data.size(), data.size());
	/* be-alloc pages are granted read-only; our own pages stay ours until re-queued. */
	auto flags = st.beAlloc ? GST_MEMORY_FLAG_READONLY : static_cast<GstMemoryFlags>(0);
	GstMemory *mem = gst_memory_new_wrapped(flags, const_cast<uint8_t *>(data.data()), data.size(),
						0, used, ctx, bufferFreed);
	GstBuffer *buf = gst_buffer_new();
	gst_buffer_append_memory(buf, mem);
	const GstVideoInfo &vi = st.info;
	gst_buffer_add_video_meta_full(buf, GST_VIDEO_FRAME_FLAG_NONE, GST_VIDEO_INFO_FORMAT(&vi),
				       GST_VIDEO_INFO_WIDTH(&vi), GST_VIDEO_INFO_HEIGHT(&vi),
				       GST_VIDEO_INFO_N_PLANES(&vi), const_cast<gsize *>(vi.offset),
				       const_cast<gint *>(vi.stride));

	/* Timestamp: the arrival time on the pipeline clock. */
	GstClock *clock = gst_element_get_clock(GST_ELEMENT(self));
	if (clock) {
		GstClockTime now = gst_clock_get_time(clock);
		GstClockTime base = gst_element_get_base_time(GST_ELEMENT(self));
		auto ago = std::chrono::duration_cast<std::chrono::nanoseconds>(SteadyClock::now() - f.arrival).count();
		GstClockTime running = now > base ? now - base : 0;
		GST_BUFFER_PTS(buf) = running > static_cast<GstClockTime>(ago) ? running - ago : 0;
		gst_object_unref(clock);
	}
	if (GST_VIDEO_INFO_FPS_N(&vi) > 0)
		GST_BUFFER_DURATION(buf) = gst_util_uint64_scale(GST_SECOND, GST_VIDEO_INFO_FPS_D(&vi),
								 GST_VIDEO_INFO_FPS_N(&vi));
	GST_BUFFER_OFFSET(buf) = f.seq;
	GST_BUFFER_OFFSET_END(buf) = f.seq + 1;
	if (st.frames == 0)
		GST_BUFFER_FLAG_SET(buf, GST_BUFFER_FLAG_DISCONT);
	st.frames++;
	return buf;
}

static GstFlowReturn gst_xmb_camera_src_create(GstPushSrc *src, GstBuffer **out)
{
	auto *self = GST_XMB_CAMERA_SRC(src);
	SrcState &st = *self->state;
	if (!st.conn)
		return GST_FLOW_FLUSHING;
	Connection &c = *st.conn;
	frontend::CameraFrontend &fe = *c.fe;
	auto waitingSince = SteadyClock::now();
	for (;;) {
		std::vector<uint8_t> back;
		{
			std::lock_guard<std::mutex> l(c.lock);
			back.swap(c.requeue);
		}
		for (uint8_t idx : back) {
			if (Status s = fe.bufQueue(idx); !s && fe.broken())
				break;
			waitingSince = SteadyClock::now();
		}
		if (auto f = fe.takeFrame()) {
			*out = wrap_frame(self, *f);
			return GST_FLOW_OK;
		}
		if (fe.broken()) {
			GST_ELEMENT_ERROR(self, RESOURCE, READ, ("The Dom0 camera went away"),
					  ("%s", fe.broken()->message.c_str()));
			return GST_FLOW_ERROR;
		}
		std::vector<pollfd> fds;
		for (int fd : fe.fds())
			fds.push_back({ fd, POLLIN, 0 });
		fds.push_back({ c.wake.get(), POLLIN, 0 });
		/*
		 * No periodic wake-up: a frame, a buffer coming back from downstream
		 * or unlock() wakes us; the only timeout is the "no frame from Dom0"
		 * deadline, and none while downstream holds every buffer.
		 */
		int timeout = -1;
		{
			std::lock_guard<std::mutex> l(c.lock);
			if (c.outstanding < fe.numBuffers()) {
				auto left = std::chrono::ceil<std::chrono::milliseconds>(
					waitingSince + std::chrono::milliseconds(st.timeoutMs) - SteadyClock::now());
				timeout = static_cast<int>(std::clamp<int64_t>(left.count(), 0, INT32_MAX));
			}
		}
		/* Buffers held back for the next BUF_DEQUEUE go anyway if no frame comes for 100 ms. */
		const bool held = fe.holdsBack();
		if (held)
			timeout = timeout < 0 ? 100 : std::min(timeout, 100);
		int ready = ::poll(fds.data(), fds.size(), timeout);
		if (g_atomic_int_get(&st.unlocking))
			return GST_FLOW_FLUSHING;
		if (ready == 0 && held)
			fe.sendHeldBack();
		c.drainWake();
		if (Status s = fe.processEvents(); !s) {
			GST_ELEMENT_ERROR(self, RESOURCE, READ, ("Lost the Dom0 camera"), ("%s", s.error().message.c_str()));
			return GST_FLOW_ERROR;
		}
		bool allDownstream;
		{
			std::lock_guard<std::mutex> l(c.lock);
			allDownstream = c.outstanding >= fe.numBuffers();
		}
		if (allDownstream)
			waitingSince = SteadyClock::now();
		else if (SteadyClock::now() - waitingSince > std::chrono::milliseconds(st.timeoutMs)) {
			GST_ELEMENT_ERROR(self, RESOURCE, READ, ("No frame from Dom0 for %u ms", st.timeoutMs),
					  ("vcamera %u is streaming but Dom0 sends nothing (is the Dom0 "
					   "pipeline running?)",
					   st.device));
			return GST_FLOW_ERROR;
		}
	}
}

static gboolean gst_xmb_camera_src_unlock(GstBaseSrc *src)
{
	auto *self = GST_XMB_CAMERA_SRC(src);
	g_atomic_int_set(&self->state->unlocking, 1);
	if (auto &c = self->state->conn) {
		c->wakeUp();
		std::lock_guard<std::mutex> l(c->lock);
		if (c->connecting && c->fe)
			c->fe->interrupt(); /* connect_device() waiting for the device */
	}
	return TRUE;
}

static gboolean gst_xmb_camera_src_unlock_stop(GstBaseSrc *src)
{
	auto *self = GST_XMB_CAMERA_SRC(src);
	g_atomic_int_set(&self->state->unlocking, 0);
	if (auto &c = self->state->conn) {
		c->drainWake();
		std::lock_guard<std::mutex> l(c->lock);
		if (c->fe)
			c->fe->clearInterrupt();
	}
	return TRUE;
}

static gboolean gst_xmb_camera_src_query(GstBaseSrc *src, GstQuery *query)
{
	auto *self = GST_XMB_CAMERA_SRC(src);
	if (GST_QUERY_TYPE(query) == GST_QUERY_LATENCY) {
		const GstVideoInfo &vi = self->state->info;
		if (GST_VIDEO_INFO_FPS_N(&vi) <= 0)
			return FALSE;
		/* A frame is timestamped at arrival: up to one frame late. */
		GstClockTime lat = gst_util_uint64_scale(GST_SECOND, GST_VIDEO_INFO_FPS_D(&vi), GST_VIDEO_INFO_FPS_N(&vi));
		gst_query_set_latency(query, TRUE, lat, GST_CLOCK_TIME_NONE);
		return TRUE;
	}
	return GST_BASE_SRC_CLASS(parent_class)->query(src, query);
}

static void gst_xmb_camera_src_set_property(GObject *object, guint prop_id, const GValue *value,
					    GParamSpec *pspec)
{
	auto *self = GST_XMB_CAMERA_SRC(object);
	SrcState &st = *self->state;
	GST_OBJECT_LOCK(self);
	switch (prop_id) {
	case PROP_DEVICE:
		st.device = g_value_get_uint(value);
		break;
	case PROP_PLATFORM:
		st.platform = g_value_get_enum(value);
		break;
	case PROP_LOOPBACK_DOMID:
		st.loopbackDomid = g_value_get_uint(value);
		break;
	case PROP_BUFFERS:
		st.buffers = g_value_get_uint(value);
		break;
	case PROP_TIMEOUT:
		st.timeoutMs = g_value_get_uint(value);
		break;
	default:
		G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
		break;
	}
	GST_OBJECT_UNLOCK(self);
}

static void gst_xmb_camera_src_get_property(GObject *object, guint prop_id, GValue *value,
					    GParamSpec *pspec)
{
	auto *self = GST_XMB_CAMERA_SRC(object);
	SrcState &st = *self->state;
	GST_OBJECT_LOCK(self);
	switch (prop_id) {
	case PROP_DEVICE:
		g_value_set_uint(value, st.device);
		break;
	case PROP_PLATFORM:
		g_value_set_enum(value, st.platform);
		break;
	case PROP_LOOPBACK_DOMID:
		g_value_set_uint(value, st.loopbackDomid);
		break;
	case PROP_BUFFERS:
		g_value_set_uint(value, st.buffers);
		break;
	case PROP_TIMEOUT:
		g_value_set_uint(value, st.timeoutMs);
		break;
	default:
		G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
		break;
	}
	GST_OBJECT_UNLOCK(self);
}

static void gst_xmb_camera_src_finalize(GObject *object)
{
	auto *self = GST_XMB_CAMERA_SRC(object);
	delete self->state;
	G_OBJECT_CLASS(parent_class)->finalize(object);
}

static void gst_xmb_camera_src_init(GstXmbCameraSrc *self)
{
	self->state = new SrcState();
	gst_video_info_init(&self->state->info);
	gst_base_src_set_live(GST_BASE_SRC(self), TRUE);
	gst_base_src_set_format(GST_BASE_SRC(self), GST_FORMAT_TIME);
}

static void gst_xmb_camera_src_class_init(GstXmbCameraSrcClass *klass)
{
	auto *object_class = G_OBJECT_CLASS(klass);
	auto *element_class = GST_ELEMENT_CLASS(klass);
	auto *basesrc_class = GST_BASE_SRC_CLASS(klass);
	auto *pushsrc_class = GST_PUSH_SRC_CLASS(klass);

	object_class->set_property = gst_xmb_camera_src_set_property;
	object_class->get_property = gst_xmb_camera_src_get_property;
	object_class->finalize = gst_xmb_camera_src_finalize;

	const auto rw = static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
						 GST_PARAM_MUTABLE_READY);
	g_object_class_install_property(
		object_class, PROP_DEVICE,
		g_param_spec_uint("device", "Device", "vcamera device index of this domain", 0, 255,
				  kDefaultDevice, rw));
	installPlatformProperties(object_class, PROP_PLATFORM, PROP_LOOPBACK_DOMID, false);
	g_object_class_install_property(
		object_class, PROP_BUFFERS,
		g_param_spec_uint("buffers", "Buffers",
				  "Buffers to request from Dom0 (clamped to the device's max-buffers)",
				  1, 32, kDefaultBuffers, rw));
	g_object_class_install_property(
		object_class, PROP_TIMEOUT,
		g_param_spec_uint("timeout", "Timeout",
				  "Milliseconds to wait for Dom0 to serve the device, and for a frame "
				  "while streaming, before an error",
				  1, G_MAXUINT, kDefaultTimeoutMs, rw));

	gst_element_class_set_static_metadata(
		element_class, "Xen Dom0 camera source", "Source/Video",
		"The Dom0 camera of a Xen guest (cameraif vcamera) as a live source; buffers "
		"wrap the guest buffers frames arrive in (zero copy)",
		"xen-media-bridge");
	gst_element_class_add_static_pad_template(element_class, &src_template);

	basesrc_class->start = GST_DEBUG_FUNCPTR(gst_xmb_camera_src_start);
	basesrc_class->stop = GST_DEBUG_FUNCPTR(gst_xmb_camera_src_stop);
	basesrc_class->get_caps = GST_DEBUG_FUNCPTR(gst_xmb_camera_src_get_caps);
	basesrc_class->negotiate = GST_DEBUG_FUNCPTR(gst_xmb_camera_src_negotiate);
	basesrc_class->fixate = GST_DEBUG_FUNCPTR(gst_xmb_camera_src_fixate);
	basesrc_class->set_caps = GST_DEBUG_FUNCPTR(gst_xmb_camera_src_set_caps);
	basesrc_class->unlock = GST_DEBUG_FUNCPTR(gst_xmb_camera_src_unlock);
	basesrc_class->unlock_stop = GST_DEBUG_FUNCPTR(gst_xmb_camera_src_unlock_stop);
	basesrc_class->query = GST_DEBUG_FUNCPTR(gst_xmb_camera_src_query);
	pushsrc_class->create = GST_DEBUG_FUNCPTR(gst_xmb_camera_src_create);

	gst_type_mark_as_plugin_api(platformEnumType(), static_cast<GstPluginAPIFlags>(0));
	GST_DEBUG_CATEGORY_INIT(xmb_camera_src_debug, "xmbcamerasrc", 0,
				"Xen Dom0 camera source (guest)");
}
