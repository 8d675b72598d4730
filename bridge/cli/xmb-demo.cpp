/* SPDX-License-Identifier: MIT */
/*
 * xmb-demo: the camera service and two guests, end to end.
 *
 * Without Xen it runs everything on the loopback platform: Dom0's service
 * with two test-pattern cameras, guest 1 with frontend-allocated buffers
 * (Dom0 maps its pages and the camera fills them), guest 2 with be-alloc
 * (Dom0 grants its own pages).  Each guest streams for a few seconds,
 * checks every frame pixel-exact, writes PNG snapshots of what it sees
 * and the demo prints per-guest statistics, bytes copied per frame among
 * them.  In Dom0 on real Xen, run xmb-camera-service and, in the guest,
 * xmb-camera-guest instead (docs/camera-service.md).
 */
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <getopt.h>
#include <thread>

#include "bridge/frontend/camera_frontend.h"
#include "bridge/image/convert.h"
#include "bridge/image/png_writer.h"
#include "bridge/platform/loopback/loopback_xen.h"
#include "bridge/service/camera_service.h"
#include "v4l2/pixel_format.h"
#include "v4l2/test_pattern.h"

using namespace xmb;
using namespace std::chrono_literals;

namespace {

const char *kConfig = R"(
[camera front]
source = test-pattern
[camera back]
source = test-pattern
[guest frontend-alloc]
domain = 1
camera = front
max-buffers = 4
[guest be-alloc]
domain = 2
camera = back
be-alloc = yes
max-buffers = 4
)";

struct GuestResult {
	uint64_t frames = 0, mismatches = 0, drops = 0;
	std::vector<std::string> pngs;
	std::string error;
};

constexpr uint32_t fourccOf(const char s[5])
{
	return uint32_t(s[0]) | uint32_t(s[1]) << 8 | uint32_t(s[2]) << 16 | uint32_t(s[3]) << 24;
}

/* One guest: connect, stream for \a seconds, verify every frame, snapshot some. */
GuestResult runGuest(xen::Platform &p, const std::string &name, uint32_t fourcc, uint32_t w,
		     uint32_t h, double seconds, const std::filesystem::path &out)
{
	GuestResult r;
	frontend::CameraFrontend fe(p);
	auto fail = [&](const std::string &what, const Error &e) {
		r.error = what + ": " + e.message;
		return r;
	};
	if (Status s = fe.connect(0, 5s); !s)
		return fail("connect", s.error());
	auto cfg = fe.configSet(fourcc, w, h);
	if (!cfg)
		return fail("configure", cfg.error());
	if (auto n = fe.allocateBuffers(4); !n)
		return fail("buffers", n.error());
	if (Status s = fe.queueAll(); !s)
		return fail("queue", s.error());
	if (Status s = fe.streamStart(); !s)
		return fail("stream", s.error());

	auto layout = test_pattern::layout(cfg->fourcc, cfg->width, cfg->height);
	auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
	uint64_t nextShot = 0;
	while (std::chrono::steady_clock::now() < end) {
		auto f = fe.waitFrame(2s);
		if (!f)
			return fail("frame", f.error());
		auto data = fe.bufferData(f->index).first(f->usedSize);
		auto n = test_pattern::readCounter(cfg->fourcc, cfg->width, cfg->height, data.data(),
						   data.size());
		if (!n || test_pattern::firstMismatch(cfg->fourcc, cfg->width, cfg->height, *n,
						      data.data(), data.size()))
			r.mismatches++;
		r.frames++;
		if (r.frames >= nextShot && layout) {
			auto rgb = image::toRgb24(*layout, data);
			std::string path = (out / (name + "-" + std::to_string(f->seq) + ".png")).string();
			if (rgb && image::writePng(path, cfg->width, cfg->height, *rgb))
				r.pngs.push_back(path);
			nextShot = r.frames + 30;
		}
		if (Status s = fe.bufQueue(f->index); !s)
			return fail("requeue", s.error());
	}
	r.drops = fe.stats().drops;
	(void)fe.streamStop();
	fe.disconnect();
	return r;
}

} /* namespace */

