/* SPDX-License-Identifier: MIT */
/*
 * xmb-codec-service: the Dom0 vcodec backend daemon (docs/vcodec.md).
 *
 *   xmb-codec-service --guest domid=3,device=0 [--guest domain=vm2,codecs=vp8:jpeg]
 *
 * Encoders: the GStreamer software encoders installed (vp8enc, vp9enc,
 * openh264enc, jpegenc).  SIGTERM/SIGINT stop it (sessions closed, pages
 * unmapped, device nodes removed); SIGUSR1 prints per-guest statistics.
 */
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <getopt.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "bridge/base/log.h"
#include "bridge/base/unique_fd.h"
#include "bridge/platform/platform.h"
#include "bridge/vcodec/codec_service.h"
#include "bridge/vcodec/gst_encoder.h"

using namespace xmb;

namespace {

void usage(FILE *f)
{
	std::fprintf(f,
		     "Usage: xmb-codec-service --guest SPEC [--guest SPEC...] [-v]\n"
		     "Serve Dom0 video encoders to Xen guests over the vcodec protocol.\n\n"
		     "  -g, --guest SPEC   domid=N|domain=NAME[,device=0][,max-buffers=8][,max-pages=16384]\n"
		     "                     [,codecs=vp8:vp9:h264:jpeg][,name=LABEL]\n"
		     "      --caps         print the encoders found and exit\n"
		     "  -v, --verbose      debug logging\n");
}

void printReport(const vcodec::CodecService &svc)
{
	for (const auto &r : svc.report())
		std::fprintf(stderr,
			     "%s: %s frames-in %lu bitstreams %lu raw-bytes-copied %lu compressed-bytes-copied %lu "
			     "mapped-pages %lu %s\n",
			     r.label.c_str(), r.connected ? "connected" : "waiting",
			     (unsigned long)r.stats.framesIn, (unsigned long)r.stats.bitstreams,
			     (unsigned long)r.stats.rawBytesCopied, (unsigned long)r.stats.compressedBytesCopied,
			     (unsigned long)r.stats.mappedPages, r.encoder.c_str());
}

} /* namespace */

int main(int argc, char **argv)
{
	vcodec::CodecServiceConfig config;
	bool capsOnly = false;
	static const option opts[] = {
		{ "guest", required_argument, nullptr, 'g' },
		{ "caps", no_argument, nullptr, 'C' },
		{ "verbose", no_argument, nullptr, 'v' },
		{ "help", no_argument, nullptr, 'h' },
		{},
	};
	int c;
	while ((c = getopt_long(argc, argv, "g:vh", opts, nullptr)) != -1) {
		switch (c) {
		case 'g': {
			auto g = vcodec::parseGuestSpec(optarg);
			if (!g) {
				std::fprintf(stderr, "xmb-codec-service: %s\n", g.error().message.c_str());
				return 2;
			}
			config.guests.push_back(*g);
			break;
		}
		case 'C': capsOnly = true; break;
		case 'v': setenv("XMB_LOG", "debug", 1); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	auto codecs = vcodec::probeGstCodecs();
	if (capsOnly) {
		proto::VcodecConfig vc;
		vc.codecs = codecs;
		for (const auto &[k, v] : proto::formatVcodecConfig(vc))
			if (k.rfind("codec", 0) == 0)
				std::printf("%s = %s\n", k.c_str(), v.c_str());
		return codecs.empty() ? 1 : 0;
	}
	if (config.guests.empty()) {
		usage(stderr);
		return 2;
	}
	auto platform = xen::openRealPlatform();
	if (!platform) {
		std::fprintf(stderr, "xmb-codec-service: %s\n", platform.error().message.c_str());
		return 1;
	}
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGUSR1);
	sigprocmask(SIG_BLOCK, &mask, nullptr);
	UniqueFD sigfd(signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));
	service::EventLoop loop;
	vcodec::CodecService svc(**platform, loop, codecs);
	(void)loop.addFd(sigfd.get(), [&](uint32_t) {
		signalfd_siginfo si;
		while (read(sigfd.get(), &si, sizeof(si)) == sizeof(si)) {
			if (si.ssi_signo == SIGUSR1)
				printReport(svc);
			else
				loop.exit(0);
		}
	});
	Status s = svc.start(config);
	if (!s) {
		std::fprintf(stderr, "xmb-codec-service: %s\n", s.error().message.c_str());
		return 1;
	}
	int rc = loop.run();
	printReport(svc);
	svc.stop();
	return rc;
}
