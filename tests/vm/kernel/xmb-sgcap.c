// SPDX-License-Identifier: GPL-2.0-only
/*
 * xmb-sgcap: a V4L2 capture device on vb2-dma-sg, for xen-media-bridge's
 * tests on an arm64 Xen Dom0.
 *
 * Why it exists: the kernel's own test drivers cannot take a guest's pages
 * as a dma-buf.  gntdev's exports (IOCTL_GNTDEV_DMABUF_EXP_FROM_REFS) are a
 * scatter list of pages with no vmap and no mmap; vivid, vicodec, vim2m and
 * vimc write with the CPU through a kernel mapping of the buffer (vmalloc,
 * or dma-contig's vaddr), which an import without vmap does not have, and
 * dma-contig without an IOMMU refuses scattered pages.  Real SoC cameras
 * behind an IOMMU, or with a scatter-gather DMA engine, take such buffers
 * as they come: the engine writes through the mapped scatter list.
 *
 * This device is such an engine, emulated by the CPU: every frame period
 * it takes the oldest queued buffer and writes the frame through the pages
 * of the buffer's scatter list (sg_miter), never through a mapping of the
 * whole buffer, so an imported dma-buf, MMAP memory and user pages are all
 * written the same way.  MMAP buffers are exportable (VIDIOC_EXPBUF).
 *
 * The frame is xen-media-bridge's test pattern (v4l2/test_pattern.cpp:
 * colour bars scrolling left over the top three quarters, a grey ramp
 * scrolling right below, the frame number in a box at the top left), in
 * YUYV, so a guest checks every frame pixel-exact (xmb-camera-guest
 * --check-pattern).  The frame number is the buffer's sequence number:
 * both count filled buffers, not frame periods.
 *
 * Parameters: none.  Sizes 320x240, 640x360, 640x480 and 1280x720; 30
 * frames per second.  Frames written, and of those into imported dma-bufs,
 * are in /sys/module/xmb_sgcap/parameters/{frames,dmabuf_frames}.
 */

#include <linux/delay.h>
#include <linux/dma-mapping.h>
#include <linux/module.h>
#include <linux/platform_device.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>
#include <linux/workqueue.h>
#include <media/v4l2-device.h>
#include <media/v4l2-fh.h>
#include <media/v4l2-ioctl.h>
#include <media/videobuf2-dma-sg.h>
#include <media/videobuf2-v4l2.h>

#define SGCAP_NAME "xmb-sgcap"
#define SGCAP_FPS 30
#define SGCAP_DIGITS 10

static unsigned long frames;
module_param(frames, ulong, 0444);
MODULE_PARM_DESC(frames, "frames written (read-only)");
static unsigned long dmabuf_frames;
module_param(dmabuf_frames, ulong, 0444);
MODULE_PARM_DESC(dmabuf_frames, "frames written into imported dma-bufs (read-only)");

static const struct {
	u32 width, height;
} sgcap_sizes[] = { { 320, 240 }, { 640, 360 }, { 640, 480 }, { 1280, 720 } };

struct sgcap_buffer {
	struct vb2_v4l2_buffer vb; /* first: vb2 allocates buf_struct_size */
	struct list_head list;
};

struct sgcap_dev {
	struct v4l2_device v4l2_dev;
	struct video_device vdev;
	struct vb2_queue queue;
	struct mutex lock; /* ioctls and the queue */
	spinlock_t slock; /* active */
	struct list_head active;
	struct delayed_work work;
	u32 width, height;
	u32 sequence;
	u8 *rows; /* three rows of YUYV: bars, ramp, counter box */
};

static struct platform_device *sgcap_pdev;

/* ---- the test pattern, as v4l2/test_pattern.cpp renders YUYV ---------- */

struct rgb {
	u8 r, g, b;
};

static const struct rgb bars[8] = {
	{ 255, 255, 255 }, { 255, 255, 0 }, { 0, 255, 255 }, { 0, 255, 0 },
	{ 255, 0, 255 },   { 255, 0, 0 },   { 0, 0, 255 },   { 0, 0, 0 },
};

