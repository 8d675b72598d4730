/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The Dom0 end of one frontend's request ring and event page, shared by
 * every protocol the service speaks (cameraif, vcodec).
 *
 * What the guest controls here is hostile: the ring indices, every request
 * byte, the event page's consumer index, the notifications.  This class
 * copies each request out once (proto::BackRing), hands the decoded copy to
 * the protocol's handler, bounds the work per wakeup (the rest waits for a
 * later loop turn, after every other guest's events), re-arms the port only
 * once the ring is drained, and closes the frontend on any violation:
 * an impossible producer index, an impossible consumer index, an event page
 * left full for kEventStall, a backlog past its bound.
 *
 * Deferred work holds a weak lifetime token, never a bare `this` alone:
 * the owner may be destroyed earlier in the same loop pass.
 */

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "protocol/base/log.h"
#include "bridge/platform/platform.h"
#include "bridge/service/event_loop.h"
#include "protocol/result.h"
#include "protocol/ring.h"

namespace xmb::service {

XMB_LOG_DECLARE_CATEGORY(logRing);

/** Requests served per wakeup before yielding to other frontends. */
inline constexpr unsigned kMaxRequestsPerWakeup = 128;
/** A guest that leaves its event page full this long is not reading: close it. */
inline constexpr auto kEventStall = std::chrono::seconds(2);
/**
 * Notification storms: past kIdleWakeups wakeups that found no work within
 * kIdleWindow, a port is re-armed only after kStormRearm, so a guest that
 * notifies without end costs at most a few hundred wakeups a second.
 */
inline constexpr unsigned kIdleWakeups = 64;
inline constexpr auto kIdleWindow = std::chrono::milliseconds(100);
inline constexpr auto kStormRearm = std::chrono::milliseconds(5);

/**
 * \brief A protocol as RingServer sees it (the template parameter P below).
 * \tparam Decode   copied-out raw request -> decoded request (or the status to answer)
 * \tparam MakeResponse (id, operation, status) -> a zeroed response
 */
template<typename RingT, typename RawRequestT, typename RequestT, typename ResponseT, typename EventsT,
	 typename EventT, Result<RequestT> (*Decode)(const RawRequestT &),
	 ResponseT (*MakeResponse)(uint16_t, uint8_t, int32_t)>
struct RingProtocol {
	using Ring = RingT;
	using RawRequest = RawRequestT;
	using Request = RequestT;
	using Response = ResponseT;
	using Events = EventsT;
	using Event = EventT;
	static Result<Request> decode(const RawRequest &r) { return Decode(r); }
	static ResponseT refuse(const RawRequest &r, int32_t status) { return MakeResponse(r.id, r.operation, status); }
};

/**
 * \brief One frontend's ring and event page, served on the event loop.
 * \tparam P the protocol: Ring (a proto::BackRing), RawRequest, Request,
 *   Response, Events (a proto::EventWriter), Event, decode(RawRequest) ->
 *   Result<Request>, refuse(RawRequest, status) -> Response.
 */
template<typename P>
class RingServer
{
public:
	using Handler = std::function<typename P::Response(const typename P::Request &)>;
	using OnViolation = std::function<void(const std::string &why)>;

	RingServer(xen::Platform &dom0, EventLoop &loop, xen::DomId frontend, std::string label,
		   size_t maxBacklog = 0)
		: dom0_(dom0), loop_(loop), frontend_(frontend), label_(std::move(label)),
		  maxBacklog_(maxBacklog)
	{
	}
	~RingServer()
	{
		alive_.reset();
		if (rearmTimer_)
			loop_.cancelTimer(rearmTimer_);
	}
	RingServer(const RingServer &) = delete;
	RingServer &operator=(const RingServer &) = delete;

	/** What serving a request does; what a violation does (called on a later loop turn). */
	void setHandlers(Handler handler, OnViolation onViolation)
	{
		handler_ = std::move(handler);
		onViolation_ = std::move(onViolation);
	}

