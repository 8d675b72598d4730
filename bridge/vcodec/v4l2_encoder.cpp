/* SPDX-License-Identifier: MIT */
/**
 * \file v4l2_encoder.cpp
 * \brief vcodec Encoder over a V4L2 stateful M2M encoder
 *
 * The device runs on the service's event loop.  A frame's life:
 * encode() puts it on the waiting list; pump() gives it a free OUTPUT slot
 * (QBUF USERPTR of the guest's mapped pages, or a counted copy into an MMAP
 * slot); the device's wake-up dequeues CAPTURE (one Bitstream, its buffer
 * held until the session let go of it) and OUTPUT (the guest frame's
 * release()).  Drain: V4L2_ENC_CMD_STOP once every waiting frame is queued,
 * ended by the LAST buffer; without encoder commands, by the queues running
 * empty.
 */
#include "bridge/vcodec/v4l2_encoder.h"

#include <cerrno>
#include <chrono>
#include <cstring>
#include <algorithm>
#include <deque>
#include <map>
#include <sys/epoll.h>
#include <unistd.h>

#include "protocol/base/monotonic.h"
#include "protocol/base/log.h"
#include "v4l2/pixel_format.h"
#include "v4l2/v4l2_m2m_encoder.h"

namespace xmb::vcodec {

XMB_LOG_DEFINE_CATEGORY(logV4L2Enc, "vcodec-v4l2");

namespace {

constexpr unsigned kCodedBuffers = 4;


/* V4L2 timestamps are microseconds: carry seq + 1 (0 would read as "none"). */
uint64_t tsOfSeq(uint64_t seq) { return (seq + 1) * 1000; }
uint64_t seqOfTs(uint64_t ns) { return ns >= 1000 ? ns / 1000 - 1 : 0; }

} /* namespace */

uint32_t v4l2CodedFourcc(uint32_t codec)
{
	switch (codec) {
	case XENVCODEC_CODEC_VP8: return V4L2_PIX_FMT_VP8;
	case XENVCODEC_CODEC_VP9: return V4L2_PIX_FMT_VP9;
	case XENVCODEC_CODEC_H264: return V4L2_PIX_FMT_H264;
	case XENVCODEC_CODEC_JPEG: return V4L2_PIX_FMT_JPEG;
	case XENVCODEC_CODEC_HEVC: return V4L2_PIX_FMT_HEVC;
	case XENVCODEC_CODEC_FWHT: return V4L2_PIX_FMT_FWHT;
	default: return 0;
	}
}

/**
 * \brief Capabilities of the encoder at \a path, in vcodec terms
 *
 * Rate control: VBR always (every encoder takes a bitrate); CBR too where
 * the device has V4L2_CID_MPEG_VIDEO_BITRATE_MODE.  Profiles and levels are
 * left to the driver's defaults ("default", level 0).
 */
std::vector<proto::CodecCaps> probeV4L2Codecs(const std::string &path, DeviceIO &io)
{
	std::vector<proto::CodecCaps> out;
	V4L2M2MEncoder dev(io);
	if (dev.open(path) < 0)
		return out;
	std::vector<uint32_t> raw;
	for (uint32_t f : dev.rawFormats())
		if (std::find(std::begin(proto::kVcodecRawFormats), std::end(proto::kVcodecRawFormats), f) !=
		    std::end(proto::kVcodecRawFormats))
			raw.push_back(f);
	if (raw.empty())
		return out;
	V4L2ControlInfo info;
	bool cbr = dev.queryControl(V4L2_CID_MPEG_VIDEO_BITRATE_MODE, info) == 0;
	std::vector<uint32_t> coded = dev.codedFormats();
	for (uint32_t codec = 1; codec <= XENVCODEC_CODEC_MAX; codec++) {
		uint32_t fcc = v4l2CodedFourcc(codec);
		if (std::find(coded.begin(), coded.end(), fcc) == coded.end())
			continue;
		proto::CodecCaps cc;
		cc.codec = codec;
		cc.rawFormats = raw;
		cc.rcModes = { XENVCODEC_RC_VBR };
		if (cbr && codec != XENVCODEC_CODEC_JPEG)
			cc.rcModes.push_back(XENVCODEC_RC_CBR);
		cc.profiles = { "default" };
		cc.levels = { 0 };
		out.push_back(std::move(cc));
	}
	return out;
}

std::string findV4L2Encoder(DeviceIO &io, const std::string &dir)
{
	auto nodes = findM2MEncoders(io, dir);
	return nodes.empty() ? std::string() : nodes.front().path;
}

/* ------------------------------------------------------------------------- */

struct V4L2Encoder::Impl : std::enable_shared_from_this<Impl> {
	Impl(service::EventLoop &l, DeviceIO &io, EncoderSink s) : loop(l), dev(io), sink(std::move(s)) {}

