/* SPDX-License-Identifier: MIT */
#include "bridge/platform/guest_connection.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

extern "C" {
#include <xen/io/xenbus.h>
}

#include "protocol/base/log.h"
#include "protocol/gref_directory.h"
#include "protocol/xenstore_schema.h"

namespace xmb::xen {

XMB_LOG_DEFINE_CATEGORY(logGuest, "guest-xenbus");

namespace {
Error err(int code, std::string msg)
{
	return Error{ code, std::move(msg) };
}
} /* namespace */

const char *xenbusStateName(int state)
{
	switch (state) {
	case XenbusStateUnknown: return "Unknown";
	case XenbusStateInitialising: return "Initialising";
	case XenbusStateInitWait: return "InitWait";
	case XenbusStateInitialised: return "Initialised";
	case XenbusStateConnected: return "Connected";
	case XenbusStateClosing: return "Closing";
	case XenbusStateClosed: return "Closed";
	case XenbusStateReconfiguring: return "Reconfiguring";
	case XenbusStateReconfigured: return "Reconfigured";
	default: return "invalid";
	}
}

GuestConnection::GuestConnection(Platform &platform, std::string what)
	: pf_(platform), what_(std::move(what)), wake_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC))
{
}

GuestConnection::~GuestConnection()
{
	release();
}

void GuestConnection::setDevice(std::string frontendPath, std::string backendPath, DomId backendId)
{
	fePath_ = std::move(frontendPath);
	bePath_ = std::move(backendPath);
	backendId_ = backendId;
}

Status GuestConnection::waitForDevice(const std::string &frontendPath, Clock::time_point deadline,
				      const std::function<Status()> &probe)
{
	Status last = probe();
	if (last)
		return last;
	/*
	 * Watch the directory (Xen allows a watch on a node not made yet; it
	 * fires on creation and on every change below), then probe again so
	 * nothing made in between is missed.
	 */
	const std::string token = "xmb-device-wait:" + frontendPath;
	const uint64_t since = beginWait();
	Status w = pf_.store->watch(frontendPath, token);
	for (;;) {
		auto notYet = [](int code) { return code == -ENOENT || code == -EACCES; };
		if (last || !notYet(last.error().code))
			break;
		auto now = Clock::now();
		if (now >= deadline || cancelled(since))
			break;
		/*
		 * With the watch: asleep until something below the path changes,
		 * interrupt() or the deadline (a cancel callback is asked when the
		 * wait begins and at each wake-up, never on a timer: whoever makes
		 * it true also calls interrupt()); without a watch (refused),
		 * re-check at a modest rate.
		 */
		auto left = std::chrono::ceil<Millis>(deadline - now).count();
		int timeout = static_cast<int>(std::min<int64_t>(left, !w ? 50 : INT32_MAX));
		pollfd p[2] = { { pf_.store->fd(), POLLIN, 0 }, { wake_.get(), POLLIN, 0 } };
		if (::poll(p, wake_ ? 2 : 1, timeout) < 0 && errno != EINTR)
			break;
		while (pf_.store->readWatch())
			; /* what changed does not matter: probe again */
		last = probe();
	}
	if (w)
		(void)pf_.store->unwatch(frontendPath, token);
	if (!last && cancelled(since))
		return err(-EINTR, what_ + ": interrupted while waiting for the device");
	return last;
}

Status GuestConnection::writeState(int state)
{
	Status s = pf_.store->write(fePath_ + "/state", std::to_string(state));
	if (!s)
		return err(s.error().code, fePath_ + "/state: " + s.error().message);
	return {};
}

Status GuestConnection::readBackendState()
{
	auto s = pf_.store->read(bePath_ + "/state");
	int state = 0;
	if (s) {
		auto v = proto::parseXenbusState(bePath_ + "/state", *s);
		if (!v)
			return v.error();
		state = *v;
	} else if (s.error().code != -ENOENT) {
		return err(s.error().code, bePath_ + "/state: " + s.error().message);
	}
	if (state != backendState_)
		XMB_LOG(logGuest, Debug, "%s: backend state %s", what_.c_str(), xenbusStateName(state));
	backendState_ = state;
	bool gone = !s || state == XenbusStateClosing || state == XenbusStateClosed;
	if (gone && isOpen() && !broken_) {
		broken_ = err(-ENOTCONN, "backend " + bePath_ + " went " +
						 (s ? xenbusStateName(state) : "away (no state node)"));
		if (closing_)
			XMB_LOG(logGuest, Debug, "%s: %s", what_.c_str(), broken_->message.c_str());
		else
			XMB_LOG(logGuest, Warn, "%s: %s", what_.c_str(), broken_->message.c_str());
	}
	return {};
}

/* While no protocol reads the ring (handshake, closing): only the backend's state matters. */
Status GuestConnection::collectStateOnly()
{
	bool r = false, e = false;
	Status s = collect(r, e);
	rearm(r, e);
	return s;
}