	/** Map the ring and event page and bind both channels the frontend published. */
	Status connect(xen::Gref req, xen::Gref evt, xen::Port reqChannel, xen::Port evtChannel)
	{
		auto reqMap = dom0_.grants->map(frontend_, std::span(&req, 1), true);
		if (!reqMap)
			return Error{ reqMap.error().code, label_ + ": request ring: " + reqMap.error().message };
		auto evtMap = dom0_.grants->map(frontend_, std::span(&evt, 1), true);
		if (!evtMap)
			return Error{ evtMap.error().code, label_ + ": event page: " + evtMap.error().message };
		auto reqPort = dom0_.events->bindInterdomain(frontend_, reqChannel);
		if (!reqPort)
			return Error{ reqPort.error().code, label_ + ": request channel: " + reqPort.error().message };
		auto evtPort = dom0_.events->bindInterdomain(frontend_, evtChannel);
		if (!evtPort)
			return Error{ evtPort.error().code, label_ + ": event channel: " + evtPort.error().message };
		reqPage_ = std::move(*reqMap);
		evtPage_ = std::move(*evtMap);
		reqPort_ = std::move(*reqPort);
		evtPort_ = std::move(*evtPort);
		ring_ = typename P::Ring(reqPage_.data(), xen::kPageSize);
		events_ = typename P::Events(evtPage_.data());
		return {};
	}

	/** Unbind and unmap (the owner's buffers must be gone first). */
	void close()
	{
		reqPort_.reset();
		evtPort_.reset();
		reqPage_.reset();
		evtPage_.reset();
		events_ = typename P::Events();
	}

	[[nodiscard]] xen::Port requestPort() const { return reqPort_.port(); }
	[[nodiscard]] xen::Port eventPort() const { return evtPort_.port(); }
	[[nodiscard]] bool failed() const { return failed_; }
	[[nodiscard]] uint64_t requests() const { return requests_; }
	[[nodiscard]] const std::string &label() const { return label_; }

	/**
	 * \brief The request channel fired: serve the ring.
	 *
	 * Late re-arm: the port is unmasked only after the ring is drained
	 * and the final check done, so a guest cannot make us spin on
	 * notifications.  At most kMaxRequestsPerWakeup requests per turn.
	 */
	void onRequestNotify()
	{
		if (failed_)
			return;
		const uint64_t before = requests_;
		unsigned served = 0;
		bool more = true;
		/*
		 * Responses are pushed as they are made but the guest is notified
		 * once, last, after our re-arm: woken earlier it would be
		 * unmasking its own port while we still work on ours.  The same
		 * wake-up either way, and on Xen no lock is shared; on the
		 * loopback platform it saved a contended lock (a second context
		 * switch) on about one frame in ten.
		 */
		bool responded = false;
		while (more) {
			proto::RingPoll p = ring_.poll();
			if (p == proto::RingPoll::Overflow)
				return violation("request ring overflow (producer index beyond the ring)");
			while (ring_.pending() && served < kMaxRequestsPerWakeup) {
				typename P::RawRequest raw = ring_.take();
				auto decoded = P::decode(raw);
				if (!decoded)
					XMB_LOG(logRing, Debug, "%s: %s", label_.c_str(),
						decoded.error().message.c_str());
				ring_.respond(decoded ? handler_(*decoded) : P::refuse(raw, decoded.error().code));
				served++;
				requests_++;
				if (failed_)
					break;
			}
			if (ring_.pushResponses())
				responded = true;
			if (failed_)
				return;
			if (served >= kMaxRequestsPerWakeup) {
				(void)reqPort_.notify();
				/* The rest on a later loop turn, after everyone else's events. */
				loop_.defer([alive = std::weak_ptr<int>(alive_), this] {
					if (!alive.expired())
						onRequestNotify();
				});
				return;
			}
			p = ring_.finalCheck();
			if (p == proto::RingPoll::Overflow)
				return violation("request ring overflow (producer index beyond the ring)");
			more = p == proto::RingPoll::Work;
		}
		flush();
		rearm(requests_ != before, reqPort_);
		if (responded)
			(void)reqPort_.notify();
	}

	/** The event channel fired (the guest consumed events): send the backlog, unmask. */
	void onEventNotify()
	{
		const size_t before = backlog_.size();
		flush();
		rearm(backlog_.size() != before, evtPort_);
	}

	/** Wakeups put off as a notification storm (stats). */
	[[nodiscard]] uint64_t stormDelays() const { return stormDelays_; }

	enum class Sent { Yes, PageFull, Closed };

