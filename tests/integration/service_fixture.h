/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The camera service on the loopback platform, its event loop in a thread,
 * and guests that talk to it with the frontend library (or by hand).
 */
#include <atomic>
#include <chrono>
#include <functional>
#include <thread>

#include <gtest/gtest.h>

#include "bridge/frontend/camera_frontend.h"
#include "bridge/platform/loopback/loopback_xen.h"
#include "bridge/service/camera_service.h"

namespace xmb::test {

/* Poll \a cond until it holds or \a limit passes; \return whether it held. */
inline bool waitFor(const std::function<bool()> &cond,
		    std::chrono::milliseconds limit = std::chrono::milliseconds(2000))
{
	auto end = std::chrono::steady_clock::now() + limit;
	while (std::chrono::steady_clock::now() < end) {
		if (cond())
			return true;
		std::this_thread::sleep_for(std::chrono::milliseconds(5));
	}
	return cond();
}

class ServiceTest : public ::testing::Test
{
protected:
	void startService(const std::string &configText, std::vector<xen::DomId> guests)
	{
		hv = xen::LoopbackXen::create();
		hv->emulatePvForeignMaps(pvDom0);
		if (hvSetup)
			hvSetup(*hv);
		for (auto g : guests)
			ASSERT_TRUE(hv->createDomain(g, "guest" + std::to_string(g)));
		auto p = hv->open(0);
		ASSERT_TRUE(p);
		dom0 = std::move(*p);
		for (auto g : guests) {
			auto gp = hv->open(g);
			ASSERT_TRUE(gp);
			guest[g] = std::move(*gp);
		}
		auto cfg = service::parseServiceConfig(configText, "test.conf");
		ASSERT_TRUE(cfg) << cfg.error().message;
		svc = std::make_unique<service::CameraService>(*dom0, loop);
		Status s = sourceFactory ? svc->start(*cfg, sourceFactory) : svc->start(*cfg);
		ASSERT_TRUE(s) << s.error().message;
		thread = std::thread([this] {
			while (!stop)
				loop.dispatch(20);
		});
	}

	/* Run \a fn on the service thread and wait (the service is single-threaded). */
	template<typename Fn>
	void onService(Fn fn)
	{
		std::atomic<bool> done{ false };
		loop.defer([&] {
			fn();
			done = true;
		});
		while (!done)
			std::this_thread::sleep_for(std::chrono::milliseconds(2));
	}

	std::vector<service::DeviceReport> report()
	{
		std::vector<service::DeviceReport> r;
		onService([&] { r = svc->report(); });
		return r;
	}

	void TearDown() override
	{
		stop = true;
		if (thread.joinable())
			thread.join();
		if (svc)
			svc->stop();
	}

	/* Set before startService(): Dom0 reports what an x86 PV Dom0 does. */
	bool pvDom0 = false;
	/* Set before startService(): more hypervisor set-up (e.g. gntdev dma-buf). */
	std::function<void(xen::LoopbackXen &)> hvSetup;
	/* Set before startService(): the cameras (default: service::openSource). */
	service::SourceFactory sourceFactory;
	service::EventLoop loop;
	std::shared_ptr<xen::LoopbackXen> hv;
	std::unique_ptr<xen::Platform> dom0;
	std::map<xen::DomId, std::unique_ptr<xen::Platform>> guest;
	std::unique_ptr<service::CameraService> svc;
	std::thread thread;
	std::atomic<bool> stop{ false };
};

} /* namespace xmb::test */
