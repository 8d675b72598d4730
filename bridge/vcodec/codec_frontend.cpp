/* SPDX-License-Identifier: MIT */
#include "bridge/vcodec/codec_frontend.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <thread>

extern "C" {
#include <xen/io/xenbus.h>
}

#include "bridge/base/log.h"
#include "protocol/gref_directory.h"

namespace xmb::vcodec {

XMB_LOG_DEFINE_CATEGORY(logFe, "vcodec-front");

namespace {

constexpr uint32_t kMaxBufferBytes = 256u << 20;

proto::XsView storeView(xen::XenStore &xs, const std::string &dir)
{
	proto::XsView v;
	v.read = [&xs, dir](const std::string &rel) -> std::optional<std::string> {
		auto r = xs.read(dir + "/" + rel);
		if (!r)
			return std::nullopt;
		return std::move(r).value();
	};
	v.list = [&xs, dir](const std::string &rel) -> std::optional<std::vector<std::string>> {
		auto r = xs.list(dir + "/" + rel);
		if (!r)
			return std::nullopt;
		return std::move(r).value();
	};
	return v;
}

std::string fePathOf(xen::Platform &pf, uint32_t devid)
{
	return xen::XenStore::domainPath(pf.self) + "/device/" XENVCODEC_DRIVER_NAME "/" +
	       std::to_string(devid);
}

} /* namespace */

CodecFrontend::CodecFrontend(xen::Platform &platform)
	: pf_(platform), wake_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC))
{
}

void CodecFrontend::interrupt()
{
	interrupted_ = true;
	uint64_t one = 1;
	if (wake_)
		(void)!::write(wake_.get(), &one, sizeof(one));
}

void CodecFrontend::clearInterrupt()
{
	interrupted_ = false;
	uint64_t n;
	if (wake_)
		(void)!::read(wake_.get(), &n, sizeof(n));
}

CodecFrontend::~CodecFrontend()
{
	disconnect();
}

Result<proto::VcodecConfig> CodecFrontend::describe(xen::Platform &pf, uint32_t devid)
{
	std::string fe = fePathOf(pf, devid);
	auto c = proto::parseVcodecConfig(storeView(*pf.store, fe));
	if (!c)
		return Error{ c.error().code, fe + ": " + c.error().message };
	return c;
}

Status CodecFrontend::readBackendState()
{
	auto s = pf_.store->read(bePath_ + "/state");
	int state = 0;
	if (s) {
		auto v = proto::parseXenbusState(bePath_ + "/state", *s);
		if (!v)
			return v.error();
		state = *v;
	}
	backendState_ = state;
	bool gone = !s || state == XenbusStateClosing || state == XenbusStateClosed;
	if (gone && ringPage_ && !broken_)
		broken_ = Error{ -ENOTCONN, "backend " + bePath_ + " went away (state " +
						    std::to_string(state) + ")" };
	return {};
}

