// SPDX-License-Identifier: GPL-2.0-only
/*
 * xmb-sgenc: a V4L2 stateful M2M encoder on vb2-dma-sg, for
 * xen-media-bridge's tests on an arm64 Xen Dom0.
 *
 * Why it exists: a guest's raw frames reach Dom0 as grant refs, which
 * gntdev turns into a dma-buf (IOCTL_GNTDEV_DMABUF_EXP_FROM_REFS): a
 * scatter list of pages with no vmap and no mmap.  vicodec, the kernel's
 * test encoder, is vb2-vmalloc: it reads a buffer through dma_buf_vmap(),
 * which such an import does not have, so it refuses them at QBUF.  A real
 * SoC encoder behind an IOMMU (or with a scatter-gather DMA engine) reads
 * them as they come, through the mapped scatter list.
 *
 * This device is such an engine, emulated by the CPU: the OUTPUT (raw)
 * buffer's pages are taken from its scatter list -- the one vb2-dma-sg got
 * from dma_buf_map_attachment() for an import, or its own for MMAP -- and
 * mapped into the kernel for the duration of one frame (vmap of those very
 * pages: nothing is copied), then encoded with vicodec's FWHT codec
 * (v4l2_fwht_encode, linked in from the built-in vicodec), so its bitstream
 * is vicodec's: GStreamer's v4l2fwhtdec decodes it.  The CAPTURE buffer is
 * written the same way.
 *
 * Formats: YU12 in, FWHT out; 64x64 to 1920x1088 in steps of 16.
 * Controls: GOP size, I/P frame QP, force key frame.  Encoder commands
 * (STOP/START drain) and the EOS event as a stateful encoder has them.
 * Frames encoded, and of those read from imported dma-bufs, are in
 * /sys/module/xmb_sgenc/parameters/{frames,dmabuf_frames}.
 */

#include <linux/dma-mapping.h>
#include <linux/module.h>
#include <linux/platform_device.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <linux/workqueue.h>
#include <media/v4l2-ctrls.h>
#include <media/v4l2-device.h>
#include <media/v4l2-event.h>
#include <media/v4l2-ioctl.h>
#include <media/v4l2-mem2mem.h>
#include <media/videobuf2-dma-sg.h>

#include "vicodec/codec-v4l2-fwht.h"

#define SGENC_NAME "xmb-sgenc"
#define SGENC_MIN 64
#define SGENC_MAX_W 1920
#define SGENC_MAX_H 1088
#define SGENC_STEP 16

static unsigned long frames;
module_param(frames, ulong, 0444);
MODULE_PARM_DESC(frames, "frames encoded (read-only)");
static unsigned long dmabuf_frames;
module_param(dmabuf_frames, ulong, 0444);
MODULE_PARM_DESC(dmabuf_frames, "frames read from imported dma-bufs (read-only)");

struct sgenc_dev {
	struct v4l2_device v4l2_dev;
	struct video_device vdev;
	struct mutex dev_mutex; /* open/release */
	struct v4l2_m2m_dev *m2m_dev;
};

struct sgenc_ctx {
	struct v4l2_fh fh;
	struct sgenc_dev *dev;
	struct v4l2_ctrl_handler hdl;
	struct mutex vb_mutex; /* both queues */
	struct work_struct work;
	u32 width, height;
	u32 out_seq, cap_seq;
	enum v4l2_colorspace colorspace;
	struct v4l2_fwht_state state;
};

static const struct v4l2_event sgenc_eos = { .type = V4L2_EVENT_EOS };

static struct sgenc_ctx *file2ctx(struct file *file)
{
	return container_of(file->private_data, struct sgenc_ctx, fh);
}

static u32 raw_size(const struct sgenc_ctx *ctx)
{
	return ctx->width * ctx->height * 3 / 2;
}

/* FWHT stores a plane raw when coding would not make it smaller: bounded. */
static u32 coded_size(const struct sgenc_ctx *ctx)
{
	return PAGE_ALIGN(raw_size(ctx) + sizeof(struct fwht_cframe_hdr));
}

