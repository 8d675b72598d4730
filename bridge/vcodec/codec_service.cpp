/* SPDX-License-Identifier: MIT */
#include "bridge/vcodec/codec_service.h"

#include <algorithm>
#include <cerrno>

extern "C" {
#include <xen/io/xenbus.h>
}

#include "bridge/service/toolstack.h"
#include "protocol/vcodec.h"

namespace xmb::vcodec {

XMB_LOG_DEFINE_CATEGORY(logSvc, "vcodec-service");

Result<CodecGuest> parseGuestSpec(const std::string &spec)
{
	CodecGuest g;
	size_t start = 0;
	while (start < spec.size()) {
		size_t end = spec.find(',', start);
		std::string kv = spec.substr(start, end == std::string::npos ? std::string::npos : end - start);
		start = end == std::string::npos ? spec.size() : end + 1;
		size_t eq = kv.find('=');
		if (eq == std::string::npos)
			return Error{ -EINVAL, "guest spec '" + spec + "': '" + kv + "' is not key=value" };
		std::string k = kv.substr(0, eq), v = kv.substr(eq + 1);
		auto num = [&](uint64_t max) -> Result<uint64_t> { return proto::parseUnsigned(k, v, max); };
		if (k == "name") {
			g.name = v;
		} else if (k == "domain") {
			g.domainName = v;
		} else if (k == "domid") {
			auto n = num(0x7fef);
			if (!n)
				return n.error();
			g.domid = static_cast<xen::DomId>(*n);
		} else if (k == "device") {
			auto n = num(255);
			if (!n)
				return n.error();
			g.device = static_cast<unsigned>(*n);
		} else if (k == "max-buffers") {
			auto n = num(XENVCODEC_MAX_BUFFERS);
			if (!n || !*n)
				return Error{ -EINVAL, "max-buffers: '" + v + "': expected 1..32" };
			g.maxBuffers = static_cast<uint8_t>(*n);
		} else if (k == "max-pages") {
			auto n = num(1u << 22);
			if (!n)
				return n.error();
			g.maxPages = *n;
		} else if (k == "codecs") {
			size_t s = 0;
			while (s <= v.size()) {
				size_t e = v.find(':', s);
				std::string c = v.substr(s, e == std::string::npos ? std::string::npos : e - s);
				auto id = proto::codecFromName(c);
				if (!id)
					return Error{ -EINVAL, "codecs: unknown codec '" + c + "'" };
				g.codecs.push_back(*id);
				if (e == std::string::npos)
					break;
				s = e + 1;
			}
		} else {
			return Error{ -EINVAL, "guest spec: unknown key '" + k + "'" };
		}
	}
	if (!g.domid && g.domainName.empty())
		return Error{ -EINVAL, "guest spec '" + spec + "': needs domid= or domain=" };
	if (g.name.empty())
		g.name = g.domid ? "dom" + std::to_string(*g.domid) : g.domainName;
	return g;
}

CodecService::CodecService(xen::Platform &dom0, service::EventLoop &loop,
			   std::vector<proto::CodecCaps> codecs, EncoderFactory factory)
	: dom0_(dom0), loop_(loop), codecs_(std::move(codecs)), factory_(std::move(factory))
{
}

CodecService::~CodecService()
{
	stop();
}

Status CodecService::start(const CodecServiceConfig &config)
{
	if (codecs_.empty())
		return Error{ -ENODEV, "no encoder available (install gstreamer1.0-plugins-good/-bad)" };
	for (const auto &g : config.guests) {
		auto d = std::make_unique<Device>();
		d->guest = g;
		devices_.push_back(std::move(d));
	}
	Status s = loop_.addFd(dom0_.store->fd(), [this](uint32_t) { onXenStore(); });
	if (!s)
		return s;
	s = loop_.addFd(dom0_.events->fd(), [this](uint32_t) { onEventChannel(); });
	if (!s)
		return s;
	for (const char *special : { "@introduceDomain", "@releaseDomain" }) {
		s = dom0_.store->watch(special, special);
		if (!s)
			return s;
	}
	watching_ = true;
	attachPending();
	return {};
}

void CodecService::stop()
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
}