/* 5x7 digits, one byte per row, bit 4 = leftmost column. */
static const u8 font[10][7] = {
	{ 0x0e, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0e }, { 0x04, 0x0c, 0x04, 0x04, 0x04, 0x04, 0x0e },
	{ 0x0e, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1f }, { 0x1f, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0e },
	{ 0x02, 0x06, 0x0a, 0x12, 0x1f, 0x02, 0x02 }, { 0x1f, 0x10, 0x1e, 0x01, 0x01, 0x11, 0x0e },
	{ 0x06, 0x08, 0x10, 0x1e, 0x11, 0x11, 0x0e }, { 0x1f, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08 },
	{ 0x0e, 0x11, 0x11, 0x0e, 0x11, 0x11, 0x0e }, { 0x0e, 0x11, 0x11, 0x0f, 0x01, 0x02, 0x0c },
};

static u8 luma(struct rgb c)
{
	return ((66 * c.r + 129 * c.g + 25 * c.b + 128) >> 8) + 16;
}

static u8 cb(struct rgb c)
{
	return ((-38 * c.r - 74 * c.g + 112 * c.b + 128) >> 8) + 128;
}

static u8 cr(struct rgb c)
{
	return ((112 * c.r - 94 * c.g - 18 * c.b + 128) >> 8) + 128;
}

struct sgcap_box {
	unsigned int scale, x0, y0, width, height;
};

static struct sgcap_box box_for(u32 h)
{
	struct sgcap_box b;

	b.scale = max(1u, h / 135);
	b.x0 = 2 * b.scale;
	b.y0 = 2 * b.scale;
	b.width = (SGCAP_DIGITS * 6 + 1) * b.scale;
	b.height = 9 * b.scale;
	return b;
}

static bool font_pixel(const struct sgcap_box *box, const u8 *digits, unsigned int x, unsigned int y)
{
	unsigned int cx = (x - box->x0) / box->scale, cy = (y - box->y0) / box->scale;
	unsigned int digit, col;

	if (cx < 1 || cy < 1 || cy > 7)
		return false;
	digit = (cx - 1) / 6;
	col = (cx - 1) % 6;
	if (digit >= SGCAP_DIGITS || col >= 5)
		return false;
	return font[digits[digit]][cy - 1] & (0x10 >> col);
}

/* Row y's RGB pixel x of frame n (shift = the scroll of frame n). */
static struct rgb pixel(struct sgcap_dev *dev, const struct sgcap_box *box, const u8 *digits,
			u32 shift, unsigned int x, unsigned int y)
{
	u32 w = dev->width, h = dev->height;
	u8 v;

	if (y >= box->y0 && y < box->y0 + box->height && x >= box->x0 && x < box->x0 + box->width) {
		if (font_pixel(box, digits, x, y))
			return (struct rgb){ 0, 0, 0 };
		return (struct rgb){ 255, 255, 255 };
	}
	if (y < h - h / 4)
		return bars[((x + shift) % w) * 8 / w];
	v = ((x + w - shift) % w) * 256 / w;
	return (struct rgb){ v, v, v };
}

static void pack_row(struct sgcap_dev *dev, const struct sgcap_box *box, const u8 *digits, u32 shift,
		     unsigned int y, u8 *dst)
{
	unsigned int x;

	for (x = 0; x + 1 < dev->width; x += 2) {
		struct rgb a = pixel(dev, box, digits, shift, x, y);
		struct rgb b = pixel(dev, box, digits, shift, x + 1, y);

		dst[2 * x] = luma(a);
		dst[2 * x + 1] = cb(a);
		dst[2 * x + 2] = luma(b);
		dst[2 * x + 3] = cr(a);
	}
}

/*
 * Frame n into the buffer's scatter list, page by page: rows of a band are
 * the same but for the counter box, so the bars and ramp rows are packed
 * once per frame and only box rows are built pixel by pixel.
 */