/*
 * The first \a size bytes of the buffer's plane 0, mapped into the kernel
 * from the pages of its scatter list (no copy); vunmap() when done.
 */
static void *sgenc_vmap(struct vb2_buffer *vb, unsigned long size)
{
	struct sg_table *sgt = vb2_dma_sg_plane_desc(vb, 0);
	unsigned int n = DIV_ROUND_UP(size, PAGE_SIZE), i = 0;
	struct sg_page_iter piter;
	struct page **pages;
	void *va;

	if (!sgt)
		return NULL;
	pages = kvmalloc_array(n, sizeof(*pages), GFP_KERNEL);
	if (!pages)
		return NULL;
	for_each_sgtable_page(sgt, &piter, 0) {
		if (i == n)
			break;
		pages[i++] = sg_page_iter_page(&piter);
	}
	va = i == n ? vmap(pages, n, VM_MAP, PAGE_KERNEL) : NULL;
	kvfree(pages);
	return va;
}

/* ---- the engine ---------------------------------------------------------- */

static void sgenc_work(struct work_struct *work)
{
	struct sgenc_ctx *ctx = container_of(work, struct sgenc_ctx, work);
	struct v4l2_m2m_ctx *m2m_ctx = ctx->fh.m2m_ctx;
	enum vb2_buffer_state state = VB2_BUF_STATE_ERROR;
	struct vb2_v4l2_buffer *src, *dst;
	bool key = false;
	u8 *in, *out;
	int len;

	src = v4l2_m2m_next_src_buf(m2m_ctx);
	dst = v4l2_m2m_next_dst_buf(m2m_ctx);
	in = sgenc_vmap(&src->vb2_buf, raw_size(ctx));
	out = sgenc_vmap(&dst->vb2_buf, coded_size(ctx));
	if (in && out) {
		len = v4l2_fwht_encode(&ctx->state, in, out);
		if (len > 0) {
			const struct fwht_cframe_hdr *h = (const void *)out;

			key = ntohl(h->flags) & V4L2_FWHT_FL_I_FRAME;
			vb2_set_plane_payload(&dst->vb2_buf, 0, len);
			state = VB2_BUF_STATE_DONE;
			frames++;
			if (src->vb2_buf.memory == VB2_MEMORY_DMABUF)
				dmabuf_frames++;
		}
	} else {
		v4l2_err(&ctx->dev->v4l2_dev, "cannot map the pages of buffer %u (%s) or %u\n",
			 src->vb2_buf.index, src->vb2_buf.memory == VB2_MEMORY_DMABUF ? "dma-buf" : "own",
			 dst->vb2_buf.index);
	}
	if (in)
		vunmap(in);
	if (out)
		vunmap(out);

	src = v4l2_m2m_src_buf_remove(m2m_ctx);
	dst = v4l2_m2m_dst_buf_remove(m2m_ctx);
	v4l2_m2m_buf_copy_metadata(src, dst, true);
	if (key)
		dst->flags |= V4L2_BUF_FLAG_KEYFRAME;
	src->sequence = ctx->out_seq++;
	dst->sequence = ctx->cap_seq++;
	if (v4l2_m2m_is_last_draining_src_buf(m2m_ctx, src)) {
		dst->flags |= V4L2_BUF_FLAG_LAST;
		v4l2_event_queue_fh(&ctx->fh, &sgenc_eos);
		v4l2_m2m_mark_stopped(m2m_ctx);
	}
	v4l2_m2m_buf_done(src, state);
	v4l2_m2m_buf_done(dst, state);
	v4l2_m2m_job_finish(ctx->dev->m2m_dev, m2m_ctx);
}

static void sgenc_device_run(void *priv)
{
	struct sgenc_ctx *ctx = priv;

	/* Not here: device_run may be called from buffer completion. */
	schedule_work(&ctx->work);
}

static const struct v4l2_m2m_ops sgenc_m2m_ops = {
	.device_run = sgenc_device_run,
};

/* ---- formats ------------------------------------------------------------ */

