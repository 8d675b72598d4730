/* SPDX-License-Identifier: MIT */
/* Guest side of the para-virtual camera: handshake, requests, buffers, events. */
#include "bridge/frontend/camera_frontend.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <poll.h>

extern "C" {
#include <xen/errno.h>
#include <xen/io/xenbus.h>
}

#include "protocol/base/log.h"
#include "protocol/gref_directory.h"

namespace xmb::frontend {

XMB_LOG_DEFINE_CATEGORY(kLog, "frontend");

namespace {

constexpr uint32_t kMaxBufferBytes = 256u << 20; /* a hostile layout cannot make us share more */
constexpr size_t kMaxAbandoned = 64;
constexpr unsigned kMaxControls = 64;

Error err(int code, std::string msg)
{
	return Error{ code, std::move(msg) };
}

std::string statusText(int32_t status)
{
	std::string s = std::to_string(status);
	if (status < 0 && status > -4096)
		s += std::string(" (") + std::strerror(-status) + ")";
	return s;
}


std::vector<std::string> splitList(const std::string &s)
{
	std::vector<std::string> out;
	size_t start = 0;
	while (start <= s.size()) {
		size_t end = s.find(',', start);
		if (end == std::string::npos)
			end = s.size();
		out.push_back(s.substr(start, end - start));
		start = end + 1;
	}
	return out;
}

double msSince(Clock::time_point t)
{
	return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

} /* namespace */

uint32_t BufferLayout::planeOffset(unsigned p) const
{
	uint32_t off = 0;
	for (unsigned i = 0; i < p && i < XENCAMERA_MAX_PLANE; i++)
		off += planeSize[i];
	return off;
}

const uint8_t *CameraFrontend::Buffer::bytes() const
{
	if (mapped)
		return mapped.data();
	return data.data();
}

/* ------------------------------------------------------------------------- */
/* Discovery                                                                  */

Result<DeviceInfo> CameraFrontend::describe(xen::Platform &platform, uint32_t devid)
{
	xen::XenStore &xs = *platform.store;
	DeviceInfo d;
	d.devid = devid;
	d.frontendPath = proto::vcameraPaths(0, platform.self, devid).frontend;

	auto beId = xs.read(d.frontendPath + "/backend-id");
	if (!beId)
		return err(beId.error().code, d.frontendPath + "/backend-id: " + beId.error().message);
	auto id = proto::parseUnsigned(d.frontendPath + "/backend-id", *beId, 0x7fef);
	if (!id)
		return id.error();
	d.backendId = static_cast<xen::DomId>(*id);

	auto bePath = xs.read(d.frontendPath + "/backend");
	if (!bePath)
		return err(bePath.error().code, d.frontendPath + "/backend: " + bePath.error().message);
	if (bePath->empty() || (*bePath)[0] != '/' || bePath->size() > 256)
		return err(-EINVAL, d.frontendPath + "/backend: '" + *bePath + "' is not a path");
	d.backendPath = *bePath;

	if (auto s = xs.read(d.frontendPath + "/state")) {
		if (auto v = proto::parseXenbusState("state", *s))
			d.frontendState = *v;
	}
	if (auto s = xs.read(d.backendPath + "/state")) {
		if (auto v = proto::parseXenbusState("state", *s))
			d.backendState = *v;
	}

	auto cfg = proto::parseVcameraConfig(xen::directoryView(xs, d.frontendPath));
	if (!cfg)
		return err(cfg.error().code, d.frontendPath + ": " + cfg.error().message);
	d.config = std::move(cfg).value();
	return d;
}

Result<std::vector<DeviceInfo>> CameraFrontend::discover(xen::Platform &platform)
{
	std::string dir = xen::XenStore::domainPath(platform.self) + "/device/" XENCAMERA_DRIVER_NAME;
	auto ids = platform.store->list(dir);
	if (!ids) {
		if (ids.error().code == -ENOENT)
			return std::vector<DeviceInfo>{};
		return err(ids.error().code, dir + ": " + ids.error().message);
	}
	std::vector<uint32_t> devids;
	for (const std::string &s : *ids) {
		auto v = proto::parseUnsigned(dir, s, UINT32_MAX);
		if (v)
			devids.push_back(static_cast<uint32_t>(*v));
	}
	std::sort(devids.begin(), devids.end());
	std::vector<DeviceInfo> out;
	for (uint32_t id : devids) {
		auto d = describe(platform, id);
		if (!d)
			return d.error();
		out.push_back(std::move(d).value());
	}
	return out;
}

/* ------------------------------------------------------------------------- */
/* Connection                                                                 */

CameraFrontend::CameraFrontend(xen::Platform &platform) : pf_(platform), conn_(platform, "vcamera") {}

CameraFrontend::~CameraFrontend()
{
	disconnect();
}

Status CameraFrontend::checkUsable(const char *what) const
{
	if (const auto &b = conn_.broken())
		return err(b->code, std::string(what) + ": " + b->message);
	if (!connected_)
		return err(-ENOTCONN, std::string(what) + ": not connected");
	return {};
}

void CameraFrontend::protocolError(const std::string &msg)
{
	stats_.protocolErrors++;
	XMB_LOG(kLog, Warn, "vcamera %u: backend protocol error: %s", dev_.devid, msg.c_str());
}

void CameraFrontend::releaseTransport()
{
	/* Buffers first (the backend may still reference them), then ring and ports. */
	for (Buffer &b : buffers_)
		releaseBuffer(b);
	buffers_.clear();
	numBufs_ = 0;
	ring_ = {};
	events_ = {};
	conn_.release();
	connected_ = false;
	streaming_ = false;
	waitingId_.reset();
	response_.reset();
	abandoned_.clear();
	dequeues_.clear();
	dequeueBacklog_.clear();
	queues_.clear();
	queueBacklog_.clear();
	frames_.clear();
	layout_.reset();
	config_.reset();
	lastSeq_.reset();
}

Status CameraFrontend::connect(uint32_t devid, Millis timeout)
{
	if (connected_ || conn_.isOpen())
		return err(-EALREADY, "connect: already connected to vcamera " + std::to_string(dev_.devid));
	const auto deadline = Clock::now() + timeout;
	stats_ = {};

	/*
	 * The toolstack part (the Dom0 service) may create the device after
	 * this guest started: wait (on a watch) for its nodes until the
	 * deadline, as a kernel frontend waits for xenbus to probe it.  The
	 * backend's "state" says the device exists; "versions" is optional
	 * (the reference backend and libxl do not write it).
	 */
	Result<DeviceInfo> d = Error{ -ENOENT, "" };
	Status found = conn_.waitForDevice(
		proto::vcameraPaths(0, pf_.self, devid).frontend, deadline, [&]() -> Status {
			d = describe(pf_, devid);
			if (!d)
				return d.error();
			auto state = pf_.store->read(d->backendPath + "/state");
			if (!state)
				return err(state.error().code, d->backendPath + "/state: " + state.error().message);
			return {};
		});
	if (!found)
		return err(found.error().code, "connect: " + found.error().message);
	dev_ = std::move(d).value();
	Result<std::string> versions = pf_.store->read(dev_.backendPath + "/" XENCAMERA_FIELD_BE_VERSIONS);
	if (!versions && versions.error().code == -ENOENT)
		versions = std::string(XENCAMERA_PROTOCOL_VERSION); /* no "versions": speaks 1 */
	if (!versions)
		return err(versions.error().code, "connect: " + dev_.backendPath +
							  "/versions: " + versions.error().message);
	auto vs = splitList(*versions);
	if (std::find(vs.begin(), vs.end(), XENCAMERA_PROTOCOL_VERSION) == vs.end())
		return err(-EPROTONOSUPPORT, "connect: backend versions '" + *versions +
						     "' do not include " XENCAMERA_PROTOCOL_VERSION);

	conn_.setDevice(dev_.frontendPath, dev_.backendPath, dev_.backendId);
	Status st = conn_.open(
		deadline,
		[](xen::Gref ring, xen::Port req, xen::Gref evt, xen::Port evtPort) {
			proto::VcameraTransport t;
			t.version = XENCAMERA_PROTOCOL_VERSION;
			t.reqRingRef = ring;
			t.reqEventChannel = req;
			t.evtRingRef = evt;
			t.evtEventChannel = evtPort;
			return proto::formatVcameraTransport(t);
		},
		[this](uint8_t *ring, uint8_t *events) {
			ring_ = proto::CameraFrontRing(ring, proto::kXenPageSize);
			events_ = proto::EventPageReader(events);
		});
	if (!st) {
		releaseTransport();
		return err(st.error().code, "connect vcamera " + std::to_string(devid) + ": " + st.error().message);
	}
	connected_ = true;
	fpsWindowStart_ = Clock::now();
	XMB_LOG(kLog, Info, "vcamera %u connected to backend dom%u (%s, %s)", devid,
		dev_.backendId, dev_.config.uniqueId.c_str(),
		dev_.config.beAlloc ? "backend-allocated buffers" : "frontend-allocated buffers");
	return {};
}

void CameraFrontend::disconnect(Millis timeout)
{
	if (!conn_.isOpen())
		return;
	if (connected_ && !conn_.broken()) {
		Millis saved = timeout_;
		timeout_ = std::min(timeout_, timeout);
		if (streaming_)
			(void)streamStop();
		for (size_t i = 0; i < buffers_.size() && !conn_.broken(); i++)
			if (buffers_[i].state != BufState::None)
				(void)bufDestroy(static_cast<uint8_t>(i));
		timeout_ = saved;
	}
	connected_ = false;
	conn_.close(timeout);
	releaseTransport();
	XMB_LOG(kLog, Debug, "vcamera %u disconnected", dev_.devid);
}

/* ------------------------------------------------------------------------- */
/* Event handling                                                             */

std::vector<int> CameraFrontend::fds() const
{
	return conn_.fds();
}

Status CameraFrontend::processEvents()
{
	bool reqFired = false, evtFired = false;
	if (Status s = conn_.collect(reqFired, evtFired); !s)
		return s;
	if (conn_.isOpen() && !conn_.broken()) {
		for (;;) {
			proto::RingPoll p = ring_.finalCheck();
			if (p == proto::RingPoll::Overflow) {
				conn_.setBroken(err(-EPROTO, "response ring overflow: backend produced "
							     "responses never requested"));
				break;
			}
			if (p == proto::RingPoll::Empty)
				break;
			while (ring_.pending())
				handleResponse(ring_.take());
		}
	}
	drainEvents();
	flushDequeues();
	conn_.rearm(reqFired, evtFired);
	return {};
}

void CameraFrontend::drainEvents()
{
	if (!conn_.isOpen() || conn_.broken())
		return;
	for (;;) {
		bool overflow = false;
		auto e = events_.next(overflow);
		if (overflow) {
			conn_.setBroken(err(-EPROTO, "event page overflow: in_prod beyond the ring"));
			break;
		}
		if (!e)
			break;
		handleEvent(*e);
	}
}

void CameraFrontend::handleResponse(const xencamera_resp &resp)
{
	if (auto it = queues_.find(resp.id); it != queues_.end()) {
		uint8_t index = it->second;
		queues_.erase(it);
		stats_.requests++;
		if (resp.operation == XENCAMERA_OP_BUF_QUEUE && resp.status == 0)
			return;
		protocolError("BUF_QUEUE(" + std::to_string(index) + ") while streaming: " +
			      (resp.operation != XENCAMERA_OP_BUF_QUEUE
				       ? "answered with operation " + std::string(proto::cameraOpName(resp.operation))
				       : statusText(resp.status)));
		if (index < buffers_.size() && buffers_[index].state == BufState::Queued)
			buffers_[index].state = BufState::Owned; /* refused: it is ours again */
		return;
	}
	if (auto it = dequeues_.find(resp.id); it != dequeues_.end()) {
		uint8_t index = it->second;
		dequeues_.erase(it);
		if (resp.operation != XENCAMERA_OP_BUF_DEQUEUE) {
			protocolError("BUF_DEQUEUE answered with operation " +
				      std::string(proto::cameraOpName(resp.operation)));
			return;
		}
		/*
		 * A FRAME_AVAIL the backend wrote before this answer is on the
		 * event page by now, maybe not read yet: read it first, so the
		 * frame handed out is the one the buffer holds.
		 */
		drainEvents();
		finishDequeue(index, resp.status);
		return;
	}
	if (waitingId_ && resp.id == *waitingId_ && !response_) {
		response_ = resp;
		return;
	}
	if (abandoned_.erase(resp.id))
		return; /* the answer to a request that timed out */
	protocolError("response with unknown id " + std::to_string(resp.id) + " (" +
		      proto::cameraOpName(resp.operation) + ")");
}

void CameraFrontend::handleEvent(const xencamera_evt &evt)
{
	if (evt.type == XENCAMERA_EVT_CTRL_CHANGE) {
		ctrlChanges_.push_back({ evt.evt.ctrl_value.type, evt.evt.ctrl_value.value });
		stats_.controlChanges++;
		return;
	}
	if (evt.type != XENCAMERA_EVT_FRAME_AVAIL) {
		protocolError("unknown event type " + std::to_string(evt.type));
		return;
	}
	const xencamera_frame_avail_evt f = evt.evt.frame_avail;
	if (f.index >= numBufs_ || f.index >= buffers_.size()) {
		protocolError("FRAME_AVAIL for buffer " + std::to_string(f.index) + " of " +
			      std::to_string(numBufs_));
		return;
	}
	Buffer &b = buffers_[f.index];
	if (!layout_ || f.used_sz > layout_->size) {
		protocolError("FRAME_AVAIL used_sz " + std::to_string(f.used_sz) + " > buffer size " +
			      std::to_string(layout_ ? layout_->size : 0));
		if (b.state == BufState::Queued)
			sendDequeue(f.index); /* take it back; the frame is not handed out */
		return;
	}
	Frame fr{ f.index, f.used_sz, f.seq_num, Clock::now() };
	if (b.state == BufState::Dequeuing) {
		/*
		 * A backend that keeps a buffer queued until it is dequeued (the
		 * reference camera_be) wrote a newer frame into it before our
		 * BUF_DEQUEUE reached it: the older frame is gone.
		 */
		b.announced = fr;
		stats_.superseded++;
		return;
	}
	if (b.state != BufState::Queued) {
		protocolError("FRAME_AVAIL for buffer " + std::to_string(f.index) +
			      " which is not queued");
		return;
	}
	b.state = BufState::Dequeuing;
	b.announced = fr;
	sendDequeue(f.index);
}

/*
 * cameraif: "frontend is allowed to access the buffer content after the
 * corresponding response to [BUF_DEQUEUE]".  The request goes out at once,
 * without waiting for its answer, so the round trip overlaps whatever the
 * caller does meanwhile; the frame is handed out when the answer comes.
 */
void CameraFrontend::sendDequeue(uint8_t index)
{
	if (buffers_[index].state != BufState::Dequeuing) {
		/* A hostile announcement of a queued buffer: take it back quietly. */
		buffers_[index].state = BufState::Dequeuing;
		buffers_[index].announced = {};
		buffers_[index].announced.index = index;
		buffers_[index].announced.usedSize = UINT32_MAX; /* never handed out */
	}
	dequeueBacklog_.push_back(index);
	flushDequeues();
}

/* Buffers the backend has been told about and may fill (sent BUF_QUEUEs, not announced yet). */
size_t CameraFrontend::queuedAtBackend() const
{
	size_t n = 0;
	for (const Buffer &b : buffers_)
		n += b.state == BufState::Queued;
	return n - std::min(n, queueBacklog_.size());
}

/*
 * Requests \a op for the indices in \a backlog onto the ring (no notify),
 * keeping at most \a maxInFlight of them unanswered; whether any went.
 */
bool CameraFrontend::pushIndexRequests(uint8_t op, std::deque<uint8_t> &backlog,
				       std::map<uint16_t, uint8_t> &inFlight, size_t maxInFlight)
{
	bool pushed = false;
	while (!backlog.empty() && inFlight.size() < maxInFlight && !conn_.broken()) {
		xencamera_req req = makeRequest(op);
		req.id = takeRequestId();
		req.req.index.index = backlog.front();
		if (!ring_.push(req))
			break;
		inFlight.emplace(req.id, backlog.front());
		backlog.pop_front();
		pushed = true;
	}
	return pushed;
}

/* The buffers given back while streaming onto the ring (no notify), room left for a call. */
bool CameraFrontend::pushQueued()
{
	const size_t room = ring_.size() > dequeues_.size() + 2 ? ring_.size() - dequeues_.size() - 2 : 0;
	return pushIndexRequests(XENCAMERA_OP_BUF_QUEUE, queueBacklog_, queues_, room);
}

void CameraFrontend::sendHeldBack()
{
	if (pushQueued()) {
		ring_.pushRequests();
		(void)conn_.notify();
	}
}

/*
 * Send what is waiting: BUF_DEQUEUEs of announced frames, and with them the
 * buffers given back meanwhile, so that one notification (one wake-up of the
 * backend) carries both; given-back buffers alone go out only when the
 * backend would otherwise be left with fewer than two to fill.  Not for
 * backend-allocated buffers: Dom0 may share them between guests
 * (share-device-buffers) and fill one only when every guest gave it back,
 * so what this guest counts as queued says nothing about what the camera
 * has; holding one back could starve it.
 */
void CameraFrontend::flushDequeues()
{
	constexpr size_t kKeepQueued = 2;
	/* Leave the ring room for a synchronous call (and never fill it). */
	const size_t maxInFlight = std::max<size_t>(1, ring_.size() / 2);
	bool pushed = false;
	if (!queueBacklog_.empty() &&
	    (!dequeueBacklog_.empty() || dev_.config.beAlloc || queuedAtBackend() < kKeepQueued))
		pushed = pushQueued();
	pushed |= pushIndexRequests(XENCAMERA_OP_BUF_DEQUEUE, dequeueBacklog_, dequeues_, maxInFlight);
	if (pushed) {
		ring_.pushRequests();
		(void)conn_.notify();
	}
}

void CameraFrontend::finishDequeue(uint8_t index, int32_t status)
{
	if (index >= buffers_.size() || buffers_[index].state != BufState::Dequeuing)
		return; /* destroyed or stopped meanwhile */
	Buffer &b = buffers_[index];
	if (status != 0) {
		/* The backend keeps it; it may announce it again. */
		b.state = BufState::Queued;
		protocolError("BUF_DEQUEUE(" + std::to_string(index) + ") after FRAME_AVAIL: " +
			      statusText(status));
		return;
	}
	b.state = BufState::Owned;
	if (b.announced.usedSize == UINT32_MAX)
		return; /* taken back after a bad announcement */
	deliverFrame(b.announced);
}

void CameraFrontend::deliverFrame(const Frame &fr)
{
	if (lastSeq_) {
		uint32_t diff = fr.seq - *lastSeq_;
		if (diff == 0 || diff > 0x80000000u)
			protocolError("FRAME_AVAIL seq_num " + std::to_string(fr.seq) + " after " +
				      std::to_string(*lastSeq_));
		else
			stats_.drops += diff - 1;
	}
	lastSeq_ = fr.seq;

	if (lastFrameAt_) {
		frameIntervalMsTotal_ +=
			std::chrono::duration<double, std::milli>(fr.arrival - *lastFrameAt_).count();
		frameIntervals_++;
	}
	lastFrameAt_ = fr.arrival;
	stats_.frames++;
	fpsWindowFrames_++;
	double window = std::chrono::duration<double>(fr.arrival - fpsWindowStart_).count();
	if (window >= 1.0) {
		fps_ = fpsWindowFrames_ / window;
		fpsWindowFrames_ = 0;
		fpsWindowStart_ = fr.arrival;
	}
	frames_.push_back(fr);
}

uint16_t CameraFrontend::takeRequestId()
{
	uint16_t id = nextId_++;
	while (abandoned_.count(id) || dequeues_.count(id) || queues_.count(id) || (waitingId_ && *waitingId_ == id))
		id = nextId_++;
	return id;
}

Status CameraFrontend::waitUntil(const std::function<bool()> &done, Clock::time_point deadline,
				 const std::string &what)
{
	return conn_.waitUntil([this] { return processEvents(); }, done, deadline, what);
}

/* ------------------------------------------------------------------------- */
/* Requests                                                                   */

xencamera_req CameraFrontend::makeRequest(uint8_t op)
{
	xencamera_req req;
	std::memset(&req, 0, sizeof(req)); /* reserved fields must be 0 */
	req.operation = op;
	return req;
}

Result<xencamera_resp> CameraFrontend::call(xencamera_req req, const char *what)
{
	if (Status s = checkUsable(what); !s)
		return s.error();
	if (waitingId_)
		return err(-EBUSY, std::string(what) + ": another request is in flight");
	(void)pushQueued(); /* buffers given back go first: requests stay in the caller's order */
	uint16_t id = takeRequestId();
	req.id = id;
	if (!ring_.push(req))
		return err(-EBUSY, std::string(what) + ": request ring full (backend not answering)");
	ring_.pushRequests();
	/* Always notify: cheap, and immune to a backend that forgets req_event. */
	if (Status s = conn_.notify(); !s)
		return err(s.error().code, std::string(what) + ": notify: " + s.error().message);

	const auto start = Clock::now();
	waitingId_ = id;
	response_.reset();
	Status st = waitUntil([&] { return response_.has_value(); }, start + timeout_, what);
	waitingId_.reset();
	stats_.requests++;
	if (!st) {
		if (st.error().code == -ETIMEDOUT || st.error().code == -EINTR) {
			if (abandoned_.size() >= kMaxAbandoned)
				abandoned_.erase(abandoned_.begin());
			abandoned_.insert(id);
		}
		return st.error();
	}
	double ms = msSince(start);
	requestMsTotal_ += ms;
	answeredRequests_++;
	stats_.maxRequestMs = std::max(stats_.maxRequestMs, ms);

	xencamera_resp resp = *response_;
	response_.reset();
	if (resp.operation != req.operation) {
		protocolError(std::string(what) + ": response carries operation " +
			      proto::cameraOpName(resp.operation));
		return err(-EPROTO, std::string(what) + ": backend answered with operation " +
					    proto::cameraOpName(resp.operation));
	}
	if (resp.status != 0)
		return err(resp.status, std::string(what) + ": backend returned " + statusText(resp.status));
	return resp;
}

Result<CameraConfig> CameraFrontend::configCall(uint8_t op, uint32_t fourcc, uint32_t w, uint32_t h)
{
	xencamera_req req = makeRequest(op);
	req.req.config.pixel_format = fourcc;
	req.req.config.width = w;
	req.req.config.height = h;
	std::string what = proto::cameraOpName(op);
	if (op != XENCAMERA_OP_CONFIG_GET)
		what += "(" + proto::formatFourccLabel(fourcc) + " " + std::to_string(w) + "x" +
			std::to_string(h) + ")";
	auto r = call(req, what.c_str());
	if (!r)
		return r.error();
	const xencamera_config_resp &c = r->resp.config;
	CameraConfig out;
	out.fourcc = c.pixel_format;
	out.width = c.width;
	out.height = c.height;
	out.colorspace = c.colorspace;
	out.xferFunc = c.xfer_func;
	out.ycbcrEnc = c.ycbcr_enc;
	out.quantization = c.quantization;
	out.aspect = { c.displ_asp_ratio_numer, c.displ_asp_ratio_denom };
	out.frameRate = { c.frame_rate_numer, c.frame_rate_denom };
	if (!out.width || !out.height || out.width > proto::kMaxWidth || out.height > proto::kMaxHeight)
		return err(-EPROTO, what + ": backend answered size " + std::to_string(out.width) +
					    "x" + std::to_string(out.height));
	if (op != XENCAMERA_OP_CONFIG_VALIDATE) {
		if (op == XENCAMERA_OP_CONFIG_SET)
			layout_.reset(); /* the layout follows the configuration */
		config_ = out;
	}
	return out;
}

Result<CameraConfig> CameraFrontend::configSet(uint32_t fourcc, uint32_t width, uint32_t height)
{
	return configCall(XENCAMERA_OP_CONFIG_SET, fourcc, width, height);
}

Result<CameraConfig> CameraFrontend::configValidate(uint32_t fourcc, uint32_t width, uint32_t height)
{
	return configCall(XENCAMERA_OP_CONFIG_VALIDATE, fourcc, width, height);
}

Result<CameraConfig> CameraFrontend::configGet()
{
	return configCall(XENCAMERA_OP_CONFIG_GET, 0, 0, 0);
}

Status CameraFrontend::frameRateSet(uint32_t num, uint32_t den)
{
	xencamera_req req = makeRequest(XENCAMERA_OP_FRAME_RATE_SET);
	req.req.frame_rate.frame_rate_numer = num;
	req.req.frame_rate.frame_rate_denom = den;
	std::string what = "FRAME_RATE_SET(" + std::to_string(num) + "/" + std::to_string(den) + ")";
	auto r = call(req, what.c_str());
	if (!r)
		return r.error();
	if (config_)
		config_->frameRate = { num, den };
	return {};
}

Result<BufferLayout> CameraFrontend::getLayout()
{
	auto r = call(makeRequest(XENCAMERA_OP_BUF_GET_LAYOUT), "BUF_GET_LAYOUT");
	if (!r)
		return r.error();
	const xencamera_buf_get_layout_resp &l = r->resp.buf_layout;
	BufferLayout out;
	out.numPlanes = l.num_planes;
	out.size = l.size;
	for (unsigned p = 0; p < XENCAMERA_MAX_PLANE; p++) {
		out.planeSize[p] = l.plane_size[p];
		out.planeStride[p] = l.plane_stride[p];
	}
	auto bad = [&](const std::string &why) {
		return err(-EPROTO, "BUF_GET_LAYOUT: backend answered " + why);
	};
	if (out.numPlanes < 1 || out.numPlanes > XENCAMERA_MAX_PLANE)
		return bad(std::to_string(out.numPlanes) + " planes");
	if (!out.size || out.size > kMaxBufferBytes)
		return bad("size " + std::to_string(out.size));
	uint64_t sum = 0;
	for (unsigned p = 0; p < out.numPlanes; p++) {
		if (!out.planeSize[p] || !out.planeStride[p])
			return bad("plane " + std::to_string(p) + " of size " +
				   std::to_string(out.planeSize[p]) + ", stride " +
				   std::to_string(out.planeStride[p]));
		sum += out.planeSize[p];
	}
	if (sum > out.size)
		return bad("planes of " + std::to_string(sum) + " bytes in a buffer of " +
			   std::to_string(out.size));
	layout_ = out;
	return out;
}

Result<uint8_t> CameraFrontend::bufRequest(uint8_t numBufs)
{
	xencamera_req req = makeRequest(XENCAMERA_OP_BUF_REQUEST);
	req.req.buf_request.num_bufs = numBufs;
	std::string what = "BUF_REQUEST(" + std::to_string(numBufs) + ")";
	auto r = call(req, what.c_str());
	if (!r)
		return r.error();
	uint8_t got = r->resp.buf_request.num_bufs;
	if (numBufs == 0) {
		/* The backend freed every buffer. */
		for (Buffer &b : buffers_)
			releaseBuffer(b);
		buffers_.clear();
		numBufs_ = 0;
		return got;
	}
	if (got > std::max(numBufs, dev_.config.maxBuffers))
		return err(-EPROTO, what + ": backend granted " + std::to_string(got) + " buffers");
	numBufs_ = got;
	if (buffers_.size() < got)
		buffers_.resize(got);
	return got;
}

Status CameraFrontend::mapBeAllocBuffer(Buffer &b)
{
	auto m = xen::mapBackendBuffer(pf_, dev_.backendId, b.dir, layout_->size, false);
	if (!m)
		return err(m.error().code, m.error().message);
	b.mapped = std::move(*m);
	return {};
}

void CameraFrontend::releaseBuffer(Buffer &b)
{
	b.mapped.reset(); /* our mapping of the backend's pages first */
	b.dir.reset();
	b.data.reset();   /* deferred by the grant layer if Dom0 still maps it */
	b.state = BufState::None;
}

Status CameraFrontend::bufCreate(uint8_t index)
{
	std::string what = "BUF_CREATE(" + std::to_string(index) + ")";
	if (Status s = checkUsable(what.c_str()); !s)
		return s;
	if (!layout_)
		return err(-EINVAL, what + ": no buffer layout (call getLayout after configSet)");
	if (index >= numBufs_)
		return err(-EINVAL, what + ": index beyond the " + std::to_string(numBufs_) +
					    " buffers granted by BUF_REQUEST");
	if (buffers_[index].state != BufState::None)
		return err(-EEXIST, what + ": buffer already created");

	const bool beAlloc = dev_.config.beAlloc;
	const uint64_t pages = proto::pagesFor(layout_->size);
	const uint64_t dirPages = proto::dirPagesFor(pages);
	Buffer b;
	if (!beAlloc) {
		auto data = pf_.grants->share(dev_.backendId, pages, true);
		if (!data)
			return err(data.error().code, what + ": sharing " + std::to_string(pages) +
							      " data pages: " + data.error().message);
		b.data = std::move(*data);
	}
	/* Writable in both modes: the directory is our own bookkeeping, and the
	 * reference backend (camera_be) maps it read-write even when it only
	 * reads it.  be-alloc: the backend writes the data grefs into it. */
	auto dir = pf_.grants->share(dev_.backendId, dirPages, true);
	if (!dir)
		return err(dir.error().code, what + ": sharing " + std::to_string(dirPages) +
						     " directory pages: " + dir.error().message);
	b.dir = std::move(*dir);
	std::vector<uint8_t *> dirPtrs;
	for (uint64_t p = 0; p < dirPages; p++)
		dirPtrs.push_back(b.dir.data() + p * xen::kPageSize);
	std::vector<proto::Gref> grefs = beAlloc ? std::vector<proto::Gref>(pages, 0) : b.data.refs();
	if (Status s = proto::writeGrefDirectory(dirPtrs, b.dir.refs(), grefs); !s)
		return err(s.error().code, what + ": " + s.error().message);

	xencamera_req req = makeRequest(XENCAMERA_OP_BUF_CREATE);
	req.req.buf_create.index = index;
	for (unsigned p = 0; p < layout_->numPlanes; p++)
		req.req.buf_create.plane_offset[p] = layout_->planeOffset(p);
	req.req.buf_create.gref_directory = b.dir.refs().at(0);
	auto r = call(req, what.c_str());
	if (!r)
		return r.error();

	if (beAlloc) {
		if (Status s = mapBeAllocBuffer(b); !s) {
			/* Created over there but unusable here: undo it. */
			xencamera_req d = makeRequest(XENCAMERA_OP_BUF_DESTROY);
			d.req.index.index = index;
			(void)call(d, "BUF_DESTROY");
			return err(s.error().code, what + ": " + s.error().message);
		}
	}
	b.state = BufState::Owned;
	buffers_[index] = std::move(b);
	return {};
}

Status CameraFrontend::bufDestroy(uint8_t index)
{
	std::string what = "BUF_DESTROY(" + std::to_string(index) + ")";
	if (index >= buffers_.size() || buffers_[index].state == BufState::None)
		return err(-EINVAL, what + ": no such buffer");
	xencamera_req req = makeRequest(XENCAMERA_OP_BUF_DESTROY);
	req.req.index.index = index;
	auto r = call(req, what.c_str());
	if (!r)
		return r.error();
	releaseBuffer(buffers_[index]);
	return {};
}

Status CameraFrontend::bufQueue(uint8_t index)
{
	std::string what = "BUF_QUEUE(" + std::to_string(index) + ")";
	if (index >= buffers_.size() || buffers_[index].state == BufState::None)
		return err(-EINVAL, what + ": no such buffer");
	if (buffers_[index].state == BufState::Queued)
		return err(-EINVAL, what + ": buffer already queued");
	if (buffers_[index].state == BufState::Dequeuing)
		return err(-EBUSY, what + ": buffer still being dequeued");
	if (streaming_) {
		if (Status s = checkUsable(what.c_str()); !s)
			return s;
		buffers_[index].state = BufState::Queued;
		queueBacklog_.push_back(index);
		flushDequeues(); /* now only if the backend is running short */
		return {};
	}
	xencamera_req req = makeRequest(XENCAMERA_OP_BUF_QUEUE);
	req.req.index.index = index;
	/* Queued before the answer: a FRAME_AVAIL may overtake the response. */
	buffers_[index].state = BufState::Queued;
	auto r = call(req, what.c_str());
	if (!r) {
		if (index < buffers_.size() && buffers_[index].state == BufState::Queued)
			buffers_[index].state = BufState::Owned;
		return r.error();
	}
	return {};
}

Status CameraFrontend::bufDequeue(uint8_t index)
{
	std::string what = "BUF_DEQUEUE(" + std::to_string(index) + ")";
	if (index >= buffers_.size() || buffers_[index].state == BufState::None)
		return err(-EINVAL, what + ": no such buffer");
	if (buffers_[index].state == BufState::Dequeuing)
		return err(-EBUSY, what + ": a dequeue of this buffer is already in flight");
	xencamera_req req = makeRequest(XENCAMERA_OP_BUF_DEQUEUE);
	req.req.index.index = index;
	auto r = call(req, what.c_str());
	if (!r)
		return r.error();
	buffers_[index].state = BufState::Owned;
	return {};
}

Result<ControlInfo> CameraFrontend::ctrlEnum(uint8_t index)
{
	xencamera_req req = makeRequest(XENCAMERA_OP_CTRL_ENUM);
	req.req.index.index = index;
	std::string what = "CTRL_ENUM(" + std::to_string(index) + ")";
	auto r = call(req, what.c_str());
	if (!r)
		return r.error();
	const xencamera_ctrl_enum_resp &c = r->resp.ctrl_enum;
	if (c.index != index)
		return err(-EPROTO, what + ": backend answered for index " + std::to_string(c.index));
	if (c.min > c.max || c.step < 0)
		return err(-EPROTO, what + ": backend answered range " + std::to_string(c.min) + ".." +
					    std::to_string(c.max) + " step " + std::to_string(c.step));
	return ControlInfo{ c.index, c.type, c.flags, c.min, c.max, c.step, c.def_val };
}

Result<std::vector<ControlInfo>> CameraFrontend::ctrlEnumAll()
{
	std::vector<ControlInfo> out;
	for (unsigned i = 0; i < kMaxControls; i++) {
		auto c = ctrlEnum(static_cast<uint8_t>(i));
		if (!c) {
			if (c.error().code == -XEN_EINVAL)
				break;
			return c.error();
		}
		out.push_back(*c);
	}
	return out;
}

Status CameraFrontend::ctrlSet(uint8_t type, int64_t value)
{
	xencamera_req req = makeRequest(XENCAMERA_OP_CTRL_SET);
	req.req.ctrl_value.type = type;
	req.req.ctrl_value.value = value;
	const char *name = proto::cameraCtrlName(type);
	std::string what = "CTRL_SET(" + (name ? std::string(name) : std::to_string(type)) + "=" +
			   std::to_string(value) + ")";
	auto r = call(req, what.c_str());
	if (!r)
		return r.error();
	return {};
}

Result<int64_t> CameraFrontend::ctrlGet(uint8_t type)
{
	xencamera_req req = makeRequest(XENCAMERA_OP_CTRL_GET);
	req.req.get_ctrl.type = type;
	const char *name = proto::cameraCtrlName(type);
	std::string what = "CTRL_GET(" + (name ? std::string(name) : std::to_string(type)) + ")";
	auto r = call(req, what.c_str());
	if (!r)
		return r.error();
	if (r->resp.ctrl_value.type != type)
		return err(-EPROTO, what + ": backend answered for control " +
					    std::to_string(r->resp.ctrl_value.type));
	return r->resp.ctrl_value.value;
}

Status CameraFrontend::streamStart()
{
	auto r = call(makeRequest(XENCAMERA_OP_STREAM_START), "STREAM_START");
	if (!r)
		return r.error();
	streaming_ = true;
	lastSeq_.reset();
	lastFrameAt_.reset();
	fpsWindowStart_ = Clock::now();
	fpsWindowFrames_ = 0;
	return {};
}

Status CameraFrontend::streamStop()
{
	auto r = call(makeRequest(XENCAMERA_OP_STREAM_STOP), "STREAM_STOP");
	if (!r)
		return r.error();
	streaming_ = false;
	/*
	 * V4L2 STREAMOFF semantics: every buffer is back with us.  Answers to
	 * our BUF_DEQUEUEs came before this one (the ring is in order); one
	 * still in the backlog is not needed anymore.
	 */
	dequeueBacklog_.clear();
	queueBacklog_.clear(); /* sent before STREAM_STOP by call() */
	for (Buffer &b : buffers_)
		if (b.state == BufState::Queued || b.state == BufState::Dequeuing)
			b.state = BufState::Owned;
	return {};
}

Result<uint8_t> CameraFrontend::allocateBuffers(uint8_t n)
{
	if (!layout_) {
		auto l = getLayout();
		if (!l)
			return l.error();
	}
	auto got = bufRequest(n);
	if (!got)
		return got.error();
	if (!*got)
		return err(-ENOMEM, "BUF_REQUEST(" + std::to_string(n) + "): backend granted no buffers");
	for (uint8_t i = 0; i < *got; i++) {
		if (buffers_[i].state != BufState::None)
			continue;
		if (Status s = bufCreate(i); !s) {
			for (uint8_t j = 0; j < i; j++)
				if (buffers_[j].state != BufState::None)
					(void)bufDestroy(j);
			return s.error();
		}
	}
	return *got;
}

Status CameraFrontend::freeBuffers()
{
	for (size_t i = 0; i < buffers_.size(); i++)
		if (buffers_[i].state != BufState::None)
			if (Status s = bufDestroy(static_cast<uint8_t>(i)); !s)
				return s;
	auto r = bufRequest(0);
	if (!r)
		return r.error();
	return {};
}

Status CameraFrontend::queueAll()
{
	for (size_t i = 0; i < buffers_.size() && i < numBufs_; i++)
		if (buffers_[i].state == BufState::Owned)
			if (Status s = bufQueue(static_cast<uint8_t>(i)); !s)
				return s;
	return {};
}

std::span<const uint8_t> CameraFrontend::bufferData(uint8_t index) const
{
	if (index >= buffers_.size() || buffers_[index].state == BufState::None || !layout_)
		return {};
	const uint8_t *p = buffers_[index].bytes();
	if (!p)
		return {};
	return { p, layout_->size };
}

std::optional<Frame> CameraFrontend::takeFrame()
{
	if (frames_.empty())
		return std::nullopt;
	Frame f = frames_.front();
	frames_.pop_front();
	return f;
}

Result<Frame> CameraFrontend::waitFrame(Millis timeout)
{
	if (auto f = takeFrame())
		return *f;
	if (Status s = checkUsable("waiting for a frame"); !s)
		return s.error();
	if (timeout.count() < 0)
		timeout = timeout_;
	const auto deadline = Clock::now() + timeout;
	if (!queueBacklog_.empty()) {
		/*
		 * Buffers held back for the next BUF_DEQUEUE: if no frame comes
		 * for a while, the backend may be short of them after all (one
		 * that counts differently): send them.
		 */
		constexpr Millis kHoldBack{ 100 };
		Status st = waitUntil([&] { return !frames_.empty(); }, std::min(deadline, Clock::now() + kHoldBack),
				      "waiting for a frame");
		if (st)
			return *takeFrame();
		if (st.error().code != -ETIMEDOUT || Clock::now() >= deadline)
			return st.error();
		sendHeldBack();
	}
	Status st = waitUntil([&] { return !frames_.empty(); }, deadline, "waiting for a frame");
	if (!st)
		return st.error();
	return *takeFrame();
}

std::vector<ControlChange> CameraFrontend::takeControlChanges()
{
	return std::exchange(ctrlChanges_, {});
}

Stats CameraFrontend::stats() const
{
	Stats s = stats_;
	s.fps = fps_;
	if (!fps_ && fpsWindowFrames_) {
		double w = std::chrono::duration<double>(Clock::now() - fpsWindowStart_).count();
		if (w > 0)
			s.fps = fpsWindowFrames_ / w;
	}
	if (answeredRequests_)
		s.avgRequestMs = requestMsTotal_ / answeredRequests_;
	if (frameIntervals_)
		s.avgFrameIntervalMs = frameIntervalMsTotal_ / frameIntervals_;
	return s;
}

} /* namespace xmb::frontend */
