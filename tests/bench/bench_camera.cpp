/* SPDX-License-Identifier: MIT */
/*
 * bench_camera: what the bridge costs per frame, zero-copy vs forced copy.
 *
 * Loopback platform; N guests, each with its own camera (a DmaCamera: frames
 * complete without CPU writes, as with DMA hardware), NV12 at 640x360,
 * 1920x1080 and 3840x2160.  Measured in one run: CPU time of the service
 * thread per delivered frame, and bytes copied per frame.  Not a test:
 * nothing here asserts a speed.
 *
 *   bench_camera [--seconds S] [--fps N] [--markdown FILE] [--svg FILE]
 *   bench_camera --one-camera [--seconds S] [--fps N] [--markdown FILE]
 *
 * --one-camera: one camera, 1/2/4 be-alloc guests granted its own buffers
 * (gntdev dma-buf import emulated), 1080p NV12: shared device buffers
 * (share-device-buffers = yes) against copies for every guest once two
 * stream (sharing off), in one run.
 */
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <getopt.h>
#include <thread>
#include <cmath>
#include <time.h>

#include "bridge/frontend/camera_frontend.h"
#include "bridge/platform/loopback/loopback_xen.h"
#include "bridge/service/camera_service.h"
#include "dma_camera.h"

using namespace xmb;
using namespace std::chrono_literals;