static void sgenc_fill(struct sgenc_ctx *ctx, struct v4l2_pix_format *pix, bool raw)
{
	pix->width = ctx->width;
	pix->height = ctx->height;
	pix->field = V4L2_FIELD_NONE;
	pix->pixelformat = raw ? V4L2_PIX_FMT_YUV420 : V4L2_PIX_FMT_FWHT;
	pix->bytesperline = raw ? ctx->width : 0;
	pix->sizeimage = raw ? raw_size(ctx) : coded_size(ctx);
	pix->colorspace = ctx->colorspace;
	pix->xfer_func = V4L2_XFER_FUNC_DEFAULT;
	pix->ycbcr_enc = V4L2_YCBCR_ENC_DEFAULT;
	pix->quantization = V4L2_QUANTIZATION_DEFAULT;
	pix->flags = 0;
}

static int sgenc_querycap(struct file *file, void *priv, struct v4l2_capability *cap)
{
	strscpy(cap->driver, SGENC_NAME, sizeof(cap->driver));
	strscpy(cap->card, SGENC_NAME, sizeof(cap->card));
	strscpy(cap->bus_info, "platform:" SGENC_NAME, sizeof(cap->bus_info));
	return 0;
}

static int sgenc_enum_fmt_out(struct file *file, void *priv, struct v4l2_fmtdesc *f)
{
	if (f->index)
		return -EINVAL;
	f->pixelformat = V4L2_PIX_FMT_YUV420;
	return 0;
}

static int sgenc_enum_fmt_cap(struct file *file, void *priv, struct v4l2_fmtdesc *f)
{
	if (f->index)
		return -EINVAL;
	f->pixelformat = V4L2_PIX_FMT_FWHT;
	f->flags = V4L2_FMT_FLAG_COMPRESSED;
	return 0;
}

static int sgenc_enum_framesizes(struct file *file, void *priv, struct v4l2_frmsizeenum *fs)
{
	if (fs->index || (fs->pixel_format != V4L2_PIX_FMT_YUV420 && fs->pixel_format != V4L2_PIX_FMT_FWHT))
		return -EINVAL;
	fs->type = V4L2_FRMSIZE_TYPE_STEPWISE;
	fs->stepwise = (struct v4l2_frmsize_stepwise){ SGENC_MIN, SGENC_MAX_W, SGENC_STEP,
						       SGENC_MIN, SGENC_MAX_H, SGENC_STEP };
	return 0;
}

static int sgenc_g_fmt_out(struct file *file, void *priv, struct v4l2_format *f)
{
	sgenc_fill(file2ctx(file), &f->fmt.pix, true);
	return 0;
}

static int sgenc_g_fmt_cap(struct file *file, void *priv, struct v4l2_format *f)
{
	sgenc_fill(file2ctx(file), &f->fmt.pix, false);
	return 0;
}

/* The size is the stream's: either queue's format sets it for both. */
static void sgenc_try(struct sgenc_ctx *tmp, struct v4l2_pix_format *pix, bool raw)
{
	tmp->width = clamp(round_up(pix->width, SGENC_STEP), (u32)SGENC_MIN, (u32)SGENC_MAX_W);
	tmp->height = clamp(round_up(pix->height, SGENC_STEP), (u32)SGENC_MIN, (u32)SGENC_MAX_H);
	if (raw && pix->colorspace != V4L2_COLORSPACE_DEFAULT)
		tmp->colorspace = pix->colorspace;
	sgenc_fill(tmp, pix, raw);
}

static int sgenc_try_fmt_out(struct file *file, void *priv, struct v4l2_format *f)
{
	struct sgenc_ctx tmp = { .colorspace = file2ctx(file)->colorspace };

	sgenc_try(&tmp, &f->fmt.pix, true);
	return 0;
}

static int sgenc_try_fmt_cap(struct file *file, void *priv, struct v4l2_format *f)
{
	struct sgenc_ctx tmp = { .colorspace = file2ctx(file)->colorspace };

	sgenc_try(&tmp, &f->fmt.pix, false);
	return 0;
}