proto::VcodecConfig CodecService::publishedConfig(const CodecGuest &g) const
{
	proto::VcodecConfig c;
	for (const auto &cc : codecs_)
		if (g.codecs.empty() || std::find(g.codecs.begin(), g.codecs.end(), cc.codec) != g.codecs.end())
			c.codecs.push_back(cc);
	c.minWidth = 16;
	c.minHeight = 16;
	c.maxWidth = g.maxWidth;
	c.maxHeight = g.maxHeight;
	c.maxBuffers = g.maxBuffers;
	c.maxBitrate = g.maxBitrate;
	return c;
}

void CodecService::attachPending()
{
	for (auto &d : devices_) {
		if (d->attached)
			continue;
		auto running = service::runningDomain(*dom0_.store, d->guest.domid, d->guest.domainName);
		if (!running)
			continue; /* not running (yet) */
		const xen::DomId fe = *running;
		Status s = attach(*d, fe);
		if (!s)
			XMB_LOG(logSvc, Error, "[guest %s]: attach to dom%u failed: %s",
				d->guest.name.c_str(), fe, s.error().message.c_str());
	}
}

Status CodecService::attach(Device &d, xen::DomId fe)
{
	d.frontend = fe;
	d.published = publishedConfig(d.guest);
	if (d.published.codecs.empty())
		return Error{ -EINVAL, "no codec left for this guest" };
	auto paths = proto::vcameraPaths(dom0_.self, fe, d.guest.device, XENVCODEC_DRIVER_NAME);
	d.fePath = paths.frontend;
	d.bePath = paths.backend;
	d.token = "vcodec:" + std::to_string(fe) + ":" + std::to_string(d.guest.device);
	Status s = service::attachDevice(*dom0_.store, dom0_.self, fe, d.guest.device,
					 proto::formatVcodecConfig(d.published), XENVCODEC_DRIVER_NAME,
					 XENVCODEC_PROTOCOL_VERSION);
	if (!s)
		return s;
	d.attached = true;
	updatePageLimit(fe);
	setBackendState(d, XenbusStateInitWait);
	s = dom0_.store->watch(d.fePath + "/state", d.token);
	XMB_LOG(logSvc, Info, "[guest %s]: dom%u vcodec/%u attached (%zu codecs)", d.guest.name.c_str(),
		fe, d.guest.device, d.published.codecs.size());
	return s;
}

void CodecService::detach(Device &d, bool removeNodes)
{
	if (!d.attached)
		return;
	teardown(d, "detached");
	(void)dom0_.store->unwatch(d.fePath + "/state", d.token);
	if (removeNodes) {
		setBackendState(d, XenbusStateClosed);
		(void)service::detachDevice(*dom0_.store, dom0_.self, d.frontend, d.guest.device,
					    XENVCODEC_DRIVER_NAME);
	}
	d.attached = false;
	updatePageLimit(d.frontend);
}

/* The cap is per domain: the sum of its devices' (directories and rings included). */
void CodecService::updatePageLimit(xen::DomId fe)
{
	size_t pages = 0;
	for (const auto &d : devices_)
		if (d->attached && d->frontend == fe)
			pages += d->guest.maxPages + 2 * XENVCODEC_MAX_BUFFERS + 4;
	dom0_.grants->setPageLimit(fe, pages);
}

void CodecService::setBackendState(Device &d, int state)
{
	(void)dom0_.store->write(d.bePath + "/state", std::to_string(state));
}

void CodecService::onXenStore()
{
	bool released = false, introduced = false;
	while (auto ev = dom0_.store->readWatch()) {
		if (ev->token == "@releaseDomain")
			released = true;
		else if (ev->token == "@introduceDomain")
			introduced = true;
		else
			for (auto &d : devices_)
				if (d->attached && d->token == ev->token)
					frontendChanged(*d);
	}
	if (released)
		checkDomains();
	if (introduced)
		attachPending();
}

void CodecService::checkDomains()
{
	for (auto &d : devices_) {
		if (!d->attached)
			continue;
		if (!service::domainGone(*dom0_.store, d->frontend))
			continue;
		XMB_LOG(logSvc, Info, "[guest %s]: dom%u is gone: releasing its encoder",
			d->guest.name.c_str(), d->frontend);
		detach(*d, true);
	}
}