	struct Frame {
		const uint8_t *data = nullptr;
		int lent = -1; /* lent buffer the guest rendered into (data unused) */
		uint64_t seq = 0;
		bool key = false;
		std::function<void()> release;
		int dmabufIndex = -1; /* the guest's INPUT buffer, as dma-buf dmabufFd (data unused) */
		int dmabufFd = -1;
	};
	struct Slot {
		bool busy = false;
		std::function<void()> release; /* USERPTR: the guest frame the driver reads */
	};

	service::EventLoop &loop;
	V4L2M2MEncoder dev;
	EncoderSink sink;
	EncodeParams params;
	std::string path;
	bool userptr = true;
	bool foreignUserPtr = true;
	bool importing = false; /* OUTPUT is DMABUF: frames are the guest's pages as dma-bufs */
	bool imported = false;	/* a frame went in as a dma-buf: too late to switch */
	std::vector<LentBuffer> lent;	   /* OUTPUT buffer i granted as the guest's INPUT i */
	std::vector<LentBuffer> lentCoded; /* CAPTURE buffer i granted as the guest's OUTPUT i */
	uint32_t rawSize = 0;
	bool registered = false;

	std::deque<Frame> waiting;
	std::vector<Slot> slots;
	std::map<uint64_t, uint64_t> queuedAt; /* seq -> QBUF time, for encodeNs */
	bool forceNextKey = false;
	bool draining = false;	/* drain() asked */
	bool stopIssued = false; /* ENC_CMD_STOP sent (or emulated) */
	bool emulatedDrain = false;
	bool failed = false;
	uint64_t gen = 0; /* bumped by stop(): older Bitstream holds do not requeue */
	uint64_t rawCopied = 0;

	/*
	 * be-alloc where Dom0 can grant dma-bufs: \a count MMAP OUTPUT buffers,
	 * each exported (EXPBUF) to be granted as the guest's INPUT buffer of
	 * the same index.  The guest renders into the encoder's own memory:
	 * no pinning per frame, no copy, any driver (vmalloc or dma-contig).
	 * False (logged) when the driver will not: the caller's memory then.
	 */
	bool lendOwnBuffers(unsigned count)
	{
		auto refuse = [&](const std::string &why) {
			XMB_LOG(logV4L2Enc, Info, "%s: its own buffers cannot be lent to the guest (%s): "
				"Dom0 pages granted instead", path.c_str(), why.c_str());
			lent.clear();
			lentCoded.clear();
			return false;
		};
		if (!dev.output().supportsMemory(V4L2Memory::Mmap))
			return refuse("no MMAP on its OUTPUT queue");
		int r = dev.allocateBuffers(count, V4L2Memory::Mmap, count);
		if (r < 0)
			return refuse(std::string("REQBUFS: ") + strerror(-r));
		if (dev.output().count() < count || dev.capture().count() < count)
			return refuse("it gives " + std::to_string(dev.output().count()) + " raw and " +
				      std::to_string(dev.capture().count()) + " bitstream buffers, the guest may create " +
				      std::to_string(count) + " of each");
		auto exportAll = [&](V4L2BufferQueue &q, uint32_t atLeast, std::vector<LentBuffer> &out) -> std::string {
			for (unsigned i = 0; i < count; i++) {
				LentBuffer b;
				if ((r = q.exportBuffer(i, 0, b.dmabuf)) < 0)
					return std::string("EXPBUF: ") + strerror(-r);
				off_t size = ::lseek(b.dmabuf.get(), 0, SEEK_END);
				if (size < 0 || size < off_t(atLeast) || size % off_t(xen::kPageSize))
					return "a dma-buf of " + std::to_string(size) + " bytes for " +
					       std::to_string(atLeast) + " bytes";
				b.size = static_cast<size_t>(size);
				/* Mapped too (the bitstream's are already): stopLending() copies into them. */
				if ((r = q.mapBuffer(i)) < 0)
					return std::string("mmap: ") + strerror(-r);
				out.push_back(std::move(b));
			}
			return "";
		};
		if (std::string why = exportAll(dev.output(), rawSize, lent); !why.empty())
			return refuse("raw buffers: " + why);
		if (std::string why = exportAll(dev.capture(), dev.codedFormat().planes[0].sizeImage, lentCoded);
		    !why.empty())
			return refuse("bitstream buffers: " + why);
		dev.lendCoded(true); /* each waits for returnLentCoded() */
		userptr = false;
		return true;
	}

