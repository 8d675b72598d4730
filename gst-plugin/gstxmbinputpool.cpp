/* SPDX-License-Identifier: MIT */
/**
 * \file gstxmbinputpool.cpp
 * \brief GstBufferPool over the granted vcodec INPUT buffers
 *
 * Buffers are made once per INPUT index (max = min = the INPUT count) and
 * recycled by GstBufferPool; the index rides along as qdata.
 */
#include "gstxmbinputpool.h"

namespace xmb::gst {
namespace {

#define GST_TYPE_XMB_INPUT_POOL (gst_xmb_input_pool_get_type())
G_DECLARE_FINAL_TYPE(GstXmbInputPool, gst_xmb_input_pool, GST, XMB_INPUT_POOL, GstBufferPool)

struct InputPoolState {
	std::shared_ptr<VcodecConnection> conn;
	GstVideoInfo info{};
	guint next = 0;
	guint count = 0;
};

struct _GstXmbInputPool {
	GstBufferPool parent;
	InputPoolState *state;
};

G_DEFINE_TYPE(GstXmbInputPool, gst_xmb_input_pool, GST_TYPE_BUFFER_POOL)

GQuark input_index_quark()
{
	static GQuark q = g_quark_from_static_string("xmb-input-index");
	return q;
}

const gchar **gst_xmb_input_pool_get_options(GstBufferPool *)
{
	static const gchar *options[] = { GST_BUFFER_POOL_OPTION_VIDEO_META, nullptr };
	return options;
}

gboolean gst_xmb_input_pool_set_config(GstBufferPool *pool, GstStructure *config)
{
	auto *self = GST_XMB_INPUT_POOL(pool);
	/* Our layout and count, whatever was asked: the buffers are the granted pages. */
	GstCaps *caps = nullptr;
	guint size, min, max;
	gst_buffer_pool_config_get_params(config, &caps, &size, &min, &max);
	gst_buffer_pool_config_set_params(config, caps, GST_VIDEO_INFO_SIZE(&self->state->info),
					  self->state->count, self->state->count);
	return GST_BUFFER_POOL_CLASS(gst_xmb_input_pool_parent_class)->set_config(pool, config);
}

struct WrapRef {
	std::shared_ptr<VcodecConnection> conn;
};

GstFlowReturn gst_xmb_input_pool_alloc(GstBufferPool *pool, GstBuffer **out, GstBufferPoolAcquireParams *)
{
	auto *self = GST_XMB_INPUT_POOL(pool);
	InputPoolState &st = *self->state;
	if (st.next >= st.count)
		return GST_FLOW_EOS;
	guint index = st.next++;
	auto mem = st.conn->fe->inputData(static_cast<uint8_t>(index));
	auto *ref = new WrapRef{ st.conn };
	GstBuffer *buf = gst_buffer_new_wrapped_full(
		static_cast<GstMemoryFlags>(0), mem.data(), mem.size(), 0, GST_VIDEO_INFO_SIZE(&st.info),
		ref, [](gpointer p) { delete static_cast<WrapRef *>(p); });
	GstVideoInfo &vi = st.info;
	GstVideoMeta *meta = gst_buffer_add_video_meta_full(buf, GST_VIDEO_FRAME_FLAG_NONE,
							    GST_VIDEO_INFO_FORMAT(&vi), GST_VIDEO_INFO_WIDTH(&vi),
							    GST_VIDEO_INFO_HEIGHT(&vi), GST_VIDEO_INFO_N_PLANES(&vi),
							    vi.offset, vi.stride);
	meta->meta.flags = static_cast<GstMetaFlags>(meta->meta.flags | GST_META_FLAG_POOLED);
	gst_mini_object_set_qdata(GST_MINI_OBJECT(buf), input_index_quark(), GUINT_TO_POINTER(index + 1),
				  nullptr);
	*out = buf;
	return GST_FLOW_OK;
}

void gst_xmb_input_pool_finalize(GObject *object)
{
	delete GST_XMB_INPUT_POOL(object)->state;
	G_OBJECT_CLASS(gst_xmb_input_pool_parent_class)->finalize(object);
}

void gst_xmb_input_pool_class_init(GstXmbInputPoolClass *klass)
{
	G_OBJECT_CLASS(klass)->finalize = gst_xmb_input_pool_finalize;
	auto *pc = GST_BUFFER_POOL_CLASS(klass);
	pc->get_options = gst_xmb_input_pool_get_options;
	pc->set_config = gst_xmb_input_pool_set_config;
	pc->alloc_buffer = gst_xmb_input_pool_alloc;
}

void gst_xmb_input_pool_init(GstXmbInputPool *self)
{
	self->state = new InputPoolState();
}

} /* namespace */

GstBufferPool *inputPoolNew(std::shared_ptr<VcodecConnection> conn, const GstVideoInfo &info, guint count)
{
	GstBufferPool *pool = GST_BUFFER_POOL(g_object_new(GST_TYPE_XMB_INPUT_POOL, nullptr));
	auto *ps = GST_XMB_INPUT_POOL(pool)->state;
	ps->conn = std::move(conn);
	ps->info = info;
	ps->count = count;
	GstStructure *pc = gst_buffer_pool_get_config(pool);
	GstCaps *caps = gst_video_info_to_caps(&info);
	gst_buffer_pool_config_set_params(pc, caps, static_cast<guint>(GST_VIDEO_INFO_SIZE(&info)), count, count);
	gst_buffer_pool_config_add_option(pc, GST_BUFFER_POOL_OPTION_VIDEO_META);
	gst_caps_unref(caps);
	/* Left inactive: upstream configures and activates it (or the element does). */
	if (!gst_buffer_pool_set_config(pool, pc)) {
		gst_object_unref(pool);
		return nullptr;
	}
	return pool;
}

GstVideoInfo inputInfoFromLayout(const GstVideoInfo &in, const vcodec::CodecLayout &layout)
{
	GstVideoInfo info = in;
	for (guint p = 0; p < GST_VIDEO_INFO_N_PLANES(&in) && p < XENVCODEC_MAX_PLANE; p++) {
		info.offset[p] = layout.planeOffset[p];
		info.stride[p] = static_cast<gint>(layout.planeStride[p]);
	}
	info.size = layout.rawSize;
	return info;
}

GstBuffer *inputPoolCopy(GstBufferPool *pool, const GstVideoInfo &poolInfo, const GstVideoInfo &srcInfo,
			 GstBuffer *src, int *index, std::string *why)
{
	if (!gst_buffer_pool_is_active(pool) && !gst_buffer_pool_set_active(pool, TRUE)) {
		*why = "the granted buffer pool cannot be activated";
		return nullptr;
	}
	GstBuffer *buf = nullptr;
	GstFlowReturn r = gst_buffer_pool_acquire_buffer(pool, &buf, nullptr);
	*index = r == GST_FLOW_OK ? inputPoolIndex(pool, buf) : -1;
	if (r != GST_FLOW_OK || *index < 0) {
		if (buf)
			gst_buffer_unref(buf);
		*why = std::string("no granted buffer free (pool: ") + gst_flow_get_name(r) + ")";
		return nullptr;
	}
	GstVideoFrame from, to;
	bool ok = gst_video_frame_map(&from, &srcInfo, src, GST_MAP_READ);
	if (ok) {
		ok = gst_video_frame_map(&to, &poolInfo, buf, GST_MAP_WRITE);
		if (ok) {
			ok = gst_video_frame_copy(&to, &from);
			gst_video_frame_unmap(&to);
		}
		gst_video_frame_unmap(&from);
	}
	if (!ok) {
		gst_buffer_unref(buf);
		*why = "the frame cannot be mapped or copied";
		return nullptr;
	}
	return buf;
}

int inputPoolIndex(GstBufferPool *pool, GstBuffer *buf)
{
	if (!pool || buf->pool != pool)
		return -1;
	gpointer v = gst_mini_object_get_qdata(GST_MINI_OBJECT(buf), input_index_quark());
	return v ? static_cast<int>(GPOINTER_TO_UINT(v)) - 1 : -1;
}

} /* namespace xmb::gst */