static int sgenc_s_fmt(struct file *file, struct v4l2_format *f, bool raw)
{
	struct sgenc_ctx *ctx = file2ctx(file);
	struct sgenc_ctx tmp = { .colorspace = ctx->colorspace };
	struct vb2_queue *out = v4l2_m2m_get_vq(ctx->fh.m2m_ctx, V4L2_BUF_TYPE_VIDEO_OUTPUT);
	struct vb2_queue *cap = v4l2_m2m_get_vq(ctx->fh.m2m_ctx, V4L2_BUF_TYPE_VIDEO_CAPTURE);

	sgenc_try(&tmp, &f->fmt.pix, raw);
	if ((tmp.width != ctx->width || tmp.height != ctx->height) && (vb2_is_busy(out) || vb2_is_busy(cap)))
		return -EBUSY;
	ctx->width = tmp.width;
	ctx->height = tmp.height;
	ctx->colorspace = tmp.colorspace;
	return 0;
}

static int sgenc_s_fmt_out(struct file *file, void *priv, struct v4l2_format *f)
{
	return sgenc_s_fmt(file, f, true);
}

static int sgenc_s_fmt_cap(struct file *file, void *priv, struct v4l2_format *f)
{
	return sgenc_s_fmt(file, f, false);
}

static int sgenc_encoder_cmd(struct file *file, void *fh, struct v4l2_encoder_cmd *ec)
{
	struct sgenc_ctx *ctx = file2ctx(file);
	int ret = v4l2_m2m_ioctl_try_encoder_cmd(file, fh, ec);

	if (ret < 0)
		return ret;
	if (!vb2_is_streaming(&ctx->fh.m2m_ctx->cap_q_ctx.q) || !vb2_is_streaming(&ctx->fh.m2m_ctx->out_q_ctx.q))
		return 0;
	ret = v4l2_m2m_ioctl_encoder_cmd(file, fh, ec);
	if (ret < 0)
		return ret;
	if (ec->cmd == V4L2_ENC_CMD_STOP && v4l2_m2m_has_stopped(ctx->fh.m2m_ctx))
		v4l2_event_queue_fh(&ctx->fh, &sgenc_eos);
	if (ec->cmd == V4L2_ENC_CMD_START && v4l2_m2m_has_stopped(ctx->fh.m2m_ctx))
		vb2_clear_last_buffer_dequeued(&ctx->fh.m2m_ctx->cap_q_ctx.q);
	return 0;
}

static int sgenc_subscribe_event(struct v4l2_fh *fh, const struct v4l2_event_subscription *sub)
{
	if (sub->type == V4L2_EVENT_EOS)
		return v4l2_event_subscribe(fh, sub, 0, NULL);
	return v4l2_ctrl_subscribe_event(fh, sub);
}

static const struct v4l2_ioctl_ops sgenc_ioctl_ops = {
	.vidioc_querycap = sgenc_querycap,
	.vidioc_enum_fmt_vid_out = sgenc_enum_fmt_out,
	.vidioc_enum_fmt_vid_cap = sgenc_enum_fmt_cap,
	.vidioc_enum_framesizes = sgenc_enum_framesizes,
	.vidioc_g_fmt_vid_out = sgenc_g_fmt_out,
	.vidioc_g_fmt_vid_cap = sgenc_g_fmt_cap,
	.vidioc_try_fmt_vid_out = sgenc_try_fmt_out,
	.vidioc_try_fmt_vid_cap = sgenc_try_fmt_cap,
	.vidioc_s_fmt_vid_out = sgenc_s_fmt_out,
	.vidioc_s_fmt_vid_cap = sgenc_s_fmt_cap,
	.vidioc_reqbufs = v4l2_m2m_ioctl_reqbufs,
	.vidioc_querybuf = v4l2_m2m_ioctl_querybuf,
	.vidioc_qbuf = v4l2_m2m_ioctl_qbuf,
	.vidioc_dqbuf = v4l2_m2m_ioctl_dqbuf,
	.vidioc_prepare_buf = v4l2_m2m_ioctl_prepare_buf,
	.vidioc_create_bufs = v4l2_m2m_ioctl_create_bufs,
	.vidioc_expbuf = v4l2_m2m_ioctl_expbuf,
	.vidioc_streamon = v4l2_m2m_ioctl_streamon,
	.vidioc_streamoff = v4l2_m2m_ioctl_streamoff,
	.vidioc_try_encoder_cmd = v4l2_m2m_ioctl_try_encoder_cmd,
	.vidioc_encoder_cmd = sgenc_encoder_cmd,
	.vidioc_subscribe_event = sgenc_subscribe_event,
	.vidioc_unsubscribe_event = v4l2_event_unsubscribe,
};