int main(int argc, char **argv)
{
	double seconds = 3;
	std::string outDir = "demo-out";
	static const option opts[] = { { "seconds", required_argument, nullptr, 's' },
				       { "output", required_argument, nullptr, 'o' },
				       { "help", no_argument, nullptr, 'h' },
				       {} };
	int c;
	while ((c = getopt_long(argc, argv, "s:o:h", opts, nullptr)) != -1) {
		switch (c) {
		case 's': seconds = std::atof(optarg); break;
		case 'o': outDir = optarg; break;
		case 'h':
			std::printf("Usage: xmb-demo [--seconds N] [--output DIR]\n"
				    "Camera service + two guests on the loopback platform; PNG snapshots in DIR.\n\n"
				    "  -s, --seconds N   how long each guest streams (default 3)\n"
				    "  -o, --output DIR  where the PNG snapshots go (default demo-out)\n"
				    "  -h, --help        this text\n");
			return 0;
		default: return 2;
		}
	}
	std::error_code ec;
	std::filesystem::create_directories(outDir, ec);
	if (ec) {
		std::fprintf(stderr, "xmb-demo: %s: %s\n", outDir.c_str(), ec.message().c_str());
		return 1;
	}

	auto hv = xen::LoopbackXen::create();
	(void)hv->createDomain(1, "guest1");
	(void)hv->createDomain(2, "guest2");
	auto dom0 = hv->open(0), g1 = hv->open(1), g2 = hv->open(2);
	if (!dom0 || !g1 || !g2) {
		std::fprintf(stderr, "xmb-demo: loopback platform failed\n");
		return 1;
	}
	auto cfg = service::parseServiceConfig(kConfig, "demo");
	service::EventLoop loop;
	service::CameraService svc(**dom0, loop);
	if (Status s = svc.start(*cfg); !s) {
		std::fprintf(stderr, "xmb-demo: %s\n", s.error().message.c_str());
		return 1;
	}
	std::atomic<bool> stop{ false };
	std::thread serviceThread([&] {
		while (!stop)
			loop.dispatch(20);
	});

	std::printf("xmb-demo: Dom0 camera service on the loopback platform, 2 guests, %.1f s\n", seconds);
	GuestResult r1, r2;
	std::thread t1([&] { r1 = runGuest(**g1, "guest1-nv12", fourccOf("NV12"), 640, 480, seconds, outDir); });
	std::thread t2([&] { r2 = runGuest(**g2, "guest2-yuyv", fourccOf("YUYV"), 1280, 720, seconds, outDir); });

	/* Sample the service's per-guest stats while both stream. */
	std::this_thread::sleep_for(std::chrono::duration<double>(seconds * 0.8));
	std::vector<service::DeviceReport> rep;
	std::atomic<bool> got{ false };
	loop.defer([&] {
		rep = svc.report();
		got = true;
	});
	while (!got)
		std::this_thread::sleep_for(1ms);
	t1.join();
	t2.join();
	stop = true;
	serviceThread.join();
	svc.stop();

	int ret = 0;
	std::printf("\n%-44s %-8s %8s %7s %10s %22s\n", "guest device (service view)", "camera", "frames",
		    "drops", "mismatch", "bytes copied/frame");
	const GuestResult *results[] = { &r1, &r2 };
	for (size_t i = 0; i < rep.size() && i < 2; i++) {
		const auto &d = rep[i];
		const GuestResult &g = *results[i];
		double perFrame = d.stats.frames ? double(d.stats.bytesCopied) / d.stats.frames : 0;
		std::printf("%-44s %-8s %8lu %7lu %10lu %22.0f\n", d.label.c_str(), d.camera.c_str(),
			    (unsigned long)g.frames, (unsigned long)g.drops, (unsigned long)g.mismatches,
			    perFrame);
		std::printf("    tier: %s\n", d.tier.c_str());
		if (!g.error.empty()) {
			std::printf("    error: %s\n", g.error.c_str());
			ret = 1;
		}
		if (g.frames == 0 || g.mismatches)
			ret = 1;
		for (const auto &png : g.pngs)
			std::printf("    snapshot: %s\n", png.c_str());
	}
	std::printf("\nxmb-demo: %s\n", ret ? "FAILED" : "OK: every frame pixel-exact, 0 bytes copied");
	return ret;
}
