/* SPDX-License-Identifier: MIT */
/*
 * The frontend and the CLI logic against the real Dom0 camera service, both
 * on the loopback hypervisor: the two halves meet at cameraif and XenStore.
 */
#include <atomic>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "bridge/frontend/camera_frontend.h"
#include "bridge/frontend/capture_app.h"
#include "bridge/platform/loopback/loopback_xen.h"
#include "bridge/service/camera_service.h"

using namespace xmb;
using namespace xmb::frontend;
using namespace std::chrono_literals;

namespace {

const char *kConfig = R"(
[camera cam]
source = test-pattern
[guest fe-alloc]
domain = 1
camera = cam
max-buffers = 4
[guest be-alloc]
domain = 2
camera = cam
be-alloc = yes
max-buffers = 4
)";

class ServiceTest : public ::testing::TestWithParam<xen::DomId>
{
protected:
	void SetUp() override
	{
		hv = xen::LoopbackXen::create();
		ASSERT_TRUE(hv->createDomain(1, "guest1"));
		ASSERT_TRUE(hv->createDomain(2, "guest2"));
		auto d0 = hv->open(0), g = hv->open(GetParam());
		ASSERT_TRUE(d0 && g);
		dom0 = std::move(*d0);
		guest = std::move(*g);
		auto cfg = service::parseServiceConfig(kConfig, "test");
		ASSERT_TRUE(cfg) << cfg.error().message;
		svc = std::make_unique<service::CameraService>(*dom0, loop);
		Status s = svc->start(*cfg);
		ASSERT_TRUE(s) << s.error().message;
		thread = std::thread([this] {
			while (!stop)
				loop.dispatch(20);
		});
	}

	void TearDown() override
	{
		stop = true;
		if (thread.joinable())
			thread.join();
		if (svc)
			svc->stop();
	}

	std::shared_ptr<xen::LoopbackXen> hv;
	std::unique_ptr<xen::Platform> dom0, guest;
	service::EventLoop loop;
	std::unique_ptr<service::CameraService> svc;
	std::atomic<bool> stop{ false };
	std::thread thread;
};

} /* namespace */

TEST_P(ServiceTest, CaptureChecksThePatternPixelExact)
{
	const char *argv[] = { "xmb-camera-guest", "--frames", "12", "--check-pattern", "--quiet" };
	auto o = parseCaptureArgs(5, argv);
	ASSERT_TRUE(o);
	std::ostringstream out, err;
	int rc = runCapture(*guest, *o, out, err);
	EXPECT_EQ(rc, kExitOk) << out.str() << err.str();
	EXPECT_NE(out.str().find("summary: ok frames 12"), std::string::npos) << out.str();
	EXPECT_NE(out.str().find("mismatches 0"), std::string::npos) << out.str();
	EXPECT_NE(out.str().find("protocol-errors 0"), std::string::npos) << out.str();
	EXPECT_EQ(hv->grantEntries(GetParam()), 0u);
}

/*
 * A second capture of the same camera: the test-pattern camera starts
 * counting at 0 again while the service's seq_num goes on from the first
 * stream.  The check takes its offset from the first frame's counter and
 * still holds every later frame to the pattern frame its seq_num names.
 */
TEST_P(ServiceTest, ASecondCaptureOfTheSameCameraStillChecksPixelExact)
{
	const char *argv[] = { "xmb-camera-guest", "--frames", "8", "--check-pattern", "--quiet" };
	auto o = parseCaptureArgs(5, argv);
	ASSERT_TRUE(o);
	for (int run = 0; run < 2; run++) {
		std::ostringstream out, err;
		int rc = runCapture(*guest, *o, out, err);
		EXPECT_EQ(rc, kExitOk) << "run " << run << ": " << out.str() << err.str();
		EXPECT_NE(out.str().find("summary: ok frames 8"), std::string::npos) << out.str();
		EXPECT_NE(out.str().find("mismatches 0"), std::string::npos) << out.str();
	}
}

TEST_P(ServiceTest, EveryRequestIsAnswered)
{
	CameraFrontend fe(*guest);
	ASSERT_TRUE(fe.connect(0, 5s));
	const auto &caps = fe.device().config;
	EXPECT_EQ(caps.beAlloc, GetParam() == 2);
	ASSERT_FALSE(caps.formats.empty());
	const auto &f = caps.formats.front();
	const auto &r = f.resolutions.front();

	auto v = fe.configValidate(f.fourcc, r.width, r.height);
	ASSERT_TRUE(v) << v.error().message;
	auto c = fe.configSet(f.fourcc, r.width, r.height);
	ASSERT_TRUE(c) << c.error().message;
	EXPECT_EQ(c->width, r.width);
	if (!r.frameRates.empty()) {
		Status s = fe.frameRateSet(r.frameRates.front().num, r.frameRates.front().den);
		EXPECT_TRUE(s) << s.error().message;
	}
	auto g = fe.configGet();
	ASSERT_TRUE(g) << g.error().message;
	EXPECT_EQ(g->fourcc, f.fourcc);

	auto ctrls = fe.ctrlEnumAll();
	ASSERT_TRUE(ctrls) << ctrls.error().message;
	for (const ControlInfo &ci : *ctrls) {
		auto val = fe.ctrlGet(ci.type);
		EXPECT_TRUE(val) << val.error().message;
	}

	auto n = fe.allocateBuffers(3);
	ASSERT_TRUE(n) << n.error().message;
	ASSERT_TRUE(fe.queueAll());
	ASSERT_TRUE(fe.streamStart());
	for (int i = 0; i < 4; i++) {
		auto fr = fe.waitFrame(3s);
		ASSERT_TRUE(fr) << fr.error().message;
		ASSERT_TRUE(fe.bufQueue(fr->index));
	}
	Status s = fe.streamStop();
	ASSERT_TRUE(s) << s.error().message;
	/* After STREAM_STOP every buffer is ours again: destroy them one by one. */
	for (uint8_t i = 0; i < *n; i++) {
		Status d = fe.bufDestroy(i);
		EXPECT_TRUE(d) << d.error().message;
	}
	fe.disconnect();
	EXPECT_EQ(hv->grantEntries(GetParam()), 0u);
}

INSTANTIATE_TEST_SUITE_P(Alloc, ServiceTest, ::testing::Values(xen::DomId{ 1 }, xen::DomId{ 2 }),
			 [](const auto &p) { return p.param == 1 ? "FrontendAlloc" : "BackendAlloc"; });