/* ---- queues ------------------------------------------------------------- */

static int sgenc_queue_setup(struct vb2_queue *q, unsigned int *nbuffers, unsigned int *nplanes,
			     unsigned int sizes[], struct device *alloc_devs[])
{
	struct sgenc_ctx *ctx = vb2_get_drv_priv(q);
	u32 size = V4L2_TYPE_IS_OUTPUT(q->type) ? raw_size(ctx) : coded_size(ctx);

	if (*nplanes)
		return *nplanes != 1 || sizes[0] < size ? -EINVAL : 0;
	*nplanes = 1;
	sizes[0] = size;
	return 0;
}

static int sgenc_buf_prepare(struct vb2_buffer *vb)
{
	struct sgenc_ctx *ctx = vb2_get_drv_priv(vb->vb2_queue);
	struct vb2_v4l2_buffer *vbuf = to_vb2_v4l2_buffer(vb);

	if (V4L2_TYPE_IS_OUTPUT(vb->type)) {
		if (vbuf->field == V4L2_FIELD_ANY)
			vbuf->field = V4L2_FIELD_NONE;
		if (vbuf->field != V4L2_FIELD_NONE || vb2_plane_size(vb, 0) < raw_size(ctx) ||
		    vb2_get_plane_payload(vb, 0) < raw_size(ctx))
			return -EINVAL;
		return 0;
	}
	if (vb2_plane_size(vb, 0) < coded_size(ctx))
		return -EINVAL;
	return 0;
}

static void sgenc_buf_queue(struct vb2_buffer *vb)
{
	struct sgenc_ctx *ctx = vb2_get_drv_priv(vb->vb2_queue);
	struct vb2_v4l2_buffer *vbuf = to_vb2_v4l2_buffer(vb);

	if (V4L2_TYPE_IS_CAPTURE(vb->type) && vb2_is_streaming(vb->vb2_queue) &&
	    v4l2_m2m_dst_buf_is_last(ctx->fh.m2m_ctx)) {
		vb2_set_plane_payload(vb, 0, 0);
		vbuf->field = V4L2_FIELD_NONE;
		vbuf->sequence = ctx->cap_seq++;
		v4l2_m2m_last_buffer_done(ctx->fh.m2m_ctx, vbuf);
		v4l2_event_queue_fh(&ctx->fh, &sgenc_eos);
		return;
	}
	v4l2_m2m_buf_queue(ctx->fh.m2m_ctx, vbuf);
}

static void sgenc_return_bufs(struct sgenc_ctx *ctx, struct vb2_queue *q, enum vb2_buffer_state state)
{
	struct vb2_v4l2_buffer *vbuf;

	for (;;) {
		vbuf = V4L2_TYPE_IS_OUTPUT(q->type) ? v4l2_m2m_src_buf_remove(ctx->fh.m2m_ctx)
						    : v4l2_m2m_dst_buf_remove(ctx->fh.m2m_ctx);
		if (!vbuf)
			return;
		v4l2_m2m_buf_done(vbuf, state);
	}
}

