/* SPDX-License-Identifier: MIT */
/*
 * xmb-encode-guest: encode a raw file or the test pattern through Dom0's
 * vcodec service and write a playable file (docs/vcodec.md):
 *   vp8/vp9 -> IVF, h264 -> Annex-B (.h264), jpeg -> concatenated JPEGs (.mjpeg)
 *
 *   xmb-encode-guest --codec vp8 --size 1280x720 --frames 300 -o out.ivf
 *   xmb-encode-guest --loopback ...   # no Xen: an in-process Dom0 service + this guest
 */
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <getopt.h>
#include <string>
#include <thread>

#include "bridge/platform/platform.h"
#include "bridge/vcodec/codec_frontend.h"
#include "bridge/vcodec/encode_app.h"
#include "protocol/xenstore_schema.h"
#if XMB_ENCODE_GUEST_LOOPBACK
#include "bridge/platform/loopback/loopback_xen.h"
#include "bridge/vcodec/codec_service.h"
#include "bridge/vcodec/gst_encoder.h"
#endif

using namespace xmb;

namespace {

void usage(FILE *f)
{
	std::fprintf(f,
		     "Usage: xmb-encode-guest [options]\n"
		     "  -d, --device N        vcodec device (default 0)\n"
		     "  -c, --codec C         vp8 (default), vp9, h264, hevc, jpeg, fwht (what Dom0 offers),\n"
		     "                        or raw (the frames go to a\n"
		     "                        Dom0 pipeline, xmbguestsrc; no output file)\n"
		     "  -s, --size WxH        frame size (default 640x480)\n"
		     "  -r, --fps N           frame rate (default 30)\n"
		     "  -n, --frames N        frames to encode (default 60)\n"
		     "  -b, --bitrate BPS     target bitrate (default 2000000)\n"
		     "      --rc MODE         vbr, cbr, cqp (default: vbr; h264 cbr; jpeg cqp)\n"
		     "  -q, --qp Q            quantiser (cqp) or jpeg quality (default 85)\n"
		     "  -g, --gop N           key frame interval\n"
		     "  -k, --key-frame N     force frame N to be a key frame (repeatable)\n"
		     "      --format F        raw format: YU12 (default), NV12, YUYV\n"
		     "  -i, --input FILE      raw frames (tightly packed); default: the test pattern\n"
		     "  -o, --output FILE     write the encoded stream\n"
		     "      --buffers N       buffers per set (default 4)\n"
		     "      --caps            print what Dom0 offers and exit\n"
		     "  -h, --help            this text\n"
#if XMB_ENCODE_GUEST_LOOPBACK
		     "      --loopback        run Dom0's service in-process (no Xen needed)\n"
#endif
		);
}

int runGuest(xen::Platform &pf, unsigned devid, const vcodec::EncodeOptions &opt, bool capsOnly)
{
	if (capsOnly) {
		auto c = vcodec::CodecFrontend::describe(pf, devid);
		if (!c) {
			std::fprintf(stderr, "xmb-encode-guest: %s\n", c.error().message.c_str());
			return 1;
		}
		for (const auto &[k, v] : proto::formatVcodecConfig(*c))
			std::printf("%s = %s\n", k.c_str(), v.c_str());
		return 0;
	}
	vcodec::CodecFrontend fe(pf);
	if (Status s = fe.connect(devid); !s) {
		std::fprintf(stderr, "xmb-encode-guest: %s\n", s.error().message.c_str());
		return 1;
	}
	auto r = vcodec::runEncode(fe, opt);
	if (!r) {
		std::fprintf(stderr, "xmb-encode-guest: %s\n", r.error().message.c_str());
		return 1;
	}
	std::printf("%s\n", vcodec::formatResult(*r, opt).c_str());
	std::printf("request round trip %.1f us average\n", fe.stats().avgRequestUs);
	if (!opt.output.empty())
		std::printf("wrote %s\n", opt.output.c_str());
	fe.disconnect();
	return r->errors ? 1 : 0;
}

} /* namespace */

