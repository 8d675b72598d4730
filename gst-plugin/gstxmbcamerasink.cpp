/* SPDX-License-Identifier: MIT */
/**
 * SECTION:element-xmbcamerasink
 * @title: xmbcamerasink
 *
 * Dom0 element: serves its input to Xen guests as a para-virtual camera
 * (cameraif, device type vcamera), with the same camera service code as
 * xmb-camera-service.  Guests see one format: the negotiated caps (format,
 * size, frame rate).
 *
 * Zero copy: the sink proposes a buffer pool whose buffers wrap the buffers
 * the leading guest queued (its granted pages mapped in Dom0, or Dom0 pages
 * granted to it with be-alloc=true); upstream elements that allocate from
 * the pool (videotestsrc, videoconvert, v4l2src io-mode=userptr, ...) write
 * straight into guest memory.  Other input (system memory, dma-buf) is
 * copied into a guest buffer; the sink warns once and counts copies in the
 * "stats" property.
 *
 * ## Examples
 * |[
 * gst-launch-1.0 v4l2src io-mode=userptr ! videoconvert ! xmbcamerasink guest=guest1
 * gst-launch-1.0 videotestsrc ! video/x-raw,format=NV12,width=640,height=480 ! \
 *     xmbcamerasink platform=loopback loopback-guest-domid=1 \
 *     xmbcamerasrc platform=loopback loopback-domid=1 ! videoconvert ! autovideosink
 * ]|
 */
#include "gstxmbcamerasink.h"

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include <gst/allocators/gstdmabuf.h>
#include <gst/video/video.h>

#include "bridge/service/camera_service.h"
#include "frame_exchange.h"
#include "gstxmbguestpool.h"
#include "service_thread.h"
#include "xmb_common.h"

GST_DEBUG_CATEGORY(xmb_camera_sink_debug);
#define GST_CAT_DEFAULT xmb_camera_sink_debug

using namespace xmb;
using namespace xmb::gst;

enum {
	PROP_0,
	PROP_CONFIG,
	PROP_GUEST,
	PROP_DEVICE,
	PROP_BE_ALLOC,
	PROP_MAX_BUFFERS,
	PROP_PLATFORM,
	PROP_LOOPBACK_GUEST_DOMID,
	PROP_STATS,
};

constexpr guint kDefaultDevice = 0;
constexpr guint kDefaultMaxBuffers = 4;

namespace {

struct SinkState {
	/* properties (object lock) */
	std::string configPath;
	std::string guest;
	guint device = kDefaultDevice;
	gboolean beAlloc = FALSE;
	guint maxBuffers = kDefaultMaxBuffers;
	int platform = XMB_PLATFORM_XEN;
	guint loopbackGuestDomid = 0;

	/* runtime (serviceLock) */
	std::mutex serviceLock;
	std::optional<service::ServiceConfig> config;
	std::unique_ptr<xen::Platform> dom0;
	std::shared_ptr<FrameExchange> exchange;
	std::unique_ptr<ServiceThread> service; /* the loop and its thread */
	std::unique_ptr<service::CameraService> svc;
	bool running = false;
	std::string guestLabel; /* for messages */
};

} /* namespace */

struct _GstXmbCameraSink {
	GstBaseSink parent;
	SinkState *state;
};

#define gst_xmb_camera_sink_parent_class parent_class
G_DEFINE_TYPE(GstXmbCameraSink, gst_xmb_camera_sink, GST_TYPE_BASE_SINK)
GST_ELEMENT_REGISTER_DEFINE(xmbcamerasink, "xmbcamerasink", GST_RANK_NONE, GST_TYPE_XMB_CAMERA_SINK)

#define XMB_SINK_CAPS                                                                        \
	GST_VIDEO_CAPS_MAKE(XMB_VIDEO_FORMATS) ";"                                           \
	GST_VIDEO_CAPS_MAKE_WITH_FEATURES(GST_CAPS_FEATURE_MEMORY_DMABUF, XMB_VIDEO_FORMATS)

