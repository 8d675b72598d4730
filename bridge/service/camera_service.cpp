/* SPDX-License-Identifier: MIT */
#include "bridge/service/camera_service.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

extern "C" {
#include <xen/io/xenbus.h>
}

#include "bridge/service/toolstack.h"
#include "v4l2/pixel_format.h"
#include "protocol/cameraif.h"

namespace xmb::service {

XMB_LOG_DEFINE_CATEGORY(logService, "service");

CameraService::CameraService(xen::Platform &dom0, EventLoop &loop) : dom0_(dom0), loop_(loop) {}

CameraService::~CameraService()
{
	stop();
}

Status CameraService::openCameras(const ServiceConfig &config, const SourceFactory &factory)
{
	for (const auto &c : config.cameras) {
		if (hubs_.count(c.name))
			continue;
		auto src = factory(c);
		if (!src)
			return src.error();
		HubOptions o;
		o.forceCopy = c.forceCopy;
		if (c.foreignUserPtr) {
			o.foreignUserPtr = *c.foreignUserPtr;
			o.foreignDetail = "foreign-userptr = no in the configuration";
		} else {
			xen::ForeignMapSupport fm = dom0_.grants->probeForeignMaps();
			o.foreignUserPtr = fm.driverVmap;
			o.foreignDetail = fm.detail;
		}
		o.allowedFormats = c.formats;
		XMB_LOG(logService, Info, "camera %s: %s", c.name.c_str(), (*src)->description().c_str());
		hubs_[c.name] = std::make_unique<CameraHub>(c.name, std::move(*src), loop_, o);
	}
	return {};
}

/**
 * \brief Start serving: cameras first (a missing device fails here, naming
 * it, before any guest sees a half-made device), then XenStore.
 */
Status CameraService::start(const ServiceConfig &config, const SourceFactory &factory)
{
	Status s = openCameras(config, factory);
	if (!s)
		return s;
	cameras_ = config.cameras;
	for (const auto &g : config.guests) {
		auto d = std::make_unique<Device>();
		d->guest = g;
		d->hub = hubs_.at(g.camera).get();
		devices_.push_back(std::move(d));
	}
	s = loop_.addFd(dom0_.store->fd(), [this](uint32_t) { onXenStore(); });
	if (!s)
		return s;
	s = loop_.addFd(dom0_.events->fd(), [this](uint32_t) { onEventChannel(); });
	if (!s)
		return s;
	/* Guests that come and go: attach when they appear, clean up when they die. */
	for (const char *special : { "@introduceDomain", "@releaseDomain" }) {
		s = dom0_.store->watch(special, special);
		if (!s)
			return s;
	}
	/* Devices the toolstack creates itself appear under our backend directory. */
	toolstackRoot_ = xen::XenStore::domainPath(dom0_.self) + "/backend/vcamera";
	s = dom0_.store->watch(toolstackRoot_, "toolstack");
	if (!s)
		return s;
	watching_ = true;
	attachPending();
	scanToolstackDevices();
	return {};
}

void CameraService::stop()
{
	for (auto &d : devices_)
		detach(*d, !d->toolstack);
	devices_.clear();
	if (watching_) {
		(void)dom0_.store->unwatch("@introduceDomain", "@introduceDomain");
		(void)dom0_.store->unwatch("@releaseDomain", "@releaseDomain");
		(void)dom0_.store->unwatch(toolstackRoot_, "toolstack");
		if (recheckTimer_)
			loop_.cancelTimer(std::exchange(recheckTimer_, 0));
		loop_.removeFd(dom0_.store->fd());
		loop_.removeFd(dom0_.events->fd());
		watching_ = false;
	}
	hubs_.clear();
}

Status CameraService::reload(const ServiceConfig &config, const SourceFactory &factory)
{
	Status s = openCameras(config, factory);
	if (!s)
		return s;
	/* Detach devices whose guest section is gone or changed; keep the others connected. */
	auto same = [](const GuestEntry &a, const GuestEntry &b) {
		return a.name == b.name && a.domid == b.domid && a.domainName == b.domainName &&
		       a.device == b.device && a.camera == b.camera && a.maxBuffers == b.maxBuffers &&
		       a.beAlloc == b.beAlloc && a.maxPages == b.maxPages && a.controls == b.controls &&
		       a.uniqueId == b.uniqueId;
	};
	cameras_ = config.cameras;
	std::erase_if(devices_, [&](const std::unique_ptr<Device> &d) {
		if (d->toolstack) {
			/* Kept while a camera still claims its unique-id (rebound on the scan below). */
			bool keep = std::any_of(cameras_.begin(), cameras_.end(), [&](const CameraEntry &c) {
				return c.name == d->guest.camera && c.uniqueId == d->published.uniqueId;
			});
			if (!keep)
				detach(*d, false);
			return !keep;
		}
		bool keep = std::any_of(config.guests.begin(), config.guests.end(),
					[&](const GuestEntry &g) { return same(g, d->guest); });
		if (!keep)
			detach(*d, true);
		return !keep;
	});
	for (const auto &g : config.guests) {
		bool have = std::any_of(devices_.begin(), devices_.end(),
					[&](const auto &d) { return same(g, d->guest); });
		if (have)
			continue;
		auto d = std::make_unique<Device>();
		d->guest = g;
		d->hub = hubs_.at(g.camera).get();
		devices_.push_back(std::move(d));
	}
	attachPending();
	refused_.clear(); /* a new configuration may serve them */
	scanToolstackDevices();
	return {};
}

proto::VcameraConfig CameraService::publishedConfig(const GuestEntry &g, CameraHub &hub)
{
	proto::VcameraConfig c;
	c.beAlloc = g.beAlloc;
	c.maxBuffers = g.maxBuffers;
	c.uniqueId = g.uniqueId.empty() ? hub.source().id() : g.uniqueId;
	if (g.controls) {
		c.controls = *g.controls;
	} else {
		for (const auto &ctrl : hub.controls())
			c.controls.push_back(ctrl.type);
	}
	/* Group the flat list into formats/<FOURCC>/<W>x<H>/frame-rates, within the schema's bounds. */
	for (const auto &f : hub.formats()) {
		auto it = std::find_if(c.formats.begin(), c.formats.end(),
				       [&](const proto::FormatCaps &fc) { return fc.fourcc == f.fourcc; });
		if (it == c.formats.end()) {
			if (c.formats.size() >= proto::kMaxFormats)
				continue;
			c.formats.push_back({ f.fourcc, {} });
			it = c.formats.end() - 1;
		}
		if (it->resolutions.size() >= proto::kMaxResolutionsPerFormat)
			continue;
		proto::Resolution r{ f.width, f.height, {} };
		for (const auto &iv : f.intervals) {
			if (r.frameRates.size() >= proto::kMaxFrameRates || !iv.isValid())
				break;
			proto::Fraction rate{ iv.denominator, iv.numerator };
			if (std::find(r.frameRates.begin(), r.frameRates.end(), rate) == r.frameRates.end())
				r.frameRates.push_back(rate);
		}
		if (!r.frameRates.empty())
			it->resolutions.push_back(std::move(r));
	}
	return c;
}

/* Attach every configured device whose guest is running and not attached yet. */
void CameraService::attachPending()
{
	for (auto &d : devices_) {
		if (d->attached || d->toolstack)
			continue;
		auto running = runningDomain(*dom0_.store, d->guest.domid, d->guest.domainName);
		if (!running)
			continue; /* not running (yet) */
		const xen::DomId fe = *running;
		Status s = attach(*d, fe);
		if (!s)
			XMB_LOG(logService, Error, "[guest %s]: attach to dom%u failed: %s",
				d->guest.name.c_str(), fe, s.error().message.c_str());
	}
}

Status CameraService::attach(Device &d, xen::DomId fe)
{
	d.frontend = fe;
	d.published = publishedConfig(d.guest, *d.hub);
	if (d.published.formats.empty())
		return Error{ -EINVAL, "camera " + d.hub->name() + " offers no format" };
	auto paths = proto::vcameraPaths(dom0_.self, fe, d.guest.device);
	d.fePath = paths.frontend;
	d.bePath = paths.backend;
	d.token = "fe:" + std::to_string(fe) + ":" + std::to_string(d.guest.device);
	Status s = attachDevice(*dom0_.store, dom0_.self, fe, d.guest.device, d.published);
	if (!s)
		return s;
	d.attached = true;
	updatePageLimit(fe);
	/* The camera is open: ready for the frontend (cameraif: backend InitWait). */
	setBackendState(d, XenbusStateInitWait);
	s = dom0_.store->watch(d.fePath + "/state", d.token);
	XMB_LOG(logService, Info, "[guest %s]: dom%u vcamera/%u attached to camera %s (%s)",
		d.guest.name.c_str(), fe, d.guest.device, d.hub->name().c_str(),
		d.guest.beAlloc ? "be-alloc" : "frontend-allocated buffers");
	return s;
}

void CameraService::detach(Device &d, bool removeNodes)
{
	if (!d.attached)
		return;
	if (d.retryTimer)
		loop_.cancelTimer(std::exchange(d.retryTimer, 0));
	teardown(d, "detached");
	(void)dom0_.store->unwatch(d.fePath + "/state", d.token);
	if (removeNodes) {
		setBackendState(d, XenbusStateClosed);
		(void)detachDevice(*dom0_.store, dom0_.self, d.frontend, d.guest.device);
	}
	d.attached = false;
	updatePageLimit(d.frontend);
}

/*
 * The grant layer caps pages per domain; a domain may have several devices,
 * so the cap is the sum of theirs (ring and directory pages included).
 */
void CameraService::updatePageLimit(xen::DomId fe)
{
	size_t pages = 0;
	for (const auto &d : devices_)
		if (d->attached && d->frontend == fe)
			pages += d->guest.maxPages + 4;
	dom0_.grants->setPageLimit(fe, pages);
}

void CameraService::setBackendState(Device &d, int state)
{
	Status s = dom0_.store->write(d.bePath + "/state", std::to_string(state));
	if (!s)
		XMB_LOG(logService, Debug, "%s: %s", d.bePath.c_str(), s.error().message.c_str());
}

void CameraService::onXenStore()
{
	bool domainsChanged = false, introduced = false, toolstack = false;
	while (auto ev = dom0_.store->readWatch()) {
		if (ev->token == "toolstack") {
			toolstack = true;
		} else if (ev->token == "@releaseDomain") {
			domainsChanged = true;
		} else if (ev->token == "@introduceDomain") {
			introduced = true;
		} else {
			for (auto &d : devices_)
				if (d->attached && d->token == ev->token)
					frontendChanged(*d);
		}
	}
	if (domainsChanged) {
		checkDomains();
		/*
		 * @releaseDomain fires when Xen has destroyed the domain; the
		 * toolstack removes its XenStore directory a little later.
		 */
		if (recheckTimer_)
			loop_.cancelTimer(recheckTimer_);
		recheckTimer_ = loop_.addTimer(std::chrono::milliseconds(500), [this] {
			recheckTimer_ = 0;
			checkDomains();
		});
	}
	if (introduced)
		attachPending();
	if (toolstack)
		scanToolstackDevices();
}

/* A guest died: release everything of its frontends now (mappings included). */
void CameraService::checkDomains()
{
	for (auto &d : devices_) {
		if (!d->attached)
			continue;
		if (!domainGone(*dom0_.store, d->frontend))
			continue;
		XMB_LOG(logService, Info, "[guest %s]: dom%u is gone: releasing its camera",
			d->guest.name.c_str(), d->frontend);
		detach(*d, !d->toolstack);
	}
	/* The toolstack removes its devices' nodes itself; forget ours of dead guests. */
	std::erase_if(devices_, [](const std::unique_ptr<Device> &d) { return d->toolstack && !d->attached; });
}

/**
 * \brief The xenbus state machine, driven by the frontend's state node.
 *
 * The frontend directory belongs to the guest, so its state is just
 * another hostile value: anything unparsable closes the session.
 */
void CameraService::frontendChanged(Device &d)
{
	auto raw = dom0_.store->read(d.fePath + "/state");
	if (!raw) {
		/* Frontend directory gone: the guest is dying or the device was detached. */
		teardown(d, "frontend directory removed");
		if (domainGone(*dom0_.store, d.frontend)) {
			XMB_LOG(logService, Info, "[guest %s]: dom%u is gone: releasing its camera",
				d.guest.name.c_str(), d.frontend);
			detach(d, !d.toolstack);
		}
		return;
	}
	auto state = proto::parseXenbusState("state", *raw);
	if (!state) {
		teardown(d, "unparsable frontend state");
		setBackendState(d, XenbusStateClosing);
		return;
	}
	switch (*state) {
	case XenbusStateInitialising:
		/* A (re)starting frontend: be ready for it. */
		if (d.session)
			teardown(d, "frontend restarted");
		setBackendState(d, XenbusStateInitWait);
		break;
	case XenbusStateInitialised:
		if (d.session)
			break;
		/*
		 * Each connect maps rings and sets a session up; a frontend that
		 * flaps its state would make us do that without end.  A budget
		 * per device; past it the connect waits for a timer (the state
		 * is read again then), no refusal.
		 */
		if (d.connectBudget.allow())
			connectFrontend(d);
		else
			retryConnectLater(d);
		break;
	case XenbusStateConnected:
		break;
	case XenbusStateReconfiguring:
		teardown(d, "frontend reconfiguring");
		setBackendState(d, XenbusStateInitWait);
		break;
	case XenbusStateClosing:
	case XenbusStateClosed:
	case XenbusStateUnknown:
	default:
		if (d.session) {
			teardown(d, "frontend closed");
			setBackendState(d, XenbusStateClosed);
		}
		break;
	}
}

void CameraService::retryConnectLater(Device &d)
{
	if (d.retryTimer)
		return;
	d.retryTimer = loop_.addTimer(std::chrono::milliseconds(250), [this, token = d.token] {
		/* Looked up again: the device may have gone meanwhile. */
		for (auto &dev : devices_)
			if (dev->attached && dev->token == token) {
				dev->retryTimer = 0;
				frontendChanged(*dev);
				return;
			}
	});
}

void CameraService::connectFrontend(Device &d)
{
	proto::XsView view = directoryView(*dom0_.store, d.fePath);
	auto transport = proto::parseVcameraTransport(view, { XENCAMERA_PROTOCOL_VERSION });
	if (!transport) {
		if (d.logLimit.allow())
			XMB_LOG(logService, Warn, "dom%u vcamera/%u: bad transport: %s",
				d.frontend, d.guest.device, transport.error().message.c_str());
		setBackendState(d, XenbusStateClosing);
		return;
	}
	if (transport->versionImplied)
		XMB_LOG(logService, Debug, "dom%u vcamera/%u: frontend wrote no version, "
			"speaking protocol 1", d.frontend, d.guest.device);

	SessionConfig sc;
	sc.frontend = d.frontend;
	sc.devid = d.guest.device;
	sc.maxBuffers = d.guest.maxBuffers;
	sc.beAlloc = d.guest.beAlloc;
	sc.maxPages = d.guest.maxPages;
	sc.controls = d.published.controls;
	/*
	 * The default (G_FMT before S_FMT): the first published format with
	 * one plane if there is one.  Linux's frontend serves single-plane
	 * formats only and fails G_FMT on a two-plane default, which makes
	 * V4L2 tools that read the format first unusable.
	 */
	const proto::FormatCaps *def = nullptr;
	for (const auto &f : d.published.formats) {
		if (f.resolutions.empty())
			continue;
		auto l = packedFrameLayout(f.fourcc, f.resolutions[0].width, f.resolutions[0].height);
		if (!def)
			def = &f;
		if (l && l->numPlanes == 1) {
			def = &f;
			break;
		}
	}
	if (def) {
		sc.defaultFourcc = def->fourcc;
		sc.defaultWidth = def->resolutions[0].width;
		sc.defaultHeight = def->resolutions[0].height;
	}
	auto session = std::make_unique<CameraSession>(
		dom0_, loop_, *d.hub, sc,
		[this](CameraSession *s, const std::string &why) { onViolation(s, why); });
	Status s = session->connect(*transport);
	if (!s) {
		if (d.logLimit.allow())
			XMB_LOG(logService, Warn, "%s", s.error().message.c_str());
		setBackendState(d, XenbusStateClosing);
		return;
	}
	ports_[session->requestPort()] = session.get();
	ports_[session->eventPort()] = session.get();
	d.session = std::move(session);
	d.connects++;
	setBackendState(d, XenbusStateConnected);
	/* Requests may already be waiting: the frontend can push before we connect. */
	d.session->onRequestNotify();
}

/**
 * \brief Serve vcamera devices the toolstack created (libxl's vcamera)
 *
 * The toolstack writes the frontend's configuration nodes and our backend
 * directory itself; we find its devices under backend/vcamera/<fe>/<dev>,
 * bind each to the camera whose unique-id it names, and from then on write
 * only our backend "state" node.  A device whose directory goes is released
 * (its nodes are the toolstack's to remove).  Bounded: at most 256 devices
 * per domain are looked at, each refusal is logged once.
 */
void CameraService::scanToolstackDevices()
{
	std::set<std::pair<xen::DomId, unsigned>> present;
	if (auto fes = dom0_.store->list(toolstackRoot_)) {
		for (const std::string &feName : *fes) {
			auto fe = proto::parseUnsigned("frontend", feName, 0x7fef);
			if (!fe)
				continue;
			auto devs = dom0_.store->list(toolstackRoot_ + "/" + feName);
			if (!devs)
				continue;
			for (size_t i = 0; i < devs->size() && i < 256; i++)
				if (auto dev = proto::parseUnsigned("device", (*devs)[i], 255))
					present.insert({ static_cast<xen::DomId>(*fe), static_cast<unsigned>(*dev) });
		}
	}
	std::erase_if(devices_, [&](const std::unique_ptr<Device> &d) {
		if (!d->toolstack || present.count({ d->frontend, d->guest.device }))
			return false;
		XMB_LOG(logService, Info, "%s: removed by the toolstack: released", d->guest.name.c_str());
		detach(*d, false);
		return true;
	});
	std::erase_if(refused_, [&](const auto &k) { return !present.count(k); });
	for (const auto &key : present) {
		const xen::DomId fe = key.first; /* not a structured binding: clang 14 cannot capture those */
		const unsigned dev = key.second;
		bool known = std::any_of(devices_.begin(), devices_.end(), [&](const auto &d) {
			return d->attached && d->frontend == fe && d->guest.device == dev;
		});
		if (!known && !refused_.count({ fe, dev }))
			bindToolstackDevice(fe, dev);
	}
}

void CameraService::bindToolstackDevice(xen::DomId fe, unsigned devid)
{
	const auto paths = proto::vcameraPaths(dom0_.self, fe, devid);
	auto feNode = dom0_.store->read(paths.backend + "/frontend");
	if (!feNode)
		return; /* still being written: the watch fires again */
	std::string label = "dom" + std::to_string(fe) + " vcamera/" + std::to_string(devid);
	auto refuse = [&](const std::string &why) {
		XMB_LOG(logService, Warn, "%s (toolstack-created): %s: not served", label.c_str(), why.c_str());
		refused_.insert({ fe, devid });
	};
	if (*feNode != paths.frontend)
		return refuse("backend node 'frontend' is '" + *feNode + "', expected " + paths.frontend);
	/*
	 * The toolstack wrote these, but the frontend directory is the guest's
	 * to write too: read once here, every value bounded like any guest input.
	 */
	auto cfg = proto::parseVcameraConfig(directoryView(*dom0_.store, paths.frontend));
	if (!cfg)
		return refuse("frontend configuration: " + cfg.error().message);
	auto cam = std::find_if(cameras_.begin(), cameras_.end(), [&](const CameraEntry &c) {
		return !c.uniqueId.empty() && c.uniqueId == cfg->uniqueId;
	});
	if (cam == cameras_.end() || !hubs_.count(cam->name))
		return refuse("unique-id '" + cfg->uniqueId + "' names no camera (a [camera] "
			      "section's unique-id key)");

	auto d = std::make_unique<Device>();
	d->toolstack = true;
	d->guest.name = label + " (toolstack)";
	d->guest.domid = fe;
	d->guest.device = devid;
	d->guest.camera = cam->name;
	d->guest.maxBuffers = std::min(cfg->maxBuffers, cam->toolstackMaxBuffers);
	d->guest.beAlloc = cfg->beAlloc;
	d->guest.controls = cfg->controls;
	d->hub = hubs_.at(cam->name).get();
	d->published = *cfg; /* what the guest was told; not rewritten */
	d->frontend = fe;
	d->fePath = paths.frontend;
	d->bePath = paths.backend;
	d->token = "fe:" + std::to_string(fe) + ":" + std::to_string(devid);
	d->attached = true;
	Device &added = *d;
	devices_.push_back(std::move(d));
	updatePageLimit(fe);
	setBackendState(added, XenbusStateInitWait);
	Status s = dom0_.store->watch(added.fePath + "/state", added.token);
	if (!s)
		XMB_LOG(logService, Warn, "%s: watch: %s", label.c_str(), s.error().message.c_str());
	XMB_LOG(logService, Info, "%s: toolstack-created device (unique-id %s) attached to camera %s (%s)",
		label.c_str(), cfg->uniqueId.c_str(), cam->name.c_str(),
		cfg->beAlloc ? "be-alloc" : "frontend-allocated buffers");
	frontendChanged(added); /* a frontend already waiting */
}

void CameraService::teardown(Device &d, const char *why)
{
	if (!d.session)
		return;
	XMB_LOG(logService, Info, "dom%u vcamera/%u: closing (%s): %lu frames, %lu bytes copied, %lu drops",
		d.frontend, d.guest.device, why, static_cast<unsigned long>(d.session->stats().frames),
		static_cast<unsigned long>(d.session->stats().bytesCopied),
		static_cast<unsigned long>(d.session->stats().drops));
	ports_.erase(d.session->requestPort());
	ports_.erase(d.session->eventPort());
	d.session.reset();
}

CameraService::Device *CameraService::deviceOf(CameraSession *s)
{
	for (auto &d : devices_)
		if (d->session.get() == s)
			return d.get();
	return nullptr;
}

void CameraService::onViolation(CameraSession *s, const std::string &why)
{
	Device *d = deviceOf(s);
	if (!d)
		return;
	if (d->logLimit.allow()) {
		unsigned dropped = d->logLimit.takeSuppressed();
		XMB_LOG(logService, Warn, "dom%u vcamera/%u: protocol violation: %s; closing this frontend%s",
			d->frontend, d->guest.device, why.c_str(),
			dropped ? (" (" + std::to_string(dropped) + " similar lines suppressed)").c_str() : "");
	}
	teardown(*d, "protocol violation");
	setBackendState(*d, XenbusStateClosing);
}

/* Drain the event-channel fd, then serve each port (late re-arm is the session's). */
void CameraService::onEventChannel()
{
	std::vector<xen::Port> fired;
	while (true) {
		auto p = dom0_.events->pending();
		if (!p || !p->has_value())
			break;
		fired.push_back(**p);
	}
	for (xen::Port port : fired) {
		auto it = ports_.find(port);
		if (it == ports_.end())
			continue; /* a port of a session already torn down */
		CameraSession *s = it->second;
		if (port == s->requestPort())
			s->onRequestNotify();
		else
			s->onEventNotify();
	}
}

std::vector<DeviceReport> CameraService::report() const
{
	std::vector<DeviceReport> out;
	for (const auto &d : devices_) {
		DeviceReport r;
		r.label = "[guest " + d->guest.name + "] dom" + std::to_string(d->frontend) + " vcamera/" +
			  std::to_string(d->guest.device);
		r.camera = d->hub->name();
		r.connected = d->session != nullptr;
		r.connects = d->connects;
		r.domainMappedPages = d->attached || d->frontend ? dom0_.grants->mappedPages(d->frontend) : 0;
		if (d->session) {
			r.tier = d->session->tier();
			r.stats = d->session->stats();
		}
		out.push_back(r);
	}
	return out;
}

size_t CameraService::connected() const
{
	return std::count_if(devices_.begin(), devices_.end(),
			     [](const auto &d) { return d->session != nullptr; });
}

} /* namespace xmb::service */