int main(int argc, char **argv)
{
	vcodec::EncodeOptions opt;
	unsigned devid = 0;
	bool loopback = false, capsOnly = false, rcGiven = false;
	static const option opts[] = {
		{ "device", required_argument, nullptr, 'd' },
		{ "codec", required_argument, nullptr, 'c' },
		{ "size", required_argument, nullptr, 's' },
		{ "fps", required_argument, nullptr, 'r' },
		{ "frames", required_argument, nullptr, 'n' },
		{ "bitrate", required_argument, nullptr, 'b' },
		{ "rc", required_argument, nullptr, 'R' },
		{ "qp", required_argument, nullptr, 'q' },
		{ "gop", required_argument, nullptr, 'g' },
		{ "key-frame", required_argument, nullptr, 'k' },
		{ "format", required_argument, nullptr, 'F' },
		{ "input", required_argument, nullptr, 'i' },
		{ "output", required_argument, nullptr, 'o' },
		{ "buffers", required_argument, nullptr, 'B' },
		{ "caps", no_argument, nullptr, 'C' },
		{ "loopback", no_argument, nullptr, 'L' },
		{ "help", no_argument, nullptr, 'h' },
		{},
	};
	int c;
	auto num = [](const char *key, const char *v, uint64_t max) -> uint64_t {
		auto r = proto::parseUnsigned(key, v, max);
		if (!r) {
			std::fprintf(stderr, "xmb-encode-guest: %s\n", r.error().message.c_str());
			std::exit(2);
		}
		return *r;
	};
	while ((c = getopt_long(argc, argv, "d:c:s:r:n:b:q:g:k:i:o:h", opts, nullptr)) != -1) {
		switch (c) {
		case 'd': devid = unsigned(num("--device", optarg, 255)); break;
		case 'c': opt.codec = optarg; break;
		case 's': {
			auto r = proto::parseResolution("--size", optarg);
			if (!r) {
				std::fprintf(stderr, "xmb-encode-guest: %s\n", r.error().message.c_str());
				return 2;
			}
			opt.width = r->first;
			opt.height = r->second;
			break;
		}
		case 'r': opt.rateNum = uint32_t(num("--fps", optarg, 1000)); break;
		case 'n': opt.frames = uint32_t(num("--frames", optarg, 10000000)); break;
		case 'b': opt.bitrate = uint32_t(num("--bitrate", optarg, 1000000000)); break;
		case 'R': opt.rc = optarg; rcGiven = true; break;
		case 'q': opt.qp = uint8_t(num("--qp", optarg, 100)); break;
		case 'g': opt.gop = uint32_t(num("--gop", optarg, 100000)); break;
		case 'k': opt.keyFrames.push_back(uint32_t(num("--key-frame", optarg, UINT32_MAX))); break;
		case 'F': {
			auto f = proto::parseFourccLabel("--format", optarg);
			if (!f) {
				std::fprintf(stderr, "xmb-encode-guest: %s\n", f.error().message.c_str());
				return 2;
			}
			opt.rawFourcc = *f;
			break;
		}
		case 'i': opt.input = optarg; break;
		case 'o': opt.output = optarg; break;
		case 'B': opt.buffers = uint8_t(num("--buffers", optarg, 32)); break;
		case 'C': capsOnly = true; break;
		case 'L': loopback = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!rcGiven)
		opt.rc = opt.codec == "h264" ? "cbr" : opt.codec == "jpeg" ? "cqp" : "vbr";

	if (!loopback) {
		auto pf = xen::openRealPlatform();
		if (!pf) {
			std::fprintf(stderr, "xmb-encode-guest: %s\n", pf.error().message.c_str());
			return 1;
		}
		return runGuest(**pf, devid, opt, capsOnly);
	}
#if XMB_ENCODE_GUEST_LOOPBACK
	auto hv = xen::LoopbackXen::create();
	const xen::DomId guestId = 1;
	(void)hv->createDomain(guestId, "guest1");
	auto dom0 = hv->open(0);
	auto guest = hv->open(guestId);
	if (!dom0 || !guest) {
		std::fprintf(stderr, "xmb-encode-guest: loopback platform failed\n");
		return 1;
	}
	service::EventLoop loop;
	vcodec::CodecService svc(**dom0, loop, vcodec::probeGstCodecs());
	vcodec::CodecGuest g;
	g.name = "guest1";
	g.domid = guestId;
	g.device = devid;
	if (Status s = svc.start({ { g } }); !s) {
		std::fprintf(stderr, "xmb-encode-guest: %s\n", s.error().message.c_str());
		return 1;
	}
	std::atomic<bool> stop{ false };
	std::thread t([&] {
		while (!stop)
			loop.dispatch(20);
	});
	int rc = runGuest(**guest, devid, opt, capsOnly);
	stop = true;
	t.join();
	svc.stop();
	return rc;
#else
	std::fprintf(stderr, "xmb-encode-guest: --loopback needs the Dom0 service (GStreamer) in this build\n");
	return 2;
#endif
}
