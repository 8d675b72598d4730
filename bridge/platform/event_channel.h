/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Event channels: one handle (one fd in the event loop) owns many ports.
 *
 * Delivery follows Linux's evtchn driver: when an event arrives the port is
 * masked and reported once by pending(); further events latch until the
 * owner calls unmask().  Servers drain their work *then* unmask ("late
 * re-arm"), so a peer cannot make us spin.
 */

#include <memory>
#include <optional>
#include <span>

#include "bridge/platform/types.h"
#include "protocol/result.h"

namespace xmb::xen {

class EventChannelBackend
{
public:
	virtual ~EventChannelBackend() = default;
	[[nodiscard]] virtual int fd() const = 0;
	virtual Result<Port> allocUnbound(DomId remote) = 0;
	virtual Result<Port> bindInterdomain(DomId remote, Port remotePort) = 0;
	virtual int unbind(Port local) = 0;
	virtual int notify(Port local) = 0;
	virtual int unmask(Port local) = 0;
	/**
	 * Ports with an event, up to out.size() in one read (non-blocking): how
	 * many were written, 0 if none.  One read, not a loop until EAGAIN:
	 * the fd stays readable while more are queued, so a caller that
	 * serves what it got and returns to its poll loses nothing and saves
	 * the empty read (Linux's evtchn read returns every queued port that
	 * fits).
	 */
	virtual Result<size_t> pendingBatch(std::span<Port> out) = 0;
};

class EventChannels;

/** \brief A bound local port; unbound on destruction. */
class EventPort
{
public:
	EventPort() = default;
	EventPort(EventPort &&o) noexcept { *this = std::move(o); }
	EventPort &operator=(EventPort &&o) noexcept;
	EventPort(const EventPort &) = delete;
	EventPort &operator=(const EventPort &) = delete;
	~EventPort() { reset(); }

	[[nodiscard]] Port port() const { return port_; }
	explicit operator bool() const { return backend_ != nullptr; }
	Status notify() const;
	Status unmask() const;
	void reset();

private:
	friend class EventChannels;
	std::shared_ptr<EventChannelBackend> backend_;
	Port port_ = 0;
};

/** \brief One event-channel handle: an fd for the event loop and its ports. */
class EventChannels
{
public:
	explicit EventChannels(std::shared_ptr<EventChannelBackend> backend)
		: backend_(std::move(backend)) {}

	[[nodiscard]] int fd() const { return backend_->fd(); }
	/** A port \a remote may bind to (we publish its number in XenStore). */
	Result<EventPort> allocUnbound(DomId remote);
	/** Bind to the port \a remotePort that \a remote allocated for us. */
	Result<EventPort> bindInterdomain(DomId remote, Port remotePort);
	/** Next port with an event (masked until unmask), or nullopt. */
	Result<std::optional<Port>> pending();
	/** Ports with an event (each masked until unmask), up to out.size(): how many. */
	Result<size_t> pendingBatch(std::span<Port> out) { return backend_->pendingBatch(out); }

private:
	Result<EventPort> wrap(Result<Port> port);
	std::shared_ptr<EventChannelBackend> backend_;
};

} /* namespace xmb::xen */