	/*
	 * Frames as dma-bufs of the guest's pages (encodeDmaBuf): one DMABUF
	 * slot per INPUT buffer index, so each buffer keeps its slot and vb2
	 * keeps its import attached and mapped from frame to frame.  Whether
	 * the driver can read such a dma-buf shows at the first QBUF.
	 */
	bool allocateForImport()
	{
		auto refuse = [&](const std::string &why) {
			XMB_LOG(logV4L2Enc, Info, "%s: the guest's frames cannot go in as dma-bufs (%s)", path.c_str(),
				why.c_str());
			return false;
		};
		if (!dev.output().supportsMemory(V4L2Memory::DmaBuf))
			return refuse("no DMABUF on its OUTPUT queue");
		int r = dev.allocateBuffers(XENVCODEC_MAX_BUFFERS, V4L2Memory::DmaBuf, kCodedBuffers);
		if (r < 0)
			return refuse(std::string("REQBUFS: ") + strerror(-r));
		if (dev.output().count() < XENVCODEC_MAX_BUFFERS)
			return refuse("it gives " + std::to_string(dev.output().count()) + " raw slots, the guest may create " +
				      std::to_string(XENVCODEC_MAX_BUFFERS));
		importing = true;
		userptr = false;
		return true;
	}

	/* Before any frame went in as a dma-buf: the OUTPUT queue for caller memory instead. */
	bool switchToCallerMemory()
	{
		importing = false;
		gen++;
		(void)dev.stop();
		if (Status a = allocateForCallerMemory(); !a) {
			fail(a.error().message);
			return false;
		}
		slots.assign(dev.output().count(), Slot{});
		if (int r = dev.start(); r < 0) {
			fail(std::string("STREAMON failed: ") + strerror(-r));
			return false;
		}
		return true;
	}

	/* Frames in the caller's memory: USERPTR where allowed, else MMAP and a copy. */
	Status allocateForCallerMemory()
	{
		/* Dom0's own pages (be-alloc) are user memory like any other: no foreign frame, nothing read-only. */
		userptr = (foreignUserPtr || params.framesInDom0Memory) &&
			  dev.output().supportsMemory(V4L2Memory::UserPtr);
		if (!foreignUserPtr && !params.framesInDom0Memory)
			XMB_LOG(logV4L2Enc, Info,
				"%s: guest pages are not given to the driver (read-only guest frames, which vb2 "
				"refuses to pin; on an x86 PV Dom0 a vmalloc driver must not vmap foreign pages "
				"at all): MMAP and a copy per frame",
				path.c_str());
		int r = dev.allocateBuffers(XENVCODEC_MAX_BUFFERS, userptr ? V4L2Memory::UserPtr : V4L2Memory::Mmap,
					    kCodedBuffers);
		if (r < 0 && userptr) {
			XMB_LOG(logV4L2Enc, Info, "%s: USERPTR refused (%s): MMAP and a copy per frame",
				path.c_str(), strerror(-r));
			userptr = false;
			r = dev.allocateBuffers(XENVCODEC_MAX_BUFFERS, V4L2Memory::Mmap, kCodedBuffers);
		}
		if (r < 0)
			return Error{ r, std::string("buffer allocation failed: ") + strerror(-r) };
		if (!userptr) {
			XMB_LOG(logV4L2Enc, Warn,
				"%s: the encoder does not read guest pages in place (not USERPTR): every raw "
				"frame is copied (%u bytes, counted in raw-bytes-copied)",
				path.c_str(), rawSize);
			for (unsigned i = 0; i < dev.output().count(); i++)
				if ((r = dev.output().mapBuffer(i)) < 0)
					return Error{ r, std::string("OUTPUT buffers cannot be mapped: ") + strerror(-r) };
		}
		return {};
	}

	~Impl()
	{
		if (registered)
			loop.removeFd(dev.fd());
	}

	size_t busySlots() const
	{
		size_t n = 0;
		for (const Slot &s : slots)
			n += s.busy;
		return n;
	}

	void fail(const std::string &what)
	{
		if (failed)
			return;
		failed = true;
		XMB_LOG(logV4L2Enc, Error, "%s: %s", path.c_str(), what.c_str());
		sink.error(path + ": " + what);
	}