Status CodecFrontend::connect(uint32_t devid, Millis timeout)
{
	if (ringPage_)
		return Error{ -EALREADY, "connect: already connected" };
	auto deadline = Clock::now() + timeout;
	devid_ = devid;
	broken_.reset();
	fePath_ = fePathOf(pf_, devid);
	auto be = pf_.store->read(fePath_ + "/backend");
	auto beId = pf_.store->read(fePath_ + "/backend-id");
	/* The Dom0 service may create the device after this guest started: wait for it. */
	while ((!be || !beId) && Clock::now() < deadline && !cancelled()) {
		std::this_thread::sleep_for(Millis(50));
		be = pf_.store->read(fePath_ + "/backend");
		beId = pf_.store->read(fePath_ + "/backend-id");
	}
	if (cancelled())
		return Error{ -EINTR, "connect: interrupted" };
	if (!be || !beId)
		return Error{ -ENOENT, "connect: " + fePath_ + ": no backend/backend-id" };
	if (be->empty() || (*be)[0] != '/' || be->size() > 256)
		return Error{ -EINVAL, "connect: backend path '" + *be + "'" };
	bePath_ = *be;
	auto id = proto::parseUnsigned("backend-id", *beId, 0x7fef);
	if (!id)
		return id.error();
	backendId_ = static_cast<xen::DomId>(*id);
	auto caps = describe(pf_, devid);
	if (!caps)
		return caps.error();
	caps_ = *caps;
	auto versions = pf_.store->read(bePath_ + "/versions");
	if (!versions || versions->find(XENVCODEC_PROTOCOL_VERSION) == std::string::npos)
		return Error{ -EPROTONOSUPPORT, "connect: backend does not speak vcodec version 1" };

	watchToken_ = "xmb-vcodec-fe-" + std::to_string(devid);
	if (Status s = pf_.store->watch(bePath_ + "/state", watchToken_); !s)
		return s;
	watching_ = true;
	auto fail = [&](const Status &s) -> Status {
		(void)pf_.store->write(fePath_ + "/state", std::to_string(XenbusStateClosed));
		releaseTransport();
		return Error{ s.error().code, "connect vcodec " + std::to_string(devid) + ": " + s.error().message };
	};
	/* A frontend that was Closed before starts over (the backend answers InitWait). */
	if (auto st = pf_.store->read(fePath_ + "/state"); !st || *st != std::to_string(XenbusStateInitialising))
		if (Status s = pf_.store->write(fePath_ + "/state", std::to_string(XenbusStateInitialising)); !s)
			return fail(s);
	if (Status s = readBackendState(); !s)
		return fail(s);
	if (Status s = waitUntil([&] { return backendState_ == XenbusStateInitWait; }, deadline,
				 "waiting for backend InitWait");
	    !s)
		return fail(s);

	auto ring = pf_.grants->share(backendId_, 1, true);
	auto evpage = pf_.grants->share(backendId_, 1, true);
	if (!ring || !evpage)
		return fail(Error{ -ENOMEM, "sharing ring/event pages" });
	auto req = pf_.events->allocUnbound(backendId_);
	auto evt = pf_.events->allocUnbound(backendId_);
	if (!req || !evt)
		return fail(Error{ -ENOSPC, "allocating event channels" });
	ringPage_ = std::move(*ring);
	eventPage_ = std::move(*evpage);
	reqPort_ = std::move(*req);
	evtPort_ = std::move(*evt);
	ring_ = proto::CodecFrontRing(ringPage_.data(), xen::kPageSize);
	events_ = proto::CodecEventReader(eventPage_.data());
	proto::VcodecTransport t{ XENVCODEC_PROTOCOL_VERSION, ringPage_.refs().at(0), reqPort_.port(),
				  eventPage_.refs().at(0), evtPort_.port() };
	auto kv = proto::formatVcodecTransport(t);
	Status st = xen::runTransaction(*pf_.store, [&](xen::TxId tx) -> Status {
		for (const auto &[k, v] : kv)
			if (Status s = pf_.store->write(tx, fePath_ + "/" + k, v); !s)
				return s;
		return pf_.store->write(tx, fePath_ + "/state", std::to_string(XenbusStateInitialised));
	});
	if (!st)
		return fail(st);
	if (Status s = waitUntil([&] { return backendState_ == XenbusStateConnected; }, deadline,
				 "waiting for backend Connected");
	    !s)
		return fail(s);
	if (Status s = pf_.store->write(fePath_ + "/state", std::to_string(XenbusStateConnected)); !s)
		return fail(s);
	connected_ = true;
	return {};
}

void CodecFrontend::releaseTransport()
{
	in_.clear();
	out_.clear();
	ring_ = {};
	events_ = {};
	reqPort_.reset();
	evtPort_.reset();
	ringPage_.reset();
	eventPage_.reset();
	if (watching_) {
		(void)pf_.store->unwatch(bePath_ + "/state", watchToken_);
		watching_ = false;
	}
	connected_ = false;
	waitingId_.reset();
	response_.reset();
	layout_.reset();
	evq_.clear();
}

void CodecFrontend::disconnect(Millis timeout)
{
	if (!ringPage_ && !watching_)
		return;
	if (connected_ && !broken_) {
		Millis saved = timeout_;
		timeout_ = std::min(timeout_, timeout);
		(void)stop();
		for (uint8_t t = 0; t < 2; t++)
			for (size_t i = 0; i < (t ? out_ : in_).size() && !broken_; i++)
				if ((t ? out_ : in_)[i].created)
					(void)destroyBuffer(t, static_cast<uint8_t>(i));
		timeout_ = saved;
	}
	connected_ = false;
	(void)pf_.store->write(fePath_ + "/state", std::to_string(XenbusStateClosing));
	if (!broken_)
		(void)waitUntil([&] { return broken_.has_value(); }, Clock::now() + timeout,
				"waiting for the backend to close");
	releaseTransport();
	(void)pf_.store->write(fePath_ + "/state", std::to_string(XenbusStateClosed));
}

