/* SPDX-License-Identifier: MIT */
/*
 * xmb-evtchn-bench: the platform's own floor between two domains, for the
 * benchmarks on real Xen (the camera service's per-frame cost is compared
 * with it in the same VM run).  Not a test: it asserts no speed.
 *
 *   xmb-evtchn-bench guest                       (in the DomU, started first)
 *   xmb-evtchn-bench dom0 --domain D [--rounds N] [--paced N] [--fps F]
 *   xmb-evtchn-bench loopback                    (both halves in one process)
 *
 * The guest allocates an event channel for Dom0 and publishes its number in
 * its own data/xmb-evtchn-bench/port; it answers every event with one (it
 * unmasks, notifies back) until Dom0 writes 1 to data/xmb-evtchn-bench/done.
 * Dom0 binds to it and measures, on its side: the CPU of one notify (the
 * hypercall, back to back); a notification round trip, back to back (p50,
 * p99, its CPU per round); the same paced at the camera's rate (it sleeps a
 * frame period between rounds, as the service does between frames: one
 * notify plus one wake-up per round, the floor a frame's wake-up compares
 * with).  One interdomain channel carries both directions.
 */
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <getopt.h>
#include <poll.h>
#include <string>
#include <thread>
#include <time.h>
#include <vector>

#include "bridge/platform/loopback/loopback_xen.h"
#include "bridge/platform/platform.h"

using namespace xmb;
using namespace xmb::xen;
using namespace std::chrono_literals;

