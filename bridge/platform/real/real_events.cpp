/* SPDX-License-Identifier: MIT */
/* Event channels on real Xen through libxenevtchn (/dev/xen/evtchn). */
#include "bridge/platform/real/real_platform.h"

#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <unistd.h>
extern "C" {
#include <xenevtchn.h>
}

#include "bridge/platform/real/xen_logger.h"

namespace xmb::xen {

namespace {

class RealEventChannels final : public EventChannelBackend
{
public:
	explicit RealEventChannels(xenevtchn_handle *h) : h_(h) {}
	/* Owns the handle: one close, so never copied. */
	RealEventChannels(const RealEventChannels &) = delete;
	RealEventChannels &operator=(const RealEventChannels &) = delete;
	~RealEventChannels() override { xenevtchn_close(h_); }

	int fd() const override { return xenevtchn_fd(h_); }

	Result<Port> allocUnbound(DomId remote) override
	{
		xenevtchn_port_or_error_t p = xenevtchn_bind_unbound_port(h_, remote);
		if (p < 0)
			return Error{ -errno, "event channel for dom" + std::to_string(remote) + ": " +
						      std::strerror(errno) };
		return static_cast<Port>(p);
	}

	Result<Port> bindInterdomain(DomId remote, Port remotePort) override
	{
		xenevtchn_port_or_error_t p = xenevtchn_bind_interdomain(h_, remote, remotePort);
		if (p < 0)
			return Error{ -errno, "bind to dom" + std::to_string(remote) + " port " +
						      std::to_string(remotePort) + ": " + std::strerror(errno) };
		return static_cast<Port>(p);
	}

	int unbind(Port local) override { return xenevtchn_unbind(h_, local) ? -errno : 0; }
	int notify(Port local) override { return xenevtchn_notify(h_, local) ? -errno : 0; }
	int unmask(Port local) override { return xenevtchn_unmask(h_, local) ? -errno : 0; }

	Result<size_t> pendingBatch(std::span<Port> out) override
	{
		/*
		 * libxenevtchn's xenevtchn_pending() is read(fd, &port, 4) on
		 * Linux; the evtchn driver returns every queued port that fits
		 * in one read (drivers/xen/evtchn.c, evtchn_read), so read them
		 * together: one syscall per wake-up instead of one per port plus
		 * the empty one that ends the drain.
		 */
		ssize_t n = ::read(xenevtchn_fd(h_), out.data(), out.size_bytes());
		if (n >= 0 && n % sizeof(Port) == 0)
			return size_t(n) / sizeof(Port);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return size_t(0);
		/* EFBIG: the driver's ring overflowed (events lost); the caller closes what it serves. */
		return Error{ n < 0 ? -errno : -EIO, std::string("event channel read: ") +
							     std::strerror(n < 0 ? errno : EIO) };
	}

private:
	xenevtchn_handle *h_;
};

} /* namespace */

Result<std::shared_ptr<EventChannelBackend>> openRealEventChannels()
{
	/* Default flags: O_CLOEXEC (XENEVTCHN_NO_CLOEXEC not given). */
	xenevtchn_handle *h = xenevtchn_open(quietXenLogger(), 0);
	if (!h)
		return Error{ -errno, std::string("/dev/xen/evtchn: ") + std::strerror(errno) +
					      " (is xen-evtchn loaded?)" };
	/* pending() must not block the event loop. */
	int fd = xenevtchn_fd(h);
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	return std::shared_ptr<EventChannelBackend>(std::make_shared<RealEventChannels>(h));
}

} /* namespace xmb::xen */