std::vector<int> CodecFrontend::fds() const
{
	return { pf_.events->fd(), pf_.store->fd() };
}

void CodecFrontend::protocolError(const std::string &msg)
{
	stats_.protocolErrors++;
	XMB_LOG(logFe, Warn, "vcodec %u: backend protocol error: %s", devid_, msg.c_str());
}

Status CodecFrontend::processEvents()
{
	bool reqFired = false, evtFired = false;
	for (;;) {
		auto p = pf_.events->pending();
		if (!p)
			return p.error();
		if (!p->has_value())
			break;
		if (reqPort_ && **p == reqPort_.port())
			reqFired = true;
		else if (evtPort_ && **p == evtPort_.port())
			evtFired = true;
	}
	bool changed = false;
	while (auto w = pf_.store->readWatch())
		if (w->token == watchToken_)
			changed = true;
	if (changed && watching_)
		if (Status s = readBackendState(); !s)
			return s;
	if (ringPage_ && !broken_) {
		for (;;) {
			auto p = ring_.finalCheck();
			if (p == proto::RingPoll::Overflow) {
				broken_ = Error{ -EPROTO, "response ring overflow" };
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
	if (eventPage_ && !broken_) {
		for (;;) {
			bool overflow = false;
			auto e = events_.next(overflow);
			if (overflow) {
				broken_ = Error{ -EPROTO, "event page overflow" };
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
		(void)evtPort_.notify();
	if (reqFired)
		(void)reqPort_.unmask();
	if (evtFired)
		(void)evtPort_.unmask();
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
	for (;;) {
		if (Status s = processEvents(); !s)
			return Error{ s.error().code, what + ": " + s.error().message };
		if (done())
			return {};
		if (broken_)
			return Error{ broken_->code, what + ": " + broken_->message };
		if (cancelled())
			return Error{ -EINTR, what + ": interrupted" };
		auto now = Clock::now();
		if (now >= deadline)
			return Error{ -ETIMEDOUT, what + ": timed out" };
		auto left = std::chrono::ceil<Millis>(deadline - now).count();
		pollfd p[3] = { { pf_.events->fd(), POLLIN, 0 }, { pf_.store->fd(), POLLIN, 0 },
				{ wake_.get(), POLLIN, 0 } };
		if (::poll(p, wake_ ? 3 : 2, static_cast<int>(std::min<int64_t>(left, 1000))) < 0 && errno != EINTR)
			return Error{ -errno, what + ": poll" };
	}
}

Result<xenvcodec_resp> CodecFrontend::request(xenvcodec_req req, const char *what)
{
	if (broken_)
		return Error{ broken_->code, std::string(what) + ": " + broken_->message };
	if (!connected_)
		return Error{ -ENOTCONN, std::string(what) + ": not connected" };
	req.id = nextId_++;
	auto t0 = Clock::now();
	if (!ring_.push(req))
		return Error{ -EBUSY, std::string(what) + ": ring full" };
	waitingId_ = req.id;
	response_.reset();
	if (ring_.pushRequests())
		(void)reqPort_.notify();
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
	/* INPUT read-only for Dom0: it never writes our raw frames. */
	auto data = pf_.grants->share(backendId_, pages, type == XENVCODEC_BUF_OUTPUT);
	if (!data)
		return data.error();
	auto dir = pf_.grants->share(backendId_, proto::dirPagesFor(pages), false);
	if (!dir)
		return dir.error();
	std::vector<uint8_t *> dirPtrs;
	for (size_t i = 0; i < dir->pages(); i++)
		dirPtrs.push_back(dir->data() + i * xen::kPageSize);
	if (Status s = proto::writeGrefDirectory(dirPtrs, dir->refs(), data->refs()); !s)
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
	set[index].data = std::move(*data);
	set[index].dir = std::move(*dir);
	set[index].created = true;
	set[index].queued = false;
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
	return { in_[index].data.data(), layout_->rawSize };
}

std::span<const uint8_t> CodecFrontend::outputData(uint8_t index) const
{
	if (index >= out_.size() || !out_[index].created || !layout_)
		return {};
	return { out_[index].data.data(), layout_->outSize };
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
