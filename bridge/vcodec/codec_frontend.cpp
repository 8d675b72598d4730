/* SPDX-License-Identifier: MIT */
#include "bridge/vcodec/codec_frontend.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <poll.h>

extern "C" {
#include <xen/io/xenbus.h>
}

#include "protocol/base/log.h"
#include "protocol/gref_directory.h"

namespace xmb::vcodec {

XMB_LOG_DEFINE_CATEGORY(logFe, "vcodec-front");

namespace {

constexpr uint32_t kMaxBufferBytes = 256u << 20;


std::string fePathOf(xen::Platform &pf, uint32_t devid)
{
	return xen::XenStore::domainPath(pf.self) + "/device/" XENVCODEC_DRIVER_NAME "/" +
	       std::to_string(devid);
}

} /* namespace */

CodecFrontend::CodecFrontend(xen::Platform &platform) : pf_(platform), conn_(platform, "vcodec") {}

void CodecFrontend::interrupt()
{
	conn_.interrupt();
}

void CodecFrontend::clearInterrupt()
{
	conn_.clearInterrupt();
}

CodecFrontend::~CodecFrontend()
{
	disconnect();
}

Result<proto::VcodecConfig> CodecFrontend::describe(xen::Platform &pf, uint32_t devid)
{
	std::string fe = fePathOf(pf, devid);
	auto c = proto::parseVcodecConfig(xen::directoryView(*pf.store, fe));
	if (!c)
		return Error{ c.error().code, fe + ": " + c.error().message };
	return c;
}

Status CodecFrontend::connect(uint32_t devid, Millis timeout)
{
	if (conn_.isOpen())
		return Error{ -EALREADY, "connect: already connected" };
	auto deadline = Clock::now() + timeout;
	devid_ = devid;
	const std::string fePath = fePathOf(pf_, devid);
	std::string bePath;
	xen::DomId backendId = 0;
	/* The Dom0 service may create the device after this guest started: wait (on a watch) for it. */
	Status found = conn_.waitForDevice(fePath, deadline, [&]() -> Status {
		auto be = pf_.store->read(fePath + "/backend");
		if (!be)
			return Error{ be.error().code, fePath + "/backend: " + be.error().message };
		auto beId = pf_.store->read(fePath + "/backend-id");
		if (!beId)
			return Error{ beId.error().code, fePath + "/backend-id: " + beId.error().message };
		if (be->empty() || (*be)[0] != '/' || be->size() > 256)
			return Error{ -EINVAL, "backend path '" + *be + "'" };
		auto id = proto::parseUnsigned("backend-id", *beId, 0x7fef);
		if (!id)
			return id.error();
		bePath = *be;
		backendId = static_cast<xen::DomId>(*id);
		return {};
	});
	if (!found)
		return Error{ found.error().code, "connect: " + found.error().message };
	auto caps = describe(pf_, devid);
	if (!caps)
		return caps.error();
	caps_ = *caps;
	auto versions = pf_.store->read(bePath + "/versions");
	if (!versions || versions->find(XENVCODEC_PROTOCOL_VERSION) == std::string::npos)
		return Error{ -EPROTONOSUPPORT, "connect: backend does not speak vcodec version 1" };

	conn_.setDevice(fePath, bePath, backendId);
	Status st = conn_.open(
		deadline,
		[](xen::Gref ring, xen::Port req, xen::Gref evt, xen::Port evtPort) {
			return proto::formatVcodecTransport({ XENVCODEC_PROTOCOL_VERSION, ring, req, evt, evtPort });
		},
		[this](uint8_t *ring, uint8_t *events) {
			ring_ = proto::CodecFrontRing(ring, xen::kPageSize);
			events_ = proto::CodecEventReader(events);
		});
	if (!st) {
		releaseTransport();
		return Error{ st.error().code, "connect vcodec " + std::to_string(devid) + ": " + st.error().message };
	}
	connected_ = true;
	return {};
}

void CodecFrontend::releaseTransport()
{
	in_.clear();
	out_.clear();
	ring_ = {};
	events_ = {};
	conn_.release();
	connected_ = false;
	waitingId_.reset();
	response_.reset();
	layout_.reset();
	evq_.clear();
}

void CodecFrontend::disconnect(Millis timeout)
{
	if (!conn_.isOpen())
		return;
	if (connected_ && !conn_.broken()) {
		Millis saved = timeout_;
		timeout_ = std::min(timeout_, timeout);
		(void)stop();
		for (uint8_t t = 0; t < 2; t++)
			for (size_t i = 0; i < (t ? out_ : in_).size() && !conn_.broken(); i++)
				if ((t ? out_ : in_)[i].created)
					(void)destroyBuffer(t, static_cast<uint8_t>(i));
		timeout_ = saved;
	}
	connected_ = false;
	conn_.close(timeout);
	releaseTransport();
}

std::vector<int> CodecFrontend::fds() const
{
	return conn_.fds();
}

void CodecFrontend::protocolError(const std::string &msg)
{
	stats_.protocolErrors++;
	XMB_LOG(logFe, Warn, "vcodec %u: backend protocol error: %s", devid_, msg.c_str());
}

Status CodecFrontend::processEvents()
{
	bool reqFired = false, evtFired = false;
	if (Status s = conn_.collect(reqFired, evtFired); !s)
		return s;
	if (conn_.isOpen() && !conn_.broken()) {
		for (;;) {
			auto p = ring_.finalCheck();
			if (p == proto::RingPoll::Overflow) {
				conn_.setBroken(Error{ -EPROTO, "response ring overflow" });
				break;
			}
			if (p == proto::RingPoll::Empty)
				break;
			while (ring_.pending()) {
				xenvcodec_resp r = ring_.take();
				if (waitingId_ && r.id == *waitingId_ && !response_)
					response_ = r;
				else
					protocolError("response with unknown id " + std::to_string(r.id));
			}
		}
	}
	bool consumed = false;
	if (conn_.isOpen() && !conn_.broken()) {
		for (;;) {
			bool overflow = false;
			auto e = events_.next(overflow);
			if (overflow) {
				conn_.setBroken(Error{ -EPROTO, "event page overflow" });
				break;
			}
			if (!e)
				break;
			consumed = true;
			handleEvent(*e);
		}
	}
	/* Tell Dom0 there is room again (it may hold a backlog of events). */
	if (consumed)
		(void)conn_.notifyEvents();
	conn_.rearm(reqFired, evtFired);
	return {};
}

void CodecFrontend::handleEvent(const xenvcodec_evt &e)
{
	CodecEvent ev;
	ev.type = e.type;
	switch (e.type) {
	case XENVCODEC_EVT_INPUT_DONE:
		ev.index = e.evt.input_done.index;
		ev.timestamp = e.evt.input_done.timestamp;
		if (ev.index >= in_.size() || !in_[ev.index].queued)
			return protocolError("INPUT_DONE for buffer " + std::to_string(ev.index) + " not queued");
		in_[ev.index].queued = false;
		break;
	case XENVCODEC_EVT_BITSTREAM_READY:
		ev.index = e.evt.bitstream.index;
		ev.key = e.evt.bitstream.flags & XENVCODEC_BS_FLAG_KEY;
		ev.bytesUsed = e.evt.bitstream.bytes_used;
		ev.timestamp = e.evt.bitstream.timestamp;
		ev.seq = e.evt.bitstream.seq;
		if (ev.index >= out_.size() || !out_[ev.index].queued)
			return protocolError("BITSTREAM_READY for buffer " + std::to_string(ev.index) + " not queued");
		out_[ev.index].queued = false;
		if (!layout_ || ev.bytesUsed > layout_->outSize)
			return protocolError("BITSTREAM_READY bytes_used beyond the buffer");
		break;
	case XENVCODEC_EVT_ERROR:
		ev.status = e.evt.error.status;
		break;
	case XENVCODEC_EVT_DRAINED:
		break;
	default:
		return protocolError("unknown event type " + std::to_string(e.type));
	}
	evq_.push_back(ev);
}

Status CodecFrontend::waitUntil(const std::function<bool()> &done, Clock::time_point deadline,
				const std::string &what)
{
	return conn_.waitUntil([this] { return processEvents(); }, done, deadline, what);
}

Result<xenvcodec_resp> CodecFrontend::request(xenvcodec_req req, const char *what)
{
	if (const auto &b = conn_.broken())
		return Error{ b->code, std::string(what) + ": " + b->message };
	if (!connected_)
		return Error{ -ENOTCONN, std::string(what) + ": not connected" };
	req.id = nextId_++;
	auto t0 = Clock::now();
	if (!ring_.push(req))
		return Error{ -EBUSY, std::string(what) + ": ring full" };
	waitingId_ = req.id;
	response_.reset();
	if (ring_.pushRequests())
		(void)conn_.notify();
	Status s = waitUntil([&] { return response_.has_value(); }, Clock::now() + timeout_, what);
	waitingId_.reset();
	if (!s)
		return s.error();
	xenvcodec_resp r = *response_;
	response_.reset();
	stats_.requests++;
	requestUsTotal_ += std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
	stats_.avgRequestUs = requestUsTotal_ / stats_.requests;
	if (r.operation != req.operation) {
		protocolError("response operation mismatch");
		return Error{ -EPROTO, std::string(what) + ": response for another operation" };
	}
	return r;
}

Result<xenvcodec_resp> CodecFrontend::call(xenvcodec_req req)
{
	return request(req, proto::codecOpName(req.operation).c_str());
}

static Status statusOf(const Result<xenvcodec_resp> &r, const char *what)
{
	if (!r)
		return r.error();
	if (r->status)
		return Error{ r->status, std::string(what) + ": backend answered " + std::to_string(r->status) };
	return {};
}

Result<xenvcodec_config> CodecFrontend::open(const xenvcodec_config &config)
{
	auto req = proto::makeCodecRequest(0, XENVCODEC_OP_OPEN);
	req.req.config = config;
	auto r = request(req, "OPEN");
	if (Status s = statusOf(r, "OPEN"); !s)
		return s.error();
	layout_.reset();
	return r->resp.config;
}

Result<CodecLayout> CodecFrontend::getLayout()
{
	auto r = request(proto::makeCodecRequest(0, XENVCODEC_OP_GET_LAYOUT), "GET_LAYOUT");
	if (Status s = statusOf(r, "GET_LAYOUT"); !s)
		return s.error();
	const auto &l = r->resp.layout;
	CodecLayout out;
	out.rawSize = l.raw_size;
	out.outSize = l.out_size;
	out.numPlanes = l.num_planes;
	out.minBuffers = l.min_buffers;
	out.maxBuffers = l.max_buffers;
	if (!out.rawSize || out.rawSize > kMaxBufferBytes || !out.outSize || out.outSize > kMaxBufferBytes ||
	    out.numPlanes == 0 || out.numPlanes > XENVCODEC_MAX_PLANE || !out.maxBuffers ||
	    out.maxBuffers > XENVCODEC_MAX_BUFFERS)
		return Error{ -EPROTO, "GET_LAYOUT: impossible layout" };
	for (unsigned p = 0; p < out.numPlanes; p++) {
		out.planeOffset[p] = l.plane_offset[p];
		out.planeStride[p] = l.plane_stride[p];
		if (out.planeOffset[p] >= out.rawSize)
			return Error{ -EPROTO, "GET_LAYOUT: plane beyond the buffer" };
	}
	layout_ = out;
	in_.resize(out.maxBuffers);
	out_.resize(out.maxBuffers);
	return out;
}

Status CodecFrontend::createBuffer(uint8_t type, uint8_t index)
{
	if (!layout_)
		return Error{ -EINVAL, "createBuffer: getLayout first" };
	auto &set = type == XENVCODEC_BUF_INPUT ? in_ : out_;
	if (index >= set.size() || set[index].created)
		return Error{ -EINVAL, "createBuffer: bad index" };
	uint32_t size = type == XENVCODEC_BUF_INPUT ? layout_->rawSize : layout_->outSize;
	size_t pages = proto::pagesFor(size);
	/* be-alloc: Dom0 allocates the buffer and writes its refs into our directory. */
	const bool beAlloc = caps_.beAlloc;
	xen::GrantShare data;
	if (!beAlloc) {
		/*
		 * INPUT read-only for Dom0, which never writes our raw frames --
		 * unless it hands them to its encoder as a dma-buf (input-dmabuf):
		 * gntdev maps the refs of such an export writable, so a read-only
		 * grant would make Dom0 fall back to mapping (and maybe copying).
		 */
		const bool writable = type == XENVCODEC_BUF_OUTPUT || caps_.inputDmaBuf;
		auto d = pf_.grants->share(conn_.backendId(), pages, writable);
		if (!d)
			return d.error();
		data = std::move(*d);
	}
	auto dir = pf_.grants->share(conn_.backendId(), proto::dirPagesFor(pages), beAlloc);
	if (!dir)
		return dir.error();
	std::vector<uint8_t *> dirPtrs;
	for (size_t i = 0; i < dir->pages(); i++)
		dirPtrs.push_back(dir->data() + i * xen::kPageSize);
	std::vector<proto::Gref> grefs = beAlloc ? std::vector<proto::Gref>(pages, 0) : data.refs();
	if (Status s = proto::writeGrefDirectory(dirPtrs, dir->refs(), grefs); !s)
		return s;
	auto req = proto::makeCodecRequest(0, XENVCODEC_OP_BUF_CREATE);
	req.req.buf_create.type = type;
	req.req.buf_create.index = index;
	req.req.buf_create.size = size;
	req.req.buf_create.gref_directory = dir->refs().at(0);
	if (type == XENVCODEC_BUF_INPUT)
		for (unsigned p = 0; p < layout_->numPlanes; p++)
			req.req.buf_create.plane_offset[p] = layout_->planeOffset[p];
	auto r = request(req, "BUF_CREATE");
	if (Status s = statusOf(r, "BUF_CREATE"); !s)
		return s;
	Buffer &b = set[index];
	if (beAlloc) {
		/* INPUT: we render into Dom0's pages; OUTPUT: we only read the bitstream. */
		auto m = xen::mapBackendBuffer(pf_, conn_.backendId(), *dir, size, type == XENVCODEC_BUF_INPUT);
		if (!m) {
			auto d = proto::makeCodecRequest(0, XENVCODEC_OP_BUF_DESTROY);
			d.req.buf_index.type = type;
			d.req.buf_index.index = index;
			(void)request(d, "BUF_DESTROY"); /* created over there, unusable here */
			return Error{ m.error().code, "BUF_CREATE (be-alloc): " + m.error().message };
		}
		b.mapped = std::move(*m);
	}
	b.data = std::move(data);
	b.dir = std::move(*dir);
	b.created = true;
	b.queued = false;
	return {};
}

Status CodecFrontend::createBuffers(uint8_t numInput, uint8_t numOutput)
{
	if (!layout_)
		if (auto l = getLayout(); !l)
			return l.error();
	for (uint8_t i = 0; i < numInput; i++)
		if (Status s = createBuffer(XENVCODEC_BUF_INPUT, i); !s)
			return s;
	for (uint8_t i = 0; i < numOutput; i++)
		if (Status s = createBuffer(XENVCODEC_BUF_OUTPUT, i); !s)
			return s;
	return {};
}

Status CodecFrontend::destroyBuffer(uint8_t type, uint8_t index)
{
	auto req = proto::makeCodecRequest(0, XENVCODEC_OP_BUF_DESTROY);
	req.req.buf_index.type = type;
	req.req.buf_index.index = index;
	auto r = request(req, "BUF_DESTROY");
	if (Status s = statusOf(r, "BUF_DESTROY"); !s)
		return s;
	auto &set = type == XENVCODEC_BUF_INPUT ? in_ : out_;
	if (index < set.size())
		set[index] = Buffer{};
	return {};
}

Status CodecFrontend::queueRaw(uint8_t index, uint64_t timestamp, uint8_t flags)
{
	auto req = proto::makeCodecRequest(0, XENVCODEC_OP_QUEUE_RAW);
	req.req.queue_raw.index = index;
	req.req.queue_raw.flags = flags;
	req.req.queue_raw.timestamp = timestamp;
	/* Mark first: INPUT_DONE may arrive with (or before) the response. */
	bool wasQueued = index < in_.size() && in_[index].queued;
	if (index < in_.size())
		in_[index].queued = true;
	auto r = request(req, "QUEUE_RAW");
	if (Status s = statusOf(r, "QUEUE_RAW"); !s) {
		if (index < in_.size())
			in_[index].queued = wasQueued;
		return s;
	}
	return {};
}

Status CodecFrontend::queueOut(uint8_t index)
{
	auto req = proto::makeCodecRequest(0, XENVCODEC_OP_QUEUE_OUT);
	req.req.buf_index.type = XENVCODEC_BUF_OUTPUT;
	req.req.buf_index.index = index;
	/* Mark first: the bitstream event may arrive while we wait for the response. */
	bool wasQueued = index < out_.size() && out_[index].queued;
	if (index < out_.size())
		out_[index].queued = true;
	auto r = request(req, "QUEUE_OUT");
	if (Status s = statusOf(r, "QUEUE_OUT"); !s) {
		if (index < out_.size())
			out_[index].queued = wasQueued;
		return s;
	}
	return {};
}

Status CodecFrontend::forceKeyFrame()
{
	return statusOf(request(proto::makeCodecRequest(0, XENVCODEC_OP_FORCE_KEY), "FORCE_KEY"), "FORCE_KEY");
}

Status CodecFrontend::setBitrate(uint32_t bps)
{
	auto req = proto::makeCodecRequest(0, XENVCODEC_OP_SET_BITRATE);
	req.req.bitrate.bitrate = bps;
	return statusOf(request(req, "SET_BITRATE"), "SET_BITRATE");
}

Status CodecFrontend::drain()
{
	return statusOf(request(proto::makeCodecRequest(0, XENVCODEC_OP_DRAIN), "DRAIN"), "DRAIN");
}

Status CodecFrontend::stop()
{
	return statusOf(request(proto::makeCodecRequest(0, XENVCODEC_OP_STOP), "STOP"), "STOP");
}

std::span<uint8_t> CodecFrontend::inputData(uint8_t index)
{
	if (index >= in_.size() || !in_[index].created || !layout_)
		return {};
	return { in_[index].memory(), layout_->rawSize };
}

std::span<const uint8_t> CodecFrontend::outputData(uint8_t index) const
{
	if (index >= out_.size() || !out_[index].created || !layout_)
		return {};
	return { out_[index].memory(), layout_->outSize };
}

std::vector<xen::Gref> CodecFrontend::bufferRefs(uint8_t type, uint8_t index) const
{
	const auto &set = type == XENVCODEC_BUF_INPUT ? in_ : out_;
	if (index >= set.size() || !set[index].created)
		return {};
	return set[index].data.refs();
}

Result<CodecEvent> CodecFrontend::waitEvent(Millis timeout)
{
	if (timeout.count() < 0)
		timeout = timeout_;
	Status s = waitUntil([&] { return !evq_.empty(); }, Clock::now() + timeout, "waiting for an event");
	if (!s)
		return s.error();
	CodecEvent e = evq_.front();
	evq_.pop_front();
	return e;
}

std::optional<CodecEvent> CodecFrontend::takeEvent()
{
	(void)processEvents();
	if (evq_.empty())
		return std::nullopt;
	CodecEvent e = evq_.front();
	evq_.pop_front();
	return e;
}

} /* namespace xmb::vcodec */