static void fill(struct sgcap_dev *dev, struct sg_table *sgt, u64 n)
{
	const u32 bpl = dev->width * 2;
	const struct sgcap_box box = box_for(dev->height);
	const u32 shift = (u32)((n * max(1u, dev->width / 64)) % dev->width);
	u8 *bar_row = dev->rows, *ramp_row = dev->rows + bpl, *box_row = dev->rows + 2 * bpl;
	struct sg_mapping_iter miter;
	u8 digits[SGCAP_DIGITS];
	size_t row_off = 0;
	unsigned int y = 0, i;
	u64 m = n;
	u32 rem;

	for (i = SGCAP_DIGITS; i-- > 0;) { /* digits[0] the most significant */
		m = div_u64_rem(m, 10, &rem);
		digits[i] = rem;
	}
	pack_row(dev, &box, digits, shift, dev->height - 1, ramp_row);
	pack_row(dev, &box, digits, shift, box.y0 + box.height, bar_row); /* a bars row below the box */

	sg_miter_start(&miter, sgt->sgl, sgt->orig_nents, SG_MITER_TO_SG);
	while (y < dev->height && sg_miter_next(&miter)) {
		size_t done = 0;

		while (done < miter.length && y < dev->height) {
			const u8 *src;
			size_t len = min_t(size_t, miter.length - done, bpl - row_off);

			if (y >= box.y0 && y < box.y0 + box.height) {
				if (row_off == 0)
					pack_row(dev, &box, digits, shift, y, box_row);
				src = box_row;
			} else {
				src = y < dev->height - dev->height / 4 ? bar_row : ramp_row;
			}
			memcpy((u8 *)miter.addr + done, src + row_off, len);
			done += len;
			row_off += len;
			if (row_off == bpl) {
				row_off = 0;
				y++;
			}
		}
	}
	sg_miter_stop(&miter);
}

/* ---- the engine: one buffer per frame period ---------------------------- */

static void sgcap_work(struct work_struct *work)
{
	struct sgcap_dev *dev = container_of(to_delayed_work(work), struct sgcap_dev, work);
	struct sgcap_buffer *buf = NULL;
	unsigned long flags;

	spin_lock_irqsave(&dev->slock, flags);
	if (!list_empty(&dev->active)) {
		buf = list_first_entry(&dev->active, struct sgcap_buffer, list);
		list_del(&buf->list);
	}
	spin_unlock_irqrestore(&dev->slock, flags);

	if (buf) {
		struct vb2_buffer *vb = &buf->vb.vb2_buf;

		fill(dev, vb2_dma_sg_plane_desc(vb, 0), dev->sequence);
		vb2_set_plane_payload(vb, 0, dev->width * 2 * dev->height);
		buf->vb.sequence = dev->sequence++;
		buf->vb.field = V4L2_FIELD_NONE;
		vb->timestamp = ktime_get_ns();
		frames++;
		if (vb->memory == VB2_MEMORY_DMABUF)
			dmabuf_frames++;
		vb2_buffer_done(vb, VB2_BUF_STATE_DONE);
	}
	schedule_delayed_work(&dev->work, msecs_to_jiffies(1000 / SGCAP_FPS));
}

static int queue_setup(struct vb2_queue *vq, unsigned int *nbuffers, unsigned int *nplanes,
		       unsigned int sizes[], struct device *alloc_devs[])
{
	struct sgcap_dev *dev = vb2_get_drv_priv(vq);
	unsigned int size = dev->width * 2 * dev->height;

	if (*nplanes)
		return sizes[0] < size ? -EINVAL : 0;
	*nplanes = 1;
	sizes[0] = size;
	return 0;
}

static int buf_prepare(struct vb2_buffer *vb)
{
	struct sgcap_dev *dev = vb2_get_drv_priv(vb->vb2_queue);
	unsigned long size = dev->width * 2 * dev->height;

	if (vb2_plane_size(vb, 0) < size)
		return -EINVAL;
	return 0;
}

static void buf_queue(struct vb2_buffer *vb)
{
	struct sgcap_dev *dev = vb2_get_drv_priv(vb->vb2_queue);
	struct sgcap_buffer *buf = container_of(to_vb2_v4l2_buffer(vb), struct sgcap_buffer, vb);
	unsigned long flags;

	spin_lock_irqsave(&dev->slock, flags);
	list_add_tail(&buf->list, &dev->active);
	spin_unlock_irqrestore(&dev->slock, flags);
}

