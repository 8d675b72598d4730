/* SPDX-License-Identifier: MIT */
/*
 * Loopback event channels: each handle owns a pipe; delivering an event
 * writes the local port number to it, as /dev/xen/evtchn returns ports.
 */
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

#include "bridge/platform/loopback/loopback_state.h"

namespace xmb::xen::loopback {

namespace {

/*
 * A wake-up decided under the hypervisor lock and written after it is
 * dropped: the peer it wakes goes straight for that lock (unmask), and a
 * write under it made every notify a futex hand-off - a cost of this
 * emulation, not of Xen, whose notify never blocks on the woken domain.
 */
struct Wake {
	std::shared_ptr<UniqueFD> fd;
	uint32_t port = 0;

	void write() const
	{
		/* The pipe holds 16k ports' worth; a full pipe means nobody reads: drop like a lost IRQ. */
		if (fd)
			(void)!::write(fd->get(), &port, sizeof(port));
	}
};

/* Deliver an event on \a p (port \a port): mask and wake, or latch. */
Wake deliver(PortState &p, Port port)
{
	p.pending = true;
	if (p.masked || !p.wakeFd)
		return {};
	p.masked = true;
	p.pending = false;
	return { p.wakeFd, port };
}

class LoopbackEvents final : public EventChannelBackend
{
public:
	LoopbackEvents(std::shared_ptr<Hypervisor> hv, DomId self, UniqueFD rd,
		       std::shared_ptr<UniqueFD> wr, uint64_t handle)
		: hv_(std::move(hv)), self_(self), rd_(std::move(rd)), wr_(std::move(wr)),
		  handle_(handle) {}

	~LoopbackEvents() override
	{
		std::lock_guard<std::mutex> l(hv_->lock);
		auto d = hv_->domains.find(self_);
		if (d == hv_->domains.end())
			return;
		std::vector<Port> mine;
		for (auto &[port, st] : d->second.ports)
			if (st.handle == handle_)
				mine.push_back(port);
		for (Port p : mine)
			hv_->closePort(d->second, p);
	}

	int fd() const override { return rd_.get(); }

	Result<Port> allocUnbound(DomId remote) override
	{
		std::lock_guard<std::mutex> l(hv_->lock);
		Domain *me = hv_->aliveDomain(self_);
		if (!me)
			return Error{ -ESRCH, "event channel: dom" + std::to_string(self_) + " is dead" };
		Port port = me->nextPort++;
		PortState &st = me->ports[port];
		st.kind = PortState::Kind::Unbound;
		st.remoteDom = remote;
		st.handle = handle_;
		st.wakeFd = wr_;
		return port;
	}

	Result<Port> bindInterdomain(DomId remote, Port remotePort) override
	{
		std::lock_guard<std::mutex> l(hv_->lock);
		Domain *me = hv_->aliveDomain(self_);
		Domain *peer = hv_->aliveDomain(remote);
		if (!me || !peer)
			return Error{ -ESRCH, "bind: dom" + std::to_string(remote) + " not running" };
		auto it = peer->ports.find(remotePort);
		if (it == peer->ports.end() || it->second.kind != PortState::Kind::Unbound ||
		    it->second.remoteDom != self_)
			return Error{ -EINVAL, "bind: dom" + std::to_string(remote) + " port " +
						       std::to_string(remotePort) +
						       " is not an unbound port for dom" +
						       std::to_string(self_) };
		Port port = me->nextPort++;
		PortState &st = me->ports[port];
		st.kind = PortState::Kind::Interdomain;
		st.remoteDom = remote;
		st.remotePort = remotePort;
		st.handle = handle_;
		st.wakeFd = wr_;
		it->second.kind = PortState::Kind::Interdomain;
		it->second.remotePort = port;
		return port;
	}

	int unbind(Port local) override
	{
		std::lock_guard<std::mutex> l(hv_->lock);
		auto d = hv_->domains.find(self_);
		if (d == hv_->domains.end())
			return -ESRCH;
		auto it = d->second.ports.find(local);
		if (it == d->second.ports.end() || it->second.handle != handle_)
			return -EINVAL;
		hv_->closePort(d->second, local);
		return 0;
	}

	int notify(Port local) override
	{
		Wake wake;
		{
			std::lock_guard<std::mutex> l(hv_->lock);
			PortState *st = mine(local);
			if (!st)
				return -EINVAL;
			if (st->kind != PortState::Kind::Interdomain)
				return 0; /* peer gone: Xen drops the event silently */
			Domain *peer = hv_->aliveDomain(st->remoteDom);
			if (!peer)
				return 0;
			auto it = peer->ports.find(st->remotePort);
			if (it != peer->ports.end())
				wake = deliver(it->second, st->remotePort);
		}
		wake.write();
		return 0;
	}

	int unmask(Port local) override
	{
		Wake wake;
		{
			std::lock_guard<std::mutex> l(hv_->lock);
			PortState *st = mine(local);
			if (!st)
				return -EINVAL;
			st->masked = false;
			if (st->pending)
				wake = deliver(*st, local);
		}
		wake.write();
		return 0;
	}

	Result<size_t> pendingBatch(std::span<Port> out) override
	{
		/* Ports go in whole 4-byte writes (atomic in a pipe), so a read ends on a port. */
		ssize_t n = ::read(rd_.get(), out.data(), out.size_bytes());
		if (n >= 0 && n % sizeof(Port) == 0)
			return size_t(n) / sizeof(Port);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return size_t(0);
		return Error{ n < 0 ? -errno : -EIO, "loopback event channel read" };
	}

private:
	PortState *mine(Port local)
	{
		Domain *me = hv_->aliveDomain(self_);
		if (!me)
			return nullptr;
		auto it = me->ports.find(local);
		if (it == me->ports.end() || it->second.handle != handle_)
			return nullptr;
		return &it->second;
	}

	std::shared_ptr<Hypervisor> hv_;
	DomId self_;
	UniqueFD rd_;
	std::shared_ptr<UniqueFD> wr_;
	uint64_t handle_;
};

} /* namespace */

Result<std::shared_ptr<EventChannelBackend>> makeEventBackend(std::shared_ptr<Hypervisor> hv,
							       DomId self)
{
	int fds[2];
	if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0)
		return Error{ -errno, std::string("loopback event channel pipe: ") + std::strerror(errno) };
	uint64_t handle;
	{
		std::lock_guard<std::mutex> l(hv->lock);
		handle = hv->nextHandle++;
	}
	return std::shared_ptr<EventChannelBackend>(std::make_shared<LoopbackEvents>(
		std::move(hv), self, UniqueFD(fds[0]), std::make_shared<UniqueFD>(fds[1]), handle));
}

} /* namespace xmb::xen::loopback */
