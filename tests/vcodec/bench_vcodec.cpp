/* SPDX-License-Identifier: MIT */
/*
 * bench_vcodec: guest -> Dom0 encoding at 1080p on the loopback hypervisor.
 * Per frame: Dom0 bridge time (request handling, wrapping, bitstream copy,
 * events) vs time inside the encoder element; raw bytes copied (must be 0),
 * compressed bytes copied; throughput with 1 and 4 guests encoding at once.
 *
 *   bench_vcodec [codec=vp8] [frames=60] [WxH=1920x1080]
 * Prints a markdown table.  Not a test.
 */
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "bridge/platform/loopback/loopback_xen.h"
#include "bridge/vcodec/codec_frontend.h"
#include "bridge/vcodec/codec_service.h"
#include "bridge/vcodec/encode_app.h"
#include "bridge/vcodec/gst_encoder.h"

using namespace xmb;
using namespace xmb::vcodec;

struct Row {
	unsigned guests = 0;
	double fpsPerGuest = 0, fpsTotal = 0;
	double bridgeUs = 0, encodeUs = 0;
	double rawCopied = 0, compCopied = 0;
};

static Row run(unsigned n, const std::string &codec, uint32_t frames, uint32_t w, uint32_t h)
{
	auto hv = xen::LoopbackXen::create();
	CodecServiceConfig cfg;
	for (unsigned i = 1; i <= n; i++) {
		(void)hv->createDomain(xen::DomId(i), "g" + std::to_string(i));
		CodecGuest g;
		g.name = "g" + std::to_string(i);
		g.domid = xen::DomId(i);
		g.maxPages = 65536;
		cfg.guests.push_back(g);
	}
	auto dom0r = hv->open(0);
	auto dom0 = std::move(dom0r.value());
	service::EventLoop loop;
	CodecService svc(*dom0, loop, probeGstCodecs());
	if (Status s = svc.start(cfg); !s) {
		std::fprintf(stderr, "%s\n", s.error().message.c_str());
		std::exit(1);
	}
	std::atomic<bool> stop{ false };
	std::thread t([&] {
		while (!stop)
			loop.dispatch(20);
	});
	std::vector<std::unique_ptr<xen::Platform>> pfs;
	std::vector<std::unique_ptr<CodecFrontend>> fes;
	for (unsigned i = 1; i <= n; i++) {
		auto p = hv->open(xen::DomId(i));
		pfs.push_back(std::move(p.value()));
		fes.push_back(std::make_unique<CodecFrontend>(*pfs.back()));
		if (Status s = fes.back()->connect(0); !s) {
			std::fprintf(stderr, "%s\n", s.error().message.c_str());
			std::exit(1);
		}
	}
	std::vector<EncodeResult> results(n);
	std::vector<std::thread> threads;
	auto t0 = std::chrono::steady_clock::now();
	for (unsigned i = 0; i < n; i++)
		threads.emplace_back([&, i] {
			EncodeOptions o;
			o.codec = codec;
			o.rc = codec == "h264" ? "cbr" : codec == "jpeg" ? "cqp" : "vbr";
			o.width = w;
			o.height = h;
			o.frames = frames;
			o.bitrate = 8000000;
			auto r = runEncode(*fes[i], o);
			if (!r) {
				std::fprintf(stderr, "guest %u: %s\n", i + 1, r.error().message.c_str());
				std::exit(1);
			}
			results[i] = *r;
		});
	for (auto &th : threads)
		th.join();
	double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
	std::vector<CodecDeviceReport> rep;
	std::atomic<bool> done{ false };
	loop.defer([&] {
		rep = svc.report();
		done = true;
	});
	while (!done)
		std::this_thread::sleep_for(std::chrono::milliseconds(2));
	Row row;
	row.guests = n;
	uint64_t fr = 0, bridge = 0, enc = 0, raw = 0, comp = 0, bs = 0;
	for (const auto &r : rep) {
		fr += r.stats.framesIn;
		bs += r.stats.bitstreams;
		bridge += r.stats.bridgeNs;
		enc += r.stats.encodeNs;
		raw += r.stats.rawBytesCopied;
		comp += r.stats.compressedBytesCopied;
	}
	double fpsSum = 0;
	for (const auto &r : results)
		fpsSum += r.fps;
	row.fpsPerGuest = fpsSum / n;
	row.fpsTotal = bs / wall;
	row.bridgeUs = fr ? bridge / 1e3 / fr : 0;
	row.encodeUs = bs ? enc / 1e3 / bs : 0;
	row.rawCopied = fr ? double(raw) / fr : 0;
	row.compCopied = bs ? double(comp) / bs : 0;
	for (auto &fe : fes)
		fe->disconnect();
	stop = true;
	t.join();
	svc.stop();
	return row;
}

int main(int argc, char **argv)
{
	std::string codec = argc > 1 ? argv[1] : "vp8";
	uint32_t frames = argc > 2 ? uint32_t(std::atoi(argv[2])) : 60;
	uint32_t w = 1920, h = 1080;
	if (argc > 3)
		std::sscanf(argv[3], "%ux%u", &w, &h);
	setenv("XMB_LOG", "warn", 0);
	std::printf("codec %s (GStreamer software encoder), %ux%u I420, %u frames per guest, loopback, "
		    "%u CPUs\n\n",
		    codec.c_str(), w, h, frames, std::thread::hardware_concurrency());
	std::printf("| guests | fps per guest | fps total | Dom0 bridge us/frame | encoder us/frame | "
		    "raw bytes copied/frame | compressed bytes copied/frame |\n");
	std::printf("|---|---|---|---|---|---|---|\n");
	for (unsigned n : { 1u, 4u }) {
		Row r = run(n, codec, frames, w, h);
		std::printf("| %u | %.1f | %.1f | %.0f | %.0f | %.0f | %.0f |\n", r.guests, r.fpsPerGuest,
			    r.fpsTotal, r.bridgeUs, r.encodeUs, r.rawCopied, r.compCopied);
		std::fflush(stdout);
	}
	return 0;
}