namespace {

const std::string kDir = "/data/xmb-evtchn-bench";

double threadCpuUs()
{
	timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return double(ts.tv_sec) * 1e6 + double(ts.tv_nsec) / 1e3;
}

double nowUs()
{
	timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return double(ts.tv_sec) * 1e6 + double(ts.tv_nsec) / 1e3;
}

double percentile(std::vector<double> v, double p)
{
	if (v.empty())
		return 0;
	std::sort(v.begin(), v.end());
	return v[std::min(v.size() - 1, size_t(p / 100.0 * double(v.size())))];
}

/* Wait up to \a ms for \a port; unmask it.  1: it fired, 0: timeout, -1: error. */
int waitPort(Platform &p, const EventPort &port, int ms)
{
	const double end = nowUs() + ms * 1000.0;
	for (;;) {
		int left = int((end - nowUs()) / 1000.0);
		if (left < 0)
			return 0;
		pollfd pfd{ p.events->fd(), POLLIN, 0 };
		if (::poll(&pfd, 1, left) < 0 && errno != EINTR)
			return -1;
		Port got[8];
		auto n = p.events->pendingBatch(got);
		if (!n)
			return -1;
		bool mine = false;
		for (size_t i = 0; i < *n; i++)
			mine |= got[i] == port.port();
		if (mine) {
			(void)port.unmask();
			return 1;
		}
	}
}

int runGuest(Platform &p, const std::atomic<bool> *stop = nullptr)
{
	auto self = p.store->selfDomid();
	if (!self) {
		std::fprintf(stderr, "evtchn-bench guest: own domid: %s\n", self.error().message.c_str());
		return 1;
	}
	const std::string dir = XenStore::domainPath(*self) + kDir;
	auto port = p.events->allocUnbound(0);
	if (!port) {
		std::fprintf(stderr, "evtchn-bench guest: event channel: %s\n", port.error().message.c_str());
		return 1;
	}
	if (!p.store->write(dir + "/done", "0") || !p.store->write(dir + "/port", std::to_string(port->port()))) {
		std::fprintf(stderr, "evtchn-bench guest: cannot write %s\n", dir.c_str());
		return 1;
	}
	const double cpu0 = threadCpuUs(), start = nowUs();
	uint64_t rounds = 0;
	while (!(stop && *stop)) {
		int r = waitPort(p, *port, 200);
		if (r < 0) {
			std::fprintf(stderr, "evtchn-bench guest: event channel read failed\n");
			return 1;
		}
		if (r == 1) {
			(void)port->notify();
			rounds++;
			continue;
		}
		auto done = p.store->read(dir + "/done");
		if (done && *done == "1")
			break;
		if (nowUs() - start > 600e6) {
			std::fprintf(stderr, "evtchn-bench guest: Dom0 never said done (600 s)\n");
			return 1;
		}
	}
	std::printf("evtchn-bench guest: %lu events answered, %.2f µs CPU per answer\n", (unsigned long)rounds,
		    rounds ? (threadCpuUs() - cpu0) / double(rounds) : 0.0);
	return 0;
}

struct Options {
	DomId domain = 0;
	int rounds = 2000;
	int paced = 150;
	unsigned fps = 30;
};

int runDom0(Platform &p, const Options &o)
{
	const std::string dir = XenStore::domainPath(o.domain) + kDir;
	std::optional<Port> remote;
	for (int i = 0; i < 1200 && !remote; i++) { /* 120 s: a DomU boots slowly under TCG */
		if (auto v = p.store->read(dir + "/port"); v && !v->empty())
			remote = Port(std::strtoul(v->c_str(), nullptr, 10));
		else
			std::this_thread::sleep_for(100ms);
	}
	if (!remote) {
		std::fprintf(stderr, "evtchn-bench: dom%u never published %s/port\n", o.domain, dir.c_str());
		return 1;
	}
	auto port = p.events->bindInterdomain(o.domain, *remote);
	if (!port) {
		std::fprintf(stderr, "evtchn-bench: bind: %s\n", port.error().message.c_str());
		return 1;
	}
	auto drain = [&] {
		while (waitPort(p, *port, 300) == 1)
			;
	};

	/* One notify, back to back (the guest's answers latch meanwhile: drained after). */
	constexpr int kNotifies = 2000;
	double c0 = threadCpuUs();
	for (int i = 0; i < kNotifies; i++)
		(void)port->notify();
	const double notifyUs = (threadCpuUs() - c0) / kNotifies;
	drain();

	auto roundTrips = [&](int n, std::chrono::microseconds gap, std::vector<double> &rtt, double &cpuPerRound) {
		rtt.clear();
		double cpu = 0;
		int lost = 0;
		for (int i = 0; i < n; i++) {
			if (gap.count())
				std::this_thread::sleep_for(gap);
			double c = threadCpuUs(), t0 = nowUs();
			(void)port->notify();
			int r = waitPort(p, *port, 5000);
			double t1 = nowUs();
			cpu += threadCpuUs() - c;
			if (r != 1) {
				lost++;
				continue;
			}
			rtt.push_back(t1 - t0);
		}
		cpuPerRound = n ? cpu / n : 0;
		return lost;
	};
	std::vector<double> hot, paced;
	double hotCpu = 0, pacedCpu = 0;
	int lost = roundTrips(o.rounds, 0us, hot, hotCpu);
	lost += roundTrips(o.paced, std::chrono::microseconds(1000000 / std::max(1u, o.fps)), paced, pacedCpu);
	(void)p.store->write(dir + "/done", "1");

	std::printf("evtchn-bench: dom0 <-> dom%u (%s): one notify %.2f µs CPU; round trip p50 %.1f µs, p99 %.1f µs, "
		    "%.2f µs CPU per round on Dom0's side (%d rounds); paced at %u fps: p50 %.1f µs, p99 %.1f µs, "
		    "%.2f µs CPU per round (one notify + one wake-up; %d rounds)%s\n",
		    o.domain, p.kind, notifyUs, percentile(hot, 50), percentile(hot, 99), hotCpu, o.rounds, o.fps,
		    percentile(paced, 50), percentile(paced, 99), pacedCpu, o.paced,
		    lost ? (", " + std::to_string(lost) + " rounds unanswered in 5 s").c_str() : "");
	return lost ? 1 : 0;
}

int usage()
{
	std::fprintf(stderr, "usage: xmb-evtchn-bench guest\n"
			     "       xmb-evtchn-bench dom0 --domain D [--rounds N] [--paced N] [--fps F]\n"
			     "       xmb-evtchn-bench loopback [--rounds N] [--paced N] [--fps F]\n");
	return 2;
}

} /* namespace */

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage();
	const std::string role = argv[1];
	Options o;
	static const option opts[] = { { "domain", required_argument, nullptr, 'd' },
				       { "rounds", required_argument, nullptr, 'r' },
				       { "paced", required_argument, nullptr, 'p' },
				       { "fps", required_argument, nullptr, 'f' },
				       {} };
	optind = 2;
	int c;
	while ((c = getopt_long(argc, argv, "d:r:p:f:", opts, nullptr)) != -1) {
		switch (c) {
		case 'd': o.domain = DomId(std::strtoul(optarg, nullptr, 10)); break;
		case 'r': o.rounds = std::max(1, std::atoi(optarg)); break;
		case 'p': o.paced = std::max(1, std::atoi(optarg)); break;
		case 'f': o.fps = unsigned(std::max(1, std::atoi(optarg))); break;
		default: return usage();
		}
	}
	if (role == "loopback") {
		auto hv = LoopbackXen::create();
		(void)hv->createDomain(1, "bench");
		auto d0 = hv->open(0);
		auto g = hv->open(1);
		if (!d0 || !g)
			return 1;
		std::atomic<bool> stop{ false };
		int guestRc = 0;
		std::thread guest([&] { guestRc = runGuest(**g, &stop); });
		o.domain = 1;
		int rc = runDom0(**d0, o);
		stop = rc != 0;
		guest.join();
		return rc ? rc : guestRc;
	}
	if (role != "guest" && role != "dom0")
		return usage();
	if (role == "dom0" && o.domain == 0)
		return usage();
	auto p = openRealPlatform();
	if (!p) {
		std::fprintf(stderr, "xmb-evtchn-bench: %s\n", p.error().message.c_str());
		return 1;
	}
	return role == "guest" ? runGuest(**p) : runDom0(**p, o);
}
