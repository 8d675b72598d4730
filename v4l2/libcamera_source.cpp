/* SPDX-License-Identifier: MIT */
/**
 * \file libcamera_source.cpp
 * \brief CameraSource over libcamera (built against libcamera 0.0.3)
 */
#include "v4l2/libcamera_source.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <libcamera/libcamera.h>

#include <xen/io/cameraif.h>

#include "protocol/base/log.h"
#include "v4l2/format_enum.h"
#include "v4l2/pixel_format.h"

namespace xmb {

XMB_LOG_DEFINE_CATEGORY(logLibcamera, "libcamera");

namespace lc = libcamera;

namespace {

/* libcamera's ColorSpace in V4L2's terms (what cameraif's CONFIG answers carry). */
Colorimetry colorimetryOf(const libcamera::ColorSpace &cs)
{
	using CS = libcamera::ColorSpace;
	Colorimetry v;
	switch (cs.primaries) {
	case CS::Primaries::Raw: v.colorspace = V4L2_COLORSPACE_RAW; break;
	case CS::Primaries::Smpte170m: v.colorspace = V4L2_COLORSPACE_SMPTE170M; break;
	case CS::Primaries::Rec709:
		v.colorspace = cs.transferFunction == CS::TransferFunction::Srgb
			? V4L2_COLORSPACE_SRGB : V4L2_COLORSPACE_REC709;
		break;
	case CS::Primaries::Rec2020: v.colorspace = V4L2_COLORSPACE_BT2020; break;
	}
	switch (cs.transferFunction) {
	case CS::TransferFunction::Linear: v.xferFunc = V4L2_XFER_FUNC_NONE; break;
	case CS::TransferFunction::Srgb: v.xferFunc = V4L2_XFER_FUNC_SRGB; break;
	case CS::TransferFunction::Rec709: v.xferFunc = V4L2_XFER_FUNC_709; break;
	}
	switch (cs.ycbcrEncoding) {
	case CS::YcbcrEncoding::None: break;
	case CS::YcbcrEncoding::Rec601: v.ycbcrEnc = V4L2_YCBCR_ENC_601; break;
	case CS::YcbcrEncoding::Rec709: v.ycbcrEnc = V4L2_YCBCR_ENC_709; break;
	case CS::YcbcrEncoding::Rec2020: v.ycbcrEnc = V4L2_YCBCR_ENC_BT2020; break;
	}
	v.quantization = cs.range == CS::Range::Full ? V4L2_QUANTIZATION_FULL_RANGE
						     : V4L2_QUANTIZATION_LIM_RANGE;
	return v;
}


/*
 * One CameraManager per process (libcamera allows no second one), started
 * on first use and kept alive by every source that holds a camera.
 */
std::shared_ptr<lc::CameraManager> cameraManager()
{
	static std::mutex lock;
	static std::weak_ptr<lc::CameraManager> weak;
	std::lock_guard<std::mutex> guard(lock);
	std::shared_ptr<lc::CameraManager> cm = weak.lock();
	if (cm)
		return cm;
	cm = std::make_shared<lc::CameraManager>();
	int ret = cm->start();
	if (ret < 0) {
		XMB_LOG(logLibcamera, Error, "CameraManager start failed: %s", strerror(-ret));
		return nullptr;
	}
	weak = cm;
	return cm;
}

/* The three float controls libcamera 0.0.3 has that cameraif knows. */
const lc::Control<float> *lcControl(uint8_t type)
{
	switch (type) {
	case XENCAMERA_CTRL_BRIGHTNESS:
		return &lc::controls::Brightness;
	case XENCAMERA_CTRL_CONTRAST:
		return &lc::controls::Contrast;
	case XENCAMERA_CTRL_SATURATION:
		return &lc::controls::Saturation;
	default:
		return nullptr;
	}
}

int64_t toCameraif(float v)
{
	return static_cast<int64_t>(std::lround(v * LibcameraSource::kControlScale));
}

float fromCameraif(int64_t v)
{
	return static_cast<float>(v) / LibcameraSource::kControlScale;
}

} /* namespace */

std::vector<LibcameraCameraInfo> listLibcameraCameras()
{
	std::vector<LibcameraCameraInfo> out;
	std::shared_ptr<lc::CameraManager> cm = cameraManager();
	if (!cm)
		return out;
	for (const std::shared_ptr<lc::Camera> &cam : cm->cameras()) {
		LibcameraCameraInfo info;
		info.id = cam->id();
		if (auto model = cam->properties().get(lc::properties::Model))
			info.model = *model;
		out.push_back(std::move(info));
	}
	return out;
}

struct LibcameraSource::Private {
	std::shared_ptr<lc::CameraManager> manager;
	std::shared_ptr<lc::Camera> camera;
	bool acquired = false;
	std::unique_ptr<lc::CameraConfiguration> config;
	lc::Stream *stream = nullptr;
	StreamConfig streamConfig;
	bool configured = false;
	bool running = false;