Status GuestConnection::waitBackendState(int wanted, Clock::time_point deadline)
{
	return waitUntil([&] { return collectStateOnly(); }, [&] { return backendState_ == wanted; }, deadline,
			 std::string("waiting for backend ") + bePath_ + " to go " + xenbusStateName(wanted));
}

Status GuestConnection::open(Clock::time_point deadline, const TransportNodes &nodes,
			     const std::function<void(uint8_t *, uint8_t *)> &adopt)
{
	if (isOpen() || watching_)
		return err(-EALREADY, what_ + ": already connected");
	broken_.reset();
	backendState_ = 0;
	watchToken_ = "xmb-fe:" + fePath_;
	if (Status s = pf_.store->watch(bePath_ + "/state", watchToken_); !s)
		return err(s.error().code, "watching " + bePath_ + "/state: " + s.error().message);
	watching_ = true;
	auto fail = [&](const Status &s) -> Status {
		if (isOpen()) {
			(void)writeState(XenbusStateClosing);
			(void)writeState(XenbusStateClosed);
		}
		release();
		return s;
	};

	/*
	 * Initialising first, as a Linux xenbus frontend does at probe: after
	 * an earlier connection our state node says Closed and the backend
	 * waits (Closed) for a frontend to start again.
	 */
	if (auto own = pf_.store->read(fePath_ + "/state"); !own || *own != std::to_string(XenbusStateInitialising))
		if (Status s = writeState(XenbusStateInitialising); !s)
			return fail(s);
	if (Status s = readBackendState(); !s)
		return fail(s);
	if (Status s = waitBackendState(XenbusStateInitWait, deadline); !s)
		return fail(s);

	auto ring = pf_.grants->share(backendId_, 1, true);
	if (!ring)
		return fail(err(ring.error().code, "sharing the request ring page: " + ring.error().message));
	auto evpage = pf_.grants->share(backendId_, 1, true);
	if (!evpage)
		return fail(err(evpage.error().code, "sharing the event page: " + evpage.error().message));
	auto req = pf_.events->allocUnbound(backendId_);
	if (!req)
		return fail(err(req.error().code, "allocating the request event channel: " + req.error().message));
	auto evt = pf_.events->allocUnbound(backendId_);
	if (!evt)
		return fail(err(evt.error().code, "allocating the event event channel: " + evt.error().message));
	ringPage_ = std::move(*ring);
	eventPage_ = std::move(*evpage);
	reqPort_ = std::move(*req);
	evtPort_ = std::move(*evt);
	adopt(ringPage_.data(), eventPage_.data());

	auto kv = nodes(ringPage_.refs().at(0), reqPort_.port(), eventPage_.refs().at(0), evtPort_.port());
	Status st = runTransaction(*pf_.store, [&](TxId tx) -> Status {
		for (const auto &[k, v] : kv)
			if (Status s = pf_.store->write(tx, fePath_ + "/" + k, v); !s)
				return err(s.error().code, fePath_ + "/" + k + ": " + s.error().message);
		return pf_.store->write(tx, fePath_ + "/state", std::to_string(XenbusStateInitialised));
	});
	if (!st)
		return fail(err(st.error().code, "publishing the transport in " + fePath_ + ": " +
							 st.error().message));
	if (Status s = waitBackendState(XenbusStateConnected, deadline); !s)
		return fail(s);
	if (Status s = writeState(XenbusStateConnected); !s)
		return fail(s);
	return {};
}

void GuestConnection::close(Millis timeout)
{
	if (!isOpen() && !watching_)
		return;
	closing_ = true;
	(void)writeState(XenbusStateClosing);
	if (!broken_) {
		/* Give the backend the chance to unmap before our pages go. */
		(void)waitUntil([&] { return collectStateOnly(); }, [&] { return broken_.has_value(); },
				Clock::now() + timeout, "waiting for the backend to close");
	}
	release();
	(void)writeState(XenbusStateClosed);
	closing_ = false;
}

void GuestConnection::release()
{
	reqPort_.reset();
	evtPort_.reset();
	ringPage_.reset();
	eventPage_.reset();
	if (watching_) {
		(void)pf_.store->unwatch(bePath_ + "/state", watchToken_);
		watching_ = false;
	}
}

Status GuestConnection::collect(bool &requestFired, bool &eventFired)
{
	/*
	 * One read: this handle has two ports, and the fd stays readable if
	 * more came since (the caller polls it again before it sleeps).
	 */
	std::array<xen::Port, 8> fired;
	auto n = pf_.events->pendingBatch(fired);
	if (!n)
		return err(n.error().code, "reading event channels: " + n.error().message);
	for (size_t i = 0; i < *n; i++) {
		if (reqPort_ && fired[i] == reqPort_.port())
			requestFired = true;
		else if (evtPort_ && fired[i] == evtPort_.port())
			eventFired = true;
		else
			XMB_LOG(logGuest, Debug, "%s: event on unknown port %u", what_.c_str(), fired[i]);
	}
	bool stateChanged = false;
	while (auto w = pf_.store->readWatch())
		if (w->token == watchToken_)
			stateChanged = true;
	if (stateChanged && watching_)
		return readBackendState();
	return {};
}