	/*
	 * Give the waiting frames OUTPUT slots, in order; then start a requested
	 * drain.  A lent buffer's frame goes to its own slot (free: the guest
	 * cannot queue a buffer the encoder still holds); while lending, no
	 * other frame may take a slot, the guest may be rendering into it.
	 */
	void pump()
	{
		auto st = dev.state();
		while (!failed && !waiting.empty() && st == V4L2M2MEncoder::State::Streaming && !stopIssued) {
			unsigned idx = 0;
			if (waiting.front().lent >= 0 || waiting.front().dmabufIndex >= 0) {
				/* Its own slot: a lent buffer is that slot; an import stays attached to it. */
				idx = static_cast<unsigned>(std::max(waiting.front().lent, waiting.front().dmabufIndex));
				if (idx >= slots.size() || slots[idx].busy)
					break;
			} else if (!lent.empty() || importing) {
				Frame f = std::move(waiting.front());
				waiting.pop_front();
				if (f.release)
					f.release();
				fail(importing ? "a frame in mapped memory while taking dma-bufs"
					       : "a frame outside the lent buffers while lending");
				break;
			} else {
				while (idx < slots.size() && slots[idx].busy)
					idx++;
				if (idx == slots.size())
					break;
			}
			Frame f = std::move(waiting.front());
			waiting.pop_front();
			if (int r = submit(idx, f); r < 0) {
				if (f.release)
					f.release();
				fail(std::string("QBUF of a raw frame failed: ") + strerror(-r));
				break;
			}
		}
		if (draining && !stopIssued && waiting.empty())
			issueDrain();
		checkEmulatedDrain();
	}

	/* QBUF frame \a f into slot \a idx; on failure \a f is left as it was (not released). */
	int submit(unsigned idx, Frame &f)
	{
		if (f.key || forceNextKey) {
			int r = dev.forceKeyFrame();
			if (r < 0)
				XMB_LOG(logV4L2Enc, Debug, "%s: cannot force a key frame: %s", path.c_str(),
					strerror(-r));
			forceNextKey = false;
		}
		V4L2QueueArgs args;
		args.timestampNs = tsOfSeq(f.seq);
		args.planes[0].bytesUsed = rawSize;
		const bool inPlace = f.lent >= 0 || f.dmabufFd >= 0 || userptr;
		if (f.lent >= 0) {
			/* The guest rendered into this very buffer: nothing to move. */
		} else if (f.dmabufFd >= 0) {
			/* The device reads the guest's pages through the dma-buf. */
			args.planes[0].fd = f.dmabufFd;
			args.planes[0].length = 0; /* the dma-buf's size */
		} else if (userptr) {
			/* The driver reads the guest's pages in place (USERPTR pins them). */
			args.planes[0].userptr = const_cast<uint8_t *>(f.data);
			args.planes[0].length = rawSize;
		} else {
			unsigned char *dst = dev.output().planeData(idx, 0);
			std::memcpy(dst, f.data, rawSize);
			rawCopied += rawSize;
		}
		int r = dev.queueRaw(idx, args);
		if (r < 0) {
			if (!inPlace)
				rawCopied -= rawSize;
			return r;
		}
		slots[idx].busy = true;
		if (inPlace) {
			slots[idx].release = std::move(f.release);
		} else if (f.release) {
			f.release(); /* copied: the guest may have its frame back now */
		}
		f.release = nullptr;
		queuedAt[f.seq] = monotonicNs();
		return 0;
	}

	void issueDrain()
	{
		stopIssued = true;
		int r = dev.drain();
		if (r == -ENOTSUP) {
			emulatedDrain = true;
			XMB_LOG(logV4L2Enc, Debug, "%s: no encoder commands: drain by emptying the queues",
				path.c_str());
		} else if (r < 0) {
			fail(std::string("V4L2_ENC_CMD_STOP failed: ") + strerror(-r));
		}
	}

	void checkEmulatedDrain()
	{
		if (!emulatedDrain || !draining || busySlots() || !waiting.empty())
			return;
		finishDrain();
	}

	void finishDrain()
	{
		draining = false;
		sink.drained();
	}