	MemoryType memory = MemoryType::MmapExport;
	std::unique_ptr<lc::FrameBufferAllocator> allocator;
	struct Slot {
		lc::FrameBuffer *buffer = nullptr;		/* allocator's, or imported */
		std::unique_ptr<lc::FrameBuffer> imported;	/* DmaBufImport */
		int importedFd = -1;
		std::unique_ptr<lc::Request> request;
		bool pendingStart = false; /* queued before start() */
	};
	std::vector<Slot> slots;

	UniqueFD wake; /* eventfd: completions are ready */
	std::mutex lock;
	std::deque<CompletedFrame> done; /* guarded by lock */

	lc::ControlList pendingControls{ lc::controls::controls };
	std::array<std::optional<int64_t>, 4> lastValues{}; /* as last set */

	void requestComplete(lc::Request *request);
	int queueSlot(unsigned index);
	int reconfigure(unsigned bufferCount);
};

void LibcameraSource::Private::requestComplete(lc::Request *request)
{
	/* libcamera's thread.  Cancelled requests are the ones stop() returns. */
	if (request->status() == lc::Request::RequestCancelled)
		return;
	CompletedFrame f;
	f.index = static_cast<unsigned>(request->cookie());
	auto it = request->buffers().find(stream);
	if (it == request->buffers().end())
		return;
	const lc::FrameMetadata &md = it->second->metadata();
	for (const lc::FrameMetadata::Plane &p : md.planes())
		f.bytesUsed += p.bytesused;
	f.sequence = md.sequence;
	f.timestampNs = md.timestamp;
	f.error = md.status != lc::FrameMetadata::FrameSuccess;
	{
		std::lock_guard<std::mutex> guard(lock);
		done.push_back(f);
	}
	uint64_t one = 1;
	[[maybe_unused]] ssize_t n = ::write(wake.get(), &one, sizeof(one));
}

LibcameraSource::LibcameraSource() : d_(std::make_unique<Private>())
{
	d_->wake = UniqueFD(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
}

LibcameraSource::~LibcameraSource()
{
	stop();
	releaseBuffers();
	if (d_->camera) {
		d_->camera->requestCompleted.disconnect(d_.get());
		if (d_->acquired)
			d_->camera->release();
	}
	d_->config.reset();
	d_->camera.reset();
}

/**
 * \brief Acquire camera \a cameraId (exclusive, like opening a device)
 * \return 0, -ENODEV if there is no such camera, or -errno
 */
int LibcameraSource::open(const std::string &cameraId)
{
	d_->manager = cameraManager();
	if (!d_->manager)
		return -ENODEV;
	d_->camera = d_->manager->get(cameraId);
	if (!d_->camera) {
		XMB_LOG(logLibcamera, Error, "%s: no such camera", cameraId.c_str());
		return -ENODEV;
	}
	int ret = d_->camera->acquire();
	if (ret < 0) {
		XMB_LOG(logLibcamera, Error, "%s: acquire failed: %s", cameraId.c_str(), strerror(-ret));
		d_->camera.reset();
		return ret;
	}
	d_->acquired = true;
	d_->camera->requestCompleted.connect(d_.get(), &Private::requestComplete);
	return 0;
}

std::string LibcameraSource::id() const
{
	return d_->camera ? "libcamera:" + d_->camera->id() : std::string();
}

std::string LibcameraSource::description() const
{
	if (!d_->camera)
		return "libcamera (closed)";
	auto model = d_->camera->properties().get(lc::properties::Model);
	return (model ? *model : std::string("camera")) + " (libcamera " + d_->camera->id() + ")";
}

/**
 * \brief The VideoRecording role's formats and sizes; frame rates from
 * FrameDurationLimits (sampled), or 30 fps when the camera has none
 */
std::vector<FormatEntry> LibcameraSource::formats()
{
	std::vector<FormatEntry> out;
	if (!d_->camera)
		return out;
	std::unique_ptr<lc::CameraConfiguration> cfg =
		d_->camera->generateConfiguration({ lc::StreamRole::VideoRecording });
	if (!cfg || cfg->empty())
		return out;

	FrameIntervalEnum ivals;
	ivals.type = FrameIntervalEnum::Type::Continuous;
	auto it = d_->camera->controls().find(&lc::controls::FrameDurationLimits);
	if (it != d_->camera->controls().end()) {
		/* Durations in microseconds: min duration is the fastest rate. */
		int64_t minUs = it->second.min().get<int64_t>();
		int64_t maxUs = it->second.max().get<int64_t>();
		ivals.min = { static_cast<uint32_t>(std::max<int64_t>(minUs, 1)), 1000000 };
		ivals.max = { static_cast<uint32_t>(std::max<int64_t>(maxUs, minUs)), 1000000 };
	} else {
		ivals.type = FrameIntervalEnum::Type::Discrete;
		ivals.discrete = { { 1, 30 } };
	}
	std::vector<Fraction> intervals = sampleFrameIntervals(ivals);

	std::vector<FormatDescription> descs;
	const lc::StreamFormats &sf = cfg->at(0).formats();
	for (const lc::PixelFormat &pf : sf.pixelformats()) {
		FormatDescription d;
		d.fourcc = v4l2FourccFromDrm(pf.fourcc());
		std::vector<lc::Size> sizes = sf.sizes(pf);
		if (!sizes.empty()) {
			for (const lc::Size &s : sizes)
				d.sizes.discrete.push_back({ s.width, s.height });
		} else {
			lc::SizeRange r = sf.range(pf);
			d.sizes.type = FrameSizeEnum::Type::Stepwise;
			d.sizes.min = { r.min.width, r.min.height };
			d.sizes.max = { r.max.width, r.max.height };
			d.sizes.stepWidth = std::max(r.hStep, 1u);
			d.sizes.stepHeight = std::max(r.vStep, 1u);
		}
		descs.push_back(std::move(d));
	}
	out = flattenFormats(descs, nullptr);
	for (FormatEntry &e : out)
		e.intervals = intervals;
	return out;
}

MemoryTypes LibcameraSource::supportedMemory() const
{
	return MemoryType::DmaBufImport | MemoryType::MmapExport;
}

/**
 * \brief Validate \a config against the camera without applying it
 */
int LibcameraSource::tryConfigure(StreamConfig &config)
{
	if (!d_->camera)
		return -ENODEV;
	std::unique_ptr<lc::CameraConfiguration> cfg =
		d_->camera->generateConfiguration({ lc::StreamRole::VideoRecording });
	if (!cfg || cfg->empty())
		return -EINVAL;
	lc::StreamConfiguration &sc = cfg->at(0);
	sc.pixelFormat = lc::PixelFormat(drmFourccFromV4L2(config.fourcc));
	sc.size = { config.width, config.height };
	if (cfg->validate() == lc::CameraConfiguration::Invalid)
		return -EINVAL;
	config.fourcc = v4l2FourccFromDrm(sc.pixelFormat.fourcc());
	config.width = sc.size.width;
	config.height = sc.size.height;
	config.layout = driverFrameLayout(config.fourcc, config.width, config.height, sc.stride,
					  sc.frameSize);
	return 0;
}

int LibcameraSource::Private::reconfigure(unsigned bufferCount)
{
	lc::StreamConfiguration &sc = config->at(0);
	if (bufferCount)
		sc.bufferCount = bufferCount;
	if (config->validate() == lc::CameraConfiguration::Invalid)
		return -EINVAL;
	int ret = camera->configure(config.get());
	if (ret < 0) {
		XMB_LOG(logLibcamera, Error, "%s: configure failed: %s", camera->id().c_str(),
			strerror(-ret));
		return ret;
	}
	stream = sc.stream();
	return 0;
}

/**
 * \brief Configure the stream (and frame duration, applied at start())
 */
int LibcameraSource::configure(StreamConfig &config)
{
	if (!d_->camera)
		return -ENODEV;
	if (d_->running || !d_->slots.empty())
		return -EBUSY;
	d_->config = d_->camera->generateConfiguration({ lc::StreamRole::VideoRecording });
	if (!d_->config || d_->config->empty())
		return -EINVAL;
	lc::StreamConfiguration &sc = d_->config->at(0);
	sc.pixelFormat = lc::PixelFormat(drmFourccFromV4L2(config.fourcc));
	sc.size = { config.width, config.height };
	int ret = d_->reconfigure(0);
	if (ret < 0)
		return ret;
	config.fourcc = v4l2FourccFromDrm(sc.pixelFormat.fourcc());
	config.width = sc.size.width;
	config.height = sc.size.height;
	config.layout = driverFrameLayout(config.fourcc, config.width, config.height, sc.stride,
					  sc.frameSize);
	if (sc.colorSpace)
		config.colorimetry = colorimetryOf(*sc.colorSpace);
	d_->streamConfig = config;
	d_->configured = true;
	XMB_LOG(logLibcamera, Info, "%s: %s", d_->camera->id().c_str(), sc.toString().c_str());
	return 0;
}

/**
 * \brief Frame duration for the next start() (and next requests)
 */
int LibcameraSource::setFrameInterval(Fraction &interval)
{
	if (!interval.isValid())
		return -EINVAL;
	d_->streamConfig.interval = interval;
	int64_t us = static_cast<int64_t>(uint64_t{ interval.numerator } * 1000000 / interval.denominator);
	int64_t limits[2] = { us, us };
	d_->pendingControls.set(lc::controls::FrameDurationLimits, lc::Span<const int64_t, 2>(limits));
	return 0;
}

/**
 * \brief Allocate (MmapExport) or prepare (DmaBufImport) \a count buffers
 */
int LibcameraSource::allocateBuffers(MemoryType memory, unsigned count)
{
	if (!d_->configured || d_->running)
		return -EBUSY;
	if (!hasMemoryType(supportedMemory(), memory))
		return -ENOTSUP;
	releaseBuffers();
	if (!count)
		return 0;
	int ret = d_->reconfigure(count);
	if (ret < 0)
		return ret;

	std::vector<Private::Slot> slots;
	if (memory == MemoryType::MmapExport) {
		d_->allocator = std::make_unique<lc::FrameBufferAllocator>(d_->camera);
		ret = d_->allocator->allocate(d_->stream);
		if (ret < 0) {
			d_->allocator.reset();
			return ret;
		}
		for (const std::unique_ptr<lc::FrameBuffer> &b : d_->allocator->buffers(d_->stream)) {
			Private::Slot s;
			s.buffer = b.get();
			slots.push_back(std::move(s));
		}
	} else {
		slots.resize(count);
	}
	for (unsigned i = 0; i < slots.size(); i++) {
		slots[i].request = d_->camera->createRequest(i);
		if (!slots[i].request) {
			d_->allocator.reset();
			return -ENOMEM;
		}
	}
	d_->slots = std::move(slots);
	d_->memory = memory;
	return static_cast<int>(d_->slots.size());
}

/**
 * \brief A dup of the dma-buf behind MmapExport buffer \a index
 *
 * Only buffers whose planes all live in one dma-buf can be described to a
 * guest as one buffer; others give -ENOTSUP.
 */
int LibcameraSource::exportBuffer(unsigned index, ExportedBuffer &out)
{
	if (d_->memory != MemoryType::MmapExport || index >= d_->slots.size())
		return -EINVAL;
	const auto &planes = d_->slots[index].buffer->planes();
	if (planes.empty())
		return -EINVAL;
	size_t end = 0;
	for (const lc::FrameBuffer::Plane &p : planes) {
		if (p.fd.get() != planes[0].fd.get())
			return -ENOTSUP;
		end = std::max<size_t>(end, size_t{ p.offset } + p.length);
	}
	out.fd = UniqueFD(::fcntl(planes[0].fd.get(), F_DUPFD_CLOEXEC, 0));
	if (!out.fd)
		return -errno;
	out.length = end;
	out.isDmaBuf = true;
	return 0;
}

int LibcameraSource::Private::queueSlot(unsigned index)
{
	Slot &s = slots[index];
	if (!pendingControls.empty()) {
		s.request->controls().merge(pendingControls);
		pendingControls.clear();
	}
	int ret = camera->queueRequest(s.request.get());
	if (ret < 0)
		XMB_LOG(logLibcamera, Error, "%s: queueRequest %u failed: %s", camera->id().c_str(),
			index, strerror(-ret));
	return ret;
}

/**
 * \brief Queue buffer \a index (a request); before start() it is held
 * until start(), as libcamera takes requests only while running
 */
int LibcameraSource::queueBuffer(unsigned index, const CallerBuffer &memory)
{
	if (index >= d_->slots.size())
		return -EINVAL;
	Private::Slot &s = d_->slots[index];

	bool newBuffer = false;
	if (d_->memory == MemoryType::DmaBufImport) {
		if (memory.dmabufFd < 0)
			return -EBADF;
		if (!s.imported || s.importedFd != memory.dmabufFd) {
			/* Describe the caller's dma-buf plane by plane, at the layout's offsets. */
			const FrameLayout &l = d_->streamConfig.layout;
			std::vector<lc::FrameBuffer::Plane> planes;
			for (unsigned p = 0; p < std::max(l.numPlanes, 1u); p++) {
				lc::FrameBuffer::Plane plane;
				plane.fd = lc::SharedFD(memory.dmabufFd); /* dups */
				plane.offset = l.planes[p].offset;
				plane.length = l.numPlanes ? l.planes[p].size : l.size;
				planes.push_back(std::move(plane));
			}
			if (!planes[0].fd.isValid())
				return -EBADF;
			s.imported = std::make_unique<lc::FrameBuffer>(planes, index);
			s.importedFd = memory.dmabufFd;
			s.buffer = s.imported.get();
			newBuffer = true;
		}
	}

	if (newBuffer || s.request->buffers().empty()) {
		s.request->reuse();
		int ret = s.request->addBuffer(d_->stream, s.buffer);
		if (ret < 0)
			return ret;
	} else {
		s.request->reuse(lc::Request::ReuseBuffers);
	}

	if (!d_->running) {
		s.pendingStart = true;
		return 0;
	}
	return d_->queueSlot(index);
}

int LibcameraSource::releaseBuffers()
{
	if (d_->running)
		stop();
	d_->slots.clear();
	if (d_->allocator && d_->stream)
		d_->allocator->free(d_->stream);
	d_->allocator.reset();
	std::lock_guard<std::mutex> guard(d_->lock);
	d_->done.clear();
	return 0;
}

int LibcameraSource::start()
{
	if (!d_->camera || d_->slots.empty())
		return -EINVAL;
	if (d_->running)
		return 0;
	int ret = d_->camera->start(d_->pendingControls.empty() ? nullptr : &d_->pendingControls);
	if (ret < 0) {
		XMB_LOG(logLibcamera, Error, "%s: start failed: %s", d_->camera->id().c_str(),
			strerror(-ret));
		return ret;
	}
	d_->pendingControls.clear();
	d_->running = true;
	for (unsigned i = 0; i < d_->slots.size(); i++) {
		if (!d_->slots[i].pendingStart)
			continue;
		d_->slots[i].pendingStart = false;
		if ((ret = d_->queueSlot(i)) < 0) {
			stop();
			return ret;
		}
	}
	return 0;
}

/**
 * \brief Stop; in-flight requests complete as cancelled and are not reported
 */
int LibcameraSource::stop()
{
	if (!d_->running)
		return 0;
	int ret = d_->camera->stop();
	d_->running = false;
	for (Private::Slot &s : d_->slots)
		s.pendingStart = false;
	std::lock_guard<std::mutex> guard(d_->lock);
	d_->done.clear();
	return ret;
}

int LibcameraSource::pollFd() const
{
	return d_->wake.get();
}

uint32_t LibcameraSource::pollEvents() const
{
	return EPOLLIN;
}

int LibcameraSource::dequeueFrame(CompletedFrame &frame)
{
	std::lock_guard<std::mutex> guard(d_->lock);
	if (d_->done.empty()) {
		/* Reset the eventfd under the lock: a completion after this re-arms it. */
		uint64_t v;
		[[maybe_unused]] ssize_t n = ::read(d_->wake.get(), &v, sizeof(v));
		return -EAGAIN;
	}
	frame = d_->done.front();
	d_->done.pop_front();
	return 0;
}

/**
 * \brief Brightness, contrast and saturation, scaled by kControlScale
 */
std::vector<CameraControlInfo> LibcameraSource::controls()
{
	std::vector<CameraControlInfo> out;
	if (!d_->camera)
		return out;
	const lc::ControlInfoMap &map = d_->camera->controls();
	for (uint8_t t = XENCAMERA_CTRL_BRIGHTNESS; t <= XENCAMERA_CTRL_SATURATION; t++) {
		const lc::Control<float> *c = lcControl(t);
		auto it = map.find(c);
		if (it == map.end())
			continue;
		CameraControlInfo info;
		info.type = t;
		info.minimum = toCameraif(it->second.min().get<float>());
		info.maximum = toCameraif(it->second.max().get<float>());
		info.step = 1;
		info.defaultValue = it->second.def().isNone() ? (t == XENCAMERA_CTRL_BRIGHTNESS ? 0 : kControlScale)
							      : toCameraif(it->second.def().get<float>());
		out.push_back(info);
	}
	return out;
}

int LibcameraSource::getControl(uint8_t type, int64_t &value)
{
	if (!lcControl(type))
		return -EINVAL;
	for (const CameraControlInfo &c : controls())
		if (c.type == type) {
			/* libcamera reports applied values per request; we keep the last set. */
			value = d_->lastValues[type].value_or(c.defaultValue);
			return 0;
		}
	return -EINVAL;
}

int LibcameraSource::setControl(uint8_t type, int64_t &value)
{
	const lc::Control<float> *c = lcControl(type);
	if (!c)
		return -EINVAL;
	for (const CameraControlInfo &info : controls())
		if (info.type == type) {
			value = clampControlValue(info, value);
			d_->pendingControls.set(*c, fromCameraif(value));
			d_->lastValues[type] = value;
			return 0;
		}
	return -EINVAL;
}

} /* namespace xmb */
