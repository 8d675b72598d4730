/* SPDX-License-Identifier: MIT */
#include "bridge/service/xenbus_backend.h"

#include <algorithm>
#include <array>
#include <cerrno>

extern "C" {
#include <xen/io/xenbus.h>
}

#include "bridge/service/toolstack.h"
#include "protocol/xenstore_schema.h"

namespace xmb::service {

XMB_LOG_DEFINE_CATEGORY(logXenbus, "xenbus");

namespace {

/* @releaseDomain fires when Xen has destroyed the domain; the toolstack removes its directory later. */
constexpr auto kDeathRecheck = std::chrono::milliseconds(500);
/* A connect put off by the budget is retried (the state read again) this much later. */
constexpr auto kConnectRetry = std::chrono::milliseconds(250);
/* Pages beyond the buffers a device may map: ring, event page, directory slack. */
constexpr size_t kRingPages = 4;

} /* namespace */

XenbusBackend::XenbusBackend(xen::Platform &dom0, EventLoop &loop, std::string type, std::string what,
			     XenbusDriver &driver)
	: dom0_(dom0), loop_(loop), type_(std::move(type)), what_(std::move(what)), driver_(driver)
{
}

XenbusBackend::~XenbusBackend()
{
	stop();
}

std::string XenbusBackend::label(const XenbusDevice &d) const
{
	return "dom" + std::to_string(d.frontend) + " " + type_ + "/" + std::to_string(d.devid);
}

Status XenbusBackend::start()
{
	Status s = loop_.addFd(dom0_.store->fd(), [this](uint32_t) { onXenStore(); });
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

void XenbusBackend::stop()
{
	for (auto &d : devices_)
		detach(*d);
	devices_.clear();
	if (watching_) {
		(void)dom0_.store->unwatch("@introduceDomain", "@introduceDomain");
		(void)dom0_.store->unwatch("@releaseDomain", "@releaseDomain");
		if (recheckTimer_)
			loop_.cancelTimer(std::exchange(recheckTimer_, 0));
		loop_.removeFd(dom0_.store->fd());
		loop_.removeFd(dom0_.events->fd());
		watching_ = false;
	}
}

XenbusDevice &XenbusBackend::add(std::unique_ptr<XenbusDevice> d)
{
	devices_.push_back(std::move(d));
	return *devices_.back();
}

void XenbusBackend::attachPending()
{
	for (auto &d : devices_) {
		if (d->attached || d->toolstack)
			continue;
		auto running = runningDomain(*dom0_.store, d->domid, d->domainName);
		if (!running)
			continue; /* not running (yet) */
		Status s = attach(*d, *running);
		if (!s)
			XMB_LOG(logXenbus, Error, "[guest %s]: attach to dom%u failed: %s", d->name.c_str(),
				*running, s.error().message.c_str());
	}
}

Status XenbusBackend::attach(XenbusDevice &d, xen::DomId fe)
{
	d.frontend = fe;
	auto paths = proto::vcameraPaths(dom0_.self, fe, d.devid, type_);
	d.fePath = paths.frontend;
	d.bePath = paths.backend;
	Status s = driver_.createNodes(d);
	if (!s)
		return s;
	d.attached = true;
	watchFrontend(d, fe);
	return {};
}

XenbusDevice &XenbusBackend::adopt(std::unique_ptr<XenbusDevice> dev, xen::DomId fe)
{
	XenbusDevice &d = add(std::move(dev));
	d.toolstack = true;
	d.frontend = fe;
	auto paths = proto::vcameraPaths(dom0_.self, fe, d.devid, type_);
	d.fePath = paths.frontend;
	d.bePath = paths.backend;
	d.attached = true;
	watchFrontend(d, fe);
	frontendChanged(d); /* a frontend already waiting */
	return d;
}

/* Ready for the frontend (backend InitWait), and follow its state. */
void XenbusBackend::watchFrontend(XenbusDevice &d, xen::DomId fe)
{
	d.token = type_ + ":" + std::to_string(fe) + ":" + std::to_string(d.devid);
	updatePageLimit(fe);
	setBackendState(d, XenbusStateInitWait);
	Status s = dom0_.store->watch(d.fePath + "/state", d.token);
	if (!s)
		XMB_LOG(logXenbus, Warn, "%s: watch: %s", label(d).c_str(), s.error().message.c_str());
}

void XenbusBackend::detach(XenbusDevice &d)
{
	if (!d.attached)
		return;
	if (d.retryTimer)
		loop_.cancelTimer(std::exchange(d.retryTimer, 0));
	teardown(d, "detached");
	(void)dom0_.store->unwatch(d.fePath + "/state", d.token);
	if (!d.toolstack) {
		setBackendState(d, XenbusStateClosed);
		(void)detachDevice(*dom0_.store, dom0_.self, d.frontend, d.devid, type_);
	}
	d.attached = false;
	updatePageLimit(d.frontend);
}

void XenbusBackend::forget(const std::function<bool(const XenbusDevice &)> &pred)
{
	std::erase_if(devices_, [&](const std::unique_ptr<XenbusDevice> &d) { return !d->attached && pred(*d); });
}

/*
 * The grant layer caps pages per domain; a domain may have several devices
 * (of this protocol), so the cap is the sum of theirs.
 */
void XenbusBackend::updatePageLimit(xen::DomId fe)
{
	size_t pages = 0;
	for (const auto &d : devices_)
		if (d->attached && d->frontend == fe)
			pages += d->pageLimit + kRingPages;
	dom0_.grants->setPageLimit(fe, pages);
}

void XenbusBackend::setBackendState(XenbusDevice &d, int state)
{
	Status s = dom0_.store->write(d.bePath + "/state", std::to_string(state));
	if (!s)
		XMB_LOG(logXenbus, Debug, "%s: %s", d.bePath.c_str(), s.error().message.c_str());
}

void XenbusBackend::onXenStore()
{
	bool released = false, introduced = false;
	std::vector<std::string> others;
	while (auto ev = dom0_.store->readWatch()) {
		if (ev->token == "@releaseDomain") {
			released = true;
		} else if (ev->token == "@introduceDomain") {
			introduced = true;
		} else {
			bool ours = false;
			for (auto &d : devices_)
				if (d->attached && d->token == ev->token) {
					frontendChanged(*d);
					ours = true;
				}
			if (!ours && std::find(others.begin(), others.end(), ev->token) == others.end())
				others.push_back(ev->token);
		}
	}
	if (released) {
		checkDomains();
		if (recheckTimer_)
			loop_.cancelTimer(recheckTimer_);
		recheckTimer_ = loop_.addTimer(kDeathRecheck, [this] {
			recheckTimer_ = 0;
			checkDomains();
		});
	}
	if (introduced)
		attachPending();
	for (const auto &token : others)
		driver_.watchFired(token);
}

/* A guest died: release everything of its frontends now (mappings included). */
void XenbusBackend::checkDomains()
{
	for (auto &d : devices_) {
		if (!d->attached || !domainGone(*dom0_.store, d->frontend))
			continue;
		XMB_LOG(logXenbus, Info, "[guest %s]: dom%u is gone: releasing its %s", d->name.c_str(),
			d->frontend, what_.c_str());
		const xen::DomId dead = d->frontend;
		detach(*d);
		dom0_.grants->domainGone(dead);
	}
	driver_.domainsChecked();
}

/**
 * \brief The xenbus state machine, driven by the frontend's state node.
 *
 * The frontend directory belongs to the guest, so its state is just
 * another hostile value: anything unparsable closes the session.
 */
void XenbusBackend::frontendChanged(XenbusDevice &d)
{
	auto raw = dom0_.store->read(d.fePath + "/state");
	if (!raw) {
		/* Frontend directory gone: the guest is dying or the device was detached. */
		teardown(d, "frontend directory removed");
		if (domainGone(*dom0_.store, d.frontend)) {
			XMB_LOG(logXenbus, Info, "[guest %s]: dom%u is gone: releasing its %s",
				d.name.c_str(), d.frontend, what_.c_str());
			const xen::DomId dead = d.frontend;
			detach(d);
			dom0_.grants->domainGone(dead);
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

void XenbusBackend::retryConnectLater(XenbusDevice &d)
{
	if (d.retryTimer)
		return;
	d.retryTimer = loop_.addTimer(kConnectRetry, [this, token = d.token] {
		/* Looked up again: the device may have gone meanwhile. */
		for (auto &dev : devices_)
			if (dev->attached && dev->token == token) {
				dev->retryTimer = 0;
				frontendChanged(*dev);
				return;
			}
	});
}

void XenbusBackend::connectFrontend(XenbusDevice &d)
{
	auto session = driver_.connect(d);
	if (!session) {
		if (d.logLimit.allow())
			XMB_LOG(logXenbus, Warn, "%s: %s", label(d).c_str(), session.error().message.c_str());
		setBackendState(d, XenbusStateClosing);
		return;
	}
	ports_[(*session)->requestPort()] = session->get();
	ports_[(*session)->eventPort()] = session->get();
	d.session = std::move(*session);
	d.connects++;
	setBackendState(d, XenbusStateConnected);
	/* Requests may already be waiting: the frontend can push before we connect. */
	d.session->onRequestNotify();
}

void XenbusBackend::teardown(XenbusDevice &d, const char *why)
{
	if (!d.session)
		return;
	driver_.closing(d, why);
	ports_.erase(d.session->requestPort());
	ports_.erase(d.session->eventPort());
	d.session.reset();
}

void XenbusBackend::violation(const BackendSession *s, const std::string &why)
{
	for (auto &d : devices_) {
		if (d->session.get() != s)
			continue;
		if (d->logLimit.allow()) {
			unsigned dropped = d->logLimit.takeSuppressed();
			XMB_LOG(logXenbus, Warn, "%s: protocol violation: %s; closing this frontend%s",
				label(*d).c_str(), why.c_str(),
				dropped ? (" (" + std::to_string(dropped) + " similar lines suppressed)").c_str()
					: "");
		}
		teardown(*d, "protocol violation");
		setBackendState(*d, XenbusStateClosing);
		return;
	}
}

/*
 * Serve the ports that fired: one read of up to kPortsPerWakeup (the fd is
 * level-triggered, so more come on the next turn of the loop, after the
 * other fds had theirs), no allocation, no empty read to end a drain.
 */
void XenbusBackend::onEventChannel()
{
	constexpr size_t kPortsPerWakeup = 64;
	std::array<xen::Port, kPortsPerWakeup> fired;
	auto n = dom0_.events->pendingBatch(fired);
	if (!n) {
		if (eventReadLimit_.allow())
			XMB_LOG(logXenbus, Warn, "%s", n.error().message.c_str());
		return;
	}
	for (size_t i = 0; i < *n; i++) {
		auto it = ports_.find(fired[i]);
		if (it == ports_.end())
			continue; /* a port of a session already torn down */
		BackendSession *s = it->second;
		if (fired[i] == s->requestPort())
			s->onRequestNotify();
		else
			s->onEventNotify();
	}
}

size_t XenbusBackend::connected() const
{
	return std::count_if(devices_.begin(), devices_.end(), [](const auto &d) { return d->session != nullptr; });
}

} /* namespace xmb::service */