static GstStaticPadTemplate sink_template =
	GST_STATIC_PAD_TEMPLATE("sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS(XMB_SINK_CAPS));

/* The camera section whose frames come from this element. */
static constexpr const char *kPipelineSource = "pipeline";

static void stop_service(GstXmbCameraSink *self)
{
	SinkState &st = *self->state;
	if (!st.running)
		return;
	st.service->stop();
	st.svc->stop();
	st.svc.reset();
	st.service.reset();
	st.running = false;
	GST_INFO_OBJECT(self, "camera service stopped");
}

static gboolean start_service(GstXmbCameraSink *self)
{
	SinkState &st = *self->state;
	st.service = std::make_unique<ServiceThread>();
	if (!st.service->valid()) {
		GST_ELEMENT_ERROR(self, RESOURCE, FAILED, ("Cannot create the service event loop"),
				  ("epoll/eventfd: %s", g_strerror(errno)));
		st.service.reset();
		return FALSE;
	}
	st.svc = std::make_unique<service::CameraService>(*st.dom0, st.service->loop());
	std::shared_ptr<FrameExchange> exchange = st.exchange;
	std::string id = std::string("gst:") + GST_OBJECT_NAME(self);
	auto factory = [exchange, id](const service::CameraEntry &cam)
		-> Result<std::unique_ptr<CameraSource>> {
		if (cam.source == kPipelineSource)
			return std::unique_ptr<CameraSource>(
				std::make_unique<PipelineCameraSource>(exchange, id));
		return service::openSource(cam);
	};
	Status s = st.svc->start(*st.config, factory);
	if (!s) {
		GST_ELEMENT_ERROR(self, RESOURCE, FAILED,
				  ("Cannot serve the pipeline as vcamera to %s", st.guestLabel.c_str()),
				  ("camera service: %s", s.error().message.c_str()));
		st.svc.reset();
		st.service.reset();
		return FALSE;
	}
	st.service->start();
	st.running = true;
	GST_INFO_OBJECT(self, "camera service running for %s", st.guestLabel.c_str());
	return TRUE;
}

static GstStructure *make_stats(GstXmbCameraSink *self)
{
	SinkState &st = *self->state;
	std::lock_guard<std::mutex> l(st.serviceLock);
	ExchangeStats x = st.exchange ? st.exchange->stats() : ExchangeStats{};
	guint connected = 0;
	std::string tier;
	guint64 guestFrames = 0, guestCopied = 0;
	if (st.running) {
		/* Captures by value: the wait may time out and leave the lambda queued. */
		auto out = std::make_shared<std::tuple<guint, std::string, guint64, guint64>>();
		service::CameraService *svc = st.svc.get();
		if ((st.running && st.service->call([svc, out] {
			    auto reps = svc->report();
			    for (const auto &r : reps) {
				    if (r.connected)
					    std::get<0>(*out)++;
				    if (!r.tier.empty())
					    std::get<1>(*out) = r.tier;
				    std::get<2>(*out) += r.stats.frames;
				    std::get<3>(*out) += r.stats.bytesCopied;
			    }
		    }))) {
			std::tie(connected, tier, guestFrames, guestCopied) = *out;
		}
	}
	return gst_structure_new("xmbcamerasink-stats",
				 "frames-zero-copy", G_TYPE_UINT64, x.zeroCopyFrames,
				 "frames-copied", G_TYPE_UINT64, x.copiedFrames,
				 "bytes-copied", G_TYPE_UINT64, x.bytesCopied,
				 "frames-dropped", G_TYPE_UINT64, x.droppedFrames,
				 "scratch-buffers", G_TYPE_UINT64, x.scratchBuffers,
				 "guest-buffers-lent", G_TYPE_UINT64, x.lentBuffers,
				 "guests-connected", G_TYPE_UINT, connected,
				 "guest-frames", G_TYPE_UINT64, guestFrames,
				 "service-bytes-copied", G_TYPE_UINT64, guestCopied,
				 "tier", G_TYPE_STRING, tier.c_str(), nullptr);
}

/*
 * Upstream elements write into the pool's buffers through this process's
 * mapping of the guest pages, which works on every Dom0 kind (an x86 PV
 * Dom0 only breaks kernel drivers that vmap USERPTR pages: keep v4l2src
 * io-mode=userptr of such a driver away from this sink there, see
 * docs/gstreamer.md).  So the pipeline camera captures into guest pages
 * unless the configuration file says otherwise.
 */
static void pipeline_writes_from_user_space(service::ServiceConfig &cfg)
{
	for (auto &c : cfg.cameras)
		if (c.source == kPipelineSource && !c.foreignUserPtr)
			c.foreignUserPtr = true;
}

/* The service configuration: the file, or one guest section from the properties. */
static gboolean build_config(GstXmbCameraSink *self)
{
	SinkState &st = *self->state;
	GST_OBJECT_LOCK(self);
	std::string path = st.configPath, guest = st.guest;
	guint device = st.device, maxBuffers = st.maxBuffers, loopDom = st.loopbackGuestDomid;
	gboolean beAlloc = st.beAlloc;
	GST_OBJECT_UNLOCK(self);

	if (!path.empty()) {
		auto cfg = service::loadServiceConfig(path);
		if (!cfg) {
			GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS,
					  ("Invalid service configuration file '%s'", path.c_str()),
					  ("%s", cfg.error().message.c_str()));
			return FALSE;
		}
		int ours = 0;
		for (const auto &c : cfg->cameras)
			ours += c.source == kPipelineSource;
		if (ours != 1) {
			GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS,
					  ("Configuration file '%s' must have exactly one [camera] with "
					   "'source = pipeline' (this element's input); it has %d",
					   path.c_str(), ours),
					  (nullptr));
			return FALSE;
		}
		pipeline_writes_from_user_space(*cfg);
		st.config = std::move(*cfg);
		st.guestLabel = "the guests of " + path;
		return TRUE;
	}

	if (guest.empty() && loopDom)
		guest = std::to_string(loopDom);
	if (guest.empty()) {
		GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS, ("No guest to serve"),
				  ("set guest=<domain name or domid> (or config=<file>)"));
		return FALSE;
	}
	std::string text = "[camera pipeline]\nsource = pipeline\n[guest gst]\n";
	text += "domain = " + guest + "\n";
	text += "device = " + std::to_string(device) + "\n";
	text += "camera = pipeline\n";
	text += "max-buffers = " + std::to_string(maxBuffers) + "\n";
	text += std::string("be-alloc = ") + (beAlloc ? "yes" : "no") + "\n";
	auto cfg = service::parseServiceConfig(text, std::string(GST_OBJECT_NAME(self)) + " properties");
	if (!cfg) {
		GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS, ("Invalid property value for guest '%s'", guest.c_str()),
				  ("%s", cfg.error().message.c_str()));
		return FALSE;
	}
	pipeline_writes_from_user_space(*cfg);
	st.config = std::move(*cfg);
	st.guestLabel = "guest " + guest + " (vcamera " + std::to_string(device) + ")";
	return TRUE;
}

