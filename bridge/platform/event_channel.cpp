/* SPDX-License-Identifier: MIT */
#include "bridge/platform/event_channel.h"

#include <cstring>
#include <string>

namespace xmb::xen {

EventPort &EventPort::operator=(EventPort &&o) noexcept
{
	if (this != &o) {
		reset();
		backend_ = std::move(o.backend_);
		port_ = o.port_;
	}
	return *this;
}

void EventPort::reset()
{
	if (backend_)
		backend_->unbind(port_);
	backend_.reset();
}

Status EventPort::notify() const
{
	if (!backend_)
		return Error{ -EBADF, "notify on an unbound port" };
	int ret = backend_->notify(port_);
	if (ret < 0)
		return Error{ ret, "notify port " + std::to_string(port_) + ": " + std::strerror(-ret) };
	return {};
}

Status EventPort::unmask() const
{
	if (!backend_)
		return Error{ -EBADF, "unmask on an unbound port" };
	int ret = backend_->unmask(port_);
	if (ret < 0)
		return Error{ ret, "unmask port " + std::to_string(port_) + ": " + std::strerror(-ret) };
	return {};
}

Result<EventPort> EventChannels::wrap(Result<Port> port)
{
	if (!port)
		return port.error();
	EventPort p;
	p.backend_ = backend_;
	p.port_ = *port;
	return p;
}

Result<EventPort> EventChannels::allocUnbound(DomId remote)
{
	return wrap(backend_->allocUnbound(remote));
}

Result<EventPort> EventChannels::bindInterdomain(DomId remote, Port remotePort)
{
	return wrap(backend_->bindInterdomain(remote, remotePort));
}

Result<std::optional<Port>> EventChannels::pending()
{
	Port port;
	auto n = backend_->pendingBatch({ &port, 1 });
	if (!n)
		return n.error();
	return *n ? std::optional<Port>(port) : std::nullopt;
}

} /* namespace xmb::xen */
