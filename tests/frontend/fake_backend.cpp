/* SPDX-License-Identifier: MIT */
/* A literal cameraif backend for the frontend tests (see fake_backend.h). */
#include "fake_backend.h"

#include <cerrno>
#include <cstring>
#include <poll.h>

extern "C" {
#include <xen/errno.h>
#include <xen/io/xenbus.h>
}

#include "protocol/gref_directory.h"
#include "v4l2/test_pattern.h"

namespace xmb::frontend::test {

using namespace std::chrono_literals;

namespace {

proto::XsView view(xen::XenStore &xs, const std::string &dir)
{
	proto::XsView v;
	v.read = [&xs, dir](const std::string &rel) -> std::optional<std::string> {
		auto r = xs.read(dir + "/" + rel);
		if (!r)
			return std::nullopt;
		return *r;
	};
	v.list = [&xs, dir](const std::string &rel) -> std::optional<std::vector<std::string>> {
		auto r = xs.list(dir + "/" + rel);
		if (!r)
			return std::nullopt;
		return *r;
	};
	return v;
}

void chmodTree(xen::XenStore &xs, xen::TxId tx, const std::string &path,
	       const std::vector<xen::XsPerm> &perms)
{
	(void)xs.setPermissions(tx, path, perms);
	if (auto kids = xs.list(tx, path))
		for (const auto &k : *kids)
			chmodTree(xs, tx, path + "/" + k, perms);
}

} /* namespace */

FakeBackend::FakeBackend(xen::Platform &dom0, FakeBackendOptions opts)
	: dom0_(dom0), opts_(opts), fourcc_(opts.fourcc), width_(opts.width), height_(opts.height)
{
	paths = proto::vcameraPaths(0, opts_.frontend, opts_.devid);
}

FakeBackend::~FakeBackend()
{
	stop();
}

void FakeBackend::publish()
{
	xen::XenStore &xs = *dom0_.store;
	proto::VcameraConfig cfg;
	cfg.beAlloc = opts_.beAlloc;
	cfg.uniqueId = "fake-camera-" + std::to_string(opts_.devid);
	cfg.maxBuffers = opts_.maxBuffers;
	cfg.controls = { XENCAMERA_CTRL_BRIGHTNESS, XENCAMERA_CTRL_CONTRAST };
	cfg.formats.push_back({ opts_.fourcc, { { opts_.width, opts_.height, { { 30, 1 }, { 15, 1 } } } } });
	cfg.formats.push_back({ V4L2_PIX_FMT_YUYV, { { opts_.width, opts_.height, { { 30, 1 } } } } });
	const std::string &fe = paths.frontend, &be = paths.backend;
	/* One transaction, as the real toolstack does: a frontend never sees the
	 * nodes before their permissions. */
	(void)xen::runTransaction(xs, [&](xen::TxId tx) -> Status {
		for (const auto &[k, v] : proto::formatVcameraConfig(cfg))
			(void)xs.write(tx, fe + "/" + k, v);
		(void)xs.write(tx, fe + "/backend-id", "0");
		(void)xs.write(tx, fe + "/backend", be);
		(void)xs.write(tx, fe + "/state", "1");
		chmodTree(xs, tx, fe, { { opts_.frontend, xen::XsPerm::None }, { 0, xen::XsPerm::Read } });
		(void)xs.write(tx, be + "/frontend-id", std::to_string(opts_.frontend));
		(void)xs.write(tx, be + "/frontend", fe);
		if (opts_.writeVersions)
			(void)xs.write(tx, be + "/versions", "1");
		(void)xs.write(tx, be + "/state", std::to_string(XenbusStateInitWait));
		chmodTree(xs, tx, be, { { 0, xen::XsPerm::None }, { opts_.frontend, xen::XsPerm::Read } });
		return {};
	});
}

void FakeBackend::start()
{
	(void)dom0_.store->watch(paths.frontend + "/state", "fake-fe-state");
	thread_ = std::thread([this] { run(); });
}

void FakeBackend::stop()
{
	if (!thread_.joinable())
		return;
	stop_ = true;
	thread_.join();
	closeRing();
	(void)dom0_.store->unwatch(paths.frontend + "/state", "fake-fe-state");
}

void FakeBackend::setState(int state)
{
	(void)dom0_.store->write(paths.backend + "/state", std::to_string(state));
}

void FakeBackend::injectCtrlChange(uint8_t type, int64_t value)
{
	std::lock_guard<std::mutex> g(lock_);
	pendingCtrl_.emplace_back(type, value);
}

size_t FakeBackend::liveMappings() const
{
	return dom0_.grants->mappedPages(opts_.frontend);
}

void FakeBackend::run()
{
	while (!stop_) {
		pollfd p[2] = { { dom0_.events->fd(), POLLIN, 0 }, { dom0_.store->fd(), POLLIN, 0 } };
		::poll(p, 2, static_cast<int>(opts_.frameIntervalMs));

		bool feChanged = false;
		while (auto w = dom0_.store->readWatch())
			if (w->token == "fake-fe-state")
				feChanged = true;
		if (feChanged)
			onFrontendState();

		std::vector<xen::Port> fired;
		for (;;) {
			auto pp = dom0_.events->pending();
			if (!pp || !pp->has_value())
				break;
			fired.push_back(**pp);
		}
		if (connected_) {
			serveRequests();
			std::vector<std::pair<uint8_t, int64_t>> ctrl;
			{
				std::lock_guard<std::mutex> g(lock_);
				ctrl.swap(pendingCtrl_);
			}
			for (auto &[t, v] : ctrl)
				sendEvent(proto::makeCtrlChangeEvent(0, t, v));
			produceFrame();
		}
		for (xen::Port port : fired) {
			if (reqPort_ && port == reqPort_.port())
				(void)reqPort_.unmask();
			if (evtPort_ && port == evtPort_.port())
				(void)evtPort_.unmask();
		}
	}
}

void FakeBackend::onFrontendState()
{
	auto s = dom0_.store->read(paths.frontend + "/state");
	if (!s)
		return;
	int state = std::atoi(s->c_str());
	if (state == XenbusStateInitialised && !connected_) {
		connectRing();
	} else if ((state == XenbusStateClosing || state == XenbusStateClosed) && connected_) {
		closeRing();
		closes++;
		setState(XenbusStateClosed);
	} else if ((state == XenbusStateClosed || state == XenbusStateInitialising) && !connected_) {
		/* Ready for the next connection (a restarting frontend may skip straight to
		 * Initialising: watch events coalesce). */
		setState(XenbusStateInitWait);
	}
}

void FakeBackend::connectRing()
{
	auto t = proto::parseVcameraTransport(view(*dom0_.store, paths.frontend), { "1" });
	if (!t)
		return;
	const xen::DomId fe = opts_.frontend;
	auto rm = dom0_.grants->map(fe, std::vector<xen::Gref>{ t->reqRingRef }, true);
	auto em = dom0_.grants->map(fe, std::vector<xen::Gref>{ t->evtRingRef }, true);
	auto rp = dom0_.events->bindInterdomain(fe, t->reqEventChannel);
	auto ep = dom0_.events->bindInterdomain(fe, t->evtEventChannel);
	if (!rm || !em || !rp || !ep)
		return;
	ringMap_ = std::move(*rm);
	evtMap_ = std::move(*em);
	reqPort_ = std::move(*rp);
	evtPort_ = std::move(*ep);
	ring_ = proto::CameraBackRing(ringMap_.data(), proto::kXenPageSize);
	events_ = proto::EventPageWriter(evtMap_.data());
	connected_ = true;
	connects++;
	setState(XenbusStateConnected);
}

void FakeBackend::closeRing()
{
	buffers_.clear();
	queue_.clear();
	streaming_ = false;
	numBufs_ = 0;
	ring_ = {};
	events_ = {};
	reqPort_.reset();
	evtPort_.reset();
	ringMap_.reset();
	evtMap_.reset();
	connected_ = false;
}

void FakeBackend::serveRequests()
{
	if (ignoreRequests)
		return;
	for (;;) {
		proto::RingPoll p = ring_.finalCheck();
		if (p != proto::RingPoll::Work)
			break;
		bool queue = false, dequeue = false;
		while (ring_.pending()) {
			xencamera_req req = ring_.take();
			requests++;
			queue |= req.operation == XENCAMERA_OP_BUF_QUEUE;
			dequeue |= req.operation == XENCAMERA_OP_BUF_DEQUEUE;
			ring_.respond(handle(req));
		}
		if (queue && dequeue)
			queueDequeueBatches++;
		if (corruptRspProd.exchange(false)) {
			auto *s = reinterpret_cast<xen_cameraif_sring *>(ringMap_.data());
			proto::storeIndex(&s->rsp_prod, s->rsp_prod + 100);
			(void)reqPort_.notify();
			return;
		}
		ring_.pushResponses();
		(void)reqPort_.notify();
	}
}

int FakeBackend::createBuffer(const proto::CameraRequest::BufCreate &c)
{
	auto layout = test_pattern::layout(fourcc_, width_, height_);
	if (c.index >= numBufs_ || buffers_.count(c.index) || !layout)
		return -XEN_EINVAL;
	uint32_t off = 0;
	for (unsigned p = 0; p < layout->numPlanes; p++) {
		if (c.planeOffset[p] != off)
			return -XEN_EINVAL;
		off += layout->planes[p].size;
	}
	const xen::DomId fe = opts_.frontend;
	const uint64_t pages = proto::pagesFor(layout->size);
	Buffer b;
	if (!opts_.beAlloc) {
		proto::GrefDirectoryWalker w(c.grefDirectory, layout->size, pages);
		while (auto g = w.nextPage()) {
			/* camera_be maps the directory read-write: it must be granted so. */
			auto m = dom0_.grants->map(fe, std::vector<xen::Gref>{ *g },
						   opts_.referenceQueue);
			if (!m)
				return -XEN_EINVAL;
			std::vector<uint8_t> copy(m->data(), m->data() + proto::kDirPageSize);
			if (!w.feed(copy))
				return -XEN_EINVAL;
		}
		if (!w.done())
			return -XEN_EINVAL;
		auto grefs = w.takeGrefs();
		auto m = dom0_.grants->map(fe, grefs, true);
		if (!m)
			return -XEN_EINVAL;
		b.data = std::move(*m);
		b.bytes = b.data.data();
	} else {
		proto::GrefDirectoryWalker w(c.grefDirectory, layout->size, pages,
					     proto::GrefDirectoryWalker::Mode::DirectoryOnly);
		while (auto g = w.nextPage()) {
			auto m = dom0_.grants->map(fe, std::vector<xen::Gref>{ *g }, false);
			if (!m)
				return -XEN_EINVAL;
			std::vector<uint8_t> copy(m->data(), m->data() + proto::kDirPageSize);
			if (!w.feed(copy))
				return -XEN_EINVAL;
		}
		if (!w.done())
			return -XEN_EINVAL;
		auto share = dom0_.grants->share(fe, pages, false);
		if (!share)
			return -XEN_ENOMEM;
		auto dirMap = dom0_.grants->map(fe, w.directoryGrefs(), true);
		if (!dirMap)
			return -XEN_EINVAL;
		std::vector<uint8_t *> ptrs;
		for (size_t i = 0; i < w.directoryGrefs().size(); i++)
			ptrs.push_back(dirMap->data() + i * proto::kDirPageSize);
		/* A backend without be-alloc support answers and leaves the directory as it was. */
		if (!emptyBeAllocDirectory &&
		    !proto::writeGrefDirectory(ptrs, w.directoryGrefs(), share->refs(), false))
			return -XEN_EINVAL;
		b.shared = std::move(*share);
		b.bytes = b.shared.data();
	}
	buffers_[c.index] = std::move(b);
	buffersCreated++;
	return 0;
}

xencamera_resp FakeBackend::handle(const xencamera_req &raw)
{
	auto req = proto::decodeCameraRequest(raw);
	if (!req)
		return proto::makeCameraResponse(raw.id, raw.operation, req.error().code);
	xencamera_resp r = proto::makeCameraResponse(raw.id, raw.operation, 0);
	auto fillConfig = [&] {
		r.resp.config.pixel_format = fourcc_;
		r.resp.config.width = width_;
		r.resp.config.height = height_;
		r.resp.config.colorspace = XENCAMERA_COLORSPACE_SMPTE170M;
		r.resp.config.ycbcr_enc = XENCAMERA_YCBCR_ENC_601;
		r.resp.config.quantization = XENCAMERA_QUANTIZATION_LIM_RANGE;
		r.resp.config.displ_asp_ratio_numer = width_;
		r.resp.config.displ_asp_ratio_denom = height_;
		r.resp.config.frame_rate_numer = rateNum_;
		r.resp.config.frame_rate_denom = rateDen_;
	};
	switch (req->op) {
	case XENCAMERA_OP_CONFIG_SET:
	case XENCAMERA_OP_CONFIG_VALIDATE: {
		auto c = std::get<proto::CameraRequest::Config>(req->body);
		if (!test_pattern::layout(c.fourcc, c.width, c.height)) {
			r.status = -XEN_EINVAL;
			break;
		}
		if (req->op == XENCAMERA_OP_CONFIG_SET) {
			if (streaming_ || !buffers_.empty()) {
				r.status = -XEN_EBUSY;
				break;
			}
			fourcc_ = c.fourcc;
			width_ = c.width;
			height_ = c.height;
			fillConfig();
		} else {
			fillConfig();
			r.resp.config.pixel_format = c.fourcc;
			r.resp.config.width = c.width;
			r.resp.config.height = c.height;
		}
		break;
	}
	case XENCAMERA_OP_CONFIG_GET:
		fillConfig();
		break;
	case XENCAMERA_OP_FRAME_RATE_SET: {
		auto f = std::get<proto::CameraRequest::FrameRate>(req->body);
		rateNum_ = f.num;
		rateDen_ = f.den;
		break;
	}
	case XENCAMERA_OP_BUF_GET_LAYOUT: {
		auto l = test_pattern::layout(fourcc_, width_, height_);
		r.resp.buf_layout.num_planes = static_cast<uint8_t>(l->numPlanes);
		r.resp.buf_layout.size = l->size;
		for (unsigned p = 0; p < l->numPlanes; p++) {
			r.resp.buf_layout.plane_size[p] = l->planes[p].size;
			r.resp.buf_layout.plane_stride[p] = l->planes[p].stride;
		}
		break;
	}
	case XENCAMERA_OP_BUF_REQUEST: {
		auto n = std::get<proto::CameraRequest::BufRequest>(req->body).numBufs;
		if (streaming_) {
			r.status = -XEN_EBUSY;
			break;
		}
		if (!n) {
			buffers_.clear();
			queue_.clear();
		}
		numBufs_ = std::min(n, opts_.maxBuffers);
		r.resp.buf_request.num_bufs = numBufs_;
		break;
	}
	case XENCAMERA_OP_BUF_CREATE:
		r.status = createBuffer(std::get<proto::CameraRequest::BufCreate>(req->body));
		break;
	case XENCAMERA_OP_BUF_DESTROY: {
		auto i = std::get<proto::CameraRequest::Index>(req->body).index;
		if (streaming_ || !buffers_.count(i)) {
			r.status = streaming_ ? -XEN_EBUSY : -XEN_EINVAL;
			break;
		}
		buffers_.erase(i);
		std::erase(queue_, i);
		buffersDestroyed++;
		break;
	}
	case XENCAMERA_OP_BUF_QUEUE: {
		auto i = std::get<proto::CameraRequest::Index>(req->body).index;
		bool queued = std::find(queue_.begin(), queue_.end(), i) != queue_.end();
		if (!buffers_.count(i) || (queued && !opts_.referenceQueue)) {
			r.status = -XEN_EINVAL;
			break;
		}
		queue_.push_back(i);
		break;
	}
	case XENCAMERA_OP_BUF_DEQUEUE: {
		/* Off the queue (every entry of it); a buffer announced already is the frontend's. */
		auto i = std::get<proto::CameraRequest::Index>(req->body).index;
		if (!buffers_.count(i)) {
			r.status = -XEN_EINVAL;
			break;
		}
		std::erase(queue_, i);
		dequeues++;
		break;
	}
	case XENCAMERA_OP_CTRL_ENUM: {
		auto i = std::get<proto::CameraRequest::Index>(req->body).index;
		if (i >= 2) {
			r.status = -XEN_EINVAL;
			break;
		}
		r.resp.ctrl_enum.index = i;
		r.resp.ctrl_enum.type = i == 0 ? XENCAMERA_CTRL_BRIGHTNESS : XENCAMERA_CTRL_CONTRAST;
		r.resp.ctrl_enum.min = i == 0 ? -100 : 0;
		r.resp.ctrl_enum.max = 100;
		r.resp.ctrl_enum.step = 1;
		r.resp.ctrl_enum.def_val = i == 0 ? 0 : 50;
		break;
	}
	case XENCAMERA_OP_CTRL_SET: {
		auto c = std::get<proto::CameraRequest::CtrlSet>(req->body);
		if (c.type > XENCAMERA_CTRL_CONTRAST || c.value < -100 || c.value > 100) {
			r.status = -XEN_EINVAL;
			break;
		}
		ctrl_[c.type] = c.value;
		break;
	}
	case XENCAMERA_OP_CTRL_GET: {
		auto c = std::get<proto::CameraRequest::CtrlGet>(req->body);
		if (c.type > XENCAMERA_CTRL_CONTRAST) {
			r.status = -XEN_EINVAL;
			break;
		}
		r.resp.ctrl_value.type = c.type;
		r.resp.ctrl_value.value = ctrl_[c.type];
		break;
	}
	case XENCAMERA_OP_STREAM_START:
		if (buffers_.empty()) {
			r.status = -XEN_EINVAL;
			break;
		}
		streaming_ = true;
		nextFrame_ = std::chrono::steady_clock::now();
		break;
	case XENCAMERA_OP_STREAM_STOP:
		streaming_ = false;
		queue_.clear();
		break;
	default:
		r.status = -XEN_ENOSYS;
	}
	return r;
}

void FakeBackend::sendEvent(const xencamera_evt &e)
{
	if (events_.put(e) == proto::EventPageWriter::Put::Ok)
		(void)evtPort_.notify();
}

void FakeBackend::produceFrame()
{
	if (!streaming_ || queue_.empty() || std::chrono::steady_clock::now() < nextFrame_)
		return;
	nextFrame_ += std::chrono::milliseconds(opts_.frameIntervalMs);
	auto layout = test_pattern::layout(fourcc_, width_, height_);
	if (badIndexOnce.exchange(false)) {
		sendEvent(proto::makeFrameAvailEvent(0, 200, layout->size, seq_));
		return;
	}
	uint8_t idx = queue_.front();
	if (bigUsedOnce.exchange(false)) {
		queue_.pop_front();
		sendEvent(proto::makeFrameAvailEvent(0, idx, layout->size + 1, seq_++));
		return;
	}
	uint32_t de = dropEvery;
	if (de && sent_ && sent_ % de == 0)
		seq_++; /* a frame "dropped" by the camera */
	if (!opts_.referenceQueue)
		queue_.pop_front(); /* else the head stays queued until dequeued */
	Buffer &b = buffers_.at(idx);
	test_pattern::render(*layout, seq_, b.bytes, layout->size);
	sendEvent(proto::makeFrameAvailEvent(0, idx, layout->size, seq_));
	seq_++;
	sent_++;
	framesSent++;
}

} /* namespace xmb::frontend::test */