	void deliver(const EncodedFrame &f)
	{
		Bitstream b;
		b.data = f.data;
		b.size = f.bytesUsed;
		b.key = f.keyFrame;
		b.seq = seqOfTs(f.timestampNs);
		auto it = queuedAt.find(b.seq);
		if (it != queuedAt.end()) {
			b.encodeNs = monotonicNs() - it->second;
			queuedAt.erase(queuedAt.begin(), std::next(it));
		}
		if (!lentCoded.empty()) {
			/* Lent: the guest reads it where it is; it stays out of the driver until returned. */
			b.lent = static_cast<int>(f.index);
			dev.holdCoded(f.index);
			sink.bitstream(std::move(b));
			return;
		}
		/* The CAPTURE buffer is the bitstream's memory until the session copied it. */
		std::weak_ptr<Impl> weak = weak_from_this();
		unsigned index = f.index;
		uint64_t g = gen;
		b.hold = std::shared_ptr<void>(nullptr, [weak, index, g](void *) {
			auto self = weak.lock();
			if (!self || self->gen != g)
				return;
			auto st = self->dev.state();
			if (st != V4L2M2MEncoder::State::Streaming && st != V4L2M2MEncoder::State::Draining)
				return; /* resume()/start() queue every CAPTURE buffer */
			int r = self->dev.requeueCoded(index);
			if (r < 0)
				self->fail(std::string("requeue of a bitstream buffer failed: ") + strerror(-r));
		});
		sink.bitstream(std::move(b));
	}

	/* Edge-triggered: drain both queues and the events to EAGAIN. */
	void onDevice()
	{
		if (failed)
			return;
		V4L2M2MEncoder::Events ev;
		int r = dev.handleEvents(ev);
		if (r < 0)
			return fail(std::string("event handling failed: ") + strerror(-r));
		for (;;) {
			EncodedFrame f;
			r = dev.dequeueCoded(f);
			if (r == -EAGAIN || r == -EPIPE)
				break;
			if (r < 0)
				return fail(std::string("DQBUF of the bitstream failed: ") + strerror(-r));
			if (f.bytesUsed && f.data)
				deliver(f);
			else if (!f.last)
				(void)dev.requeueCoded(f.index); /* empty, not the end: reuse */
			if (f.last) {
				stopIssued = true;
				if (draining)
					finishDrain();
			}
		}
		for (;;) {
			unsigned idx = 0;
			r = dev.dequeueRaw(idx);
			if (r == -EAGAIN || r == -EPIPE)
				break;
			if (r < 0)
				return fail(std::string("DQBUF of a raw frame failed: ") + strerror(-r));
			if (idx < slots.size() && slots[idx].busy) {
				slots[idx].busy = false;
				if (auto rel = std::move(slots[idx].release))
					rel();
				slots[idx].release = nullptr;
			}
		}
		pump();
	}