static gboolean gst_xmb_camera_sink_start(GstBaseSink *sink)
{
	auto *self = GST_XMB_CAMERA_SINK(sink);
	SinkState &st = *self->state;
	std::lock_guard<std::mutex> l(st.serviceLock);
	if (!build_config(self))
		return FALSE;

	GST_OBJECT_LOCK(self);
	int kind = st.platform;
	guint loopDom = st.loopbackGuestDomid;
	GST_OBJECT_UNLOCK(self);
	if (kind == XMB_PLATFORM_LOOPBACK && loopDom) {
		Status s = ensureLoopbackDomain(static_cast<xen::DomId>(loopDom));
		if (!s) {
			GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS,
					  ("Cannot create loopback guest domain %u", loopDom),
					  ("%s", s.error().message.c_str()));
			return FALSE;
		}
	}
	auto pf = openPlatform(kind, 0);
	if (!pf) {
		GST_ELEMENT_ERROR(self, RESOURCE, OPEN_READ_WRITE,
				  ("Cannot open the %s platform as Dom0",
				   kind == XMB_PLATFORM_XEN ? "Xen" : "loopback"),
				  ("%s%s", pf.error().message.c_str(),
				   kind == XMB_PLATFORM_XEN
					   ? " (run in Dom0 as root; platform=loopback is for tests and demos)"
					   : ""));
		return FALSE;
	}
	st.dom0 = std::move(*pf);
	st.exchange = std::make_shared<FrameExchange>(GST_ELEMENT(self));
	return TRUE;
}

