/* SPDX-License-Identifier: MIT */
/*
 * xmb-codec-service: the Dom0 vcodec backend daemon (docs/vcodec.md).
 *
 *   xmb-codec-service --guest domid=3,device=0 [--guest domain=vm2,codecs=vp8:jpeg]
 *
 * Encoders (--encoder): a V4L2 stateful M2M encoder found by capability
 * (guest frames queued as USERPTR), else the GStreamer software encoders
 * installed (vp8enc, vp9enc, openh264enc, jpegenc).  SIGTERM/SIGINT stop it (sessions closed, pages
 * unmapped, device nodes removed); SIGUSR1 prints per-guest statistics.
 */
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <getopt.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "protocol/base/log.h"
#include "protocol/base/unique_fd.h"
#include "xmb_config.h"
#include "bridge/cli/systemd_notify.h"
#include "bridge/service/status_socket.h"
#include "bridge/platform/platform.h"
#include "bridge/vcodec/codec_service.h"
#if XMB_VCODEC_GST
#include "bridge/vcodec/gst_encoder.h"
#endif
#include "bridge/vcodec/v4l2_encoder.h"

using namespace xmb;

namespace {

#define XMB_CODEC_STATUS "/run/xen-media-bridge/codec.sock"

void usage(FILE *f)
{
	std::fprintf(f,
		     "Usage: xmb-codec-service --guest SPEC [--guest SPEC...] [-v]\n"
		     "Serve Dom0 video encoders to Xen guests over the vcodec protocol.\n\n"
		     "  -g, --guest SPEC   domid=N|domain=NAME[,device=0][,max-buffers=8][,max-pages=16384]\n"
		     "                     [,codecs=vp8:vp9:h264:jpeg][,name=LABEL][,be-alloc=yes]\n"
		     "                     be-alloc: Dom0 allocates the buffers and grants them (the\n"
		     "                     encoder reads its own pages: zero copy on any Dom0)\n"
		     "  -e, --encoder KIND auto (default: a V4L2 M2M encoder if the host has one, else\n"
		     "                     GStreamer), gst, v4l2 (the first found) or v4l2:/dev/videoN\n"
		     "      --foreign-userptr auto|yes|no\n"
		     "                     V4L2 encoder: queue guest pages to the driver as USERPTR\n"
		     "                     (auto = no: the guest's frames are mapped read-only, which\n"
		     "                     vb2 refuses to pin; each frame is copied, counted)\n"
		     "      --share-encoder-buffers auto|no\n"
		     "                     V4L2 encoder, be-alloc guests: grant the encoder's own raw\n"
		     "                     buffers (auto: where the kernel grants dma-bufs), else\n"
		     "                     Dom0 pages the encoder reads as USERPTR\n"
		     "      --import-guest-frames auto|no\n"
		     "                     V4L2 encoder, guests that allocate their buffers: where Dom0\n"
		     "                     can make dma-bufs of a guest's pages (Arm), the device reads\n"
		     "                     its raw frames as dma-bufs (the guest grants INPUT writable;\n"
		     "                     a driver that cannot read them gets mapped pages, logged)\n"
		     "      --caps         print the encoders found and exit\n"
		     "      --status       ask the running daemon what it serves: a table per guest device\n"
		     "      --json         the same as JSON (for monitoring)\n"
		     "      --status-socket PATH\n"
		     "                     where the daemon answers (default " XMB_CODEC_STATUS ")\n"
		     "  -v, --verbose      debug logging\n"
		     "  -h, --help         this text\n"
		     "      --version      print the version\n\n"
		     "Signals: SIGTERM/SIGINT stop, SIGUSR1 prints statistics.\n");
}

/* One line per guest device: the SIGUSR1 log lines and the --status table. */
std::string reportText(const vcodec::CodecService &svc)
{
	std::string out;
	for (const auto &r : svc.report()) {
		char line[512];
		std::snprintf(line, sizeof(line),
			      "%s: %s frames-in %lu bitstreams %lu raw-bytes-copied %lu compressed-bytes-copied %lu "
			      "mapped-pages %lu dma-bufs %lu %s",
			      r.label.c_str(), r.connected ? "connected" : "waiting",
			      (unsigned long)r.stats.framesIn, (unsigned long)r.stats.bitstreams,
			      (unsigned long)r.stats.rawBytesCopied, (unsigned long)r.stats.compressedBytesCopied,
			      (unsigned long)r.stats.mappedPages, (unsigned long)r.stats.dmaBufs, r.encoder.c_str());
		out += line;
		out += service::streamStatusText(r.format, r.stats.fpsMilli, r.stats.latencyP50Us,
						 r.stats.latencyP99Us) +
		       "\n";
	}
	return out;
}

void printReport(const vcodec::CodecService &svc)
{
	std::fputs(reportText(svc).c_str(), stderr);
}

std::string reportJson(const vcodec::CodecService &svc)
{
	std::string out = "{\"service\": \"xmb-codec-service\", \"devices\": [";
	bool first = true;
	for (const auto &r : svc.report()) {
		out += first ? "\n  " : ",\n  ";
		first = false;
		out += "{\"device\": " + service::jsonString(r.label) +
		       ", \"connected\": " + (r.connected ? "true" : "false") +
		       ", \"encoder\": " + service::jsonString(r.encoder) +
		       ", " + service::streamStatusJson(r.format, r.stats.fpsMilli, r.stats.latencyP50Us,
							 r.stats.latencyP99Us) +
		       ", \"connects\": " + std::to_string(r.connects) +
		       ", \"frames_in\": " + std::to_string(r.stats.framesIn) +
		       ", \"bitstreams\": " + std::to_string(r.stats.bitstreams) +
		       ", \"raw_bytes_copied\": " + std::to_string(r.stats.rawBytesCopied) +
		       ", \"compressed_bytes_copied\": " + std::to_string(r.stats.compressedBytesCopied) +
		       ", \"mapped_pages\": " + std::to_string(r.stats.mappedPages) +
		       ", \"dma_bufs\": " + std::to_string(r.stats.dmaBufs) +
		       ", \"raw_dma_buf_frames\": " + std::to_string(r.stats.rawDmaBufFrames) + "}";
	}
	return out + "\n]}\n";
}

/* An "auto|no" option: \a on is whether it is auto; false (said) for anything else. */
bool autoOrNo(const char *option, const char *value, bool &on)
{
	if (std::strcmp(value, "auto") != 0 && std::strcmp(value, "no") != 0) {
		std::fprintf(stderr, "xmb-codec-service: %s %s: use auto or no\n", option, value);
		return false;
	}
	on = std::strcmp(value, "auto") == 0;
	return true;
}

} /* namespace */