static int sgenc_start_streaming(struct vb2_queue *q, unsigned int count)
{
	struct sgenc_ctx *ctx = vb2_get_drv_priv(q);
	struct v4l2_fwht_state *st = &ctx->state;
	u32 size = ctx->width * ctx->height;

	v4l2_m2m_update_start_streaming_state(ctx->fh.m2m_ctx, q);
	st->gop_cnt = 0;
	if (V4L2_TYPE_IS_CAPTURE(q->type)) {
		ctx->cap_seq = 0;
		return 0;
	}
	ctx->out_seq = 0;
	/* The reference frame P frames are coded against: the encoder's own memory. */
	kvfree(st->ref_frame.buf);
	st->ref_frame.buf = kvmalloc(raw_size(ctx), GFP_KERNEL);
	if (!st->ref_frame.buf) {
		sgenc_return_bufs(ctx, q, VB2_BUF_STATE_QUEUED);
		return -ENOMEM;
	}
	st->info = v4l2_fwht_find_pixfmt(V4L2_PIX_FMT_YUV420);
	st->visible_width = st->coded_width = ctx->width;
	st->visible_height = st->coded_height = ctx->height;
	st->stride = ctx->width * st->info->bytesperline_mult;
	st->ref_stride = ctx->width * st->info->luma_alpha_step;
	st->colorspace = ctx->colorspace;
	st->xfer_func = V4L2_XFER_FUNC_DEFAULT;
	st->ycbcr_enc = V4L2_YCBCR_ENC_DEFAULT;
	st->quantization = V4L2_QUANTIZATION_DEFAULT;
	st->ref_frame.luma = st->ref_frame.buf;
	st->ref_frame.cb = st->ref_frame.luma + size;
	st->ref_frame.cr = st->ref_frame.cb + size / 4;
	st->ref_frame.alpha = NULL;
	return 0;
}

static void sgenc_stop_streaming(struct vb2_queue *q)
{
	struct sgenc_ctx *ctx = vb2_get_drv_priv(q);

	sgenc_return_bufs(ctx, q, VB2_BUF_STATE_ERROR);
	v4l2_m2m_update_stop_streaming_state(ctx->fh.m2m_ctx, q);
	if (V4L2_TYPE_IS_OUTPUT(q->type) && v4l2_m2m_has_stopped(ctx->fh.m2m_ctx))
		v4l2_event_queue_fh(&ctx->fh, &sgenc_eos);
}

static const struct vb2_ops sgenc_qops = {
	.queue_setup = sgenc_queue_setup,
	.buf_prepare = sgenc_buf_prepare,
	.buf_queue = sgenc_buf_queue,
	.start_streaming = sgenc_start_streaming,
	.stop_streaming = sgenc_stop_streaming,
	.wait_prepare = vb2_ops_wait_prepare,
	.wait_finish = vb2_ops_wait_finish,
};

static int sgenc_queue_init(void *priv, struct vb2_queue *src, struct vb2_queue *dst)
{
	struct sgenc_ctx *ctx = priv;
	int ret;

	/* MMAP and DMABUF: what a scatter-gather engine reads; no user pages. */
	src->type = V4L2_BUF_TYPE_VIDEO_OUTPUT;
	src->io_modes = VB2_MMAP | VB2_DMABUF;
	src->drv_priv = ctx;
	src->buf_struct_size = sizeof(struct v4l2_m2m_buffer);
	src->ops = &sgenc_qops;
	src->mem_ops = &vb2_dma_sg_memops;
	src->timestamp_flags = V4L2_BUF_FLAG_TIMESTAMP_COPY;
	src->lock = &ctx->vb_mutex;
	src->dev = ctx->dev->v4l2_dev.dev;
	ret = vb2_queue_init(src);
	if (ret)
		return ret;

	dst->type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
	dst->io_modes = VB2_MMAP | VB2_DMABUF;
	dst->drv_priv = ctx;
	dst->buf_struct_size = sizeof(struct v4l2_m2m_buffer);
	dst->ops = &sgenc_qops;
	dst->mem_ops = &vb2_dma_sg_memops;
	dst->timestamp_flags = V4L2_BUF_FLAG_TIMESTAMP_COPY;
	dst->lock = &ctx->vb_mutex;
	dst->dev = ctx->dev->v4l2_dev.dev;
	return vb2_queue_init(dst);
}

