/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The xenbus half of a Dom0 PV backend, shared by every protocol the
 * services speak (vcamera, vcodec).
 *
 * One XenbusBackend owns a protocol's devices: it creates their XenStore
 * nodes (or adopts ones the toolstack created), runs the xenbus state
 * machine from the frontend's state node, sets a session up when the
 * frontend is Initialised (within a connect budget, so a flapping frontend
 * cannot make us do that without end), tears it down on any other state,
 * on a protocol violation or when the guest dies (@releaseDomain, then a
 * re-check: the toolstack removes the guest's directory a little later),
 * re-attaches a guest configured by name when it comes back, caps the pages
 * a domain may make Dom0 map, and routes event-channel notifications to
 * sessions.  The protocol plugs in through XenbusDriver: what nodes to
 * write, how to set a session up, what to log when one closes.
 */

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "protocol/base/log.h"
#include "bridge/platform/platform.h"
#include "bridge/service/event_loop.h"

namespace xmb::service {

/** What the backend needs of a connected session (a protocol's ring server owner). */
class BackendSession
{
public:
	virtual ~BackendSession() = default;
	[[nodiscard]] virtual xen::Port requestPort() const = 0;
	[[nodiscard]] virtual xen::Port eventPort() const = 0;
	virtual void onRequestNotify() = 0;
	virtual void onEventNotify() = 0;
};

/** One device of one guest; protocols derive to keep their configuration. */
struct XenbusDevice {
	virtual ~XenbusDevice() = default;

	/* Set by the protocol. */
	std::string name;		 /**< for logs: the configuration's guest name */
	std::optional<xen::DomId> domid; /**< the guest, by domid ... */
	std::string domainName;		 /**< ... or by name (re-attached when it comes back) */
	unsigned devid = 0;
	size_t pageLimit = 0;		 /**< pages this device may make Dom0 map (rings included) */
	/* Created by the toolstack (libxl): its nodes are not ours to write or remove. */
	bool toolstack = false;

	/* Managed by XenbusBackend. */
	xen::DomId frontend = 0;
	bool attached = false;
	std::string fePath, bePath, token;
	std::unique_ptr<BackendSession> session;
	uint64_t connects = 0;		   /**< sessions set up so far */
	RateLimit logLimit{ 5, 1 };	   /**< lines this guest can make us log */
	RateLimit connectBudget{ 10, 10 }; /**< session set-ups a flapping frontend may cause */
	EventLoop::TimerId retryTimer = 0; /**< a connect put off by the budget */
};

/** The protocol's part. */
class XenbusDriver
{
public:
	virtual ~XenbusDriver() = default;
	/** Write the device's nodes for its frontend (service-created devices only). */
	virtual Status createNodes(XenbusDevice &d) = 0;
	/** Read the frontend's transport and set a connected session up. */
	virtual Result<std::unique_ptr<BackendSession>> connect(XenbusDevice &d) = 0;
	/** The session is about to be destroyed: log what it did. */
	virtual void closing(XenbusDevice &d, const char *why) = 0;
	/** A watch fired whose token is not the backend's. */
	virtual void watchFired(const std::string &token) { (void)token; }
	/** After guest deaths were handled (devices detached meanwhile may be forgotten). */
	virtual void domainsChecked() {}
};

class XenbusBackend
{
public:
	/** \a type: the device type in XenStore ("vcamera"); \a what: for logs ("camera"). */
	XenbusBackend(xen::Platform &dom0, EventLoop &loop, std::string type, std::string what,
		      XenbusDriver &driver);
	~XenbusBackend();
	XenbusBackend(const XenbusBackend &) = delete;
	XenbusBackend &operator=(const XenbusBackend &) = delete;

	/** Watch XenStore and the event channels, attach the guests that run. */
	Status start();
	/** Detach every device (removing the nodes we made), stop watching. */
	void stop();

	/** A device to serve; attached now if its guest runs (and we started). */
	XenbusDevice &add(std::unique_ptr<XenbusDevice> d);
	/** Adopt a device whose nodes the toolstack wrote, for frontend \a fe. */
	XenbusDevice &adopt(std::unique_ptr<XenbusDevice> d, xen::DomId fe);
	/** Release the device: session, watch, page cap; its nodes too if ours. */
	void detach(XenbusDevice &d);
	/** Forget detached devices \a pred selects. */
	void forget(const std::function<bool(const XenbusDevice &)> &pred);
	/** Attach every device whose guest runs and is not attached yet. */
	void attachPending();

	/** A session broke the protocol: close that frontend alone. */
	void violation(const BackendSession *s, const std::string &why);

	[[nodiscard]] const std::vector<std::unique_ptr<XenbusDevice>> &devices() const { return devices_; }
	[[nodiscard]] size_t connected() const;
	/** "dom<fe> <type>/<dev>" */
	[[nodiscard]] std::string label(const XenbusDevice &d) const;

private:
	Status attach(XenbusDevice &d, xen::DomId fe);
	void onXenStore();
	void onEventChannel();
	void checkDomains();
	void frontendChanged(XenbusDevice &d);
	void connectFrontend(XenbusDevice &d);
	void retryConnectLater(XenbusDevice &d);
	void teardown(XenbusDevice &d, const char *why);
	void setBackendState(XenbusDevice &d, int state);
	void updatePageLimit(xen::DomId fe);
	void watchFrontend(XenbusDevice &d, xen::DomId fe);

	xen::Platform &dom0_;
	EventLoop &loop_;
	const std::string type_, what_;
	XenbusDriver &driver_;
	std::vector<std::unique_ptr<XenbusDevice>> devices_;
	std::map<xen::Port, BackendSession *> ports_;
	RateLimit eventReadLimit_{ 1, 1 }; /**< an event-channel read error, logged once a second at most */
	bool watching_ = false;
	EventLoop::TimerId recheckTimer_ = 0; /* cancelled in stop(): it calls into us */
};

} /* namespace xmb::service */
