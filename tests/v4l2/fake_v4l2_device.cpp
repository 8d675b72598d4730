/* SPDX-License-Identifier: MIT */
#include "fake_v4l2_device.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "v4l2/pixel_format.h"

namespace xmb::testing {

namespace {

constexpr unsigned kMaxBuffers = 32;
constexpr uint32_t kCodedMin = 64 * 1024;

uint32_t offsetFor(bool output, unsigned index, unsigned plane = 0)
{
	return (static_cast<uint32_t>(output) << 24) | (index << 16) | (plane << 12);
}

v4l2_query_ext_ctrl makeCtrl(uint32_t id, uint32_t type, const char *name, int64_t min,
			     int64_t max, uint64_t step, int64_t def, uint32_t flags = 0)
{
	v4l2_query_ext_ctrl q{};
	q.id = id;
	q.type = type;
	std::snprintf(q.name, sizeof(q.name), "%s", name);
	q.minimum = min;
	q.maximum = max;
	q.step = step;
	q.default_value = def;
	q.flags = flags;
	q.elems = 1;
	q.elem_size = type == V4L2_CTRL_TYPE_INTEGER64 ? 8 : 4;
	return q;
}

uint64_t fdSize(int fd)
{
	off_t end = ::lseek(fd, 0, SEEK_END);
	return end > 0 ? static_cast<uint64_t>(end) : 0;
}

} /* namespace */

FakeV4L2Device::FakeV4L2Device(Kind kind, std::string path) : kind_(kind), path_(std::move(path))
{
	if (isEncoder()) {
		output_.type = isMplane() ? V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE : V4L2_BUF_TYPE_VIDEO_OUTPUT;
		capture_.type = isMplane() ? V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE : V4L2_BUF_TYPE_VIDEO_CAPTURE;
		V4L2Format raw;
		raw.fourcc = V4L2_PIX_FMT_NV12;
		raw.width = 640;
		raw.height = 480;
		setFormat(output_, raw, true);
		V4L2Format coded;
		coded.fourcc = V4L2_PIX_FMT_H264;
		setFormat(capture_, coded, true);

		auto add = [this](v4l2_query_ext_ctrl q, std::vector<std::string> menu = {}) {
			controls_[q.id] = { q, q.default_value, std::move(menu) };
		};
		add(makeCtrl(V4L2_CID_MPEG_VIDEO_BITRATE, V4L2_CTRL_TYPE_INTEGER, "Video Bitrate",
			     10000, 20000000, 1, 1000000));
		add(makeCtrl(V4L2_CID_MPEG_VIDEO_BITRATE_MODE, V4L2_CTRL_TYPE_MENU, "Bitrate Mode", 0, 1,
			     1, 0),
		    { "Variable Bitrate", "Constant Bitrate" });
		add(makeCtrl(V4L2_CID_MPEG_VIDEO_GOP_SIZE, V4L2_CTRL_TYPE_INTEGER, "GOP Size", 0, 300, 1, 12));
		add(makeCtrl(V4L2_CID_MPEG_VIDEO_H264_PROFILE, V4L2_CTRL_TYPE_MENU, "H264 Profile", 0, 4, 1,
			     0),
		    { "Baseline", "Constrained Baseline", "Main", "Extended", "High" });
		add(makeCtrl(V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME, V4L2_CTRL_TYPE_BUTTON,
			     "Force Key Frame", 0, 0, 0, 0, V4L2_CTRL_FLAG_WRITE_ONLY));
	} else {
		capture_.type = isMplane() ? V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE : V4L2_BUF_TYPE_VIDEO_CAPTURE;
		V4L2Format f;
		f.fourcc = V4L2_PIX_FMT_YUYV;
		f.width = 640;
		f.height = 480;
		setFormat(capture_, f, true);

		auto add = [this](v4l2_query_ext_ctrl q, std::vector<std::string> menu = {}) {
			controls_[q.id] = { q, q.default_value, std::move(menu) };
		};
		add(makeCtrl(V4L2_CID_BRIGHTNESS, V4L2_CTRL_TYPE_INTEGER, "Brightness", 0, 255, 1, 128));
		add(makeCtrl(V4L2_CID_CONTRAST, V4L2_CTRL_TYPE_INTEGER, "Contrast", 0, 255, 1, 128));
		add(makeCtrl(V4L2_CID_SATURATION, V4L2_CTRL_TYPE_INTEGER, "Saturation", 0, 255, 1, 128));
		add(makeCtrl(V4L2_CID_HUE, V4L2_CTRL_TYPE_INTEGER, "Hue", -180, 180, 1, 0));
		add(makeCtrl(V4L2_CID_POWER_LINE_FREQUENCY, V4L2_CTRL_TYPE_MENU, "Power Line Frequency",
			     0, 2, 1, 1),
		    { "Disabled", "50 Hz", "60 Hz" });
	}
}

FakeV4L2Device::~FakeV4L2Device()
{
	for (auto &[addr, len] : mappings_)
		::munmap(addr, len);
	for (int fd : fds_)
		::close(fd);
}

bool FakeV4L2Device::isMplane() const
{
	return kind_ == Kind::CaptureMplane || kind_ == Kind::EncoderMplane;
}

bool FakeV4L2Device::isEncoder() const
{
	return kind_ == Kind::Encoder || kind_ == Kind::EncoderMplane;
}

/* ------------------------------------------------------------------ */

int FakeV4L2Device::open(const char *path, int flags)
{
	(void)flags;
	if (path_ != path)
		return -ENOENT;
	int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	fds_.insert(fd);
	return fd;
}

int FakeV4L2Device::close(int fd)
{
	if (!fds_.erase(fd))
		return -EBADF;
	::close(fd);
	/* Like vb2: the last close frees the queues. */
	if (fds_.empty()) {
		for (Queue *q : { &capture_, &output_ }) {
			q->streaming = false;
			freeBuffers(*q);
		}
		subscriptions_.clear();
		events_.clear();
	}
	return 0;
}

void FakeV4L2Device::failIoctl(unsigned long request, int error, unsigned skip)
{
	ioctlFailures_[request].push_back({ skip, error });
}

void FakeV4L2Device::failMmap(int error, unsigned skip)
{
	mmapFailures_.push_back({ skip, error });
}

int FakeV4L2Device::injected(unsigned long request)
{
	auto it = ioctlFailures_.find(request);
	if (it == ioctlFailures_.end() || it->second.empty())
		return 0;
	auto &f = it->second.front();
	if (f.first > 0) {
		f.first--;
		return 0;
	}
	int err = f.second;
	it->second.pop_front();
	return -err;
}

unsigned FakeV4L2Device::ioctlCount(unsigned long request) const
{
	auto it = ioctlCounts_.find(request);
	return it == ioctlCounts_.end() ? 0 : it->second;
}

int FakeV4L2Device::ioctl(int fd, unsigned long request, void *arg)
{
	if (!fds_.count(fd))
		return -EBADF;
	ioctlCounts_[request]++;
	if (int err = injected(request))
		return err;

	switch (request) {
	case VIDIOC_QUERYCAP:
		return doQueryCap(static_cast<v4l2_capability *>(arg));
	case VIDIOC_ENUM_FMT:
		return doEnumFmt(static_cast<v4l2_fmtdesc *>(arg));
	case VIDIOC_ENUM_FRAMESIZES:
		return doEnumFrameSizes(static_cast<v4l2_frmsizeenum *>(arg));
	case VIDIOC_ENUM_FRAMEINTERVALS:
		return doEnumFrameIntervals(static_cast<v4l2_frmivalenum *>(arg));
	case VIDIOC_G_FMT:
	case VIDIOC_S_FMT:
	case VIDIOC_TRY_FMT:
		return doFmt(request, static_cast<v4l2_format *>(arg));
	case VIDIOC_G_PARM:
	case VIDIOC_S_PARM:
		return doParm(request, static_cast<v4l2_streamparm *>(arg));
	case VIDIOC_REQBUFS:
		return doReqBufs(static_cast<v4l2_requestbuffers *>(arg));
	case VIDIOC_CREATE_BUFS:
		return doCreateBufs(static_cast<v4l2_create_buffers *>(arg));
	case VIDIOC_QUERYBUF:
		return doQueryBuf(static_cast<v4l2_buffer *>(arg));
	case VIDIOC_QBUF:
		return doQBuf(static_cast<v4l2_buffer *>(arg));
	case VIDIOC_PREPARE_BUF:
		return doQBuf(static_cast<v4l2_buffer *>(arg), true);
	case VIDIOC_DQBUF:
		return doDQBuf(static_cast<v4l2_buffer *>(arg));
	case VIDIOC_EXPBUF:
		return doExpBuf(static_cast<v4l2_exportbuffer *>(arg));
	case VIDIOC_STREAMON:
	case VIDIOC_STREAMOFF:
		return doStream(request, static_cast<const uint32_t *>(arg));
	case VIDIOC_QUERY_EXT_CTRL:
		return doQueryExtCtrl(static_cast<v4l2_query_ext_ctrl *>(arg));
	case VIDIOC_QUERYMENU:
		return doQueryMenu(static_cast<v4l2_querymenu *>(arg));
	case VIDIOC_G_EXT_CTRLS:
	case VIDIOC_S_EXT_CTRLS:
	case VIDIOC_TRY_EXT_CTRLS:
		return doExtCtrls(request, static_cast<v4l2_ext_controls *>(arg));
	case VIDIOC_SUBSCRIBE_EVENT:
	case VIDIOC_UNSUBSCRIBE_EVENT:
		if (!eventsSupported_) /* no vidioc_subscribe_event: the V4L2 core says ENOTTY */
			return -ENOTTY;
		return doSubscribe(request, static_cast<v4l2_event_subscription *>(arg));
	case VIDIOC_DQEVENT:
		if (!eventsSupported_)
			return -ENOTTY;
		return doDQEvent(static_cast<v4l2_event *>(arg));
	case VIDIOC_ENCODER_CMD:
	case VIDIOC_TRY_ENCODER_CMD:
		return doEncoderCmd(request, static_cast<v4l2_encoder_cmd *>(arg));
	default:
		return -ENOTTY;
	}
}

int FakeV4L2Device::mmap(int fd, size_t length, int prot, off_t offset, void **addr)
{
	if (!fds_.count(fd))
		return -EBADF;
	if (!mmapFailures_.empty()) {
		auto &f = mmapFailures_.front();
		if (f.first == 0) {
			int err = f.second;
			mmapFailures_.pop_front();
			return -err;
		}
		f.first--;
	}
	bool output = (offset >> 24) & 1;
	unsigned index = (offset >> 16) & 0xff;
	unsigned plane = (offset >> 12) & 0xf;
	Queue &q = output ? output_ : capture_;
	if (q.memory != V4L2_MEMORY_MMAP || index >= q.buffers.size() || (offset & 0xfff) ||
	    plane > q.buffers[index].more.size())
		return -EINVAL;
	const Buffer &b = q.buffers[index];
	if (length > (plane ? b.more[plane - 1].length : b.length))
		return -EINVAL;
	void *p = ::mmap(nullptr, length, prot, MAP_SHARED,
			 plane ? b.more[plane - 1].memfd.get() : b.memfd.get(), 0);
	if (p == MAP_FAILED)
		return -errno;
	mappings_[p] = length;
	*addr = p;
	return 0;
}

int FakeV4L2Device::munmap(void *addr, size_t length)
{
	auto it = mappings_.find(addr);
	if (it == mappings_.end() || it->second != length)
		return -EINVAL;
	::munmap(addr, length);
	mappings_.erase(it);
	return 0;
}

/* ------------------------------------------------------------------ */

FakeV4L2Device::Queue *FakeV4L2Device::queueFor(uint32_t type)
{
	if (type == capture_.type)
		return &capture_;
	if (isEncoder() && type == output_.type)
		return &output_;
	return nullptr;
}

size_t FakeV4L2Device::heldDmaBufs() const
{
	size_t n = 0;
	for (const Queue *q : { &capture_, &output_ })
		for (const Buffer &b : q->buffers)
			n += b.dmabuf.isValid();
	return n;
}

size_t FakeV4L2Device::allocatedBuffers() const
{
	return capture_.buffers.size() + output_.buffers.size();
}

bool FakeV4L2Device::isStreaming(bool outputQueue) const
{
	return outputQueue ? output_.streaming : capture_.streaming;
}

int64_t FakeV4L2Device::controlValue(uint32_t id) const
{
	auto it = controls_.find(id);
	return it == controls_.end() ? 0 : it->second.value;
}

void FakeV4L2Device::signal()
{
	for (int fd : fds_) {
		uint64_t one = 1;
		[[maybe_unused]] ssize_t n = ::write(fd, &one, sizeof(one));
	}
}

void FakeV4L2Device::pushEvent(const v4l2_event &ev)
{
	if (!subscriptions_.count({ ev.type, ev.id }) && !subscriptions_.count({ ev.type, 0u }))
		return;
	events_.push_back(ev);
	events_.back().sequence = static_cast<uint32_t>(events_.size());
	signal();
}

void FakeV4L2Device::freeBuffers(Queue &q)
{
	q.buffers.clear(); /* closes memfds and held dma-bufs */
	q.queued.clear();
	q.done.clear();
}

/* Driver-side format adjustment, like a real driver's try_fmt. */
void FakeV4L2Device::setFormat(Queue &q, V4L2Format &f, bool apply)
{
	bool coded = isEncoder() && &q == &capture_;
	if (coded) {
		if (f.fourcc != V4L2_PIX_FMT_H264 && f.fourcc != V4L2_PIX_FMT_HEVC)
			f.fourcc = V4L2_PIX_FMT_H264;
		f.width = output_.format.width;
		f.height = output_.format.height;
		uint32_t want = f.planes[0].sizeImage;
		f.planes[0].bytesPerLine = 0;
		f.planes[0].sizeImage = std::max({ want, kCodedMin, f.width * f.height / 2 });
	} else {
		bool raw = isEncoder();
		bool nv12m = nv12m_ && isMplane() && f.fourcc == V4L2_PIX_FMT_NV12M;
		if (raw) {
			if (f.fourcc != V4L2_PIX_FMT_NV12 && f.fourcc != V4L2_PIX_FMT_YUV420)
				f.fourcc = V4L2_PIX_FMT_NV12;
		} else if (f.fourcc != V4L2_PIX_FMT_YUYV && !nv12m &&
			   (f.fourcc != V4L2_PIX_FMT_NV12 || !nativeNV12_)) {
			f.fourcc = V4L2_PIX_FMT_YUYV;
		}
		f.width = std::clamp<uint32_t>(f.width, 64, 1920) & ~15u;
		f.height = std::clamp<uint32_t>(f.height, 64, 1080) & ~7u;
		auto l = packedFrameLayout(nv12m ? V4L2_PIX_FMT_NV12 : f.fourcc, f.width, f.height);
		f.numPlanes = 1;
		f.planes[0].bytesPerLine = l->planes[0].stride;
		f.planes[0].sizeImage = l->size;
		if (nv12m) { /* the NV12 planes, each in its own buffer */
			f.numPlanes = 2;
			for (unsigned p = 0; p < 2; p++)
				f.planes[p] = { l->planes[p].stride, l->planes[p].size };
		}
	}
	if (coded)
		f.numPlanes = 1;
	f.field = V4L2_FIELD_NONE;
	f.colorspace = coded ? V4L2_COLORSPACE_DEFAULT : V4L2_COLORSPACE_SRGB;
	if (apply)
		q.format = f;
}

int FakeV4L2Device::writeBuffer(Buffer &b, const void *data, size_t size)
{
	size = std::min<size_t>(size, b.length);
	if (b.userptr) {
		std::memcpy(b.userptr, data, size);
		return 0;
	}
	int fd = b.dmabuf.isValid() ? b.dmabuf.get() : b.memfd.get();
	return ::pwrite(fd, data, size, 0) == static_cast<ssize_t>(size) ? 0 : -EIO;
}

int FakeV4L2Device::readBuffer(const Buffer &b, void *data, size_t size) const
{
	size = std::min<size_t>(size, b.length);
	if (b.userptr) {
		std::memcpy(data, b.userptr, size);
		return 0;
	}
	int fd = b.dmabuf.isValid() ? b.dmabuf.get() : b.memfd.get();
	return ::pread(fd, data, size, 0) >= 0 ? 0 : -EIO;
}

/* ------------------------------------------------------------------ */

int FakeV4L2Device::doQueryCap(v4l2_capability *c)
{
	*c = {};
	std::snprintf(reinterpret_cast<char *>(c->driver), sizeof(c->driver), "fake");
	std::snprintf(reinterpret_cast<char *>(c->card), sizeof(c->card), "%s",
		      isEncoder() ? "Fake Encoder" : "Fake Camera");
	std::snprintf(reinterpret_cast<char *>(c->bus_info), sizeof(c->bus_info), "platform:fake-0");
	uint32_t caps = V4L2_CAP_STREAMING;
	switch (kind_) {
	case Kind::Capture:
		caps |= V4L2_CAP_VIDEO_CAPTURE;
		break;
	case Kind::CaptureMplane:
		caps |= V4L2_CAP_VIDEO_CAPTURE_MPLANE;
		break;
	case Kind::Encoder:
		caps |= V4L2_CAP_VIDEO_M2M;
		break;
	case Kind::EncoderMplane:
		caps |= V4L2_CAP_VIDEO_M2M_MPLANE;
		break;
	}
	c->device_caps = caps;
	c->capabilities = caps | V4L2_CAP_DEVICE_CAPS;
	c->version = 0x060100;
	return 0;
}

int FakeV4L2Device::doEnumFmt(v4l2_fmtdesc *d)
{
	Queue *q = queueFor(d->type);
	if (!q)
		return -EINVAL;
	std::vector<std::pair<uint32_t, uint32_t>> list;
	if (isEncoder() && q == &capture_)
		list = { { V4L2_PIX_FMT_H264, V4L2_FMT_FLAG_COMPRESSED },
			 { V4L2_PIX_FMT_HEVC, V4L2_FMT_FLAG_COMPRESSED } };
	else if (isEncoder())
		list = { { V4L2_PIX_FMT_NV12, 0 }, { V4L2_PIX_FMT_YUV420, 0 } };
	else {
		list = { { V4L2_PIX_FMT_YUYV, 0 } };
		if (nativeNV12_)
			list.push_back({ V4L2_PIX_FMT_NV12, 0 });
		if (nv12m_ && isMplane())
			list.push_back({ V4L2_PIX_FMT_NV12M, 0 });
	}
	if (d->index >= list.size())
		return -EINVAL;
	uint32_t index = d->index, type = d->type;
	*d = {};
	d->index = index;
	d->type = type;
	d->pixelformat = list[index].first;
	d->flags = list[index].second;
	std::snprintf(reinterpret_cast<char *>(d->description), sizeof(d->description), "%s",
		      fourccToString(d->pixelformat).c_str());
	return 0;
}

int FakeV4L2Device::doEnumFrameSizes(v4l2_frmsizeenum *f)
{
	if (isEncoder())
		return -EINVAL;
	if (f->pixel_format == V4L2_PIX_FMT_YUYV) {
		static const v4l2_frmsize_discrete sizes[] = { { 640, 480 }, { 1280, 720 } };
		if (f->index >= 2)
			return -EINVAL;
		f->type = V4L2_FRMSIZE_TYPE_DISCRETE;
		f->discrete = sizes[f->index];
		return 0;
	}
	if (f->pixel_format == V4L2_PIX_FMT_NV12 || f->pixel_format == V4L2_PIX_FMT_NV12M) {
		if (f->index)
			return -EINVAL;
		f->type = V4L2_FRMSIZE_TYPE_STEPWISE;
		f->stepwise = { 64, 1920, 16, 64, 1080, 8 };
		return 0;
	}
	return -EINVAL;
}

int FakeV4L2Device::doEnumFrameIntervals(v4l2_frmivalenum *f)
{
	if (isEncoder())
		return -EINVAL;
	if (f->pixel_format == V4L2_PIX_FMT_YUYV) {
		std::vector<v4l2_fract> list;
		if (f->width == 640 && f->height == 480)
			list = { { 1, 30 }, { 1, 15 } };
		else if (f->width == 1280 && f->height == 720)
			list = { { 1, 30 } };
		if (f->index >= list.size())
			return -EINVAL;
		f->type = V4L2_FRMIVAL_TYPE_DISCRETE;
		f->discrete = list[f->index];
		return 0;
	}
	if (f->pixel_format == V4L2_PIX_FMT_NV12 || f->pixel_format == V4L2_PIX_FMT_NV12M) {
		if (f->index)
			return -EINVAL;
		f->type = V4L2_FRMIVAL_TYPE_CONTINUOUS;
		f->stepwise.min = { 1, 60 };
		f->stepwise.max = { 1, 1 };
		f->stepwise.step = { 1, 1 };
		return 0;
	}
	return -EINVAL;
}

int FakeV4L2Device::doFmt(unsigned long request, v4l2_format *f)
{
	Queue *q = queueFor(f->type);
	if (!q)
		return -EINVAL;
	if (request == VIDIOC_G_FMT) {
		toV4L2(q->format, q->type, *f);
		return 0;
	}
	if (request == VIDIOC_S_FMT && !q->buffers.empty())
		return -EBUSY;
	V4L2Format fmt = fromV4L2(*f);
	setFormat(*q, fmt, request == VIDIOC_S_FMT);
	/* Raw format changes propagate to the coded side, as in real encoders. */
	if (request == VIDIOC_S_FMT && isEncoder() && q == &output_ && capture_.buffers.empty()) {
		V4L2Format coded = capture_.format;
		setFormat(capture_, coded, true);
	}
	toV4L2(fmt, q->type, *f);
	return 0;
}

int FakeV4L2Device::doParm(unsigned long request, v4l2_streamparm *p)
{
	Queue *q = queueFor(p->type);
	if (!q || (isEncoder() && q == &capture_))
		return -EINVAL;
	bool out = isEncoder();
	v4l2_fract &tpf = out ? p->parm.output.timeperframe : p->parm.capture.timeperframe;
	if (request == VIDIOC_S_PARM) {
		if (!tpf.numerator || !tpf.denominator)
			return -EINVAL;
		q->interval = tpf;
	}
	uint32_t type = p->type;
	*p = {};
	p->type = type;
	if (out) {
		p->parm.output.capability = V4L2_CAP_TIMEPERFRAME;
		p->parm.output.timeperframe = q->interval;
	} else {
		p->parm.capture.capability = V4L2_CAP_TIMEPERFRAME;
		p->parm.capture.timeperframe = q->interval;
	}
	return 0;
}

int FakeV4L2Device::doReqBufs(v4l2_requestbuffers *r)
{
	Queue *q = queueFor(r->type);
	if (!q)
		return -EINVAL;
	if (r->memory != V4L2_MEMORY_MMAP && r->memory != V4L2_MEMORY_USERPTR &&
	    r->memory != V4L2_MEMORY_DMABUF)
		return -EINVAL;
	if (r->memory == V4L2_MEMORY_USERPTR && !userPtr_)
		return -EINVAL;
	r->capabilities = V4L2_BUF_CAP_SUPPORTS_MMAP | V4L2_BUF_CAP_SUPPORTS_DMABUF |
			  (userPtr_ ? V4L2_BUF_CAP_SUPPORTS_USERPTR : 0);
	if (q->streaming)
		return -EBUSY;
	freeBuffers(*q);
	q->memory = r->memory;
	r->count = std::min(r->count, kMaxBuffers);
	q->buffers.resize(r->count);
	for (Buffer &b : q->buffers) {
		if (allocatePlanes(*q, b, r->memory, q->format.planes[0].sizeImage) < 0) {
			freeBuffers(*q);
			return -ENOMEM;
		}
	}
	return 0;
}

/* Lengths (and MMAP memory) of every memory plane of \a b, plane 0 \a size0 bytes. */
int FakeV4L2Device::allocatePlanes(const Queue &q, Buffer &b, uint32_t memory, uint32_t size0)
{
	b.length = size0;
	b.more.clear();
	b.more.resize(q.format.numPlanes > 1 ? q.format.numPlanes - 1 : 0);
	for (unsigned p = 0; p < b.more.size(); p++)
		b.more[p].length = q.format.planes[p + 1].sizeImage;
	if (memory != V4L2_MEMORY_MMAP)
		return 0;
	/* Whole pages, as vb2 allocates (PAGE_ALIGN); QUERYBUF still says length. */
	auto backing = [](UniqueFD &fd, uint32_t length) {
		fd = UniqueFD(::memfd_create("fake-v4l2", MFD_CLOEXEC));
		return fd && ::ftruncate(fd.get(), (off_t(length) + 4095) / 4096 * 4096) == 0;
	};
	if (!backing(b.memfd, b.length))
		return -ENOMEM;
	for (auto &m : b.more)
		if (!backing(m.memfd, m.length))
			return -ENOMEM;
	return 0;
}

int FakeV4L2Device::doCreateBufs(v4l2_create_buffers *c)
{
	Queue *q = queueFor(c->format.type);
	if (!q)
		return -EINVAL;
	if (!q->buffers.empty() && c->memory != q->memory)
		return -EINVAL;
	V4L2Format f = fromV4L2(c->format);
	uint32_t size = std::max(f.planes[0].sizeImage, q->format.planes[0].sizeImage);
	q->memory = c->memory;
	c->index = static_cast<uint32_t>(q->buffers.size());
	c->count = std::min<uint32_t>(c->count, kMaxBuffers - c->index);
	c->capabilities = V4L2_BUF_CAP_SUPPORTS_MMAP | V4L2_BUF_CAP_SUPPORTS_USERPTR |
			  V4L2_BUF_CAP_SUPPORTS_DMABUF;
	for (unsigned i = 0; i < c->count; i++) {
		Buffer b;
		if (allocatePlanes(*q, b, c->memory, size) < 0)
			return -ENOMEM;
		q->buffers.push_back(std::move(b));
	}
	return 0;
}

void FakeV4L2Device::fillBuffer(const Queue &q, unsigned index, v4l2_buffer *b) const
{
	const Buffer &buf = q.buffers[index];
	v4l2_plane *planes = b->m.planes;
	b->index = index;
	b->memory = q.memory;
	b->flags = buf.flags | (buf.state == Buffer::State::Queued ? V4L2_BUF_FLAG_QUEUED : 0) |
		   (buf.state == Buffer::State::Done ? V4L2_BUF_FLAG_DONE : 0);
	b->sequence = buf.sequence;
	b->timestamp = buf.timestamp;
	b->field = V4L2_FIELD_NONE;
	if (isMultiplanarType(q.type)) {
		b->length = static_cast<uint32_t>(1 + buf.more.size());
		if (planes) {
			planes[0] = {};
			planes[0].length = buf.length;
			planes[0].bytesused = buf.bytesUsed;
			if (q.memory == V4L2_MEMORY_MMAP)
				planes[0].m.mem_offset = offsetFor(&q == &output_, index);
			else if (q.memory == V4L2_MEMORY_USERPTR)
				planes[0].m.userptr = reinterpret_cast<unsigned long>(buf.userptr);
			else
				planes[0].m.fd = buf.dmabufFdNum;
			for (unsigned p = 1; p <= buf.more.size(); p++) {
				const auto &m = buf.more[p - 1];
				planes[p] = {};
				planes[p].length = m.length;
				planes[p].bytesused = buf.bytesUsed ? m.length : 0; /* full, like plane 0 */
				if (q.memory == V4L2_MEMORY_MMAP)
					planes[p].m.mem_offset = offsetFor(&q == &output_, index, p);
				else
					planes[p].m.userptr = reinterpret_cast<unsigned long>(m.userptr);
			}
		}
	} else {
		b->length = buf.length;
		b->bytesused = buf.bytesUsed;
		if (q.memory == V4L2_MEMORY_MMAP)
			b->m.offset = offsetFor(&q == &output_, index);
		else if (q.memory == V4L2_MEMORY_USERPTR)
			b->m.userptr = reinterpret_cast<unsigned long>(buf.userptr);
		else
			b->m.fd = buf.dmabufFdNum;
	}
}

int FakeV4L2Device::doQueryBuf(v4l2_buffer *b)
{
	Queue *q = queueFor(b->type);
	if (!q || b->index >= q->buffers.size())
		return -EINVAL;
	if (isMultiplanarType(q->type) &&
	    (!b->m.planes || b->length < 1 + q->buffers[b->index].more.size()))
		return -EINVAL;
	fillBuffer(*q, b->index, b);
	return 0;
}

int FakeV4L2Device::doQBuf(v4l2_buffer *b, bool prepareOnly)
{
	Queue *q = queueFor(b->type);
	if (!q || b->index >= q->buffers.size() || b->memory != q->memory)
		return -EINVAL;
	bool mplane = isMultiplanarType(q->type);
	Buffer &buf = q->buffers[b->index];
	if (mplane && (!b->m.planes || b->length < 1 + buf.more.size() || b->length > VIDEO_MAX_PLANES))
		return -EINVAL;
	if (buf.state != Buffer::State::Idle)
		return -EINVAL;
	if (!buf.more.empty() && q->memory == V4L2_MEMORY_DMABUF)
		return -EINVAL; /* the fake holds one dma-buf per buffer */
	if (!buf.more.empty() && q->memory == V4L2_MEMORY_USERPTR) {
		for (unsigned p = 1; p <= buf.more.size(); p++) {
			const v4l2_plane &pl = b->m.planes[p];
			if (!pl.m.userptr || pl.length < buf.more[p - 1].length)
				return -EINVAL;
		}
		for (unsigned p = 1; p <= buf.more.size(); p++)
			buf.more[p - 1].userptr = reinterpret_cast<void *>(b->m.planes[p].m.userptr);
	}

	uint32_t length = mplane ? b->m.planes[0].length : b->length;
	uint32_t bytesUsed = mplane ? b->m.planes[0].bytesused : b->bytesused;
	if (q->memory == V4L2_MEMORY_USERPTR) {
		unsigned long ptr = mplane ? b->m.planes[0].m.userptr : b->m.userptr;
		if (!ptr || length < buf.length)
			return -EINVAL;
		buf.userptr = reinterpret_cast<void *>(ptr);
	} else if (q->memory == V4L2_MEMORY_DMABUF) {
		int fd = mplane ? b->m.planes[0].m.fd : b->m.fd;
		struct stat st;
		if (fd < 0 || ::fstat(fd, &st) < 0)
			return -EBADF;
		if (fdSize(fd) < buf.length)
			return -EINVAL;
		if (!dmabufImport_)
			return -EFAULT; /* vb2-vmalloc: dma_buf_vmap() failed */
		/* The kernel keeps the attachment until requeued with another fd or freed. */
		if (buf.dmabufFdNum != fd || !buf.dmabuf) {
			buf.dmabuf = UniqueFD(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
			buf.dmabufFdNum = fd;
		}
	}
	if (prepareOnly)
		return 0; /* attached and mapped, not queued (vb2 also marks it prepared) */
	if (isEncoder() && q == &output_)
		buf.bytesUsed = bytesUsed ? std::min(bytesUsed, buf.length) : buf.length;
	buf.timestamp = b->timestamp;
	buf.flags = 0;
	buf.state = Buffer::State::Queued;
	q->queued.push_back(b->index);
	fillBuffer(*q, b->index, b);
	if (isEncoder())
		encodeLoop();
	return 0;
}

int FakeV4L2Device::doDQBuf(v4l2_buffer *b)
{
	Queue *q = queueFor(b->type);
	if (!q || b->memory != q->memory)
		return -EINVAL;
	if (isMultiplanarType(q->type) && (!b->m.planes || b->length < 1))
		return -EINVAL;
	if (!q->done.empty() && isMultiplanarType(q->type) &&
	    b->length < 1 + q->buffers[q->done.front()].more.size())
		return -EINVAL;
	if (!q->streaming)
		return -EINVAL;
	if (q->done.empty()) {
		if (q == &capture_ && lastSent_)
			return -EPIPE;
		uint64_t v;
		[[maybe_unused]] ssize_t n = ::read(*fds_.begin(), &v, sizeof(v));
		return -EAGAIN;
	}
	unsigned index = q->done.front();
	q->done.pop_front();
	Buffer &buf = q->buffers[index];
	buf.state = Buffer::State::Idle;
	fillBuffer(*q, index, b);
	return 0;
}

int FakeV4L2Device::doExpBuf(v4l2_exportbuffer *e)
{
	if (!expBuf_)
		return -ENOTTY;
	Queue *q = queueFor(e->type);
	if (!q || e->index >= q->buffers.size() || e->plane > q->buffers[e->index].more.size() ||
	    q->memory != V4L2_MEMORY_MMAP)
		return -EINVAL;
	lastExpbufFlags_ = e->flags;
	const Buffer &b = q->buffers[e->index];
	int fd = ::fcntl(e->plane ? b.more[e->plane - 1].memfd.get() : b.memfd.get(),
			 (e->flags & O_CLOEXEC) ? F_DUPFD_CLOEXEC : F_DUPFD, 0);
	if (fd < 0)
		return -errno;
	e->fd = fd;
	return 0;
}

int FakeV4L2Device::doStream(unsigned long request, const uint32_t *type)
{
	Queue *q = queueFor(*type);
	if (!q)
		return -EINVAL;
	if (request == VIDIOC_STREAMON) {
		if (q->buffers.empty())
			return -EINVAL;
		if (!q->streaming)
			q->sequence = 0;
		q->streaming = true;
		if (isEncoder())
			encodeLoop();
		return 0;
	}
	q->streaming = false;
	for (Buffer &b : q->buffers)
		if (b.state != Buffer::State::Idle)
			b.state = Buffer::State::Idle;
	q->queued.clear();
	q->done.clear();
	if (isEncoder()) {
		/* STREAMOFF on either queue ends a drain (the spec's reset). */
		if (q == &capture_)
			lastSent_ = false;
		stopPending_ = false;
	}
	return 0;
}

int FakeV4L2Device::doQueryExtCtrl(v4l2_query_ext_ctrl *q)
{
	uint32_t id = q->id & ~(V4L2_CTRL_FLAG_NEXT_CTRL | V4L2_CTRL_FLAG_NEXT_COMPOUND);
	auto it = controls_.end();
	if (q->id & V4L2_CTRL_FLAG_NEXT_CTRL)
		it = controls_.upper_bound(id);
	else
		it = controls_.find(id);
	if (it == controls_.end())
		return -EINVAL;
	*q = it->second.info;
	return 0;
}

int FakeV4L2Device::doQueryMenu(v4l2_querymenu *m)
{
	auto it = controls_.find(m->id);
	if (it == controls_.end() || m->index >= it->second.menu.size())
		return -EINVAL;
	std::snprintf(reinterpret_cast<char *>(m->name), sizeof(m->name), "%s",
		      it->second.menu[m->index].c_str());
	return 0;
}

int FakeV4L2Device::doExtCtrls(unsigned long request, v4l2_ext_controls *cs)
{
	for (uint32_t i = 0; i < cs->count; i++) {
		v4l2_ext_control &c = cs->controls[i];
		auto it = controls_.find(c.id);
		if (it == controls_.end()) {
			cs->error_idx = i;
			return -EINVAL;
		}
		Control &ctl = it->second;
		bool is64 = ctl.info.type == V4L2_CTRL_TYPE_INTEGER64;
		if (request == VIDIOC_G_EXT_CTRLS) {
			if (ctl.info.flags & V4L2_CTRL_FLAG_WRITE_ONLY)
				return -EACCES;
			if (is64)
				c.value64 = ctl.value;
			else
				c.value = static_cast<int32_t>(ctl.value);
			continue;
		}
		if (ctl.info.flags & V4L2_CTRL_FLAG_READ_ONLY)
			return -EACCES;
		int64_t v = is64 ? c.value64 : c.value;
		if (ctl.info.type == V4L2_CTRL_TYPE_BUTTON) {
			if (request == VIDIOC_S_EXT_CTRLS && c.id == V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME)
				forceKey_ = true;
			continue;
		}
		if (ctl.info.type == V4L2_CTRL_TYPE_MENU) {
			if (v < ctl.info.minimum || v > ctl.info.maximum)
				return -ERANGE;
		} else {
			/* The control framework clamps integers onto the step grid. */
			v = std::clamp<int64_t>(v, ctl.info.minimum, ctl.info.maximum);
		}
		if (request == VIDIOC_S_EXT_CTRLS)
			ctl.value = v;
		if (is64)
			c.value64 = v;
		else
			c.value = static_cast<int32_t>(v);
	}
	return 0;
}

int FakeV4L2Device::doSubscribe(unsigned long request, v4l2_event_subscription *s)
{
	if (s->type != V4L2_EVENT_CTRL && s->type != V4L2_EVENT_SOURCE_CHANGE &&
	    s->type != V4L2_EVENT_EOS)
		return -EINVAL;
	if (s->type == V4L2_EVENT_EOS && !isEncoder())
		return -EINVAL;
	if (s->type == V4L2_EVENT_CTRL && !controls_.count(s->id))
		return -EINVAL;
	if (request == VIDIOC_SUBSCRIBE_EVENT)
		subscriptions_.insert({ s->type, s->id });
	else
		subscriptions_.erase({ s->type, s->id });
	return 0;
}

int FakeV4L2Device::doDQEvent(v4l2_event *e)
{
	if (events_.empty())
		return -ENOENT;
	*e = events_.front();
	events_.pop_front();
	e->pending = static_cast<uint32_t>(events_.size());
	return 0;
}

int FakeV4L2Device::doEncoderCmd(unsigned long request, v4l2_encoder_cmd *c)
{
	if (!isEncoder() || !encoderCommands_)
		return -ENOTTY;
	if (c->cmd != V4L2_ENC_CMD_STOP && c->cmd != V4L2_ENC_CMD_START)
		return -EINVAL;
	c->flags = 0;
	if (request == VIDIOC_TRY_ENCODER_CMD)
		return 0;
	if (c->cmd == V4L2_ENC_CMD_STOP) {
		if (!output_.streaming || !capture_.streaming)
			return 0; /* nothing to drain */
		stopPending_ = true;
	} else {
		lastSent_ = false;
		stopPending_ = false;
	}
	encodeLoop();
	return 0;
}

/* ------------------------------------------------------------------ */

void FakeV4L2Device::encodeLoop()
{
	bool progressed = false;
	while (output_.streaming && capture_.streaming && !lastSent_) {
		if (!output_.queued.empty() && !capture_.queued.empty()) {
			unsigned oi = output_.queued.front(), ci = capture_.queued.front();
			output_.queued.pop_front();
			capture_.queued.pop_front();
			Buffer &in = output_.buffers[oi];
			Buffer &out = capture_.buffers[ci];

			uint8_t first = 0;
			readBuffer(in, &first, 1);
			unsigned gop = static_cast<unsigned>(controlValue(V4L2_CID_MPEG_VIDEO_GOP_SIZE));
			bool key = forceKey_ || encoded_ == 0 || (gop && encoded_ % gop == 0);
			forceKey_ = false;
			char payload[64];
			int n = std::snprintf(payload, sizeof(payload), "FAKE%s seq=%u first=%02x",
					      key ? "I" : "P", capture_.sequence, first);
			if (payloadChecksum_) {
				/* FNV-1a of the bytes the frame was queued with: who wrote them, exactly. */
				std::vector<uint8_t> raw(in.bytesUsed);
				readBuffer(in, raw.data(), raw.size());
				uint32_t h = 2166136261u;
				for (uint8_t c : raw)
					h = (h ^ c) * 16777619u;
				n += std::snprintf(payload + n, sizeof(payload) - size_t(n), " fnv=%08x", h);
			}
			writeBuffer(out, payload, static_cast<size_t>(n));
			out.bytesUsed = static_cast<uint32_t>(n);
			out.flags = (key ? V4L2_BUF_FLAG_KEYFRAME : V4L2_BUF_FLAG_PFRAME) |
				    V4L2_BUF_FLAG_TIMESTAMP_COPY;
			out.timestamp = in.timestamp;
			out.sequence = capture_.sequence++;
			out.state = Buffer::State::Done;
			capture_.done.push_back(ci);
			in.sequence = output_.sequence++;
			in.state = Buffer::State::Done;
			output_.done.push_back(oi);
			encoded_++;
			keyFrames_ += key;
			progressed = true;
			continue;
		}
		if (stopPending_ && output_.queued.empty() && !capture_.queued.empty()) {
			unsigned ci = capture_.queued.front();
			capture_.queued.pop_front();
			Buffer &out = capture_.buffers[ci];
			out.bytesUsed = 0;
			out.flags = V4L2_BUF_FLAG_LAST;
			out.sequence = capture_.sequence++;
			out.state = Buffer::State::Done;
			capture_.done.push_back(ci);
			lastSent_ = true;
			stopPending_ = false;
			v4l2_event ev{};
			ev.type = V4L2_EVENT_EOS;
			pushEvent(ev);
			progressed = true;
		}
		break;
	}
	if (progressed)
		signal();
}

bool FakeV4L2Device::produceFrame()
{
	if (isEncoder() || !capture_.streaming)
		return false;
	uint32_t seq = capture_.sequence++;
	if (capture_.queued.empty())
		return false; /* dropped: the sequence gap shows it */
	unsigned index = capture_.queued.front();
	capture_.queued.pop_front();
	Buffer &b = capture_.buffers[index];
	std::vector<uint8_t> data(std::min(b.length, capture_.format.planes[0].sizeImage));
	for (size_t i = 0; i < data.size(); i++)
		data[i] = frameByte(seq, i);
	writeBuffer(b, data.data(), data.size());
	/* Planes 1..: the bytes that follow, as if all planes were one buffer. */
	size_t at = capture_.format.planes[0].sizeImage;
	for (auto &m : b.more) {
		std::vector<uint8_t> more(m.length);
		for (size_t i = 0; i < more.size(); i++)
			more[i] = frameByte(seq, at + i);
		at += m.length;
		if (m.userptr) {
			std::memcpy(m.userptr, more.data(), more.size());
		} else {
			[[maybe_unused]] ssize_t w = ::pwrite(m.memfd.get(), more.data(), more.size(), 0);
		}
	}
	b.bytesUsed = capture_.format.planes[0].sizeImage;
	b.sequence = seq;
	b.flags = V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC;
	timespec ts{};
	clock_gettime(CLOCK_MONOTONIC, &ts);
	b.timestamp = { ts.tv_sec, ts.tv_nsec / 1000 };
	b.state = Buffer::State::Done;
	capture_.done.push_back(index);
	signal();
	return true;
}

void FakeV4L2Device::raiseSourceChange(uint32_t newCodedSize)
{
	capture_.format.planes[0].sizeImage = newCodedSize;
	v4l2_event ev{};
	ev.type = V4L2_EVENT_SOURCE_CHANGE;
	ev.u.src_change.changes = V4L2_EVENT_SRC_CH_RESOLUTION;
	pushEvent(ev);
}

void FakeV4L2Device::raiseResolutionChange(uint32_t width, uint32_t height)
{
	V4L2Format f = capture_.format;
	f.width = width;
	f.height = height;
	setFormat(capture_, f, true);
	v4l2_event ev{};
	ev.type = V4L2_EVENT_SOURCE_CHANGE;
	ev.u.src_change.changes = V4L2_EVENT_SRC_CH_RESOLUTION;
	pushEvent(ev);
}

void FakeV4L2Device::raiseControlChange(uint32_t id, int64_t value)
{
	auto it = controls_.find(id);
	if (it == controls_.end())
		return;
	it->second.value = value;
	v4l2_event ev{};
	ev.type = V4L2_EVENT_CTRL;
	ev.id = id;
	ev.u.ctrl.changes = V4L2_EVENT_CTRL_CH_VALUE;
	ev.u.ctrl.type = it->second.info.type;
	ev.u.ctrl.value = static_cast<int32_t>(value);
	ev.u.ctrl.minimum = static_cast<int32_t>(it->second.info.minimum);
	ev.u.ctrl.maximum = static_cast<int32_t>(it->second.info.maximum);
	pushEvent(ev);
}

} /* namespace xmb::testing */
