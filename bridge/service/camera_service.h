/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The Dom0 camera service: the vcamera backend of every configured guest.
 *
 * It does the toolstack part (device nodes), runs the xenbus state machine
 * per device from XenStore watches, owns one CameraHub per camera and one
 * CameraSession per connected frontend, and dispatches event-channel
 * notifications, all from one EventLoop.  A misbehaving frontend is closed
 * alone; the others keep streaming.
 */

#include <map>
#include <set>
#include <memory>
#include <string>
#include <vector>

#include "bridge/base/log.h"
#include "bridge/platform/platform.h"
#include "bridge/service/camera_hub.h"
#include "bridge/service/camera_session.h"
#include "bridge/service/event_loop.h"
#include "bridge/service/service_config.h"
#include "bridge/service/source_factory.h"

namespace xmb::service {

struct DeviceReport {
	std::string label;
	std::string camera;
	bool connected = false;
	uint64_t connects = 0; /**< sessions set up for this device so far */
	std::string tier;
	SessionStats stats;
	uint64_t domainMappedPages = 0; /**< pages of this guest Dom0 maps now (all sessions) */
};

class CameraService
{
public:
	CameraService(xen::Platform &dom0, EventLoop &loop);
	~CameraService();

	/** Open the cameras, attach running guests, start watching. Errors name the camera. */
	Status start(const ServiceConfig &config, const SourceFactory &factory = openSource);
	/** Close every frontend and remove the device nodes. */
	void stop();
	/** Apply a new configuration: guests removed are detached, new ones attached. */
	Status reload(const ServiceConfig &config, const SourceFactory &factory = openSource);

	std::vector<DeviceReport> report() const;
	/** Number of frontends connected now. */
	[[nodiscard]] size_t connected() const;

private:
	struct Device {
		GuestEntry guest;
		xen::DomId frontend = 0;
		bool attached = false;
		CameraHub *hub = nullptr;
		proto::VcameraConfig published;
		std::unique_ptr<CameraSession> session;
		std::string fePath, bePath, token;
		RateLimit logLimit{ 5, 1 };
		/* Created by the toolstack (libxl vcamera): its nodes are not ours to write or remove. */
		bool toolstack = false;
		RateLimit connectBudget{ 10, 10 }; /* session set-ups a flapping frontend may cause */
		EventLoop::TimerId retryTimer = 0; /* a connect put off by the budget */
		uint64_t connects = 0;
	};

	Status openCameras(const ServiceConfig &config, const SourceFactory &factory);
	proto::VcameraConfig publishedConfig(const GuestEntry &g, CameraHub &hub);
	void attachPending();
	Status attach(Device &d, xen::DomId fe);
	void detach(Device &d, bool removeNodes);
	void onXenStore();
	void onEventChannel();
	void frontendChanged(Device &d);
	void connectFrontend(Device &d);
	void retryConnectLater(Device &d);
	void teardown(Device &d, const char *why);
	void onViolation(CameraSession *s, const std::string &why);
	void checkDomains();
	void scanToolstackDevices();
	void bindToolstackDevice(xen::DomId fe, unsigned devid);
	void setBackendState(Device &d, int state);
	void updatePageLimit(xen::DomId fe);
	Device *deviceOf(CameraSession *s);

	xen::Platform &dom0_;
	EventLoop &loop_;
	std::map<std::string, std::unique_ptr<CameraHub>> hubs_;
	std::vector<std::unique_ptr<Device>> devices_;
	std::map<xen::Port, CameraSession *> ports_;
	std::vector<CameraEntry> cameras_;
	/* Toolstack devices we could not serve (reported once, until they go). */
	std::set<std::pair<xen::DomId, unsigned>> refused_;
	std::string toolstackRoot_; /* our backend/vcamera directory, watched */
	bool watching_ = false;
	EventLoop::TimerId recheckTimer_ = 0; /* cancelled in stop(): it calls into us */
};

} /* namespace xmb::service */
