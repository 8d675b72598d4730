/* SPDX-License-Identifier: MIT */
/**
 * \file v4l2_camera_source.cpp
 * \brief CameraSource over a V4L2 capture node, with libv4l2 emulation
 */
#include "v4l2/v4l2_camera_source.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <xen/io/cameraif.h>

#include "protocol/base/log.h"
#include "v4l2/libv4l2_io.h"
#include "v4l2/pixel_format.h"

namespace xmb {

XMB_LOG_DEFINE_CATEGORY(logV4L2Source, "v4l2");

namespace {

V4L2Memory toV4L2Memory(MemoryType t)
{
	switch (t) {
	case MemoryType::UserPtr:
		return V4L2Memory::UserPtr;
	case MemoryType::DmaBufImport:
		return V4L2Memory::DmaBuf;
	case MemoryType::MmapExport:
		break;
	}
	return V4L2Memory::Mmap;
}

/*
 * Every format the device has, sizes and rates sampled: the service's
 * allow-list is applied to this list, so a cap on the whole list would hide
 * the formats past it (vivid lists NV12M 87th of ~90, with 6 sizes each).
 * Still bounded for a driver that enumerates without end.
 */
const SamplingLimits kAllFormats{ 12, 8, 4096 };

} /* namespace */

/**
 * \brief A closed source whose native calls go through \a io
 */
V4L2CameraSource::V4L2CameraSource(DeviceIO &io) : nativeIO_(&io) {}

V4L2CameraSource::~V4L2CameraSource()
{
	stop();
	releaseBuffers();
}

/**
 * \brief Open capture node \a path natively
 * \return 0 or -errno
 */
int V4L2CameraSource::open(const std::string &path)
{
	path_ = path;
	int ret = reopen(false);
	if (ret < 0)
		return ret;
	busInfo_ = device_->caps().busInfo();
	card_ = device_->caps().card();
	driver_ = device_->caps().driver();
	return 0;
}

int V4L2CameraSource::reopen(bool emulated)
{
	DeviceIO *io = emulated ? libv4l2DeviceIO() : nativeIO_;
	if (!io)
		return -ENOTSUP;
	if (device_ && emulated_ == emulated && device_->isOpen())
		return 0;
	auto dev = std::make_unique<V4L2VideoDevice>(*io);
	int ret = dev->open(path_);
	if (ret < 0)
		return ret;
	device_ = std::move(dev);
	emulated_ = emulated;
	subscribeEvents();
	return 0;
}

void V4L2CameraSource::subscribeEvents()
{
	/* Changes made by other openers (v4l2-ctl, another app) reach the guest. */
	subscribed_ = false;
	for (uint8_t t = 0; t < 4; t++)
		subscribed_ |= device_->subscribeEvent(V4L2_EVENT_CTRL, v4l2ControlForCamera(t)) == 0;
	subscribed_ |= device_->subscribeEvent(V4L2_EVENT_SOURCE_CHANGE, 0) == 0;
}

/**
 * \brief "v4l2:<bus info>", stable across reboots for the same port
 */
std::string V4L2CameraSource::id() const
{
	return "v4l2:" + (busInfo_.empty() ? path_ : busInfo_);
}

std::string V4L2CameraSource::description() const
{
	return card_ + " (" + driver_ + ", " + path_ + ")";
}

/**
 * \brief Native formats, then libv4l2-emulated ones the device lacks
 */
std::vector<FormatEntry> V4L2CameraSource::formats()
{
	if (!device_)
		return {};
	std::vector<FormatEntry> out;
	{
		/* Enumerate natively even while emulating: never mislabel. */
		V4L2VideoDevice native(*nativeIO_);
		V4L2VideoDevice &d = emulated_ ? native : *device_;
		if (emulated_ && native.open(path_) < 0)
			return formatCache_;
		out = d.flatFormats(kAllFormats);
	}
	/*
	 * Multi-buffer formats are served as their one-buffer twins (NV12M as
	 * NV12): listed under the twin with the device format kept, next to a
	 * native twin if the device has one too (the hub picks, by config).
	 */
	for (FormatEntry &e : out) {
		if (uint32_t twin = oneBufferTwin(e.fourcc)) {
			e.deviceFourcc = e.fourcc;
			e.fourcc = twin;
		}
	}
	if (DeviceIO *lib = libv4l2DeviceIO()) {
		V4L2VideoDevice emu(*lib);
		if (emu.open(path_) == 0) {
			for (FormatEntry &e : emu.flatFormats(kAllFormats)) {
				if (!e.emulated)
					continue;
				bool native = std::any_of(out.begin(), out.end(), [&](const FormatEntry &n) {
					return n.fourcc == e.fourcc && n.width == e.width && n.height == e.height;
				});
				if (!native)
					out.push_back(std::move(e));
			}
		}
	}
	formatCache_ = out;
	return out;
}

/**
 * \brief The device format to set for \a config
 *
 * config.deviceFourcc if the caller named a multi-buffer twin the device
 * lists for config.fourcc; else config.fourcc itself when the device has
 * it, else the first multi-buffer format it lists with that twin.
 * \return the fourcc, or 0 if config.deviceFourcc is not such a twin
 */
uint32_t V4L2CameraSource::deviceFourccFor(const StreamConfig &config)
{
	if (formatCache_.empty())
		formats();
	auto twinOf = [&](uint32_t device) {
		return std::find_if(formatCache_.begin(), formatCache_.end(), [&](const FormatEntry &e) {
			return e.fourcc == config.fourcc && e.deviceFourcc && (!device || e.deviceFourcc == device);
		});
	};
	if (config.deviceFourcc && config.deviceFourcc != config.fourcc)
		return twinOf(config.deviceFourcc) != formatCache_.end() ? config.deviceFourcc : 0;
	bool own = std::any_of(formatCache_.begin(), formatCache_.end(), [&](const FormatEntry &e) {
		return e.fourcc == config.fourcc && !e.deviceFourcc;
	});
	auto twin = twinOf(0);
	return own || twin == formatCache_.end() ? config.fourcc : twin->deviceFourcc;
}

/**
 * \brief The one-buffer layout of a device format \a f
 *
 * Single-buffer formats: the driver's layout.  Multi-buffer ones: memory
 * plane p becomes colour plane p of one buffer, right after plane p-1,
 * with the driver's own stride and size, under the twin's fourcc.
 * \return false if a multi-buffer format's planes do not fit the protocol
 */
bool V4L2CameraSource::oneBufferLayout(const V4L2Format &f, uint32_t fourcc, FrameLayout &out)
{
	if (f.numPlanes == 1) {
		out = f.frameLayout();
		return true;
	}
	if (f.numPlanes > out.planes.size())
		return false;
	FrameLayout l;
	l.fourcc = fourcc;
	l.width = f.width;
	l.height = f.height;
	l.numPlanes = f.numPlanes;
	uint64_t offset = 0;
	for (unsigned p = 0; p < f.numPlanes; p++) {
		if (!f.planes[p].sizeImage)
			return false;
		l.planes[p] = { static_cast<uint32_t>(offset), f.planes[p].bytesPerLine, f.planes[p].sizeImage };
		offset += f.planes[p].sizeImage;
		if (offset > UINT32_MAX)
			return false;
	}
	l.size = static_cast<uint32_t>(offset);
	out = l;
	return true;
}

bool V4L2CameraSource::isEmulatedOnly(uint32_t fourcc)
{
	if (formatCache_.empty())
		formats();
	bool native = false, emulated = false;
	for (const FormatEntry &e : formatCache_) {
		if (e.fourcc != fourcc)
			continue;
		(e.emulated ? emulated : native) = true;
	}
	return emulated && !native;
}

/**
 * \brief From the queue's buffer capabilities; UserPtr only when emulating
 */
MemoryTypes V4L2CameraSource::supportedMemory() const
{
	if (!device_)
		return 0;
	/*
	 * Multi-buffer formats: one region of caller memory holds all the
	 * planes, so only UserPtr (a pointer per plane into it).  A dma-buf
	 * per plane cannot be granted as one buffer, nor one imported per plane.
	 */
	if (emulated_ || (configured_ && config_.deviceFourcc))
		return static_cast<uint32_t>(MemoryType::UserPtr);
	MemoryTypes m = 0;
	V4L2BufferQueue &q = device_->queue();
	if (q.supportsMemory(V4L2Memory::UserPtr))
		m |= static_cast<uint32_t>(MemoryType::UserPtr);
	if (q.supportsMemory(V4L2Memory::DmaBuf))
		m |= static_cast<uint32_t>(MemoryType::DmaBufImport);
	if (q.supportsMemory(V4L2Memory::Mmap))
		m |= static_cast<uint32_t>(MemoryType::MmapExport);
	return m;
}

/**
 * \brief VIDIOC_TRY_FMT on the node that would serve \a config
 */
int V4L2CameraSource::tryConfigure(StreamConfig &config)
{
	if (!device_)
		return -ENODEV;
	bool emulate = isEmulatedOnly(config.fourcc);
	std::unique_ptr<V4L2VideoDevice> other;
	V4L2VideoDevice *dev = device_.get();
	if (emulate != emulated_) {
		DeviceIO *io = emulate ? libv4l2DeviceIO() : nativeIO_;
		if (!io)
			return -ENOTSUP;
		other = std::make_unique<V4L2VideoDevice>(*io);
		int ret = other->open(path_);
		if (ret < 0)
			return ret;
		dev = other.get();
	}
	uint32_t device = deviceFourccFor(config);
	if (!device)
		return -EINVAL;
	V4L2Format f;
	f.fourcc = device;
	f.width = config.width;
	f.height = config.height;
	int ret = dev->tryFormat(f);
	if (ret < 0)
		return ret;
	return acceptFormat(f, device, config);
}

/*
 * What the driver chose, as the caller's config: a multi-buffer format
 * under its twin's fourcc with its one-buffer layout.
 */
int V4L2CameraSource::acceptFormat(const V4L2Format &f, uint32_t device, StreamConfig &config)
{
	uint32_t twin = oneBufferTwin(f.fourcc);
	bool asTwin = twin && f.fourcc == device;
	if (f.numPlanes != 1 && !asTwin) {
		XMB_LOG(logV4L2Source, Warn, "%s: %s needs %u buffers per frame and has no one-buffer "
			"twin the bridge knows: not served", path_.c_str(),
			fourccToString(f.fourcc).c_str(), f.numPlanes);
		return -ENOTSUP;
	}
	StreamConfig c = config;
	c.fourcc = asTwin ? twin : f.fourcc;
	c.deviceFourcc = asTwin ? f.fourcc : 0;
	c.width = f.width;
	c.height = f.height;
	if (!oneBufferLayout(f, c.fourcc, c.layout)) {
		XMB_LOG(logV4L2Source, Warn, "%s: %s: planes do not fit one cameraif buffer",
			path_.c_str(), f.toString().c_str());
		return -ENOTSUP;
	}
	c.colorimetry = { f.colorspace, f.xferFunc, f.ycbcrEnc, f.quantization };
	config = c;
	return 0;
}

/**
 * \brief S_FMT and S_PARM; switches to libv4l2 for emulated-only formats
 *
 * \return 0, -ENOTSUP for formats that need more than one buffer per
 * frame (a cameraif buffer is one contiguous region), or -errno
 */
int V4L2CameraSource::configure(StreamConfig &config)
{
	if (!device_)
		return -ENODEV;
	if (device_->queue().isStreaming() || device_->queue().count())
		return -EBUSY;

	uint32_t device = deviceFourccFor(config);
	if (!device)
		return -EINVAL;
	bool emulate = device == config.fourcc && isEmulatedOnly(config.fourcc);
	int ret = reopen(emulate);
	if (ret < 0)
		return ret;

	V4L2Format f;
	f.fourcc = device;
	f.width = config.width;
	f.height = config.height;
	ret = device_->setFormat(f);
	if (ret < 0)
		return ret;
	configured_ = false;
	ret = acceptFormat(f, device, config);
	if (ret < 0)
		return ret;
	if (config.deviceFourcc)
		XMB_LOG(logV4L2Source, Info, "%s: %s served as %s: %u memory planes placed in one buffer",
			path_.c_str(), pixelFormatName(config.deviceFourcc).c_str(),
			fourccToString(config.fourcc).c_str(), f.numPlanes);

	if (config.interval.isValid()) {
		Fraction iv = config.interval;
		if (device_->setFrameInterval(iv) == 0)
			config.interval = iv;
		else if (device_->getFrameInterval(iv) == 0)
			config.interval = iv;
	}
	config_ = config;
	configured_ = true;
	copiedTotal_ = 0;

	if (emulated_) {
		/* Say what the emulation costs, once per configuration. */
		v4l2_format raw{};
		raw.type = device_->bufferType();
		uint32_t native = 0;
		if (DeviceIO::system().ioctl(device_->fd(), VIDIOC_G_FMT, &raw) == 0)
			native = isMultiplanarType(raw.type) ? raw.fmt.pix_mp.pixelformat
							     : raw.fmt.pix.pixelformat;
		XMB_LOG(logV4L2Source, Warn,
			"%s: %s is emulated by libv4l2 from %s: each frame is converted (%u bytes) "
			"and copied into the caller's buffer (%u bytes)",
			path_.c_str(), fourccToString(f.fourcc).c_str(),
			native ? fourccToString(native).c_str() : "?", config.layout.size,
			config.layout.size);
	}
	return 0;
}

int V4L2CameraSource::setFrameInterval(Fraction &interval)
{
	if (!device_)
		return -ENODEV;
	int ret = device_->setFrameInterval(interval);
	if (ret == 0)
		config_.interval = interval;
	return ret;
}

/**
 * \brief REQBUFS in the V4L2 memory type matching \a memory
 *
 * When emulating, libv4l2 only converts into MMAP buffers: those are
 * allocated and the caller's UserPtr memory becomes the copy destination.
 */
int V4L2CameraSource::allocateBuffers(MemoryType memory, unsigned count)
{
	if (!configured_)
		return -EINVAL;
	if (!hasMemoryType(supportedMemory(), memory))
		return -ENOTSUP;
	/*
	 * A multi-buffer format on a queue without USERPTR (dma-contig): the
	 * camera fills its own planes and each is copied to its place in the
	 * caller's buffer, counted like emulation's copies.
	 */
	copyPlanes_ = !emulated_ && config_.deviceFourcc && memory == MemoryType::UserPtr &&
		      !device_->queue().supportsMemory(V4L2Memory::UserPtr);
	V4L2Memory vm = emulated_ || copyPlanes_ ? V4L2Memory::Mmap : toV4L2Memory(memory);
	int ret = device_->queue().requestBuffers(count, vm);
	if (ret < 0)
		return ret;
	memory_ = memory;
	callerBuffers_.assign(static_cast<size_t>(ret), CallerBuffer{});
	if (copyPlanes_ && !loggedPlaneCopy_) {
		XMB_LOG(logV4L2Source, Warn, "%s: %s: the camera cannot capture into caller memory "
			"(no USERPTR): each of its %u planes is copied into the caller's buffer",
			path_.c_str(), pixelFormatName(config_.deviceFourcc).c_str(), config_.layout.numPlanes);
		loggedPlaneCopy_ = true;
	}
	if (emulated_ || copyPlanes_) {
		for (unsigned i = 0; i < static_cast<unsigned>(ret); i++) {
			int r = device_->queue().mapBuffer(i);
			if (r < 0) {
				device_->queue().releaseBuffers();
				callerBuffers_.clear();
				return r;
			}
		}
	}
	return ret;
}

/**
 * \brief VIDIOC_EXPBUF of MMAP buffer \a index
 */
int V4L2CameraSource::exportBuffer(unsigned index, ExportedBuffer &out)
{
	if (emulated_ || memory_ != MemoryType::MmapExport)
		return -EINVAL;
	int ret = device_->queue().exportBuffer(index, 0, out.fd);
	if (ret < 0)
		return ret;
	out.length = device_->queue().planeLength(index, 0);
	out.isDmaBuf = true;
	return 0;
}

int V4L2CameraSource::queueBuffer(unsigned index, const CallerBuffer &memory)
{
	if (!device_ || index >= callerBuffers_.size())
		return -EINVAL;
	V4L2QueueArgs args;
	if (emulated_ || copyPlanes_) {
		if (!memory.data || memory.length < config_.layout.size)
			return -EINVAL;
		callerBuffers_[index] = memory;
	} else if (memory_ == MemoryType::UserPtr && config_.deviceFourcc) {
		/* One region of caller memory, a pointer per memory plane into it. */
		const FrameLayout &l = config_.layout;
		if (!memory.data || memory.length < l.size)
			return -EINVAL;
		for (unsigned p = 0; p < l.numPlanes; p++) {
			args.planes[p].userptr = static_cast<uint8_t *>(memory.data) + l.planes[p].offset;
			args.planes[p].length = l.planes[p].size;
		}
	} else if (memory_ == MemoryType::UserPtr) {
		args.planes[0].userptr = memory.data;
		args.planes[0].length = static_cast<uint32_t>(memory.length);
	} else if (memory_ == MemoryType::DmaBufImport) {
		args.planes[0].fd = memory.dmabufFd;
		args.planes[0].length = static_cast<uint32_t>(memory.length);
	}
	return device_->queue().queueBuffer(index, args);
}

int V4L2CameraSource::releaseBuffers()
{
	if (!device_)
		return 0;
	callerBuffers_.clear();
	return device_->queue().releaseBuffers();
}

int V4L2CameraSource::start()
{
	if (!device_)
		return -ENODEV;
	return device_->queue().streamOn();
}

int V4L2CameraSource::stop()
{
	if (!device_ || !device_->queue().isStreaming())
		return 0;
	return device_->queue().streamOff();
}

/**
 * \brief DQBUF one frame; when emulating, copy it into the caller's buffer
 */
int V4L2CameraSource::dequeueFrame(CompletedFrame &frame)
{
	if (!device_)
		return -ENODEV;
	V4L2DequeuedBuffer b;
	int ret = device_->queue().dequeueBuffer(b);
	if (ret < 0)
		return ret;
	frame = {};
	frame.index = b.index;
	frame.bytesUsed = b.bytesUsed[0];
	if (config_.deviceFourcc && b.numPlanes == config_.layout.numPlanes && b.numPlanes > 1) {
		/* The payload ends where the last plane's does in the one buffer. */
		const PlaneLayout &last = config_.layout.planes[b.numPlanes - 1];
		frame.bytesUsed = last.offset + std::min(b.bytesUsed[b.numPlanes - 1], last.size);
	}
	frame.sequence = b.sequence;
	frame.timestampNs = b.timestampNs;
	frame.error = b.isError();

	if (emulated_) {
		const CallerBuffer &dst = callerBuffers_[b.index];
		const unsigned char *src = device_->queue().planeData(b.index, 0);
		size_t n = std::min<size_t>(b.bytesUsed[0], dst.length);
		if (src && dst.data)
			std::memcpy(dst.data, src, n);
		frame.bytesUsed = static_cast<uint32_t>(n);
		/* libv4l2's conversion wrote n bytes, our copy n more (logged at configure()). */
		copiedTotal_ += 2 * n;
	} else if (copyPlanes_) {
		const CallerBuffer &dst = callerBuffers_[b.index];
		const FrameLayout &l = config_.layout;
		for (unsigned p = 0; p < l.numPlanes && p < b.numPlanes && dst.data; p++) {
			const unsigned char *src = device_->queue().planeData(b.index, p);
			size_t n = std::min<size_t>(b.bytesUsed[p], l.planes[p].size);
			if (!src || l.planes[p].offset + n > dst.length)
				continue;
			std::memcpy(static_cast<uint8_t *>(dst.data) + l.planes[p].offset, src, n);
			copiedTotal_ += n;
		}
	}
	return 0;
}

/**
 * \brief Translate V4L2 control and source-change events
 */
int V4L2CameraSource::dequeueEvent(SourceEvent &event)
{
	/* A driver without events (no vidioc_subscribe_event) says ENOTTY to DQEVENT: not an error. */
	if (!device_ || !subscribed_)
		return -EAGAIN;
	for (;;) {
		v4l2_event ev;
		int ret = device_->dequeueEvent(ev);
		if (ret == -EAGAIN)
			return ret;
		if (ret < 0) {
			/* ENODEV: unplugged.  The service must drop this source. */
			event = { SourceEvent::Type::Error, 0, ret };
			return 0;
		}
		if (ev.type == V4L2_EVENT_SOURCE_CHANGE) {
			event = { SourceEvent::Type::SourceChanged, 0, 0 };
			return 0;
		}
		if (ev.type == V4L2_EVENT_CTRL && (ev.u.ctrl.changes & V4L2_EVENT_CTRL_CH_VALUE)) {
			if (auto t = cameraControlForV4L2(ev.id)) {
				event = { SourceEvent::Type::ControlChanged, *t,
					  ev.u.ctrl.type == V4L2_CTRL_TYPE_INTEGER64 ? ev.u.ctrl.value64
										     : ev.u.ctrl.value };
				return 0;
			}
		}
		/* Other events (range changes only, unmapped controls): skip. */
	}
}

std::vector<CameraControlInfo> V4L2CameraSource::controls()
{
	return device_ ? toCameraControls(device_->queryControls()) : std::vector<CameraControlInfo>{};
}

int V4L2CameraSource::getControl(uint8_t type, int64_t &value)
{
	uint32_t id = v4l2ControlForCamera(type);
	if (!device_ || !id)
		return -EINVAL;
	return device_->getControl(id, value);
}

int V4L2CameraSource::setControl(uint8_t type, int64_t &value)
{
	uint32_t id = v4l2ControlForCamera(type);
	if (!device_ || !id)
		return -EINVAL;
	V4L2ControlInfo info;
	int ret = device_->queryControl(id, info);
	if (ret < 0)
		return ret;
	auto c = toCameraControl(info);
	if (!c)
		return -EINVAL;
	if (c->flags & XENCAMERA_CTRL_FLG_RO)
		return -EACCES;
	value = clampControlValue(*c, value);
	return device_->setControl(id, value);
}

uint64_t V4L2CameraSource::emulatedCopyBytesPerFrame() const
{
	if (copyPlanes_ && configured_)
		return config_.layout.size;
	return emulated_ && configured_ ? 2ull * config_.layout.size : 0;
}

} /* namespace xmb */