/* ---- controls ----------------------------------------------------------- */

static int sgenc_s_ctrl(struct v4l2_ctrl *ctrl)
{
	struct sgenc_ctx *ctx = container_of(ctrl->handler, struct sgenc_ctx, hdl);

	switch (ctrl->id) {
	case V4L2_CID_MPEG_VIDEO_GOP_SIZE:
		ctx->state.gop_size = ctrl->val;
		return 0;
	case V4L2_CID_FWHT_I_FRAME_QP:
		ctx->state.i_frame_qp = ctrl->val;
		return 0;
	case V4L2_CID_FWHT_P_FRAME_QP:
		ctx->state.p_frame_qp = ctrl->val;
		return 0;
	case V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME:
		ctx->state.gop_cnt = 0; /* the next frame starts a GOP */
		return 0;
	}
	return -EINVAL;
}

static const struct v4l2_ctrl_ops sgenc_ctrl_ops = { .s_ctrl = sgenc_s_ctrl };

/* ---- file --------------------------------------------------------------- */

static int sgenc_open(struct file *file)
{
	struct sgenc_dev *dev = video_drvdata(file);
	struct sgenc_ctx *ctx;
	int ret;

	if (mutex_lock_interruptible(&dev->dev_mutex))
		return -ERESTARTSYS;
	ctx = kzalloc(sizeof(*ctx), GFP_KERNEL);
	if (!ctx) {
		ret = -ENOMEM;
		goto unlock;
	}
	v4l2_fh_init(&ctx->fh, video_devdata(file));
	file->private_data = &ctx->fh;
	ctx->dev = dev;
	ctx->width = 640;
	ctx->height = 480;
	ctx->colorspace = V4L2_COLORSPACE_REC709;
	mutex_init(&ctx->vb_mutex);
	INIT_WORK(&ctx->work, sgenc_work);

	v4l2_ctrl_handler_init(&ctx->hdl, 4);
	v4l2_ctrl_new_std(&ctx->hdl, &sgenc_ctrl_ops, V4L2_CID_MPEG_VIDEO_GOP_SIZE, 1, 16, 1, 10);
	v4l2_ctrl_new_std(&ctx->hdl, &sgenc_ctrl_ops, V4L2_CID_FWHT_I_FRAME_QP, 1, 31, 1, 20);
	v4l2_ctrl_new_std(&ctx->hdl, &sgenc_ctrl_ops, V4L2_CID_FWHT_P_FRAME_QP, 1, 31, 1, 20);
	v4l2_ctrl_new_std(&ctx->hdl, &sgenc_ctrl_ops, V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME, 0, 0, 0, 0);
	if (ctx->hdl.error) {
		ret = ctx->hdl.error;
		goto free_hdl;
	}
	ctx->fh.ctrl_handler = &ctx->hdl;
	v4l2_ctrl_handler_setup(&ctx->hdl);

	ctx->fh.m2m_ctx = v4l2_m2m_ctx_init(dev->m2m_dev, ctx, sgenc_queue_init);
	if (IS_ERR(ctx->fh.m2m_ctx)) {
		ret = PTR_ERR(ctx->fh.m2m_ctx);
		goto free_hdl;
	}
	v4l2_fh_add(&ctx->fh);
	mutex_unlock(&dev->dev_mutex);
	return 0;

free_hdl:
	v4l2_ctrl_handler_free(&ctx->hdl);
	v4l2_fh_exit(&ctx->fh);
	kfree(ctx);
unlock:
	mutex_unlock(&dev->dev_mutex);
	return ret;
}

static int sgenc_release(struct file *file)
{
	struct sgenc_dev *dev = video_drvdata(file);
	struct sgenc_ctx *ctx = file2ctx(file);

	mutex_lock(&dev->dev_mutex);
	/* Streams off both queues: the running job, if any, has finished after it. */
	v4l2_m2m_ctx_release(ctx->fh.m2m_ctx);
	mutex_unlock(&dev->dev_mutex);
	flush_work(&ctx->work);
	v4l2_fh_del(&ctx->fh);
	v4l2_fh_exit(&ctx->fh);
	v4l2_ctrl_handler_free(&ctx->hdl);
	kvfree(ctx->state.ref_frame.buf);
	kfree(ctx);
	return 0;
}