	/**
	 * Put \a evt on the event page now, or not at all (PageFull: the
	 * caller decides what a lost event means, e.g. a frame dropped).
	 */
	Sent put(const typename P::Event &evt)
	{
		if (failed_ || !events_)
			return Sent::Closed;
		switch (events_.put(evt)) {
		case P::Events::Put::Ok:
			fullSince_.reset();
			(void)evtPort_.notify();
			return Sent::Yes;
		case P::Events::Put::Invalid:
			violation("event page: in_cons ahead of in_prod");
			return Sent::Closed;
		case P::Events::Put::Full:
			break;
		}
		return pageFull() ? Sent::PageFull : Sent::Closed;
	}

	/** Queue \a evt behind earlier ones; sent by flush() (bounded by maxBacklog). */
	void queue(const typename P::Event &evt)
	{
		if (failed_)
			return;
		if (backlog_.size() >= maxBacklog_)
			return violation("event backlog full: the frontend stopped reading events");
		backlog_.push_back(evt);
	}

	/** Put as much of the backlog on the event page as fits. */
	void flush()
	{
		if (failed_ || !events_ || backlog_.empty())
			return;
		bool sent = false;
		while (!backlog_.empty()) {
			auto r = events_.put(backlog_.front());
			if (r == P::Events::Put::Invalid)
				return violation("event page: in_cons ahead of in_prod");
			if (r == P::Events::Put::Full) {
				if (!pageFull())
					return;
				break;
			}
			fullSince_.reset();
			backlog_.pop_front();
			sent = true;
		}
		if (sent)
			(void)evtPort_.notify();
	}

	/**
	 * Close this frontend: its requests are no longer served, and the
	 * owner's violation handler runs on a later loop turn (we may be deep
	 * in a callback now), unless the owner is gone by then.
	 */
	void violation(const std::string &why)
	{
		if (failed_)
			return;
		failed_ = true;
		loop_.defer([alive = std::weak_ptr<int>(alive_), this, why] {
			if (!alive.expired() && onViolation_)
				onViolation_(why);
		});
	}

private:
	/*
	 * Unmask \a port now, or, in a notification storm (many wakeups that
	 * found nothing to do), a little later: what the guest notified
	 * meanwhile coalesces into one wakeup, served by the timer.
	 */
	void rearm(bool useful, xen::EventPort &port)
	{
		auto now = std::chrono::steady_clock::now();
		if (now - idleSince_ > kIdleWindow) {
			idleSince_ = now;
			idleWakeups_ = 0;
		}
		if (useful || ++idleWakeups_ <= kIdleWakeups) {
			(void)port.unmask();
			return;
		}
		stormDelays_++;
		const bool request = &port == &reqPort_;
		(request ? rearmRequest_ : rearmEvent_) = true;
		if (rearmTimer_)
			return;
		rearmTimer_ = loop_.addTimer(kStormRearm, [alive = std::weak_ptr<int>(alive_), this] {
			if (alive.expired())
				return;
			rearmTimer_ = 0;
			/* Serve what came meanwhile; each re-arms its port (or waits again). */
			if (std::exchange(rearmRequest_, false))
				onRequestNotify();
			if (std::exchange(rearmEvent_, false))
				onEventNotify();
		});
	}

	/* The page stays full: false (and a violation) once that lasted kEventStall. */
	bool pageFull()
	{
		auto now = std::chrono::steady_clock::now();
		if (!fullSince_) {
			fullSince_ = now;
		} else if (now - *fullSince_ > kEventStall) {
			violation("event page full for over 2 s: the frontend stopped reading events");
			return false;
		}
		return true;
	}

	xen::Platform &dom0_;
	EventLoop &loop_;
	const xen::DomId frontend_;
	const std::string label_;
	const size_t maxBacklog_;
	Handler handler_;
	OnViolation onViolation_;
	std::shared_ptr<int> alive_ = std::make_shared<int>(0);

	xen::GrantMapping reqPage_;
	xen::GrantMapping evtPage_;
	xen::EventPort reqPort_;
	xen::EventPort evtPort_;
	typename P::Ring ring_;
	typename P::Events events_;
	std::deque<typename P::Event> backlog_;
	std::optional<std::chrono::steady_clock::time_point> fullSince_;
	bool failed_ = false;
	uint64_t requests_ = 0;
	std::chrono::steady_clock::time_point idleSince_{};
	unsigned idleWakeups_ = 0;
	EventLoop::TimerId rearmTimer_ = 0;
	bool rearmRequest_ = false, rearmEvent_ = false;
	uint64_t stormDelays_ = 0;
};

} /* namespace xmb::service */