namespace {

constexpr uint32_t kNV12 = 0x3231564e;

struct Row {
	bool copy;
	uint32_t w, h;
	unsigned guests;
	uint64_t frames;
	double cpuUsPerFrame;
	double bytesCopiedPerFrame;
};

double threadCpuSeconds()
{
	timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* oneCamera: all guests on one camera, be-alloc, device buffers granted; \a copy = not shared. */
Row runOne(bool copy, uint32_t w, uint32_t h, unsigned guests, double seconds, unsigned fps,
	   bool oneCamera = false)
{
	auto hv = xen::LoopbackXen::create();
	hv->emulateGntdevDmabuf(oneCamera);
	std::string conf;
	std::vector<std::unique_ptr<xen::Platform>> gp;
	if (oneCamera)
		conf += std::string("[camera c1]\nsource = dma\nshare-device-buffers = ") +
			(copy ? "no" : "yes") + "\n";
	for (unsigned i = 1; i <= guests; i++) {
		(void)hv->createDomain(i);
		gp.push_back(std::move(hv->open(i).value()));
		if (!oneCamera) {
			conf += "[camera c" + std::to_string(i) + "]\nsource = dma\n";
			if (copy)
				conf += "copy = force\n";
		}
		conf += "[guest g" + std::to_string(i) + "]\ndomain = " + std::to_string(i) +
			"\ncamera = c" + std::to_string(oneCamera ? 1 : i) + "\nmax-buffers = " +
			(oneCamera ? "4\nbe-alloc = yes\n" : "4\n");
	}
	auto dom0 = std::move(hv->open(0).value());
	auto cfg = service::parseServiceConfig(conf, "bench");
	service::EventLoop loop;
	service::CameraService svc(*dom0, loop);
	auto factory = [&](const service::CameraEntry &) -> Result<std::unique_ptr<CameraSource>> {
		return std::unique_ptr<CameraSource>(std::make_unique<bench::DmaCamera>(kNV12, w, h, fps));
	};
	if (!svc.start(*cfg, factory)) {
		std::fprintf(stderr, "bench: service did not start\n");
		std::exit(1);
	}

	std::atomic<bool> stop{ false }, guestsStop{ false }, measuring{ false };
	double cpuStart = 0, cpuEnd = 0;
	std::atomic<bool> cpuTaken{ false };
	std::thread service([&] {
		bool was = false;
		while (!stop) {
			loop.dispatch(10);
			if (measuring && !was) {
				cpuStart = threadCpuSeconds();
				was = true;
			}
		}
		cpuEnd = threadCpuSeconds();
		cpuTaken = true;
	});

	std::vector<std::thread> gt;
	std::atomic<unsigned> ready{ 0 };
	std::vector<uint64_t> counted(guests, 0);
	for (unsigned i = 0; i < guests; i++) {
		gt.emplace_back([&, i] {
			frontend::CameraFrontend fe(*gp[i]);
			if (!fe.connect(0, 10s) || !fe.configSet(kNV12, w, h) || !fe.allocateBuffers(4) ||
			    !fe.queueAll() || !fe.streamStart()) {
				std::fprintf(stderr, "bench: guest %u failed to start\n", i + 1);
				ready++;
				return;
			}
			ready++;
			while (!guestsStop) {
				auto f = fe.waitFrame(200ms);
				if (!f)
					continue;
				if (measuring)
					counted[i]++;
				(void)fe.bufQueue(f->index);
			}
			(void)fe.streamStop();
			fe.disconnect(1s);
		});
	}
	while (ready < guests)
		std::this_thread::sleep_for(5ms);
	std::this_thread::sleep_for(300ms); /* warm up */

	std::vector<service::DeviceReport> before, after;
	auto snapshot = [&](std::vector<service::DeviceReport> &out) {
		std::atomic<bool> done{ false };
		loop.defer([&] {
			out = svc.report();
			done = true;
		});
		while (!done)
			std::this_thread::sleep_for(1ms);
	};
	snapshot(before);
	measuring = true;
	std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
	snapshot(after);
	measuring = false;
	guestsStop = true; /* guests stop and disconnect while the service still answers */
	for (auto &t : gt)
		t.join();
	stop = true;
	service.join();
	svc.stop();

	uint64_t frames = 0, copied = 0;
	for (size_t i = 0; i < after.size() && i < before.size(); i++) {
		frames += after[i].stats.frames - before[i].stats.frames;
		copied += after[i].stats.bytesCopied - before[i].stats.bytesCopied;
	}
	Row r{ copy, w, h, guests, frames, 0, 0 };
	if (frames) {
		r.cpuUsPerFrame = (cpuEnd - cpuStart) * 1e6 / frames;
		r.bytesCopiedPerFrame = double(copied) / frames;
	}
	return r;
}

void writeSvg(const std::string &path, const std::vector<Row> &rows)
{
	std::ofstream f(path);
	const int W = 760, H = 360, left = 60, bottom = 300;
	double maxv = 1;
	for (const auto &r : rows)
		maxv = std::max(maxv, r.cpuUsPerFrame);
	f << "<svg xmlns='http://www.w3.org/2000/svg' width='" << W << "' height='" << H
	  << "' font-family='sans-serif' font-size='11'>\n<rect width='100%' height='100%' fill='white'/>\n"
	  << "<text x='" << left << "' y='16' font-size='13'>Bridge CPU per frame (µs, log scale), "
	     "NV12; bars: 1/2/4/8 guests</text>\n";
	auto y = [&](double v) { return bottom - (std::log10(std::max(v, 0.1)) + 1) / (std::log10(maxv) + 1.2) * (bottom - 30); };
	int x = left;
	for (bool copy : { false, true }) {
		for (uint32_t w : { 640u, 1920u, 3840u }) {
			f << "<text x='" << x << "' y='" << bottom + 16 << "'>" << (copy ? "copy " : "zero ") << w
			  << "</text>\n";
			for (const auto &r : rows) {
				if (r.copy != copy || r.w != w)
					continue;
				double top = y(r.cpuUsPerFrame);
				f << "<rect x='" << x << "' y='" << top << "' width='12' height='" << bottom - top
				  << "' fill='" << (copy ? "#c0504d" : "#4f81bd") << "'/>\n";
				x += 14;
			}
			x += 50;
		}
	}
	for (double v : { 1.0, 10.0, 100.0, 1000.0, 10000.0 }) {
		if (v > maxv * 10)
			break;
		f << "<line x1='" << left - 5 << "' x2='" << W - 10 << "' y1='" << y(v) << "' y2='" << y(v)
		  << "' stroke='#ddd'/><text x='5' y='" << y(v) + 4 << "'>" << v << "</text>\n";
	}
	f << "</svg>\n";
}

} /* namespace */

int main(int argc, char **argv)
{
	double seconds = 2;
	unsigned fps = 30;
	std::string md, svg;
	bool oneCamera = false;
	static const option opts[] = { { "seconds", required_argument, nullptr, 's' },
				       { "fps", required_argument, nullptr, 'f' },
				       { "markdown", required_argument, nullptr, 'm' },
				       { "svg", required_argument, nullptr, 'g' },
				       { "one-camera", no_argument, nullptr, 'o' },
				       {} };
	int c;
	while ((c = getopt_long(argc, argv, "s:f:m:g:o", opts, nullptr)) != -1) {
		switch (c) {
		case 's': seconds = std::atof(optarg); break;
		case 'f': fps = std::atoi(optarg); break;
		case 'm': md = optarg; break;
		case 'g': svg = optarg; break;
		case 'o': oneCamera = true; break;
		default: return 2;
		}
	}
	setenv("XMB_LOG", "warn", 0);
	if (oneCamera) {
		std::string out = "| one camera, 1920x1080 NV12 | guests | frames delivered | bridge CPU µs/frame "
				  "| bytes copied/frame |\n|---|---|---|---|---|\n";
		char line[256];
		double cost[2][5] = {};
		for (bool copy : { false, true })
			for (unsigned g : { 1u, 2u, 4u }) {
				Row r = runOne(copy, 1920, 1080, g, seconds, fps, true);
				cost[copy][g] = r.cpuUsPerFrame;
				std::snprintf(line, sizeof(line), "| %s | %u | %lu | %.1f | %.0f |\n",
					      copy ? "not shared: copies from Dom0 memory"
						   : "device buffers shared (dma-buf)",
					      g, (unsigned long)r.frames, r.cpuUsPerFrame, r.bytesCopiedPerFrame);
				std::fputs(line, stderr);
				out += line;
			}
		std::snprintf(line, sizeof(line),
			      "\nRatio (same run): copies / shared per delivered frame at 2 guests = %.1f, "
			      "at 4 guests = %.1f\n",
			      cost[0][2] ? cost[1][2] / cost[0][2] : 0, cost[0][4] ? cost[1][4] / cost[0][4] : 0);
		out += line;
		std::fputs(out.c_str(), stdout);
		if (!md.empty())
			std::ofstream(md) << out;
		return 0;
	}

	std::vector<Row> rows;
	for (bool copy : { false, true })
		for (auto [w, h] : { std::pair{ 640u, 360u }, { 1920u, 1080u }, { 3840u, 2160u } })
			for (unsigned g : { 1u, 2u, 4u, 8u }) {
				rows.push_back(runOne(copy, w, h, g, seconds, fps));
				const Row &r = rows.back();
				std::fprintf(stderr, "%-9s %4ux%-4u %u guests: %6lu frames %9.1f us/frame %12.0f B copied/frame\n",
					     copy ? "copy" : "zero-copy", w, h, g, (unsigned long)r.frames,
					     r.cpuUsPerFrame, r.bytesCopiedPerFrame);
			}

	auto get = [&](bool copy, uint32_t w, unsigned g) {
		for (const auto &r : rows)
			if (r.copy == copy && r.w == w && r.guests == g)
				return r.cpuUsPerFrame;
		return 0.0;
	};
	std::string out = "| mode | size | guests | frames | bridge CPU µs/frame | bytes copied/frame |\n"
			  "|---|---|---|---|---|---|\n";
	char line[256];
	for (const auto &r : rows) {
		std::snprintf(line, sizeof(line), "| %s | %ux%u | %u | %lu | %.1f | %.0f |\n",
			      r.copy ? "copy" : "zero-copy", r.w, r.h, r.guests, (unsigned long)r.frames,
			      r.cpuUsPerFrame, r.bytesCopiedPerFrame);
		out += line;
	}
	double z4k = get(false, 3840, 1), z360 = get(false, 640, 1), c4k = get(true, 3840, 1);
	std::snprintf(line, sizeof(line),
		      "\nRatios (1 guest, same run): zero-copy 4K/360p per-frame cost = %.2f; "
		      "copy/zero-copy at 4K = %.1f\n",
		      z360 ? z4k / z360 : 0, z4k ? c4k / z4k : 0);
	out += line;
	std::fputs(out.c_str(), stdout);
	if (!md.empty())
		std::ofstream(md) << out;
	if (!svg.empty())
		writeSvg(svg, rows);
	return 0;
}
