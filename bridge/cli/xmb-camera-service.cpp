/* SPDX-License-Identifier: MIT */
/*
 * xmb-camera-service: the Dom0 vcamera backend daemon.
 *
 *   xmb-camera-service --config /etc/xen-media-bridge/cameras.conf
 *
 * SIGTERM/SIGINT stop it (frontends closed, device nodes removed), SIGHUP
 * reloads the configuration, SIGUSR1 prints per-guest statistics.
 */
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>
#include <getopt.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "protocol/base/log.h"
#include "bridge/platform/platform.h"
#include "bridge/service/camera_service.h"
#include "xmb_config.h"
#include "bridge/cli/systemd_notify.h"
#include "bridge/service/status_socket.h"

using namespace xmb;

namespace {

#define XMB_CAMERA_STATUS "/run/xen-media-bridge/camera.sock"

XMB_LOG_DEFINE_CATEGORY(logMain, "main");

void usage(FILE *f)
{
	std::fprintf(f,
		     "Usage: xmb-camera-service --config FILE [options]\n"
		     "Serve Dom0 cameras to Xen guests over the para-virtual camera protocol.\n\n"
		     "  -c, --config FILE    camera and guest configuration (xmb-camera-service(8))\n"
		     "      --check          parse the configuration, open the cameras, and exit\n"
		     "      --pidfile FILE   write the daemon's pid (for xmb-camera-service --reload)\n"
		     "      --reload         send SIGHUP to the daemon named by --pidfile and exit\n"
		     "      --status         ask the running daemon what it serves: a table per guest device\n"
		     "      --json           the same as JSON (for monitoring)\n"
		     "      --status-socket PATH\n"
		     "                       where the daemon answers (default " XMB_CAMERA_STATUS ")\n"
		     "  -v, --verbose        debug logging (same as XMB_LOG=debug)\n"
		     "  -h, --help           this text\n"
		     "      --version        print the version\n\n"
		     "Signals: SIGTERM/SIGINT stop, SIGHUP reloads the configuration, SIGUSR1 prints statistics.\n");
}

/* "format YUYV 640x480 30/1 fps rate 29.97 fps latency-us p50 812 p99 1630": what --status adds. */
std::string streamText(const service::DeviceReport &r)
{
	return service::streamStatusText(r.format, r.stats.fpsMilli, r.stats.latencyP50Us, r.stats.latencyP99Us);
}

/* One line per guest device (the SIGUSR1 log lines), then with --status one per camera. */
std::string reportText(const service::CameraService &svc, bool perCamera)
{
	std::string out;
	std::map<std::string, std::vector<std::string>> clients; /* camera -> connected guests */
	for (const auto &r : svc.report()) {
		double perFrame = r.stats.frames ? double(r.stats.bytesCopied) / r.stats.frames : 0;
		char line[512];
		std::snprintf(line, sizeof(line),
			      "%s camera %s: %s%s frames %lu drops %lu bytes-copied/frame %.0f mapped-pages %lu "
			      "granted-pages %lu dma-bufs %lu",
			      r.label.c_str(), r.camera.c_str(), r.connected ? "connected, " : "waiting",
			      r.tier.c_str(), static_cast<unsigned long>(r.stats.frames),
			      static_cast<unsigned long>(r.stats.drops), perFrame,
			      static_cast<unsigned long>(r.domainMappedPages),
			      static_cast<unsigned long>(r.stats.grantedPages),
			      static_cast<unsigned long>(r.domainDmaBufs));
		out += line + streamText(r) + "\n";
		auto &c = clients[r.camera];
		if (r.connected)
			c.push_back(r.label.substr(0, r.label.find(']') + 1)); /* "[guest two]" */
	}
	if (perCamera)
		for (const auto &[camera, guests] : clients) {
			out += "camera " + camera + ": " + std::to_string(guests.size()) + " guest(s) connected";
			for (const auto &g : guests)
				out += " " + g;
			out += "\n";
		}
	return out;
}

void printReport(const service::CameraService &svc)
{
	std::fputs(reportText(svc, false).c_str(), stderr);
}

/* {"devices": [...], "cameras": [...]}: the same numbers as the table, for monitoring. */
std::string reportJson(const service::CameraService &svc)
{
	std::string out = "{\"service\": \"xmb-camera-service\", \"devices\": [";
	std::map<std::string, std::vector<std::string>> clients;
	bool first = true;
	for (const auto &r : svc.report()) {
		out += first ? "\n  " : ",\n  ";
		first = false;
		out += "{\"device\": " + service::jsonString(r.label) + ", \"camera\": " + service::jsonString(r.camera) +
		       ", \"connected\": " + (r.connected ? "true" : "false") +
		       ", \"tier\": " + service::jsonString(r.tier) +
		       ", " + service::streamStatusJson(r.format, r.stats.fpsMilli, r.stats.latencyP50Us,
							 r.stats.latencyP99Us) +
		       ", \"connects\": " + std::to_string(r.connects) +
		       ", \"frames\": " + std::to_string(r.stats.frames) +
		       ", \"drops\": " + std::to_string(r.stats.drops) +
		       ", \"bytes_copied\": " + std::to_string(r.stats.bytesCopied) +
		       ", \"bytes_copied_per_frame\": " +
		       std::to_string(r.stats.frames ? r.stats.bytesCopied / r.stats.frames : 0) +
		       ", \"requests\": " + std::to_string(r.stats.requests) +
		       ", \"mapped_pages\": " + std::to_string(r.domainMappedPages) +
		       ", \"granted_pages\": " + std::to_string(r.stats.grantedPages) +
		       ", \"dma_bufs\": " + std::to_string(r.domainDmaBufs) + "}";
		auto &c = clients[r.camera];
		if (r.connected)
			c.push_back(r.label);
	}
	out += "\n], \"cameras\": [";
	first = true;
	for (const auto &[camera, guests] : clients) {
		out += first ? "\n  " : ",\n  ";
		first = false;
		out += "{\"camera\": " + service::jsonString(camera) + ", \"clients\": [";
		for (size_t i = 0; i < guests.size(); i++)
			out += (i ? ", " : "") + service::jsonString(guests[i]);
		out += "]}";
	}
	return out + "\n]}\n";
}

} /* namespace */