static gboolean gst_xmb_camera_sink_stop(GstBaseSink *sink)
{
	auto *self = GST_XMB_CAMERA_SINK(sink);
	SinkState &st = *self->state;
	std::lock_guard<std::mutex> l(st.serviceLock);
	stop_service(self);
	st.exchange.reset();
	st.dom0.reset();
	st.config.reset();
	return TRUE;
}

static gboolean gst_xmb_camera_sink_set_caps(GstBaseSink *sink, GstCaps *caps)
{
	auto *self = GST_XMB_CAMERA_SINK(sink);
	SinkState &st = *self->state;
	GstVideoInfo info;
	if (!gst_video_info_from_caps(&info, caps)) {
		GST_ELEMENT_ERROR(self, CORE, NEGOTIATION, ("Invalid caps %" GST_PTR_FORMAT, caps), (nullptr));
		return FALSE;
	}
	StreamFormat f;
	f.info = info;
	f.fourcc = fourccFromVideoFormat(GST_VIDEO_INFO_FORMAT(&info));
	if (!f.fourcc) {
		GST_ELEMENT_ERROR(self, CORE, NEGOTIATION,
				  ("Format %s has no cameraif FOURCC", gst_video_format_to_string(GST_VIDEO_INFO_FORMAT(&info))),
				  ("put videoconvert before the sink"));
		return FALSE;
	}
	if (GST_VIDEO_INFO_FPS_N(&info) > 0)
		f.interval = { static_cast<uint32_t>(GST_VIDEO_INFO_FPS_D(&info)),
			       static_cast<uint32_t>(GST_VIDEO_INFO_FPS_N(&info)) };
	f.layout = layoutFromVideoInfo(info, f.fourcc);

	std::lock_guard<std::mutex> l(st.serviceLock);
	if (!st.exchange)
		return FALSE;
	if (st.running && st.exchange->hasFormat()) {
		StreamFormat cur = st.exchange->format();
		if (cur.fourcc == f.fourcc && cur.layout == f.layout && cur.interval == f.interval)
			return TRUE;
		/* Guests read formats when they connect: a new format means a new device. */
		GST_INFO_OBJECT(self, "caps changed to %" GST_PTR_FORMAT ": restarting the vcamera", caps);
		stop_service(self);
	}
	st.exchange->setFormat(f);
	GST_INFO_OBJECT(self, "serving %" GST_PTR_FORMAT " (%u bytes/frame)", caps, f.layout.size);
	return start_service(self);
}

static gboolean gst_xmb_camera_sink_propose_allocation(GstBaseSink *sink, GstQuery *query)
{
	auto *self = GST_XMB_CAMERA_SINK(sink);
	SinkState &st = *self->state;
	GstCaps *caps = nullptr;
	gboolean needPool = FALSE;
	gst_query_parse_allocation(query, &caps, &needPool);
	if (!caps)
		return FALSE;
	gst_query_add_allocation_meta(query, GST_VIDEO_META_API_TYPE, nullptr);
	GstCapsFeatures *features = gst_caps_get_features(caps, 0);
	if (features && gst_caps_features_contains(features, GST_CAPS_FEATURE_MEMORY_DMABUF)) {
		GST_DEBUG_OBJECT(self, "dma-buf input: no pool proposed (copy tier)");
		return TRUE;
	}
	GstVideoInfo info;
	if (!gst_video_info_from_caps(&info, caps))
		return FALSE;
	std::shared_ptr<FrameExchange> exchange;
	{
		std::lock_guard<std::mutex> l(st.serviceLock);
		exchange = st.exchange;
	}
	if (!needPool || !exchange)
		return TRUE;
	GstBufferPool *pool = gst_xmb_guest_pool_new(GST_ELEMENT(self), exchange);
	GstStructure *config = gst_buffer_pool_get_config(pool);
	guint size = static_cast<guint>(GST_VIDEO_INFO_SIZE(&info));
	gst_buffer_pool_config_set_params(config, caps, size, 0, 0);
	gst_buffer_pool_config_add_option(config, GST_BUFFER_POOL_OPTION_VIDEO_META);
	if (!gst_buffer_pool_set_config(pool, config)) {
		gst_object_unref(pool);
		GST_WARNING_OBJECT(self, "guest buffer pool refused %" GST_PTR_FORMAT, caps);
		return TRUE;
	}
	gst_query_add_allocation_pool(query, pool, size, 0, 0);
	gst_object_unref(pool);
	GST_DEBUG_OBJECT(self, "proposed the guest buffer pool for %" GST_PTR_FORMAT, caps);
	return TRUE;
}

