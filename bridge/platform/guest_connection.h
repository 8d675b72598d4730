/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The guest side of one PV device, whatever its protocol (vcamera, vcodec):
 * the xenbus handshake with the backend, the shared request-ring and event
 * pages, the two event channels, and waiting for any of it.
 *
 * A frontend (CameraFrontend, CodecFrontend) owns one GuestConnection and
 * adds its protocol: how the ring and event page are read, what a response
 * or an event means.  The handshake is the one a Linux xenbus frontend does:
 * Initialising, wait for the backend's InitWait, publish the transport and
 * Initialised in one transaction, wait for Connected, Connected; closing is
 * Closing, wait for the backend to leave, release, Closed.
 *
 * The backend is not trusted more than it must be: its state node is parsed
 * strictly and a backend that leaves (Closing, Closed, node gone) marks the
 * connection broken, which every wait then reports.
 */

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "bridge/platform/grant_table.h"
#include "bridge/platform/platform.h"
#include "protocol/base/unique_fd.h"
#include "protocol/result.h"

namespace xmb::xen {

class GuestConnection
{
public:
	using Clock = std::chrono::steady_clock;
	using Millis = std::chrono::milliseconds;
	/** The transport nodes to publish, from what was shared and allocated. */
	using TransportNodes =
		std::function<std::map<std::string, std::string>(Gref ring, Port req, Gref events, Port evt)>;

	/** \a what names the device in messages ("vcamera 0"). */
	GuestConnection(Platform &platform, std::string what);
	~GuestConnection();
	GuestConnection(const GuestConnection &) = delete;
	GuestConnection &operator=(const GuestConnection &) = delete;

	/**
	 * \brief Wait until the toolstack has made the device: its frontend
	 * directory's backend/backend-id nodes and the backend's state node.
	 *
	 * Waits on a XenStore watch (no polling).  Nodes not yet readable
	 * (-ENOENT, or -EACCES while a toolstack sets permissions) count as
	 * not there yet; at the deadline the last error is returned.
	 * \a probe is called each time something under the directory changed
	 * and returns the error that keeps us waiting, or success.
	 */
	Status waitForDevice(const std::string &frontendPath, Clock::time_point deadline,
			     const std::function<Status()> &probe);

	/** Paths and backend once known (set by the caller after waitForDevice). */
	void setDevice(std::string frontendPath, std::string backendPath, DomId backendId);
	[[nodiscard]] const std::string &frontendPath() const { return fePath_; }
	[[nodiscard]] const std::string &backendPath() const { return bePath_; }
	[[nodiscard]] DomId backendId() const { return backendId_; }

	/**
	 * The handshake up to Connected.  \a nodes gives the protocol's
	 * transport keys; \a adopt sees the shared pages before the backend
	 * can (to zero/initialise the ring and the event page).
	 */
	Status open(Clock::time_point deadline, const TransportNodes &nodes,
		    const std::function<void(uint8_t *ring, uint8_t *events)> &adopt);
	/** Closing, wait up to \a timeout for the backend to leave, release everything, Closed. */
	void close(Millis timeout);
	/** Drop pages, ports and watch without telling the backend (after a failure). */
	void release();
	[[nodiscard]] bool isOpen() const { return ringPage_.data() != nullptr; }

	/**
	 * The part of event processing every protocol shares: collect which
	 * ports fired and re-read the backend's state if its watch fired.
	 * Returns an error only when the platform fails.
	 */
	Status collect(bool &requestFired, bool &eventFired);
	/** Re-arm the ports that fired, after the protocol drained ring and page. */
	void rearm(bool requestFired, bool eventFired);
	Status notify() { return reqPort_.notify(); }
	/** Tell the backend we consumed events (a backend holding a backlog sends more). */
	Status notifyEvents() { return evtPort_.notify(); }

	/**
	 * Run \a pump (the protocol's event processing) and wait on the event
	 * channels, XenStore and interrupt() until \a done, the deadline, a
	 * broken connection or a cancellation.
	 */
	Status waitUntil(const std::function<Status()> &pump, const std::function<bool()> &done,
			 Clock::time_point deadline, const std::string &what);

	/**
	 * Wake a wait on another thread: the waits under way end with -EINTR,
	 * and so does every wait begun before clearInterrupt().
	 */
	void interrupt();
	/**
	 * Later waits run normally again.  A wait that interrupt() woke still
	 * ends, even if this comes before it saw the wake-up: GStreamer calls
	 * unlock() then unlock_stop() as soon as it holds the preroll lock,
	 * which a wait for Dom0 in set_caps has let go of.
	 */
	void clearInterrupt();
	/**
	 * Asked when a wait begins and whenever it wakes (never on a timer):
	 * true ends it with -EINTR.  To end a wait under way, interrupt().
	 */
	void setCancelCheck(std::function<bool()> cancelled) { cancelCheck_ = std::move(cancelled); }

	[[nodiscard]] const std::optional<Error> &broken() const { return broken_; }
	void setBroken(Error e)
	{
		if (!broken_)
			broken_ = std::move(e);
	}
	[[nodiscard]] int backendState() const { return backendState_; }
	[[nodiscard]] uint8_t *ringPage() { return ringPage_.data(); }
	[[nodiscard]] uint8_t *eventPage() { return eventPage_.data(); }
	[[nodiscard]] Port requestPort() const { return reqPort_.port(); }
	[[nodiscard]] Port eventPort() const { return evtPort_.port(); }
	[[nodiscard]] std::vector<int> fds() const;

private:
	Status readBackendState();
	Status collectStateOnly();
	Status waitBackendState(int wanted, Clock::time_point deadline);
	/** At the start of a wait: apply a pending clearInterrupt(); the interrupt count to compare with. */
	uint64_t beginWait();
	bool cancelled(uint64_t since) const
	{
		return interrupted_ || interrupts_ != since || (cancelCheck_ && cancelCheck_());
	}
	Status writeState(int state);

	Platform &pf_;
	const std::string what_;
	std::string fePath_, bePath_, watchToken_;
	DomId backendId_ = 0;
	bool watching_ = false;
	bool closing_ = false; /* we asked to close: the backend leaving is expected */
	int backendState_ = 0;
	std::optional<Error> broken_;
	GrantShare ringPage_, eventPage_;
	EventPort reqPort_, evtPort_;
	std::mutex interruptLock_; /* interrupt(), clearInterrupt() and beginWait() */
	std::atomic<bool> interrupted_{ false };
	std::atomic<uint64_t> interrupts_{ 0 };
	bool clearPending_ = false;
	std::function<bool()> cancelCheck_;
	UniqueFD wake_; /* eventfd: interrupt() wakes a poll */
};

/** "Initialising", "InitWait", ... for logs. */
const char *xenbusStateName(int state);

/**
 * \brief Map a buffer the backend allocated (be-alloc) from the refs it wrote
 * into \a dir, the directory pages we granted it
 *
 * Each directory page is copied out before use; the chain must be the one we
 * wrote (the backend may only fill in buffer refs); the buffer must hold
 * \a bytes.  A backend without be-alloc leaves the directory as we zeroed
 * it: that is said plainly instead of mapping ref 0.
 */
Result<GrantMapping> mapBackendBuffer(Platform &pf, DomId backend, const GrantShare &dir, uint64_t bytes,
				      bool writable);

} /* namespace xmb::xen */
