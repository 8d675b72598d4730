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

CameraService::CameraService(xen::Platform &dom0, EventLoop &loop)
	: dom0_(dom0), loop_(loop), backend_(dom0, loop, "vcamera", "camera", *this)
{
}

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
		o.shareDeviceBuffers = c.shareDeviceBuffers;
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
	for (const auto &g : config.guests)
		addGuest(g);
	s = backend_.start();
	if (!s)
		return s;
	/* Devices the toolstack creates itself appear under our backend directory. */
	toolstackRoot_ = xen::XenStore::domainPath(dom0_.self) + "/backend/vcamera";
	s = dom0_.store->watch(toolstackRoot_, "toolstack");
	if (!s)
		return s;
	watchingToolstack_ = true;
	scanToolstackDevices();
	return {};
}

void CameraService::addGuest(const GuestEntry &g)
{
	auto d = std::make_unique<Device>();
	d->guest = g;
	d->hub = hubs_.at(g.camera).get();
	d->name = g.name;
	d->domid = g.domid;
	d->domainName = g.domainName;
	d->devid = g.device;
	d->pageLimit = g.maxPages;
	backend_.add(std::move(d));
}

void CameraService::stop()
{
	if (watchingToolstack_) {
		(void)dom0_.store->unwatch(toolstackRoot_, "toolstack");
		watchingToolstack_ = false;
	}
	backend_.stop();
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
	std::vector<const XenbusDevice *> gone;
	for (const auto &xd : backend_.devices()) {
		Device &d = of(*xd);
		bool keep;
		if (d.toolstack) {
			/* Kept while a camera still claims its unique-id (rebound on the scan below). */
			keep = std::any_of(cameras_.begin(), cameras_.end(), [&](const CameraEntry &c) {
				return c.name == d.guest.camera && c.uniqueId == d.published.uniqueId;
			});
		} else {
			keep = std::any_of(config.guests.begin(), config.guests.end(),
					   [&](const GuestEntry &g) { return same(g, d.guest); });
		}
		if (!keep) {
			backend_.detach(d);
			gone.push_back(&d);
		}
	}
	backend_.forget([&](const XenbusDevice &d) {
		return std::find(gone.begin(), gone.end(), &d) != gone.end();
	});
	for (const auto &g : config.guests) {
		bool have = std::any_of(backend_.devices().begin(), backend_.devices().end(),
					[&](const auto &d) { return same(g, of(*d).guest); });
		if (!have)
			addGuest(g);
	}
	backend_.attachPending();
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

/* XenbusDriver: a service-created device's nodes, with what this guest may use. */
Status CameraService::createNodes(XenbusDevice &xd)
{
	Device &d = of(xd);
	d.published = publishedConfig(d.guest, *d.hub);
	if (d.published.formats.empty())
		return Error{ -EINVAL, "camera " + d.hub->name() + " offers no format" };
	Status s = attachDevice(*dom0_.store, dom0_.self, d.frontend, d.devid, d.published);
	if (s)
		XMB_LOG(logService, Info, "[guest %s]: dom%u vcamera/%u attached to camera %s (%s)",
			d.guest.name.c_str(), d.frontend, d.devid, d.hub->name().c_str(),
			d.guest.beAlloc ? "be-alloc" : "frontend-allocated buffers");
	return s;
}

/* XenbusDriver: the frontend is Initialised: read its transport, set a session up. */
Result<std::unique_ptr<BackendSession>> CameraService::connect(XenbusDevice &xd)
{
	Device &d = of(xd);
	proto::XsView view = directoryView(*dom0_.store, d.fePath);
	auto transport = proto::parseVcameraTransport(view, { XENCAMERA_PROTOCOL_VERSION });
	if (!transport)
		return Error{ transport.error().code, "bad transport: " + transport.error().message };
	if (transport->versionImplied)
		XMB_LOG(logService, Debug, "dom%u vcamera/%u: frontend wrote no version, "
			"speaking protocol 1", d.frontend, d.devid);

	SessionConfig sc;
	sc.frontend = d.frontend;
	sc.devid = d.devid;
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
		[this](CameraSession *s, const std::string &why) { backend_.violation(s, why); });
	Status s = session->connect(*transport);
	if (!s)
		return s.error();
	return std::unique_ptr<BackendSession>(std::move(session));
}

