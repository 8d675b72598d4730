/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A frontend written by hand, to play a hostile guest: it speaks just enough
 * cameraif to connect, then sends whatever the test wants, including
 * impossible ring indices and malformed requests.
 */
#include <chrono>
#include <cstring>
#include <poll.h>
#include <thread>

#include "bridge/platform/platform.h"
#include "protocol/cameraif.h"
#include "protocol/xenstore_schema.h"

namespace xmb::test {

class RawFrontend
{
public:
	RawFrontend(xen::Platform &p, unsigned devid) : p_(p)
	{
		dir_ = xen::XenStore::domainPath(p.self) + "/device/vcamera/" + std::to_string(devid);
		auto be = p_.store->read(dir_ + "/backend");
		if (be)
			bePath_ = *be;
	}

	bool waitBackendState(int state, int ms = 3000)
	{
		auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
		while (std::chrono::steady_clock::now() < end) {
			if (bePath_.empty()) /* the device may appear after we started */
				if (auto be = p_.store->read(dir_ + "/backend"))
					bePath_ = *be;
			auto s = p_.store->read(bePath_ + "/state");
			if (s && *s == std::to_string(state))
				return true;
			std::this_thread::sleep_for(std::chrono::milliseconds(5));
		}
		return false;
	}

	bool writeVersion = true;
	int timeoutMs = 3000; /* for each backend state we wait for */

	bool connect()
	{
		if (!waitBackendState(2, timeoutMs))
			return false;
		auto ring = p_.grants->share(0, 1, true);
		auto evt = p_.grants->share(0, 1, true);
		auto req = p_.events->allocUnbound(0);
		auto ev = p_.events->allocUnbound(0);
		if (!ring || !evt || !req || !ev)
			return false;
		ring_ = std::move(*ring);
		evt_ = std::move(*evt);
		req_ = std::move(*req);
		evtPort_ = std::move(*ev);
		front_ = proto::CameraFrontRing(ring_.data(), proto::kXenPageSize);
		events_ = proto::EventPageReader(evt_.data());
		proto::VcameraTransport t{ "1", ring_.refs()[0], req_.port(), evt_.refs()[0], evtPort_.port() };
		for (const auto &[k, v] : proto::formatVcameraTransport(t)) {
			if (!writeVersion && k == "version")
				continue; /* as Linux's xen-camera-front */
			if (!p_.store->write(dir_ + "/" + k, v))
				return false;
		}
		(void)p_.store->write(dir_ + "/state", "3");
		if (!waitBackendState(4, timeoutMs))
			return false;
		(void)p_.store->write(dir_ + "/state", "4");
		return true;
	}

	/* Send one request and wait for its response (status in .status). */
	std::optional<xencamera_resp> call(xencamera_req req, int ms = 3000)
	{
		if (!front_.push(req))
			return std::nullopt;
		front_.pushRequests();
		(void)req_.notify();
		auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
		while (std::chrono::steady_clock::now() < end) {
			if (front_.poll() == proto::RingPoll::Work)
				return front_.take();
			pollfd pfd{ p_.events->fd(), POLLIN, 0 };
			if (::poll(&pfd, 1, 10) == 1) {
				while (auto port = p_.events->pending()) {
					if (!port->has_value())
						break;
					(void)(**port == req_.port() ? req_.unmask() : evtPort_.unmask());
				}
			}
		}
		return std::nullopt;
	}

	static xencamera_req request(uint8_t op, uint16_t id = 1)
	{
		xencamera_req r;
		std::memset(&r, 0, sizeof(r));
		r.id = id;
		r.operation = op;
		return r;
	}

	uint8_t *ringPage() { return ring_.data(); }
	void notify() { (void)req_.notify(); }
	void notifyEvents() { (void)evtPort_.notify(); }
	[[nodiscard]] const std::string &backendPath() const { return bePath_; }

	xen::Platform &p_;
	std::string dir_, bePath_;
	xen::GrantShare ring_, evt_;
	xen::EventPort req_, evtPort_;
	proto::CameraFrontRing front_;
	proto::EventPageReader events_;
};

} /* namespace xmb::test */