static const struct v4l2_file_operations sgenc_fops = {
	.owner = THIS_MODULE,
	.open = sgenc_open,
	.release = sgenc_release,
	.poll = v4l2_m2m_fop_poll,
	.unlocked_ioctl = video_ioctl2,
	.mmap = v4l2_m2m_fop_mmap,
};

/* ---- device ------------------------------------------------------------- */

static int sgenc_probe(struct platform_device *pdev)
{
	struct sgenc_dev *dev;
	int ret;

	dev = devm_kzalloc(&pdev->dev, sizeof(*dev), GFP_KERNEL);
	if (!dev)
		return -ENOMEM;
	/* Any page is reachable: a mapping never bounces (a bounce would be a copy). */
	ret = dma_coerce_mask_and_coherent(&pdev->dev, DMA_BIT_MASK(64));
	if (ret)
		return ret;
	mutex_init(&dev->dev_mutex);
	ret = v4l2_device_register(&pdev->dev, &dev->v4l2_dev);
	if (ret)
		return ret;
	dev->m2m_dev = v4l2_m2m_init(&sgenc_m2m_ops);
	if (IS_ERR(dev->m2m_dev)) {
		ret = PTR_ERR(dev->m2m_dev);
		goto unreg_v4l2;
	}
	strscpy(dev->vdev.name, SGENC_NAME, sizeof(dev->vdev.name));
	dev->vdev.vfl_dir = VFL_DIR_M2M;
	dev->vdev.fops = &sgenc_fops;
	dev->vdev.ioctl_ops = &sgenc_ioctl_ops;
	dev->vdev.release = video_device_release_empty;
	dev->vdev.v4l2_dev = &dev->v4l2_dev;
	dev->vdev.lock = &dev->dev_mutex;
	dev->vdev.device_caps = V4L2_CAP_VIDEO_M2M | V4L2_CAP_STREAMING;
	video_set_drvdata(&dev->vdev, dev);
	ret = video_register_device(&dev->vdev, VFL_TYPE_VIDEO, -1);
	if (ret)
		goto release_m2m;
	platform_set_drvdata(pdev, dev);
	v4l2_info(&dev->v4l2_dev, "scatter-gather FWHT encoder at /dev/%s\n", video_device_node_name(&dev->vdev));
	return 0;

release_m2m:
	v4l2_m2m_release(dev->m2m_dev);
unreg_v4l2:
	v4l2_device_unregister(&dev->v4l2_dev);
	return ret;
}

static int sgenc_remove(struct platform_device *pdev)
{
	struct sgenc_dev *dev = platform_get_drvdata(pdev);

	video_unregister_device(&dev->vdev);
	v4l2_m2m_release(dev->m2m_dev);
	v4l2_device_unregister(&dev->v4l2_dev);
	return 0;
}

static struct platform_driver sgenc_driver = {
	.probe = sgenc_probe,
	.remove = sgenc_remove,
	.driver = { .name = SGENC_NAME },
};

static struct platform_device *sgenc_pdev;

static int __init sgenc_init(void)
{
	int ret = platform_driver_register(&sgenc_driver);

	if (ret)
		return ret;
	sgenc_pdev = platform_device_register_simple(SGENC_NAME, -1, NULL, 0);
	if (IS_ERR(sgenc_pdev)) {
		platform_driver_unregister(&sgenc_driver);
		return PTR_ERR(sgenc_pdev);
	}
	return 0;
}

static void __exit sgenc_exit(void)
{
	platform_device_unregister(sgenc_pdev);
	platform_driver_unregister(&sgenc_driver);
}

module_init(sgenc_init);
module_exit(sgenc_exit);
MODULE_DESCRIPTION("xen-media-bridge scatter-gather FWHT encoder test device");
MODULE_LICENSE("GPL");
