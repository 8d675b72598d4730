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

#include "protocol/base/log.h"
#include "bridge/platform/platform.h"
#include "bridge/service/camera_hub.h"
#include "bridge/service/camera_session.h"
#include "bridge/service/event_loop.h"
#include "bridge/service/service_config.h"
#include "bridge/service/source_factory.h"
#include "bridge/service/xenbus_backend.h"

namespace xmb::service {

struct DeviceReport {
	std::string label;
	std::string camera;
	bool connected = false;
	uint64_t connects = 0; /**< sessions set up for this device so far */
	std::string tier;
	std::string format; /**< "YUYV 640x480 30/1 fps" once the guest configured; else empty */
	SessionStats stats;
	uint64_t domainMappedPages = 0; /**< pages of this guest Dom0 maps now (all sessions) */
	/** dma-bufs of this guest's pages Dom0 holds now (exp_from_refs, ours or a driver's) */
	uint64_t domainDmaBufs = 0;
};

class CameraService final : private XenbusDriver
{
public:
	CameraService(xen::Platform &dom0, EventLoop &loop);
	~CameraService() override;

	/** Open the cameras, attach running guests, start watching. Errors name the camera. */
	Status start(const ServiceConfig &config, const SourceFactory &factory = openSource);
	/** Close every frontend and remove the device nodes. */
	void stop();
	/** Apply a new configuration: guests removed are detached, new ones attached. */
	Status reload(const ServiceConfig &config, const SourceFactory &factory = openSource);

	std::vector<DeviceReport> report() const;
	/** Number of frontends connected now. */
	[[nodiscard]] size_t connected() const { return backend_.connected(); }

private:
	/* A vcamera device: the xenbus part is shared (XenbusBackend). */
	struct Device final : XenbusDevice {
		GuestEntry guest;
		CameraHub *hub = nullptr;
		proto::VcameraConfig published;
	};
	static Device &of(XenbusDevice &d) { return static_cast<Device &>(d); }
	static const Device &of(const XenbusDevice &d) { return static_cast<const Device &>(d); }

	Status openCameras(const ServiceConfig &config, const SourceFactory &factory);
	proto::VcameraConfig publishedConfig(const GuestEntry &g, CameraHub &hub);
	void addGuest(const GuestEntry &g);
	void scanToolstackDevices();
	void bindToolstackDevice(xen::DomId fe, unsigned devid);

	/* XenbusDriver */
	Status createNodes(XenbusDevice &d) override;
	Result<std::unique_ptr<BackendSession>> connect(XenbusDevice &d) override;
	void closing(XenbusDevice &d, const char *why) override;
	void watchFired(const std::string &token) override;
	void domainsChecked() override;

	xen::Platform &dom0_;
	EventLoop &loop_;
	std::map<std::string, std::unique_ptr<CameraHub>> hubs_;
	std::vector<CameraEntry> cameras_;
	/* Toolstack devices we could not serve (reported once, until they go). */
	std::set<std::pair<xen::DomId, unsigned>> refused_;
	std::string toolstackRoot_; /* our backend/vcamera directory, watched */
	bool watchingToolstack_ = false;
	/* Last member: destroyed (sessions first) while the hubs still exist. */
	XenbusBackend backend_;
};

} /* namespace xmb::service */