void CodecService::frontendChanged(Device &d)
{
	auto raw = dom0_.store->read(d.fePath + "/state");
	if (!raw) {
		/* Frontend directory gone: the guest is dying or the device was detached. */
		teardown(d, "frontend directory removed");
		if (service::domainGone(*dom0_.store, d.frontend)) {
			XMB_LOG(logSvc, Info, "[guest %s]: dom%u is gone: releasing its encoder",
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
	default:
		if (d.session) {
			teardown(d, "frontend closed");
			setBackendState(d, XenbusStateClosed);
		}
		break;
	}
}

void CodecService::connectFrontend(Device &d)
{
	proto::XsView view = service::directoryView(*dom0_.store, d.fePath);
	auto transport = proto::parseVcodecTransport(view, { XENVCODEC_PROTOCOL_VERSION });
	if (!transport) {
		if (d.logLimit.allow())
			XMB_LOG(logSvc, Warn, "dom%u vcodec/%u: bad transport: %s", d.frontend,
				d.guest.device, transport.error().message.c_str());
		setBackendState(d, XenbusStateClosing);
		return;
	}
	CodecSessionConfig sc;
	sc.frontend = d.frontend;
	sc.devid = d.guest.device;
	sc.maxPages = d.guest.maxPages;
	sc.caps = d.published;
	auto session = std::make_unique<CodecSession>(
		dom0_, loop_, sc, factory_,
		[this](CodecSession *s, const std::string &why) { onViolation(s, why); });
	Status s = session->connect(*transport);
	if (!s) {
		if (d.logLimit.allow())
			XMB_LOG(logSvc, Warn, "%s", s.error().message.c_str());
		setBackendState(d, XenbusStateClosing);
		return;
	}
	ports_[session->requestPort()] = session.get();
	ports_[session->eventPort()] = session.get();
	d.session = std::move(session);
	setBackendState(d, XenbusStateConnected);
	d.session->onRequestNotify();
}

void CodecService::teardown(Device &d, const char *why)
{
	if (!d.session)
		return;
	const CodecStats st = d.session->stats();
	XMB_LOG(logSvc, Info,
		"dom%u vcodec/%u: closing (%s): %lu frames in, %lu bitstreams, %lu raw bytes copied, "
		"%lu compressed bytes copied",
		d.frontend, d.guest.device, why, (unsigned long)st.framesIn, (unsigned long)st.bitstreams,
		(unsigned long)st.rawBytesCopied, (unsigned long)st.compressedBytesCopied);
	ports_.erase(d.session->requestPort());
	ports_.erase(d.session->eventPort());
	d.session.reset(); /* encoder stopped (frames released), then pages unmapped */
}

void CodecService::onViolation(CodecSession *s, const std::string &why)
{
	for (auto &d : devices_) {
		if (d->session.get() != s)
			continue;
		if (d->logLimit.allow())
			XMB_LOG(logSvc, Warn, "dom%u vcodec/%u: protocol violation: %s; closing this frontend",
				d->frontend, d->guest.device, why.c_str());
		teardown(*d, "protocol violation");
		setBackendState(*d, XenbusStateClosing);
	}
}

void CodecService::onEventChannel()
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
			continue;
		CodecSession *s = it->second;
		if (port == s->requestPort())
			s->onRequestNotify();
		else
			s->onEventNotify();
	}
}

std::vector<CodecDeviceReport> CodecService::report() const
{
	std::vector<CodecDeviceReport> out;
	for (const auto &d : devices_) {
		CodecDeviceReport r;
		r.label = "[guest " + d->guest.name + "] dom" + std::to_string(d->frontend) + " vcodec/" +
			  std::to_string(d->guest.device);
		r.connected = d->session != nullptr;
		if (d->session) {
			r.encoder = d->session->encoderDescription();
			r.stats = d->session->stats();
		}
		out.push_back(r);
	}
	return out;
}

size_t CodecService::connected() const
{
	return std::count_if(devices_.begin(), devices_.end(), [](const auto &d) { return d->session != nullptr; });
}

} /* namespace xmb::vcodec */
