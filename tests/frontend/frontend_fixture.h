/* SPDX-License-Identifier: MIT */
#pragma once

#include <gtest/gtest.h>

#include "bridge/frontend/camera_frontend.h"
#include "bridge/platform/loopback/loopback_xen.h"
#include "fake_backend.h"

namespace xmb::frontend::test {

/** Dom0 with the fake backend, and guest dom1 with its vcamera device 0. */
class FrontendTest : public ::testing::Test
{
protected:
	void startBackend(FakeBackendOptions o = {})
	{
		hv = xen::LoopbackXen::create();
		ASSERT_TRUE(hv->createDomain(1, "guest"));
		auto p0 = hv->open(0);
		auto p1 = hv->open(1);
		ASSERT_TRUE(p0);
		ASSERT_TRUE(p1);
		dom0 = std::move(*p0);
		guest = std::move(*p1);
		backend = std::make_unique<FakeBackend>(*dom0, o);
		backend->publish();
		backend->start();
	}

	/** Guest dom1 with a frontend and no device: nothing serves it (yet). */
	void guestWithoutDevice()
	{
		hv = xen::LoopbackXen::create();
		ASSERT_TRUE(hv->createDomain(1, "guest"));
		auto p1 = hv->open(1);
		ASSERT_TRUE(p1);
		guest = std::move(*p1);
		fe = makeFrontend();
	}

	void TearDown() override
	{
		fe.reset();
		if (backend)
			backend->stop();
	}

	std::unique_ptr<CameraFrontend> makeFrontend()
	{
		auto f = std::make_unique<CameraFrontend>(*guest);
		f->setTimeout(std::chrono::milliseconds(2000));
		return f;
	}

	void connect()
	{
		fe = makeFrontend();
		Status s = fe->connect(0, std::chrono::milliseconds(2000));
		ASSERT_TRUE(s) << s.error().message;
	}

	std::shared_ptr<xen::LoopbackXen> hv;
	std::unique_ptr<xen::Platform> dom0;
	std::unique_ptr<xen::Platform> guest;
	std::unique_ptr<FakeBackend> backend;
	std::unique_ptr<CameraFrontend> fe;
};

} /* namespace xmb::frontend::test */
