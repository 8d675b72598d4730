/* SPDX-License-Identifier: MIT */
#include "bridge/service/camera_service.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

extern "C" {
#include <xen/io/xenbus.h>
}

#include "bridge/service/toolstack.h"
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
	watching_ = true;
	attachPending();
	return {};
}

void CameraService::stop()
{
	for (auto &d : devices_)
		detach(*d, true);
	devices_.clear();
	if (watching_) {
		(void)dom0_.store->unwatch("@introduceDomain", "@introduceDomain");
		(void)dom0_.store->unwatch("@releaseDomain", "@releaseDomain");
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
	std::erase_if(devices_, [&](const std::unique_ptr<Device> &d) {
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
		if (d->attached)
			continue;
		xen::DomId fe;
		if (d->guest.domid) {
			fe = *d->guest.domid;
			if (!dom0_.store->read(xen::XenStore::domainPath(fe) + "/domid"))
				continue; /* not running (yet) */
		} else {
			auto id = findDomainByName(*dom0_.store, d->guest.domainName);
			if (!id)
				continue;
			fe = *id;
		}
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
	dom0_.grants->setPageLimit(fe, d.guest.maxPages + 4 /* ring pages, directory pages */);
	d.attached = true;
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
	teardown(d, "detached");
	(void)dom0_.store->unwatch(d.fePath + "/state", d.token);
	if (removeNodes) {
		setBackendState(d, XenbusStateClosed);
		(void)detachDevice(*dom0_.store, dom0_.self, d.frontend, d.guest.device);
	}
	d.attached = false;
}

void CameraService::setBackendState(Device &d, int state)
{
	Status s = dom0_.store->write(d.bePath + "/state", std::to_string(state));
	if (!s)
		XMB_LOG(logService, Debug, "%s: %s", d.bePath.c_str(), s.error().message.c_str());
}

void CameraService::onXenStore()
{
	bool domainsChanged = false, introduced = false;
	while (auto ev = dom0_.store->readWatch()) {
		if (ev->token == "@releaseDomain") {
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
		loop_.addTimer(std::chrono::milliseconds(500), [this] { checkDomains(); });
	}
	if (introduced)
		attachPending();
}

/* A guest died: release everything of its frontends now (mappings included). */
void CameraService::checkDomains()
{
	for (auto &d : devices_) {
		if (!d->attached)
			continue;
		if (dom0_.store->read(xen::XenStore::domainPath(d->frontend) + "/domid"))
			continue;
		XMB_LOG(logService, Info, "[guest %s]: dom%u is gone: releasing its camera",
			d->guest.name.c_str(), d->frontend);
		detach(*d, true);
	}
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
		if (!dom0_.store->read(xen::XenStore::domainPath(d.frontend) + "/domid")) {
			XMB_LOG(logService, Info, "[guest %s]: dom%u is gone: releasing its camera",
				d.guest.name.c_str(), d.frontend);
			detach(d, true);
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
		if (!d.session)
			connectFrontend(d);
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

void CameraService::connectFrontend(Device &d)
{
	xen::XenStore &xs = *dom0_.store;
	proto::XsView view;
	std::string dir = d.fePath;
	view.read = [&xs, dir](const std::string &k) -> std::optional<std::string> {
		auto v = xs.read(dir + "/" + k);
		return v ? std::optional<std::string>(*v) : std::nullopt;
	};
	view.list = [&xs, dir](const std::string &k) -> std::optional<std::vector<std::string>> {
		auto v = xs.list(dir + "/" + k);
		return v ? std::optional<std::vector<std::string>>(*v) : std::nullopt;
	};
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
	if (!d.published.formats.empty() && !d.published.formats[0].resolutions.empty()) {
		const auto &f = d.published.formats[0];
		sc.defaultFourcc = f.fourcc;
		sc.defaultWidth = f.resolutions[0].width;
		sc.defaultHeight = f.resolutions[0].height;
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
	setBackendState(d, XenbusStateConnected);
	/* Requests may already be waiting: the frontend can push before we connect. */
	d.session->onRequestNotify();
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