static void return_all(struct sgcap_dev *dev, enum vb2_buffer_state state)
{
	struct sgcap_buffer *buf, *tmp;
	unsigned long flags;

	spin_lock_irqsave(&dev->slock, flags);
	list_for_each_entry_safe(buf, tmp, &dev->active, list) {
		list_del(&buf->list);
		vb2_buffer_done(&buf->vb.vb2_buf, state);
	}
	spin_unlock_irqrestore(&dev->slock, flags);
}

static int start_streaming(struct vb2_queue *vq, unsigned int count)
{
	struct sgcap_dev *dev = vb2_get_drv_priv(vq);

	dev->rows = kmalloc(3 * dev->width * 2, GFP_KERNEL);
	if (!dev->rows) {
		return_all(dev, VB2_BUF_STATE_QUEUED);
		return -ENOMEM;
	}
	dev->sequence = 0;
	schedule_delayed_work(&dev->work, msecs_to_jiffies(1000 / SGCAP_FPS));
	return 0;
}

static void stop_streaming(struct vb2_queue *vq)
{
	struct sgcap_dev *dev = vb2_get_drv_priv(vq);

	cancel_delayed_work_sync(&dev->work);
	return_all(dev, VB2_BUF_STATE_ERROR);
	kfree(dev->rows);
	dev->rows = NULL;
}

static const struct vb2_ops sgcap_qops = {
	.queue_setup = queue_setup,
	.buf_prepare = buf_prepare,
	.buf_queue = buf_queue,
	.start_streaming = start_streaming,
	.stop_streaming = stop_streaming,
	.wait_prepare = vb2_ops_wait_prepare,
	.wait_finish = vb2_ops_wait_finish,
};

/* ---- ioctls ------------------------------------------------------------- */

static int querycap(struct file *file, void *priv, struct v4l2_capability *cap)
{
	strscpy(cap->driver, SGCAP_NAME, sizeof(cap->driver));
	strscpy(cap->card, "xmb scatter-gather capture", sizeof(cap->card));
	strscpy(cap->bus_info, "platform:" SGCAP_NAME, sizeof(cap->bus_info));
	return 0;
}

static int enum_fmt(struct file *file, void *priv, struct v4l2_fmtdesc *f)
{
	if (f->index)
		return -EINVAL;
	f->pixelformat = V4L2_PIX_FMT_YUYV;
	return 0;
}

static void fill_pix(struct v4l2_pix_format *pix, u32 w, u32 h)
{
	pix->width = w;
	pix->height = h;
	pix->pixelformat = V4L2_PIX_FMT_YUYV;
	pix->field = V4L2_FIELD_NONE;
	pix->bytesperline = w * 2;
	pix->sizeimage = w * 2 * h;
	pix->colorspace = V4L2_COLORSPACE_SMPTE170M;
	pix->ycbcr_enc = V4L2_YCBCR_ENC_601;
	pix->quantization = V4L2_QUANTIZATION_LIM_RANGE;
	pix->xfer_func = V4L2_XFER_FUNC_709;
	pix->flags = 0;
}

static int g_fmt(struct file *file, void *priv, struct v4l2_format *f)
{
	struct sgcap_dev *dev = video_drvdata(file);

	fill_pix(&f->fmt.pix, dev->width, dev->height);
	return 0;
}

static int try_fmt(struct file *file, void *priv, struct v4l2_format *f)
{
	unsigned int i, best = 0;
	u32 best_d = U32_MAX;

	for (i = 0; i < ARRAY_SIZE(sgcap_sizes); i++) {
		u32 d = abs((int)sgcap_sizes[i].width - (int)f->fmt.pix.width) +
			abs((int)sgcap_sizes[i].height - (int)f->fmt.pix.height);

		if (d < best_d) {
			best_d = d;
			best = i;
		}
	}
	fill_pix(&f->fmt.pix, sgcap_sizes[best].width, sgcap_sizes[best].height);
	return 0;
}