static GstFlowReturn gst_xmb_camera_sink_render(GstBaseSink *sink, GstBuffer *buffer)
{
	auto *self = GST_XMB_CAMERA_SINK(sink);
	SinkState &st = *self->state;
	/* Streaming thread; stop() (which resets exchange) runs after streaming stopped. */
	if (st.exchange)
		st.exchange->render(buffer);
	return GST_FLOW_OK;
}

static void gst_xmb_camera_sink_set_property(GObject *object, guint prop_id, const GValue *value,
					     GParamSpec *pspec)
{
	auto *self = GST_XMB_CAMERA_SINK(object);
	SinkState &st = *self->state;
	GST_OBJECT_LOCK(self);
	switch (prop_id) {
	case PROP_CONFIG: {
		const gchar *s = g_value_get_string(value);
		st.configPath = s ? s : "";
		break;
	}
	case PROP_GUEST: {
		const gchar *s = g_value_get_string(value);
		st.guest = s ? s : "";
		break;
	}
	case PROP_DEVICE:
		st.device = g_value_get_uint(value);
		break;
	case PROP_BE_ALLOC:
		st.beAlloc = g_value_get_boolean(value);
		break;
	case PROP_MAX_BUFFERS:
		st.maxBuffers = g_value_get_uint(value);
		break;
	case PROP_PLATFORM:
		st.platform = g_value_get_enum(value);
		break;
	case PROP_LOOPBACK_GUEST_DOMID:
		st.loopbackGuestDomid = g_value_get_uint(value);
		break;
	default:
		G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
		break;
	}
	GST_OBJECT_UNLOCK(self);
}

static void gst_xmb_camera_sink_get_property(GObject *object, guint prop_id, GValue *value,
					     GParamSpec *pspec)
{
	auto *self = GST_XMB_CAMERA_SINK(object);
	SinkState &st = *self->state;
	if (prop_id == PROP_STATS) {
		g_value_take_boxed(value, make_stats(self));
		return;
	}
	GST_OBJECT_LOCK(self);
	switch (prop_id) {
	case PROP_CONFIG:
		g_value_set_string(value, st.configPath.empty() ? nullptr : st.configPath.c_str());
		break;
	case PROP_GUEST:
		g_value_set_string(value, st.guest.empty() ? nullptr : st.guest.c_str());
		break;
	case PROP_DEVICE:
		g_value_set_uint(value, st.device);
		break;
	case PROP_BE_ALLOC:
		g_value_set_boolean(value, st.beAlloc);
		break;
	case PROP_MAX_BUFFERS:
		g_value_set_uint(value, st.maxBuffers);
		break;
	case PROP_PLATFORM:
		g_value_set_enum(value, st.platform);
		break;
	case PROP_LOOPBACK_GUEST_DOMID:
		g_value_set_uint(value, st.loopbackGuestDomid);
		break;
	default:
		G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
		break;
	}
	GST_OBJECT_UNLOCK(self);
}

static void gst_xmb_camera_sink_finalize(GObject *object)
{
	auto *self = GST_XMB_CAMERA_SINK(object);
	{
		std::lock_guard<std::mutex> l(self->state->serviceLock);
		stop_service(self);
	}
	delete self->state;
	G_OBJECT_CLASS(parent_class)->finalize(object);
}

