/* SPDX-License-Identifier: MIT */
#include "gstxmbguestpool.h"

#include <gst/video/video.h>

#include "frame_exchange.h"

GST_DEBUG_CATEGORY_EXTERN(xmb_camera_sink_debug);
#define GST_CAT_DEFAULT xmb_camera_sink_debug

struct GuestPoolState {
	std::shared_ptr<xmb::gst::FrameExchange> exchange;
	GstElement *owner = nullptr;
	GstVideoInfo info{};
	gsize size = 0;
	gint64 waitUs = 100000;
	gint flushing = 0;
};

struct _GstXmbGuestPool {
	GstBufferPool parent;
	GuestPoolState *state;
};

G_DEFINE_TYPE(GstXmbGuestPool, gst_xmb_guest_pool, GST_TYPE_BUFFER_POOL)

static const gchar **gst_xmb_guest_pool_get_options(GstBufferPool *)
{
	static const gchar *options[] = { GST_BUFFER_POOL_OPTION_VIDEO_META, nullptr };
	return options;
}

static gboolean gst_xmb_guest_pool_set_config(GstBufferPool *pool, GstStructure *config)
{
	auto *self = GST_XMB_GUEST_POOL(pool);
	GstCaps *caps = nullptr;
	guint size, min, max;
	if (!gst_buffer_pool_config_get_params(config, &caps, &size, &min, &max) || !caps)
		return FALSE;
	GstVideoInfo info;
	if (!gst_video_info_from_caps(&info, caps))
		return FALSE;
	self->state->info = info;
	self->state->size = GST_VIDEO_INFO_SIZE(&info);
	/* Wait about one frame interval for a guest buffer, 10..100 ms. */
	gint64 waitUs = 100000;
	if (GST_VIDEO_INFO_FPS_N(&info) > 0)
		waitUs = gst_util_uint64_scale(G_USEC_PER_SEC, GST_VIDEO_INFO_FPS_D(&info),
					       GST_VIDEO_INFO_FPS_N(&info));
	self->state->waitUs = CLAMP(waitUs, 10000, 100000);
	/* Any count: buffers are made per acquire around whatever the guest queued. */
	gst_buffer_pool_config_set_params(config, caps, self->state->size, 0, 0);
	return GST_BUFFER_POOL_CLASS(gst_xmb_guest_pool_parent_class)->set_config(pool, config);
}

static gboolean gst_xmb_guest_pool_start(GstBufferPool *)
{
	return TRUE; /* nothing to preallocate */
}

static GstFlowReturn gst_xmb_guest_pool_acquire_buffer(GstBufferPool *pool, GstBuffer **buffer,
						       GstBufferPoolAcquireParams *)
{
	auto *self = GST_XMB_GUEST_POOL(pool);
	GuestPoolState &st = *self->state;
	GstMemory *mem = st.exchange->lend(st.size, st.waitUs, &st.flushing);
	if (g_atomic_int_get(&st.flushing)) {
		if (mem)
			gst_memory_unref(mem);
		return GST_FLOW_FLUSHING;
	}
	GstBuffer *buf = gst_buffer_new();
	if (mem) {
		gst_buffer_append_memory(buf, mem);
	} else {
		GstMemory *scratch = gst_allocator_alloc(nullptr, st.size, nullptr);
		if (!scratch) {
			gst_buffer_unref(buf);
			return GST_FLOW_ERROR;
		}
		gst_buffer_append_memory(buf, scratch);
		GST_LOG_OBJECT(st.owner, "no guest buffer queued: scratch buffer");
	}
	const GstVideoInfo &vi = st.info;
	gst_buffer_add_video_meta_full(buf, GST_VIDEO_FRAME_FLAG_NONE, GST_VIDEO_INFO_FORMAT(&vi),
				       GST_VIDEO_INFO_WIDTH(&vi), GST_VIDEO_INFO_HEIGHT(&vi),
				       GST_VIDEO_INFO_N_PLANES(&vi), const_cast<gsize *>(vi.offset),
				       const_cast<gint *>(vi.stride));
	*buffer = buf;
	return GST_FLOW_OK;
}

static void gst_xmb_guest_pool_release_buffer(GstBufferPool *pool, GstBuffer *buffer)
{
	/*
	 * Buffers are never recycled: each wraps one lending of a guest
	 * buffer, whose memory's destroy notify gives the slot back.
	 */
	GST_BUFFER_POOL_CLASS(gst_xmb_guest_pool_parent_class)->free_buffer(pool, buffer);
}

static void gst_xmb_guest_pool_flush_start(GstBufferPool *pool)
{
	auto *self = GST_XMB_GUEST_POOL(pool);
	g_atomic_int_set(&self->state->flushing, 1);
	self->state->exchange->wakeAll();
}

static void gst_xmb_guest_pool_flush_stop(GstBufferPool *pool)
{
	auto *self = GST_XMB_GUEST_POOL(pool);
	g_atomic_int_set(&self->state->flushing, 0);
}

static void gst_xmb_guest_pool_finalize(GObject *object)
{
	auto *self = GST_XMB_GUEST_POOL(object);
	delete self->state;
	G_OBJECT_CLASS(gst_xmb_guest_pool_parent_class)->finalize(object);
}

static void gst_xmb_guest_pool_init(GstXmbGuestPool *self)
{
	self->state = new GuestPoolState();
	gst_video_info_init(&self->state->info);
}

static void gst_xmb_guest_pool_class_init(GstXmbGuestPoolClass *klass)
{
	auto *object_class = G_OBJECT_CLASS(klass);
	auto *pool_class = GST_BUFFER_POOL_CLASS(klass);
	object_class->finalize = gst_xmb_guest_pool_finalize;
	pool_class->get_options = gst_xmb_guest_pool_get_options;
	pool_class->set_config = gst_xmb_guest_pool_set_config;
	pool_class->start = gst_xmb_guest_pool_start;
	pool_class->acquire_buffer = gst_xmb_guest_pool_acquire_buffer;
	pool_class->release_buffer = gst_xmb_guest_pool_release_buffer;
	pool_class->flush_start = gst_xmb_guest_pool_flush_start;
	pool_class->flush_stop = gst_xmb_guest_pool_flush_stop;
}

GstBufferPool *gst_xmb_guest_pool_new(GstElement *owner, std::shared_ptr<xmb::gst::FrameExchange> exchange)
{
	auto *self = GST_XMB_GUEST_POOL(g_object_new(GST_TYPE_XMB_GUEST_POOL, nullptr));
	gst_object_ref_sink(self);
	self->state->exchange = std::move(exchange);
	self->state->owner = owner;
	return GST_BUFFER_POOL(self);
}