static int s_fmt(struct file *file, void *priv, struct v4l2_format *f)
{
	struct sgcap_dev *dev = video_drvdata(file);

	if (vb2_is_busy(&dev->queue))
		return -EBUSY;
	try_fmt(file, priv, f);
	dev->width = f->fmt.pix.width;
	dev->height = f->fmt.pix.height;
	return 0;
}

static int enum_framesizes(struct file *file, void *priv, struct v4l2_frmsizeenum *fs)
{
	if (fs->pixel_format != V4L2_PIX_FMT_YUYV || fs->index >= ARRAY_SIZE(sgcap_sizes))
		return -EINVAL;
	fs->type = V4L2_FRMSIZE_TYPE_DISCRETE;
	fs->discrete.width = sgcap_sizes[fs->index].width;
	fs->discrete.height = sgcap_sizes[fs->index].height;
	return 0;
}

static int enum_frameintervals(struct file *file, void *priv, struct v4l2_frmivalenum *fi)
{
	unsigned int i;

	if (fi->index || fi->pixel_format != V4L2_PIX_FMT_YUYV)
		return -EINVAL;
	for (i = 0; i < ARRAY_SIZE(sgcap_sizes); i++)
		if (sgcap_sizes[i].width == fi->width && sgcap_sizes[i].height == fi->height)
			break;
	if (i == ARRAY_SIZE(sgcap_sizes))
		return -EINVAL;
	fi->type = V4L2_FRMIVAL_TYPE_DISCRETE;
	fi->discrete.numerator = 1;
	fi->discrete.denominator = SGCAP_FPS;
	return 0;
}

static int g_parm(struct file *file, void *priv, struct v4l2_streamparm *p)
{
	if (p->type != V4L2_BUF_TYPE_VIDEO_CAPTURE)
		return -EINVAL;
	memset(&p->parm.capture, 0, sizeof(p->parm.capture));
	p->parm.capture.capability = V4L2_CAP_TIMEPERFRAME;
	p->parm.capture.timeperframe.numerator = 1;
	p->parm.capture.timeperframe.denominator = SGCAP_FPS;
	p->parm.capture.readbuffers = 1;
	return 0;
}

static int enum_input(struct file *file, void *priv, struct v4l2_input *inp)
{
	if (inp->index)
		return -EINVAL;
	inp->type = V4L2_INPUT_TYPE_CAMERA;
	strscpy(inp->name, "Pattern", sizeof(inp->name));
	return 0;
}

static int g_input(struct file *file, void *priv, unsigned int *i)
{
	*i = 0;
	return 0;
}

static int s_input(struct file *file, void *priv, unsigned int i)
{
	return i ? -EINVAL : 0;
}

static const struct v4l2_ioctl_ops sgcap_ioctl_ops = {
	.vidioc_querycap = querycap,
	.vidioc_enum_fmt_vid_cap = enum_fmt,
	.vidioc_g_fmt_vid_cap = g_fmt,
	.vidioc_try_fmt_vid_cap = try_fmt,
	.vidioc_s_fmt_vid_cap = s_fmt,
	.vidioc_enum_framesizes = enum_framesizes,
	.vidioc_enum_frameintervals = enum_frameintervals,
	.vidioc_g_parm = g_parm,
	.vidioc_s_parm = g_parm, /* one fixed rate: S_PARM reports it */
	.vidioc_enum_input = enum_input,
	.vidioc_g_input = g_input,
	.vidioc_s_input = s_input,
	.vidioc_reqbufs = vb2_ioctl_reqbufs,
	.vidioc_create_bufs = vb2_ioctl_create_bufs,
	.vidioc_prepare_buf = vb2_ioctl_prepare_buf,
	.vidioc_querybuf = vb2_ioctl_querybuf,
	.vidioc_qbuf = vb2_ioctl_qbuf,
	.vidioc_dqbuf = vb2_ioctl_dqbuf,
	.vidioc_expbuf = vb2_ioctl_expbuf,
	.vidioc_streamon = vb2_ioctl_streamon,
	.vidioc_streamoff = vb2_ioctl_streamoff,
};