void CameraService::closing(XenbusDevice &d, const char *why)
{
	auto *session = static_cast<CameraSession *>(d.session.get());
	const SessionStats st = session->stats();
	XMB_LOG(logService, Info, "dom%u vcamera/%u: closing (%s): %lu frames, %lu bytes copied, %lu drops",
		d.frontend, d.devid, why, static_cast<unsigned long>(st.frames),
		static_cast<unsigned long>(st.bytesCopied), static_cast<unsigned long>(st.drops));
}

void CameraService::watchFired(const std::string &token)
{
	if (token == "toolstack")
		scanToolstackDevices();
}

/* The toolstack removes its devices' nodes itself; forget ours of dead guests. */
void CameraService::domainsChecked()
{
	backend_.forget([](const XenbusDevice &d) { return d.toolstack; });
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
	for (const auto &d : backend_.devices()) {
		if (!d->toolstack || !d->attached || present.count({ d->frontend, d->devid }))
			continue;
		XMB_LOG(logService, Info, "%s: removed by the toolstack: released", d->name.c_str());
		backend_.detach(*d);
	}
	backend_.forget([](const XenbusDevice &d) { return d.toolstack; });
	std::erase_if(refused_, [&](const auto &k) { return !present.count(k); });
	for (const auto &key : present) {
		const xen::DomId fe = key.first; /* not a structured binding: clang 14 cannot capture those */
		const unsigned dev = key.second;
		bool known = std::any_of(backend_.devices().begin(), backend_.devices().end(), [&](const auto &d) {
			return d->attached && d->frontend == fe && d->devid == dev;
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
	d->guest.name = label + " (toolstack)";
	d->guest.domid = fe;
	d->guest.device = devid;
	d->guest.camera = cam->name;
	d->guest.maxBuffers = std::min(cfg->maxBuffers, cam->toolstackMaxBuffers);
	d->guest.beAlloc = cfg->beAlloc;
	d->guest.controls = cfg->controls;
	d->hub = hubs_.at(cam->name).get();
	d->published = *cfg; /* what the guest was told; not rewritten */
	d->name = d->guest.name;
	d->domid = fe;
	d->devid = devid;
	d->pageLimit = d->guest.maxPages;
	XMB_LOG(logService, Info, "%s: toolstack-created device (unique-id %s) attached to camera %s (%s)",
		label.c_str(), cfg->uniqueId.c_str(), cam->name.c_str(),
		cfg->beAlloc ? "be-alloc" : "frontend-allocated buffers");
	backend_.adopt(std::move(d), fe);
}

std::vector<DeviceReport> CameraService::report() const
{
	std::vector<DeviceReport> out;
	for (const auto &xd : backend_.devices()) {
		const Device &d = of(*xd);
		DeviceReport r;
		r.label = "[guest " + d.guest.name + "] dom" + std::to_string(d.frontend) + " vcamera/" +
			  std::to_string(d.devid);
		r.camera = d.hub->name();
		r.connected = d.session != nullptr;
		r.connects = d.connects;
		r.domainMappedPages = d.attached || d.frontend ? dom0_.grants->mappedPages(d.frontend) : 0;
		r.domainDmaBufs = d.attached || d.frontend ? dom0_.grants->exportedDmaBufs(d.frontend) : 0;
		if (d.session) {
			const auto *session = static_cast<const CameraSession *>(d.session.get());
			r.tier = session->tier();
			r.stats = session->stats();
			if (const StreamConfig *c = session->format())
				r.format = fourccToString(c->fourcc) + " " + std::to_string(c->width) + "x" +
					   std::to_string(c->height) + " " + std::to_string(c->interval.denominator) + "/" +
					   std::to_string(c->interval.numerator) + " fps";
		}
		out.push_back(r);
	}
	return out;
}

} /* namespace xmb::service */