static void gst_xmb_camera_sink_init(GstXmbCameraSink *self)
{
	self->state = new SinkState();
	/* A last-sample reference would keep guest memory referenced after the frame went. */
	gst_base_sink_set_last_sample_enabled(GST_BASE_SINK(self), FALSE);
	/*
	 * Not async by default: the sink serves guests rather than presenting
	 * frames, and a guest pipeline in the same pipeline/process (loopback)
	 * can only preroll once this one streams.
	 */
	gst_base_sink_set_async_enabled(GST_BASE_SINK(self), FALSE);
}

static void gst_xmb_camera_sink_class_init(GstXmbCameraSinkClass *klass)
{
	auto *object_class = G_OBJECT_CLASS(klass);
	auto *element_class = GST_ELEMENT_CLASS(klass);
	auto *sink_class = GST_BASE_SINK_CLASS(klass);

	object_class->set_property = gst_xmb_camera_sink_set_property;
	object_class->get_property = gst_xmb_camera_sink_get_property;
	object_class->finalize = gst_xmb_camera_sink_finalize;

	const auto rw = static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
						 GST_PARAM_MUTABLE_READY);
	g_object_class_install_property(
		object_class, PROP_CONFIG,
		g_param_spec_string("config", "Config",
				    "Camera service configuration file (docs/camera-service.md) whose "
				    "single [camera] with 'source = pipeline' is this element's input; "
				    "when set, guest/device/be-alloc/max-buffers are ignored",
				    nullptr, rw));
	g_object_class_install_property(
		object_class, PROP_GUEST,
		g_param_spec_string("guest", "Guest",
				    "Domain name or domid of the guest to serve (attached when it "
				    "runs, re-attached when it comes back)",
				    nullptr, rw));
	g_object_class_install_property(
		object_class, PROP_DEVICE,
		g_param_spec_uint("device", "Device", "vcamera device index in the guest", 0, 255,
				  kDefaultDevice, rw));
	g_object_class_install_property(
		object_class, PROP_BE_ALLOC,
		g_param_spec_boolean("be-alloc", "Backend allocation",
				     "Dom0 allocates the buffers and grants them (writable, as Linux's "
				     "frontend maps them) to the "
				     "guest (be-alloc tier) instead of mapping guest pages",
				     FALSE, rw));
	g_object_class_install_property(
		object_class, PROP_MAX_BUFFERS,
		g_param_spec_uint("max-buffers", "Max buffers",
				  "Most buffers the guest may request (published as max-buffers)", 1,
				  32, kDefaultMaxBuffers, rw));
	installPlatformProperties(object_class, PROP_PLATFORM, PROP_LOOPBACK_GUEST_DOMID, true);
	g_object_class_install_property(
		object_class, PROP_STATS,
		g_param_spec_boxed("stats", "Statistics",
				   "frames-zero-copy (upstream filled guest buffers), frames-copied, "
				   "bytes-copied, frames-dropped (no guest buffer queued), "
				   "scratch-buffers, guest-buffers-lent, guests-connected, "
				   "guest-frames, service-bytes-copied, tier",
				   GST_TYPE_STRUCTURE,
				   static_cast<GParamFlags>(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS)));

	gst_element_class_set_static_metadata(
		element_class, "Xen guest camera sink", "Sink/Video",
		"Serves its input to Xen guests as a para-virtual camera (cameraif vcamera); "
		"upstream writes straight into guest buffers through the proposed pool",
		"xen-media-bridge");
	gst_element_class_add_static_pad_template(element_class, &sink_template);

	sink_class->start = GST_DEBUG_FUNCPTR(gst_xmb_camera_sink_start);
	sink_class->stop = GST_DEBUG_FUNCPTR(gst_xmb_camera_sink_stop);
	sink_class->set_caps = GST_DEBUG_FUNCPTR(gst_xmb_camera_sink_set_caps);
	sink_class->propose_allocation = GST_DEBUG_FUNCPTR(gst_xmb_camera_sink_propose_allocation);
	sink_class->render = GST_DEBUG_FUNCPTR(gst_xmb_camera_sink_render);

	gst_type_mark_as_plugin_api(platformEnumType(), static_cast<GstPluginAPIFlags>(0));
	GST_DEBUG_CATEGORY_INIT(xmb_camera_sink_debug, "xmbcamerasink", 0,
				"Xen guest camera sink (Dom0)");
}