static const struct v4l2_file_operations sgcap_fops = {
	.owner = THIS_MODULE,
	.open = v4l2_fh_open,
	.release = vb2_fop_release,
	.poll = vb2_fop_poll,
	.mmap = vb2_fop_mmap,
	.unlocked_ioctl = video_ioctl2,
};

/* ---- the device --------------------------------------------------------- */

static int sgcap_probe(struct platform_device *pdev)
{
	struct sgcap_dev *dev;
	struct vb2_queue *q;
	int ret;

	dev = devm_kzalloc(&pdev->dev, sizeof(*dev), GFP_KERNEL);
	if (!dev)
		return -ENOMEM;
	/*
	 * No IOMMU and no DT node: dma-direct.  A 64-bit mask so that
	 * mapping never bounces through swiotlb (a bounce would be a copy,
	 * and the engine writes through the pages, not the bounce buffer).
	 */
	ret = dma_coerce_mask_and_coherent(&pdev->dev, DMA_BIT_MASK(64));
	if (ret)
		return ret;
	mutex_init(&dev->lock);
	spin_lock_init(&dev->slock);
	INIT_LIST_HEAD(&dev->active);
	INIT_DELAYED_WORK(&dev->work, sgcap_work);
	dev->width = 640;
	dev->height = 480;

	ret = v4l2_device_register(&pdev->dev, &dev->v4l2_dev);
	if (ret)
		return ret;

	q = &dev->queue;
	q->type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
	q->io_modes = VB2_MMAP | VB2_USERPTR | VB2_DMABUF;
	q->drv_priv = dev;
	q->buf_struct_size = sizeof(struct sgcap_buffer);
	q->ops = &sgcap_qops;
	q->mem_ops = &vb2_dma_sg_memops;
	q->timestamp_flags = V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC;
	q->min_buffers_needed = 1;
	q->lock = &dev->lock;
	q->dev = &pdev->dev;
	ret = vb2_queue_init(q);
	if (ret)
		goto unreg_v4l2;

	strscpy(dev->vdev.name, SGCAP_NAME, sizeof(dev->vdev.name));
	dev->vdev.fops = &sgcap_fops;
	dev->vdev.ioctl_ops = &sgcap_ioctl_ops;
	dev->vdev.release = video_device_release_empty;
	dev->vdev.v4l2_dev = &dev->v4l2_dev;
	dev->vdev.queue = q;
	dev->vdev.lock = &dev->lock;
	dev->vdev.device_caps = V4L2_CAP_VIDEO_CAPTURE | V4L2_CAP_STREAMING;
	video_set_drvdata(&dev->vdev, dev);
	ret = video_register_device(&dev->vdev, VFL_TYPE_VIDEO, -1);
	if (ret)
		goto unreg_v4l2;
	platform_set_drvdata(pdev, dev);
	v4l2_info(&dev->v4l2_dev, "scatter-gather capture at /dev/%s\n", video_device_node_name(&dev->vdev));
	return 0;

unreg_v4l2:
	v4l2_device_unregister(&dev->v4l2_dev);
	return ret;
}

static int sgcap_remove(struct platform_device *pdev)
{
	struct sgcap_dev *dev = platform_get_drvdata(pdev);

	video_unregister_device(&dev->vdev);
	v4l2_device_unregister(&dev->v4l2_dev);
	return 0;
}

static struct platform_driver sgcap_driver = {
	.probe = sgcap_probe,
	.remove = sgcap_remove,
	.driver = { .name = SGCAP_NAME },
};

static int __init sgcap_init(void)
{
	int ret = platform_driver_register(&sgcap_driver);

	if (ret)
		return ret;
	sgcap_pdev = platform_device_register_simple(SGCAP_NAME, -1, NULL, 0);
	if (IS_ERR(sgcap_pdev)) {
		platform_driver_unregister(&sgcap_driver);
		return PTR_ERR(sgcap_pdev);
	}
	return 0;
}

static void __exit sgcap_exit(void)
{
	platform_device_unregister(sgcap_pdev);
	platform_driver_unregister(&sgcap_driver);
}

module_init(sgcap_init);
module_exit(sgcap_exit);
MODULE_DESCRIPTION("xen-media-bridge scatter-gather capture test device");
MODULE_LICENSE("GPL");