int main(int argc, char **argv)
{
	std::string configPath, pidfile, statusPath = XMB_CAMERA_STATUS;
	bool check = false, reload = false, status = false, json = false;
	static const option opts[] = {
		{ "config", required_argument, nullptr, 'c' },
		{ "check", no_argument, nullptr, 'C' },
		{ "pidfile", required_argument, nullptr, 'p' },
		{ "reload", no_argument, nullptr, 'r' },
		{ "status", no_argument, nullptr, 'S' },
		{ "json", no_argument, nullptr, 'J' },
		{ "status-socket", required_argument, nullptr, 'P' },
		{ "verbose", no_argument, nullptr, 'v' },
		{ "help", no_argument, nullptr, 'h' },
		{ "version", no_argument, nullptr, 'V' },
		{},
	};
	int c;
	while ((c = getopt_long(argc, argv, "c:vh", opts, nullptr)) != -1) {
		switch (c) {
		case 'c': configPath = optarg; break;
		case 'C': check = true; break;
		case 'p': pidfile = optarg; break;
		case 'r': reload = true; break;
		case 'S': status = true; break;
		case 'J': status = json = true; break;
		case 'P': statusPath = optarg; break;
		case 'v': setenv("XMB_LOG", "debug", 1); break;
		case 'h': usage(stdout); return 0;
		case 'V': std::printf("xmb-camera-service %s\n", XMB_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (status)
		return service::printStatus("xmb-camera-service", statusPath, json);
	if (reload) {
		std::ifstream f(pidfile);
		pid_t pid = 0;
		if (pidfile.empty() || !(f >> pid) || pid <= 0) {
			std::fprintf(stderr, "xmb-camera-service: --reload needs a readable --pidfile\n");
			return 2;
		}
		if (kill(pid, SIGHUP) < 0) {
			std::fprintf(stderr, "xmb-camera-service: pid %d: %s\n", pid, std::strerror(errno));
			return 1;
		}
		return 0;
	}
	if (configPath.empty()) {
		usage(stderr);
		return 2;
	}

	auto config = service::loadServiceConfig(configPath);
	if (!config) {
		std::fprintf(stderr, "xmb-camera-service: %s\n", config.error().message.c_str());
		return 1;
	}
	if (check) {
		for (const auto &cam : config->cameras) {
			auto src = service::openSource(cam);
			if (!src) {
				std::fprintf(stderr, "xmb-camera-service: %s\n", src.error().message.c_str());
				return 1;
			}
			std::printf("camera %s: %s\n", cam.name.c_str(), (*src)->description().c_str());
		}
		std::printf("%s: OK (%zu cameras, %zu guest devices)\n", configPath.c_str(),
			    config->cameras.size(), config->guests.size());
		return 0;
	}

	auto platform = xen::openRealPlatform();
	if (!platform) {
		std::fprintf(stderr, "xmb-camera-service: %s\n", platform.error().message.c_str());
		return 1;
	}

	sigset_t mask;
	sigemptyset(&mask);
	for (int s : { SIGTERM, SIGINT, SIGHUP, SIGUSR1 })
		sigaddset(&mask, s);
	sigprocmask(SIG_BLOCK, &mask, nullptr);
	UniqueFD sigfd(signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));

	service::EventLoop loop;
	service::CameraService svc(**platform, loop);
	Status s = svc.start(*config);
	if (!s) {
		std::fprintf(stderr, "xmb-camera-service: %s\n", s.error().message.c_str());
		return 1;
	}
	if (!pidfile.empty())
		std::ofstream(pidfile) << getpid() << "\n";

	(void)loop.addFd(sigfd.get(), [&](uint32_t) {
		signalfd_siginfo si;
		while (read(sigfd.get(), &si, sizeof(si)) == sizeof(si)) {
			if (si.ssi_signo == SIGHUP) {
				cli::notifySystemd("RELOADING=1");
				auto fresh = service::loadServiceConfig(configPath);
				if (!fresh) {
					XMB_LOG(logMain, Error, "reload: %s (keeping the old configuration)",
						fresh.error().message.c_str());
					cli::notifySystemd("READY=1");
					continue;
				}
				Status r = svc.reload(*fresh);
				XMB_LOG(logMain, Info, "reload: %s", r ? "done" : r.error().message.c_str());
				cli::notifySystemd("READY=1");
			} else if (si.ssi_signo == SIGUSR1) {
				printReport(svc);
			} else {
				loop.exit(0);
			}
		}
	});
	XMB_LOG(logMain, Info, "serving %zu cameras on dom%u", config->cameras.size(), (*platform)->self);
	/* Optional: a daemon run by hand as non-root still serves, without --status. */
	service::StatusSocket statusSocket(loop, [&svc](bool asJson) {
		return asJson ? reportJson(svc) : reportText(svc, true);
	});
	if (Status st = statusSocket.listen(statusPath); !st)
		XMB_LOG(logMain, Warn, "no live status: %s", st.error().message.c_str());
	cli::notifySystemd("READY=1");
	int ret = loop.run();
	cli::notifySystemd("STOPPING=1");
	printReport(svc);
	svc.stop();
	if (!pidfile.empty())
		unlink(pidfile.c_str());
	return ret < 0 ? 1 : 0;
}