void GuestConnection::rearm(bool requestFired, bool eventFired)
{
	/* Drained: re-arm (an event that came meanwhile latched and fires now). */
	if (requestFired)
		(void)reqPort_.unmask();
	if (eventFired)
		(void)evtPort_.unmask();
}

Status GuestConnection::waitUntil(const std::function<Status()> &pump, const std::function<bool()> &done,
				  Clock::time_point deadline, const std::string &what)
{
	const uint64_t since = beginWait();
	for (;;) {
		if (Status s = pump(); !s)
			return err(s.error().code, what + ": " + s.error().message);
		if (done())
			return {};
		if (broken_)
			return err(broken_->code, what + ": " + broken_->message);
		if (cancelled(since))
			return err(-EINTR, what + ": interrupted");
		auto now = Clock::now();
		if (now >= deadline)
			return err(-ETIMEDOUT, what + ": timed out");
		auto left = std::chrono::ceil<Millis>(deadline - now).count();
		pollfd p[3] = { { pf_.events->fd(), POLLIN, 0 }, { pf_.store->fd(), POLLIN, 0 },
				{ wake_.get(), POLLIN, 0 } };
		int n = ::poll(p, wake_ ? 3 : 2, static_cast<int>(std::min<int64_t>(left, INT32_MAX)));
		if (n < 0 && errno == EINTR)
			return err(-EINTR, what + ": interrupted"); /* a signal: let the caller see it */
		if (n < 0)
			return err(-errno, what + ": poll: " + std::strerror(errno));
	}
}

void GuestConnection::interrupt()
{
	std::lock_guard<std::mutex> l(interruptLock_);
	interrupts_++;
	interrupted_ = true;
	clearPending_ = false;
	uint64_t one = 1;
	if (wake_)
		(void)!::write(wake_.get(), &one, sizeof(one));
}

/*
 * Deferred to the next wait's start: clearing now (and emptying the
 * eventfd) could take the wake-up from under a wait that interrupt() was
 * ending but that has not yet seen it - it would sleep on to its deadline.
 */
void GuestConnection::clearInterrupt()
{
	std::lock_guard<std::mutex> l(interruptLock_);
	clearPending_ = true;
}

uint64_t GuestConnection::beginWait()
{
	std::lock_guard<std::mutex> l(interruptLock_);
	if (std::exchange(clearPending_, false)) {
		interrupted_ = false;
		uint64_t n;
		if (wake_)
			(void)!::read(wake_.get(), &n, sizeof(n));
	}
	return interrupts_;
}

std::vector<int> GuestConnection::fds() const
{
	return { pf_.events->fd(), pf_.store->fd() };
}

Result<GrantMapping> mapBackendBuffer(Platform &pf, DomId backend, const GrantShare &dir, uint64_t bytes,
				      bool writable)
{
	const uint64_t pages = proto::pagesFor(bytes);
	proto::GrefDirectoryWalker walker(dir.refs().at(0), bytes, pages,
					  proto::GrefDirectoryWalker::Mode::CollectGrefs);
	if (walker.error())
		return *walker.error();
	std::vector<uint8_t> copy(proto::kDirPageSize);
	while (auto g = walker.nextPage()) {
		const auto &refs = dir.refs();
		auto it = std::find(refs.begin(), refs.end(), *g);
		if (it == refs.end())
			return Error{ -EPROTO, "backend rewrote the directory chain (gref " + std::to_string(*g) +
						       " is not one of ours)" };
		std::memcpy(copy.data(), dir.data() + (it - refs.begin()) * kPageSize, copy.size());
		if (it == refs.begin() && std::all_of(copy.begin(), copy.end(), [](uint8_t v) { return v == 0; }))
			return Error{ -EPROTO, "backend wrote no buffer refs into the be-alloc gref directory: "
					       "it does not allocate buffers itself; use frontend-allocated "
					       "buffers (be-alloc = 0)" };
		if (Status s = walker.feed(copy); !s)
			return s.error();
	}
	if (!walker.done())
		return walker.error() ? *walker.error() : Error{ -EPROTO, "incomplete gref directory" };
	std::vector<proto::Gref> grefs = walker.takeGrefs();
	auto m = pf.grants->map(backend, grefs, writable);
	if (!m)
		return Error{ m.error().code, "mapping " + std::to_string(grefs.size()) + " backend pages" +
						      (writable ? "" : " read-only") + ": " + m.error().message };
	if (m->size() < bytes)
		return Error{ -EPROTO, "backend buffer mapped smaller than the layout" };
	return m;
}

} /* namespace xmb::xen */