int main(int argc, char **argv)
{
	vcodec::CodecServiceConfig config;
	bool capsOnly = false, status = false, json = false;
	std::string statusPath = XMB_CODEC_STATUS;
	std::string encoder = "auto";
	std::string foreignUserPtr = "auto";
	bool shareEncoderBuffers = true;
	bool importGuestFrames = true;
	static const option opts[] = {
		{ "guest", required_argument, nullptr, 'g' },
		{ "caps", no_argument, nullptr, 'C' },
		{ "status", no_argument, nullptr, 'S' },
		{ "json", no_argument, nullptr, 'J' },
		{ "status-socket", required_argument, nullptr, 'P' },
		{ "encoder", required_argument, nullptr, 'e' },
		{ "foreign-userptr", required_argument, nullptr, 'F' },
		{ "share-encoder-buffers", required_argument, nullptr, 'B' },
		{ "import-guest-frames", required_argument, nullptr, 'I' },
		{ "verbose", no_argument, nullptr, 'v' },
		{ "help", no_argument, nullptr, 'h' },
		{ "version", no_argument, nullptr, 'V' },
		{},
	};
	int c;
	while ((c = getopt_long(argc, argv, "g:e:vh", opts, nullptr)) != -1) {
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
		case 'S': status = true; break;
		case 'J': status = json = true; break;
		case 'P': statusPath = optarg; break;
		case 'e': encoder = optarg; break;
		case 'F':
			foreignUserPtr = optarg;
			if (foreignUserPtr != "auto" && foreignUserPtr != "yes" && foreignUserPtr != "no") {
				std::fprintf(stderr, "xmb-codec-service: --foreign-userptr %s: use auto, yes or no\n",
					     optarg);
				return 2;
			}
			break;
		case 'B':
			if (!autoOrNo("--share-encoder-buffers", optarg, shareEncoderBuffers))
				return 2;
			break;
		case 'I':
			if (!autoOrNo("--import-guest-frames", optarg, importGuestFrames))
				return 2;
			break;
		case 'v': setenv("XMB_LOG", "debug", 1); break;
		case 'h': usage(stdout); return 0;
		case 'V': std::printf("xmb-codec-service %s\n", XMB_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (status)
		return service::printStatus("xmb-codec-service", statusPath, json);
	/* Which encoder: a V4L2 device path, or "" for the GStreamer ones. */
	std::string v4l2Path;
	if (encoder == "auto" || encoder == "v4l2") {
		v4l2Path = vcodec::findV4L2Encoder();
		if (v4l2Path.empty() && encoder == "v4l2") {
			std::fprintf(stderr, "xmb-codec-service: --encoder v4l2: no V4L2 M2M encoder under /dev\n");
			return 1;
		}
	} else if (encoder.rfind("v4l2:", 0) == 0) {
		v4l2Path = encoder.substr(5);
	} else if (encoder != "gst") {
		std::fprintf(stderr, "xmb-codec-service: --encoder %s: use auto, gst, v4l2 or v4l2:PATH\n",
			     encoder.c_str());
		return 2;
	}
	std::vector<proto::CodecCaps> codecs;
	if (!v4l2Path.empty()) {
		codecs = vcodec::probeV4L2Codecs(v4l2Path);
		if (codecs.empty()) {
			std::fprintf(stderr,
				     "xmb-codec-service: %s: not a V4L2 M2M encoder of a vcodec codec "
				     "(VP8, VP9, H264, JPEG) from YU12/NV12/YUYV\n",
				     v4l2Path.c_str());
			return 1;
		}
		std::fprintf(stderr, "xmb-codec-service: encoder: V4L2 %s\n", v4l2Path.c_str());
	} else {
#if XMB_VCODEC_GST
		codecs = vcodec::probeGstCodecs();
		std::fprintf(stderr, "xmb-codec-service: encoder: GStreamer software encoders\n");
#else
		std::fprintf(stderr, "xmb-codec-service: no V4L2 M2M encoder under /dev, and this build has "
				     "no GStreamer encoders (built without gstreamer-app-1.0)\n");
		return 1;
#endif
	}
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
	/*
	 * auto: no.  The guest's INPUT pages are mapped read-only, and vb2 pins
	 * OUTPUT user pages writable: vicodec's QBUF fails with EFAULT on an
	 * arm64 Dom0 (Linux 6.1, Xen 4.17), where foreign frames are otherwise
	 * fine for drivers; on an x86 PV Dom0 a vmalloc driver must not vmap them
	 * at all.  "yes" for an encoder known to take read-only user memory.
	 */
	bool userptr = foreignUserPtr == "yes";
	if (foreignUserPtr == "auto")
		(void)(*platform)->grants->probeForeignMaps(); /* logged: what the platform allows */
#if XMB_VCODEC_GST
	vcodec::CodecService svc(**platform, loop, codecs,
				 v4l2Path.empty() ? vcodec::gstEncoderFactory()
						  : vcodec::v4l2EncoderFactory(loop, v4l2Path, userptr,
										DeviceIO::system(), shareEncoderBuffers));
#else
	vcodec::CodecService svc(**platform, loop, codecs,
				 vcodec::v4l2EncoderFactory(loop, v4l2Path, userptr, DeviceIO::system(), shareEncoderBuffers));
#endif
	(void)loop.addFd(sigfd.get(), [&](uint32_t) {
		signalfd_siginfo si;
		while (read(sigfd.get(), &si, sizeof(si)) == sizeof(si)) {
			if (si.ssi_signo == SIGUSR1)
				printReport(svc);
			else
				loop.exit(0);
		}
	});
	/* GStreamer encoders read frames through a CPU mapping, which gntdev's exports lack. */
	config.importGuestFrames = importGuestFrames && !v4l2Path.empty();
	Status s = svc.start(config);
	if (!s) {
		std::fprintf(stderr, "xmb-codec-service: %s\n", s.error().message.c_str());
		return 1;
	}
	service::StatusSocket statusSocket(loop, [&svc](bool asJson) {
		return asJson ? reportJson(svc) : reportText(svc);
	});
	if (Status st = statusSocket.listen(statusPath); !st)
		std::fprintf(stderr, "xmb-codec-service: no live status: %s\n", st.error().message.c_str());
	cli::notifySystemd("READY=1");
	int rc = loop.run();
	cli::notifySystemd("STOPPING=1");
	printReport(svc);
	svc.stop();
	return rc;
}