	/* Every frame the guest gave us is released; nothing is queued after this. */
	void releaseAll()
	{
		for (Slot &s : slots) {
			s.busy = false;
			if (auto rel = std::move(s.release))
				rel();
			s.release = nullptr;
		}
		while (!waiting.empty()) {
			Frame f = std::move(waiting.front());
			waiting.pop_front();
			if (f.release)
				f.release();
		}
		queuedAt.clear();
	}
};

V4L2Encoder::V4L2Encoder(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

V4L2Encoder::~V4L2Encoder()
{
	stop();
}

/**
 * \brief Open and configure the encoder at \a path for \a p and start it
 *
 * \return the encoder, or an Error naming the device and what it refused:
 * -ENODEV (not an encoder), -EINVAL (format/size it will not take as is),
 * -ENOTSUP (a raw format in several memory planes, a rate control it lacks)
 */
Result<std::unique_ptr<V4L2Encoder>> V4L2Encoder::create(const EncodeParams &p,
							  service::EventLoop &loop,
							  const std::string &path, EncoderSink sink,
							  bool foreignUserPtr, DeviceIO &io)
{
	auto impl = std::make_shared<Impl>(loop, io, std::move(sink));
	impl->params = p;
	impl->path = path;
	V4L2M2MEncoder &dev = impl->dev;
	auto err = [&](int code, const std::string &what) {
		return Error{ code, path + ": " + what };
	};
	if (dev.open(path) < 0)
		return err(-ENODEV, "not a V4L2 M2M encoder (or cannot be opened)");
	uint32_t coded = v4l2CodedFourcc(p.codec);
	if (!coded)
		return err(-EINVAL, "unknown codec");

	EncoderConfig cfg;
	cfg.rawFourcc = p.rawFourcc;
	cfg.codedFourcc = coded;
	cfg.width = p.width;
	cfg.height = p.height;
	cfg.interval = { p.rateDen, p.rateNum };
	if (int r = dev.configure(cfg); r < 0)
		return err(r == -EINVAL ? -EINVAL : r,
			   "does not encode " + fourccToString(p.rawFourcc) + " " + std::to_string(p.width) +
				   "x" + std::to_string(p.height) + " to " + fourccToString(coded));
	if (cfg.width != p.width || cfg.height != p.height)
		return err(-EINVAL, "aligns " + std::to_string(p.width) + "x" + std::to_string(p.height) +
					    " to " + std::to_string(cfg.width) + "x" +
					    std::to_string(cfg.height) + ": ask for that size");
	const V4L2Format &rf = dev.rawFormat();
	if (rf.numPlanes != 1)
		return err(-ENOTSUP, "raw format in " + std::to_string(rf.numPlanes) +
					     " memory planes: vcodec frames are one buffer");

	FrameLayout fl = rf.frameLayout();
	V4L2Encoder::Impl &s = *impl;
	s.rawSize = rf.planes[0].sizeImage;
	RawLayout layout;
	layout.size = s.rawSize;
	layout.numPlanes = static_cast<uint8_t>(std::min<unsigned>(fl.numPlanes, XENVCODEC_MAX_PLANE));
	for (unsigned i = 0; i < layout.numPlanes; i++) {
		layout.offset[i] = fl.planes[i].offset;
		layout.stride[i] = fl.planes[i].stride;
	}

	EncoderParams ep;
	switch (p.rcMode) {
	case XENVCODEC_RC_VBR: ep.bitrateMode = V4L2_MPEG_VIDEO_BITRATE_MODE_VBR; break;
	case XENVCODEC_RC_CBR: ep.bitrateMode = V4L2_MPEG_VIDEO_BITRATE_MODE_CBR; break;
	default: return err(-ENOTSUP, "constant-QP rate control is not offered for V4L2 encoders");
	}
	if (p.codec != XENVCODEC_CODEC_JPEG)
		ep.bitrate = p.bitrate;
	if (p.gop)
		ep.gopSize = p.gop;
	EncoderParams applied;
	if (int r = dev.setParams(ep, &applied); r < 0)
		return err(r, std::string("refuses the rate-control parameters: ") + strerror(-r));
	if (p.rcMode == XENVCODEC_RC_CBR && !applied.bitrateMode)
		return err(-ENOTSUP, "has no bitrate-mode control: CBR is not available");

	s.foreignUserPtr = foreignUserPtr;
	if (!p.lendBuffers || !s.lendOwnBuffers(p.lendBuffers))
		if (!p.importRawDmaBufs || !s.allocateForImport())
			if (Status a = s.allocateForCallerMemory(); !a)
				return err(a.error().code, a.error().message);
	s.slots.resize(dev.output().count());
	int r = dev.start();
	if (r < 0)
		return err(r, std::string("STREAMON failed: ") + strerror(-r));

	std::weak_ptr<Impl> weak = impl;
	Status added = loop.addFd(
		dev.fd(),
		[weak](uint32_t) {
			if (auto self = weak.lock())
				self->onDevice();
		},
		EPOLLIN | EPOLLOUT | EPOLLPRI | EPOLLET);
	if (!added)
		return err(-EIO, "cannot watch the device: " + added.error().message);
	s.registered = true;

	auto enc = std::unique_ptr<V4L2Encoder>(new V4L2Encoder(std::move(impl)));
	enc->layout_ = layout;
	XMB_LOG(logV4L2Enc, Info, "%s", enc->description().c_str());
	return enc;
}

std::string V4L2Encoder::description() const
{
	const Impl &s = *impl_;
	return "V4L2 " + s.path + " (" + fourccToString(s.params.rawFourcc) + " " +
	       std::to_string(s.params.width) + "x" + std::to_string(s.params.height) + " -> " +
	       fourccToString(v4l2CodedFourcc(s.params.codec)) + ", raw frames " +
	       (!s.lent.empty() ? "in its own buffers, granted to the guest (zero-copy)"
		: s.importing	 ? "the guest's pages as dma-bufs (DMABUF zero-copy)"
		: s.userptr	 ? "USERPTR zero-copy"
				 : "copied into MMAP") +
	       (!s.lentCoded.empty() ? ", bitstream in its own buffers, granted" : "") + ")";
}

Status V4L2Encoder::encode(const uint8_t *data, uint64_t seq, uint64_t /*timestamp*/, bool forceKey,
			   std::function<void()> release)
{
	Impl &s = *impl_;
	if (s.failed) {
		if (release)
			release();
		return Error{ -EIO, s.path + ": the encoder failed" };
	}
	s.waiting.push_back({ data, -1, seq, forceKey, std::move(release) });
	s.pump();
	return {};
}

Status V4L2Encoder::encodeLent(unsigned index, uint64_t seq, uint64_t /*timestamp*/, bool forceKey,
			       std::function<void()> release)
{
	Impl &s = *impl_;
	if (s.failed || index >= s.lent.size()) {
		if (release)
			release();
		return Error{ s.failed ? -EIO : -EINVAL,
			      s.path + (s.failed ? ": the encoder failed" : ": not a lent buffer") };
	}
	s.waiting.push_back({ nullptr, static_cast<int>(index), seq, forceKey, std::move(release) });
	s.pump();
	return {};
}

bool V4L2Encoder::importsRawDmaBufs() const
{
	return impl_->importing;
}

Status V4L2Encoder::encodeDmaBuf(unsigned index, int fd, uint64_t seq, uint64_t /*timestamp*/, bool forceKey,
				 std::function<void()> release)
{
	Impl &s = *impl_;
	if (!s.failed && !s.importing)
		return Error{ -ENOTSUP, s.path + ": frames are not taken as dma-bufs" };
	if (s.failed || index >= s.slots.size() || fd < 0) {
		if (release)
			release();
		return Error{ s.failed ? -EIO : -EINVAL,
			      s.path + (s.failed ? ": the encoder failed" : ": not a raw slot or no dma-buf") };
	}
	Impl::Frame f{ nullptr, -1, seq, forceKey, std::move(release), static_cast<int>(index), fd };
	if (!s.imported && s.waiting.empty() && !s.slots[index].busy && !s.stopIssued &&
	    s.dev.state() == V4L2M2MEncoder::State::Streaming) {
		/*
		 * The first: handed to the driver now (PREPARE_BUF maps it without
		 * queueing), so one that cannot read such a dma-buf says so while
		 * nothing depends on it -- vb2-vmalloc needs dma_buf_vmap(), which
		 * gntdev's exports lack.
		 */
		V4L2QueueArgs args;
		args.planes[0].fd = fd;
		args.planes[0].bytesUsed = s.rawSize;
		int r = s.dev.output().prepareBuffer(index, args);
		if (r == -ENOTTY)
			r = 0; /* a driver without PREPARE_BUF: the QBUF tells */
		if (r == 0)
			r = s.submit(index, f);
		if (r == 0) {
			s.imported = true;
			XMB_LOG(logV4L2Enc, Info, "%s: the guest's frames go in as dma-bufs of its pages", s.path.c_str());
			return {};
		}
		XMB_LOG(logV4L2Enc, Info,
			"%s: cannot read the guest's pages as a dma-buf (%s): frames in mapped guest pages instead",
			s.path.c_str(), strerror(-r));
		if (!s.switchToCallerMemory())
			return Error{ -EIO, s.path + ": the encoder failed" }; /* f.release dropped: never taken */
		return Error{ -ENOTSUP, s.path + ": the driver cannot read the guest's pages as a dma-buf" };
	}
	s.imported = true;
	s.waiting.push_back(std::move(f));
	s.pump();
	return {};
}

bool V4L2Encoder::stopImportingRawDmaBufs()
{
	Impl &s = *impl_;
	if (!s.importing)
		return true;
	if (s.imported)
		return false;
	XMB_LOG(logV4L2Enc, Info, "%s: the guest's frames come in mapped pages", s.path.c_str());
	return s.switchToCallerMemory();
}

const std::vector<LentBuffer> &V4L2Encoder::lentRawBuffers() const
{
	return impl_->lent;
}

const std::vector<LentBuffer> &V4L2Encoder::lentCodedBuffers() const
{
	return impl_->lentCoded;
}

Status V4L2Encoder::returnLentCoded(unsigned index)
{
	Impl &s = *impl_;
	if (index >= s.lentCoded.size())
		return Error{ -EINVAL, s.path + ": not a lent bitstream buffer" };
	int r = s.dev.releaseCoded(index);
	if (r == -EINVAL)
		return Error{ -EINVAL, s.path + ": bitstream buffer " + std::to_string(index) + " is not lent out" };
	if (r < 0) {
		s.fail(std::string("QBUF of a returned bitstream buffer failed: ") + strerror(-r));
		return Error{ r, s.path + ": QBUF failed" };
	}
	return {};
}

bool V4L2Encoder::reclaimLentCoded(unsigned index)
{
	Impl &s = *impl_;
	if (index >= s.lentCoded.size() || s.dev.capture().isQueued(index))
		return false;
	s.dev.holdCoded(index);
	return true;
}

/** \brief Every bitstream buffer back to the driver; Bitstreams carry data (mapped). */
void V4L2Encoder::stopLendingCoded()
{
	Impl &s = *impl_;
	if (s.lentCoded.empty())
		return;
	for (unsigned i = 0; i < s.lentCoded.size(); i++)
		(void)s.dev.releaseCoded(i);
	s.dev.lendCoded(false);
	s.lentCoded.clear();
	XMB_LOG(logV4L2Enc, Warn, "%s: its bitstream buffers were not granted: each bitstream is copied",
		s.path.c_str());
}

/** \brief Frames through encode() from now on, copied into the OUTPUT buffers (mapped). */
void V4L2Encoder::stopLending()
{
	Impl &s = *impl_;
	if (s.lent.empty())
		return;
	for (const Impl::Frame &f : s.waiting)
		if (f.lent >= 0)
			return; /* too late: the session only calls this before any lent frame */
	s.lent.clear();
	XMB_LOG(logV4L2Enc, Warn,
		"%s: its buffers were not granted: every raw frame is copied (%u bytes, counted in "
		"raw-bytes-copied)", s.path.c_str(), s.rawSize);
}

Status V4L2Encoder::setBitrate(uint32_t bitsPerSecond)
{
	EncoderParams p;
	p.bitrate = bitsPerSecond;
	EncoderParams applied;
	int r = impl_->dev.setParams(p, &applied);
	if (r < 0)
		return Error{ r, impl_->path + ": bitrate refused: " + strerror(-r) };
	if (!applied.bitrate)
		return Error{ -ENOTSUP, impl_->path + ": has no bitrate control" };
	impl_->params.bitrate = bitsPerSecond;
	return {};
}

Status V4L2Encoder::drain()
{
	Impl &s = *impl_;
	if (s.failed)
		return Error{ -EIO, s.path + ": the encoder failed" };
	if (s.draining)
		return Error{ -EBUSY, s.path + ": already draining" };
	s.draining = true;
	s.stopIssued = false;
	s.pump();
	return {};
}

/** \brief Streams off; every frame is released on return. */
void V4L2Encoder::stop()
{
	Impl &s = *impl_;
	s.gen++;
	if (s.dev.isOpen())
		(void)s.dev.stop();
	s.releaseAll();
	s.draining = false;
	s.stopIssued = false;
	s.emulatedDrain = false;
}

Status V4L2Encoder::restart()
{
	Impl &s = *impl_;
	int r = 0;
	switch (s.dev.state()) {
	case V4L2M2MEncoder::State::Drained: r = s.dev.resume(); break;
	case V4L2M2MEncoder::State::Configured: r = s.dev.start(); break;
	case V4L2M2MEncoder::State::Streaming: break; /* after an emulated drain */
	default: r = -EBADFD; break;
	}
	if (r < 0)
		return Error{ r, s.path + ": restart failed: " + strerror(-r) };
	s.failed = false;
	s.draining = false;
	s.stopIssued = false;
	s.emulatedDrain = false;
	s.forceNextKey = true; /* a restarted stream begins with a key frame */
	s.pump();
	return {};
}

uint64_t V4L2Encoder::rawBytesCopied() const
{
	return impl_->rawCopied;
}

size_t V4L2Encoder::framesInFlight() const
{
	return impl_->busySlots() + impl_->waiting.size();
}

bool V4L2Encoder::zeroCopy() const
{
	return impl_->userptr || impl_->importing || !impl_->lent.empty();
}

EncoderFactory v4l2EncoderFactory(service::EventLoop &loop, std::string path, bool foreignUserPtr,
				  DeviceIO &io, bool shareOwnBuffers)
{
	return [&loop, path = std::move(path), foreignUserPtr, &io, shareOwnBuffers](
		       const EncodeParams &p, const proto::CodecCaps &,
		       EncoderSink sink) -> Result<std::unique_ptr<Encoder>> {
		EncodeParams q = p;
		if (!shareOwnBuffers)
			q.lendBuffers = 0;
		auto e = V4L2Encoder::create(q, loop, path, std::move(sink), foreignUserPtr, io);
		if (!e)
			return e.error();
		return std::unique_ptr<Encoder>(std::move(*e));
	};
}

} /* namespace xmb::vcodec */
