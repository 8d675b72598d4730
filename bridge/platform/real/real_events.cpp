/* SPDX-License-Identifier: MIT */
/* Event channels on real Xen through libxenevtchn (/dev/xen/evtchn). */
#include "bridge/platform/real/real_platform.h"

#include <cerrno>
#include <cstring>

#include <fcntl.h>
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

	Result<std::optional<Port>> pending() override
	{
		xenevtchn_port_or_error_t p = xenevtchn_pending(h_);
		if (p < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return std::optional<Port>();
			return Error{ -errno, std::string("event channel read: ") + std::strerror(errno) };
		}
		return std::optional<Port>(static_cast<Port>(p));
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
