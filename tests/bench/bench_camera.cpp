/* SPDX-License-Identifier: MIT */
/*
 * bench_camera: what the bridge costs per frame, zero-copy vs forced copy.
 *
 * Loopback platform; N guests, each with its own camera (a DmaCamera: frames
 * complete without CPU writes, as with DMA hardware), NV12 at 640x360,
 * 1920x1080 and 3840x2160.  Measured in one run: CPU time of the service
 * thread and of the guests' threads per delivered frame, latency from
 * "frame complete in Dom0" (the camera's dequeue) to "frame in the guest's
 * hands" (waitFrame returned it, BUF_DEQUEUE answered) as p50/p99, bytes
 * copied per frame; and the floor to compare with: one notify, one event
 * write + notify, a notification round trip between two domains, a plain
 * memcpy of each frame size (back to back, and as the service copies: four
 * buffers into four, one per frame period), and the service's and the guest
 * library's CPU and wake-ups per second with a guest connected but not
 * streaming.  Each row also gets one wake-up's floor measured alongside it
 * (PacedFloor), and Dom0 threads run on CPU 0, guests on the others, as
 * domains on separate vCPUs would (--no-pin: not).  Not a test: nothing
 * here asserts a speed.
 *
 *   bench_camera [--seconds S] [--fps N] [--guests 1,2,4,8,16] [--modes zero|copy|both] [--no-pin]
 *                [--markdown FILE] [--svg FILE]
 *   bench_camera --one-camera [--seconds S] [--fps N] [--markdown FILE]
 *
 * --one-camera: one camera, 1/2/4 be-alloc guests granted its own buffers
 * (gntdev dma-buf import emulated), 1080p NV12: shared device buffers
 * (share-device-buffers = yes) against copies for every guest once two
 * stream (sharing off), in one run.
 */
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <poll.h>
#include <cstdio>
#include <fstream>
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <thread>
#include <cmath>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>
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
	double cpuUsPerFrame;       /* service thread */
	double wakeupsPerFrame;     /* service thread: returns from epoll_wait */
	double guestCpuUsPerFrame;  /* the guests' threads (frontend library) */
	double latP50Us, latP99Us;  /* frame complete in Dom0 -> in the guest's hands */
	double bytesCopiedPerFrame;
	double faultsPerFrame;      /* service thread: page faults (minor + major) */
	double switchesPerFrame;    /* service thread: context switches (voluntary + involuntary) */
	double floorWakeUs;         /* PacedFloor: one wake-up's CPU, measured alongside this row */
};

double threadCpuSeconds()
{
	timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The calling thread's page faults (a copy path that faults per frame shows here) and context switches. */
struct ThreadUsage {
	uint64_t faults = 0, voluntary = 0, involuntary = 0;
};

ThreadUsage threadUsage()
{
	rusage ru{};
	getrusage(RUSAGE_THREAD, &ru);
	return { uint64_t(ru.ru_minflt) + uint64_t(ru.ru_majflt), uint64_t(ru.ru_nvcsw), uint64_t(ru.ru_nivcsw) };
}

uint64_t monotonicNs()
{
	timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

double percentile(std::vector<double> v, double p)
{
	if (v.empty())
		return 0;
	std::sort(v.begin(), v.end());
	size_t i = std::min(v.size() - 1, size_t(p / 100.0 * double(v.size())));
	return v[i];
}

/*
 * Two domains on Xen run on different vCPUs: a guest's thread never
 * preempts Dom0's service thread.  On one Linux they would share CPUs, and
 * the guest woken by a notify would preempt the service mid-turn (about a
 * third of the frames measured unpinned).  So, when there are two CPUs or
 * more, "Dom0" threads (the service, the floor's sleeping side) run on CPU 0
 * and "guest" threads on the others.  --no-pin turns it off.
 */
bool gPin = true;

enum class Side { Dom0, Guest };

void pinTo(Side side, unsigned n = 0)
{
	const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	if (!gPin || cpus < 2)
		return;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(side == Side::Dom0 ? 0 : 1 + int(n % unsigned(cpus - 1)), &set);
	(void)pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

/*
 * The service on its own thread, dispatching as the daemon does (run(): it
 * sleeps until an fd or timer fires, so the bench adds no wake-ups of its
 * own), and the CPU it used between mark() calls.
 */
class ServiceThread
{
public:
	/* dispatch() until exit, as EventLoop::run() does, counting the wake-ups */
	ServiceThread(service::EventLoop &loop)
		: loop_(loop), thread_([this] {
			  pinTo(Side::Dom0);
			  while (!loop_.exiting()) {
				  (void)loop_.dispatch(-1);
				  wakeups_++;
			  }
		  })
	{
	}
	[[nodiscard]] uint64_t wakeups() const { return wakeups_; }
	~ServiceThread()
	{
		loop_.defer([this] { loop_.exit(); });
		thread_.join();
	}
	/** Run \a fn on the service thread and wait; returns its CPU seconds then (and its page faults). */
	double call(const std::function<void()> &fn, ThreadUsage *usage = nullptr)
	{
		std::atomic<bool> done{ false };
		double cpu = 0;
		loop_.defer([&] {
			fn();
			cpu = threadCpuSeconds();
			if (usage)
				*usage = threadUsage();
			done = true;
		});
		while (!done)
			std::this_thread::sleep_for(1ms);
		return cpu;
	}

private:
	service::EventLoop &loop_;
	std::atomic<uint64_t> wakeups_{ 0 };
	std::thread thread_;
};

/*
 * The floor of one wake-up, measured alongside a row, in the same seconds:
 * a pair of domains on a loopback platform of their own, one pinging at the
 * camera's rate, the other sleeping between pings as the service does, then
 * taking the event, writing 32 bytes into a shared page and notifying back.
 * The echoing thread's CPU per round is what one wake-up costs at the least
 * under the machine's conditions of that moment (a shared 2-vCPU VM moves
 * them 2-3x within a minute, so a floor measured earlier in the run is not
 * the one a row lived through).
 */
class PacedFloor
{
public:
	explicit PacedFloor(unsigned fps)
	{
		hv_ = xen::LoopbackXen::create();
		(void)hv_->createDomain(1);
		d0_ = std::move(hv_->open(0).value());
		d1_ = std::move(hv_->open(1).value());
		p0_ = d0_->events->allocUnbound(1).value();
		p1_ = d1_->events->bindInterdomain(0, p0_.port()).value();
		echo_ = std::thread([this] {
			pinTo(Side::Dom0);
			alignas(64) static uint8_t page[4096];
			for (unsigned i = 0; waitFor(*d1_, p1_); i++) {
				uint8_t ev[32] = { uint8_t(i) };
				std::memcpy(page + (i % 128) * 32, ev, sizeof(ev));
				std::atomic_thread_fence(std::memory_order_release);
				(void)p1_.notify();
				rounds_++;
			}
			cpu_ = threadCpuSeconds();
		});
		ping_ = std::thread([this, fps] {
			pinTo(Side::Guest);
			while (!stop_) {
				std::this_thread::sleep_for(std::chrono::microseconds(1000000 / std::max(1u, fps)));
				(void)p0_.notify();
				(void)waitFor(*d0_, p0_);
			}
			done_ = true;
			(void)p0_.notify(); /* the echo side's last wake-up: it sees done_ and stops */
		});
	}
	/** Start counting (the echo thread's CPU and rounds from here). */
	void mark() { markRequested_ = true; }
	/** Stop; the echo thread's CPU per round since mark(), µs. */
	double stopAndCpuPerWakeUs()
	{
		stop_ = true;
		ping_.join();
		echo_.join();
		uint64_t n = rounds_ - markRounds_;
		return n ? (cpu_ - markCpu_) * 1e6 / double(n) : 0;
	}

private:
	/* Block until \a port fires (the echo side also takes a pending mark() here). */
	bool waitFor(xen::Platform &p, const xen::EventPort &port)
	{
		for (;;) {
			if (&p == d1_.get() && markRequested_.exchange(false)) {
				markCpu_ = threadCpuSeconds();
				markRounds_ = rounds_.load();
			}
			pollfd pfd{ p.events->fd(), POLLIN, 0 };
			(void)::poll(&pfd, 1, 200);
			auto got = p.events->pending();
			if (got && *got && **got == port.port()) {
				(void)port.unmask();
				return !(&p == d1_.get() && done_);
			}
			if (&p == d1_.get() && done_)
				return false;
			if (&p == d0_.get() && stop_)
				return true;
		}
	}

	std::shared_ptr<xen::LoopbackXen> hv_;
	std::unique_ptr<xen::Platform> d0_, d1_;
	xen::EventPort p0_, p1_;
	std::atomic<bool> stop_{ false }, done_{ false }, markRequested_{ false };
	std::atomic<uint64_t> rounds_{ 0 };
	uint64_t markRounds_ = 0;
	double markCpu_ = 0, cpu_ = 0;
	std::thread echo_, ping_;
};

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
	std::mutex camLock;
	std::map<std::string, bench::DmaCamera *> cameras;
	auto factory = [&](const service::CameraEntry &e) -> Result<std::unique_ptr<CameraSource>> {
		auto cam = std::make_unique<bench::DmaCamera>(kNV12, w, h, fps);
		std::lock_guard<std::mutex> l(camLock);
		cameras[e.name] = cam.get();
		return std::unique_ptr<CameraSource>(std::move(cam));
	};
	if (!svc.start(*cfg, factory)) {
		std::fprintf(stderr, "bench: service did not start\n");
		std::exit(1);
	}

	std::atomic<bool> guestsStop{ false }, measuring{ false };
	std::optional<ServiceThread> service;
	service.emplace(loop);

	std::vector<std::thread> gt;
	std::atomic<unsigned> ready{ 0 };
	std::vector<uint64_t> counted(guests, 0);
	std::vector<double> guestCpu(guests, 0);
	std::vector<std::vector<double>> latency(guests);
	for (unsigned i = 0; i < guests; i++) {
		gt.emplace_back([&, i] {
			pinTo(Side::Guest, i);
			frontend::CameraFrontend fe(*gp[i]);
			if (!fe.connect(0, 10s) || !fe.configSet(kNV12, w, h) || !fe.allocateBuffers(4) ||
			    !fe.queueAll() || !fe.streamStart()) {
				std::fprintf(stderr, "bench: guest %u failed to start\n", i + 1);
				ready++;
				return;
			}
			ready++;
			bench::DmaCamera *cam;
			{
				std::lock_guard<std::mutex> l(camLock);
				cam = cameras["c" + std::to_string(oneCamera ? 1 : i + 1)];
			}
			bool was = false;
			double cpu0 = 0;
			latency[i].reserve(size_t(seconds * fps * 2) + 16);
			while (!guestsStop) {
				auto f = fe.waitFrame(200ms);
				uint64_t now = monotonicNs();
				if (measuring && !was) {
					cpu0 = threadCpuSeconds();
					was = true;
				} else if (!measuring && was) {
					guestCpu[i] = threadCpuSeconds() - cpu0;
					was = false;
				}
				if (!f)
					continue;
				if (was) {
					counted[i]++;
					/* The hub's seq_num is the camera's sequence in a fresh service. */
					if (auto t = cam ? cam->completedAt(f->seq) : std::nullopt; t && *t <= now)
						latency[i].push_back(double(now - *t) / 1e3);
				}
				(void)fe.bufQueue(f->index);
			}
			if (was)
				guestCpu[i] = threadCpuSeconds() - cpu0;
			(void)fe.streamStop();
			fe.disconnect(1s);
		});
	}
	while (ready < guests)
		std::this_thread::sleep_for(5ms);
	std::optional<PacedFloor> floor;
	if (!oneCamera)
		floor.emplace(fps);
	std::this_thread::sleep_for(300ms); /* warm up */

	std::vector<service::DeviceReport> before, after;
	ThreadUsage use0, use1;
	double cpuStart = service->call([&] { before = svc.report(); }, &use0);
	const uint64_t wake0 = service->wakeups();
	if (floor)
		floor->mark();
	measuring = true;
	std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
	double cpuEnd = service->call([&] { after = svc.report(); }, &use1);
	const uint64_t wakes = service->wakeups() - wake0;
	measuring = false;
	const double floorWake = floor ? floor->stopAndCpuPerWakeUs() : 0;
	std::this_thread::sleep_for(300ms); /* each guest notices (a frame or its 200 ms timeout) */
	guestsStop = true; /* guests stop and disconnect while the service still answers */
	for (auto &t : gt)
		t.join();
	service.reset();
	svc.stop();

	uint64_t frames = 0, copied = 0, guestFrames = 0;
	for (size_t i = 0; i < after.size() && i < before.size(); i++) {
		frames += after[i].stats.frames - before[i].stats.frames;
		copied += after[i].stats.bytesCopied - before[i].stats.bytesCopied;
	}
	std::vector<double> lat;
	double gcpu = 0;
	for (unsigned i = 0; i < guests; i++) {
		lat.insert(lat.end(), latency[i].begin(), latency[i].end());
		gcpu += guestCpu[i];
		guestFrames += counted[i];
	}
	Row r{ copy, w, h, guests, frames, 0, 0, 0, percentile(lat, 50), percentile(lat, 99), 0, 0, 0, floorWake };
	if (frames) {
		r.cpuUsPerFrame = (cpuEnd - cpuStart) * 1e6 / frames;
		r.wakeupsPerFrame = double(wakes) / frames;
		r.bytesCopiedPerFrame = double(copied) / frames;
		r.faultsPerFrame = double(use1.faults - use0.faults) / frames;
		r.switchesPerFrame = double(use1.voluntary - use0.voluntary + use1.involuntary - use0.involuntary) / frames;
	}
	if (guestFrames)
		r.guestCpuUsPerFrame = gcpu * 1e6 / guestFrames;
	return r;
}

/*
 * The platform's own floor, measured in the same run: the CPU of one event
 * sent and received (what a frame costs at the least), and the round trip of a notification between
 * two domains' threads (the least latency a frame can have).
 */
struct Bare {
	double eventUs; /* write + notify + the peer's pending/unmask, CPU */
	double rttP50Us, rttP99Us;
	/*
	 * CPU of one side per round trip: one event to a peer that sleeps (the
	 * notify must wake it) plus being woken for the answer.  eventUs is
	 * the same event to a peer that is awake; a service thread that sleeps
	 * between frames pays this one, so it is the floor a wake-up compares to.
	 */
	double rttCpuUs;
	/*
	 * The same, paced at the camera's rate: the peer sleeps a frame period
	 * between events, as the service does between frames (an idle CPU to
	 * wake, cold caches), then takes the event, writes 32 bytes and
	 * notifies back: its CPU per round is the floor of one such wake-up.
	 */
	double pacedWakeCpuUs;
	double pacedRttP50Us, pacedRttP99Us; /* its round trip, as seen by the pinging side */
};

Bare measureBare(unsigned fps)
{
	auto hv = xen::LoopbackXen::create();
	(void)hv->createDomain(1);
	auto d0 = std::move(hv->open(0).value());
	auto d1 = std::move(hv->open(1).value());
	auto p0 = d0->events->allocUnbound(1).value();
	auto p1 = d1->events->bindInterdomain(0, p0.port()).value();

	Bare b{};
	/* This thread pings as the guest side does; its affinity is restored on return. */
	cpu_set_t saved;
	const bool restore = pthread_getaffinity_np(pthread_self(), sizeof(saved), &saved) == 0;
	pinTo(Side::Guest);
	/*
	 * One event through the platform, as a frame's FRAME_AVAIL goes: 32 bytes
	 * written into the shared page, notify, and the peer's pending + unmask
	 * (so that every notify really signals: a masked port only latches).
	 */
	constexpr int kN = 20000;
	alignas(64) static uint8_t page[4096];
	double c0 = threadCpuSeconds();
	for (int i = 0; i < kN; i++) {
		uint8_t ev[32] = { uint8_t(i) };
		std::memcpy(page + (i % 128) * 32, ev, sizeof(ev));
		std::atomic_thread_fence(std::memory_order_release);
		(void)p0.notify();
		auto got = d1->events->pending();
		if (got && *got)
			(void)p1.unmask();
	}
	double c1 = threadCpuSeconds();
	b.eventUs = (c1 - c0) * 1e6 / kN;
	auto waitOne = [](xen::Platform &p, const xen::EventPort &port) {
		for (;;) {
			pollfd pfd{ p.events->fd(), POLLIN, 0 };
			(void)::poll(&pfd, 1, 1000);
			auto got = p.events->pending();
			if (got && *got && **got == port.port()) {
				(void)port.unmask();
				return;
			}
		}
	};
	/* Drain what latched on the peer, so the ping-pong starts clean. */
	while (true) {
		auto got = d1->events->pending();
		if (!got || !*got)
			break;
		(void)p1.unmask();
	}
	constexpr int kRounds = 2000;
	std::thread echo([&] {
		pinTo(Side::Guest);
		for (int i = 0; i < kRounds; i++) {
			waitOne(*d1, p1);
			(void)p1.notify();
		}
	});
	std::vector<double> rtt;
	rtt.reserve(kRounds);
	const double rc0 = threadCpuSeconds();
	for (int i = 0; i < kRounds; i++) {
		uint64_t t0 = monotonicNs();
		(void)p0.notify();
		waitOne(*d0, p0);
		rtt.push_back(double(monotonicNs() - t0) / 1e3);
	}
	b.rttCpuUs = (threadCpuSeconds() - rc0) * 1e6 / kRounds;
	echo.join();
	constexpr int kPaced = 150;
	double echoCpu = 0;
	std::thread paced([&] {
		pinTo(Side::Dom0);
		const double e0 = threadCpuSeconds();
		for (int i = 0; i < kPaced; i++) {
			waitOne(*d1, p1);
			uint8_t ev[32] = { uint8_t(i) };
			std::memcpy(page + (i % 128) * 32, ev, sizeof(ev));
			std::atomic_thread_fence(std::memory_order_release);
			(void)p1.notify();
		}
		echoCpu = threadCpuSeconds() - e0;
	});
	std::vector<double> pacedRtt;
	for (int i = 0; i < kPaced; i++) {
		std::this_thread::sleep_for(std::chrono::microseconds(1000000 / std::max(1u, fps)));
		uint64_t t0 = monotonicNs();
		(void)p0.notify();
		waitOne(*d0, p0);
		pacedRtt.push_back(double(monotonicNs() - t0) / 1e3);
	}
	paced.join();
	b.pacedWakeCpuUs = echoCpu * 1e6 / kPaced;
	b.pacedRttP50Us = percentile(pacedRtt, 50);
	b.pacedRttP99Us = percentile(pacedRtt, 99);
	b.rttP50Us = percentile(rtt, 50);
	b.rttP99Us = percentile(rtt, 99);
	if (restore)
		(void)pthread_setaffinity_np(pthread_self(), sizeof(saved), &saved);
	return b;
}

/*
 * A plain memcpy of \a bytes from one buffer into four others in turn, all
 * faulted in, back to back: the best case of a copy (the source stays in
 * the CPU's cache, the CPU never idles between copies).
 */
double memcpyUs(size_t bytes)
{
	std::vector<uint8_t> a(bytes, 1);
	std::vector<std::vector<uint8_t>> dst(4, std::vector<uint8_t>(bytes, 2));
	std::vector<double> t;
	for (int i = 0; i < 24; i++) {
		auto &b = dst[i % 4];
		uint64_t t0 = monotonicNs();
		std::memcpy(b.data(), a.data(), bytes);
		t.push_back(double(monotonicNs() - t0) / 1e3);
		a[i] = b[bytes - 1 - i]; /* keep the copies observable */
	}
	return percentile(t, 50);
}

/*
 * The same bytes copied the way the service copies them: four shared-memory
 * buffers (a camera's four) into four others (a guest's four granted
 * buffers), in turn, one copy per frame period, all faulted in.  Between
 * two copies the CPU sleeps and other work runs, so each copy starts cold:
 * this is the memcpy the copy path is made of, with nothing of ours in it.
 */
double pacedMemcpyUs(size_t bytes, unsigned fps)
{
	struct Shm {
		void *p = MAP_FAILED;
		size_t n = 0;
		~Shm() { if (p != MAP_FAILED) ::munmap(p, n); }
	};
	auto make = [&](Shm &m) {
		UniqueFD fd(::memfd_create("bench-copy", MFD_CLOEXEC));
		if (!fd || ::ftruncate(fd.get(), off_t(bytes)) < 0)
			return false;
		m.n = bytes;
		m.p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
		if (m.p == MAP_FAILED)
			return false;
		std::memset(m.p, 1, bytes);
		return true;
	};
	Shm src[4], dst[4];
	for (int i = 0; i < 4; i++)
		if (!make(src[i]) || !make(dst[i]))
			return 0;
	std::vector<double> t;
	for (int i = 0; i < 24; i++) {
		std::this_thread::sleep_for(std::chrono::microseconds(1000000 / std::max(1u, fps)));
		uint64_t t0 = monotonicNs();
		std::memcpy(dst[i % 4].p, src[i % 4].p, bytes);
		t.push_back(double(monotonicNs() - t0) / 1e3);
	}
	return percentile(t, 50);
}

/*
 * Idle: one guest connected, configured, buffers queued, not streaming. The
 * service's CPU per second, and how often its thread woke up.
 */
struct Idle {
	double serviceCpuUsPerS;
	double serviceWakeupsPerS;
	/* The guest library blocked in waitFrame() meanwhile (no frame comes): its thread's CPU and wake-ups. */
	double guestCpuUsPerS;
	double guestWakeupsPerS;
};

Idle measureIdle(double seconds)
{
	auto hv = xen::LoopbackXen::create();
	(void)hv->createDomain(1);
	auto gp = std::move(hv->open(1).value());
	auto dom0 = std::move(hv->open(0).value());
	auto cfg = service::parseServiceConfig(
		"[camera c1]\nsource = dma\n[guest g1]\ndomain = 1\ncamera = c1\nmax-buffers = 4\n", "bench");
	service::EventLoop loop;
	service::CameraService svc(*dom0, loop);
	auto factory = [&](const service::CameraEntry &) -> Result<std::unique_ptr<CameraSource>> {
		return std::unique_ptr<CameraSource>(std::make_unique<bench::DmaCamera>(kNV12, 640, 360, 30));
	};
	if (!svc.start(*cfg, factory))
		std::exit(1);
	std::atomic<uint64_t> wakeups{ 0 };
	std::atomic<bool> stop{ false };
	double cpu0 = 0, cpu1 = 0;
	std::atomic<int> phase{ 0 };
	std::thread service([&] {
		while (!stop) {
			loop.dispatch(-1);
			wakeups++;
			if (phase == 1) {
				cpu0 = threadCpuSeconds();
				wakeups = 0;
				phase = 2;
			}
		}
		cpu1 = threadCpuSeconds();
	});
	frontend::CameraFrontend fe(*gp);
	if (!fe.connect(0, 10s) || !fe.configSet(kNV12, 640, 360) || !fe.allocateBuffers(4) || !fe.queueAll())
		std::exit(1);
	std::this_thread::sleep_for(300ms);
	/* The guest: one waitFrame() longer than the window, on its own thread; nothing streams. */
	std::atomic<bool> guestIn{ false };
	double guestCpu = 0;
	uint64_t guestSwitches = 0;
	const double guestWindow = seconds + 0.5;
	std::thread guest([&] {
		/* Buffers the library holds back for a BUF_DEQUEUE go after 100 ms without frames: not idle work. */
		(void)fe.waitFrame(200ms);
		ThreadUsage u0 = threadUsage();
		double c0 = threadCpuSeconds();
		guestIn = true;
		(void)fe.waitFrame(std::chrono::milliseconds(int64_t(guestWindow * 1000)));
		guestCpu = threadCpuSeconds() - c0;
		ThreadUsage u1 = threadUsage();
		guestSwitches = u1.voluntary - u0.voluntary + u1.involuntary - u0.involuntary;
	});
	while (!guestIn)
		std::this_thread::sleep_for(1ms);
	phase = 1;
	loop.defer([] {});
	while (phase != 2)
		std::this_thread::sleep_for(1ms);
	std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
	uint64_t n = wakeups;
	stop = true;
	loop.defer([] {});
	service.join();
	guest.join();
	Idle r{ (cpu1 - cpu0) * 1e6 / seconds, double(n) / seconds, guestCpu * 1e6 / guestWindow,
		double(guestSwitches) / guestWindow };
	fe.disconnect(200ms);
	svc.stop();
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
	     "NV12; bars: the table's guest counts, left to right</text>\n";
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
	std::vector<unsigned> guestCounts = { 1, 2, 4, 8, 16 };
	std::string modes = "both";
	static const option opts[] = { { "seconds", required_argument, nullptr, 's' },
				       { "fps", required_argument, nullptr, 'f' },
				       { "markdown", required_argument, nullptr, 'm' },
				       { "svg", required_argument, nullptr, 'g' },
				       { "one-camera", no_argument, nullptr, 'o' },
				       { "guests", required_argument, nullptr, 'n' },
				       { "modes", required_argument, nullptr, 'M' },
				       { "no-pin", no_argument, nullptr, 'P' },
				       {} };
	int c;
	while ((c = getopt_long(argc, argv, "s:f:m:g:on:M:P", opts, nullptr)) != -1) {
		switch (c) {
		case 's': seconds = std::atof(optarg); break;
		case 'f': fps = std::atoi(optarg); break;
		case 'm': md = optarg; break;
		case 'g': svg = optarg; break;
		case 'o': oneCamera = true; break;
		case 'P': gPin = false; break;
		case 'M':
			modes = optarg; /* zero, copy or both (default) */
			if (modes != "zero" && modes != "copy" && modes != "both")
				return 2;
			break;
		case 'n': {
			/* --guests 1,2,4: the guest counts of the main table */
			guestCounts.clear();
			std::string list = optarg;
			for (size_t pos = 0; pos < list.size();) {
				size_t end = list.find(',', pos);
				unsigned n = unsigned(std::atoi(list.substr(pos, end - pos).c_str()));
				if (n < 1 || n > 64)
					return 2;
				guestCounts.push_back(n);
				pos = end == std::string::npos ? list.size() : end + 1;
			}
			break;
		}
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

	Bare bare = measureBare(fps);
	Idle idle = measureIdle(seconds);
	std::vector<Row> rows;
	std::map<uint32_t, double> memcpyAt, pacedMemcpyAt;
	const std::pair<uint32_t, uint32_t> sizes[] = { { 640u, 360u }, { 1920u, 1080u }, { 3840u, 2160u } };
	for (auto [w, h] : sizes) {
		memcpyAt[w] = memcpyUs(size_t(w) * h * 3 / 2);
		pacedMemcpyAt[w] = pacedMemcpyUs(size_t(w) * h * 3 / 2, fps);
	}
	for (bool copy : { false, true })
		for (auto [w, h] : sizes)
			for (unsigned g : guestCounts) {
				if ((copy && modes == "zero") || (!copy && modes == "copy"))
					continue;
				rows.push_back(runOne(copy, w, h, g, seconds, fps));
				const Row &r = rows.back();
				std::fprintf(stderr, "%-9s %4ux%-4u %2u guests: %6lu frames %8.1f us/frame service "
					     "(%.2f wake-ups, %.2f switches, %.2f faults), %6.1f guest, latency p50 %.0f p99 %.0f us, %10.0f B copied/frame\n",
					     copy ? "copy" : "zero-copy", w, h, g, (unsigned long)r.frames,
					     r.cpuUsPerFrame, r.wakeupsPerFrame, r.switchesPerFrame, r.faultsPerFrame, r.guestCpuUsPerFrame, r.latP50Us,
					     r.latP99Us, r.bytesCopiedPerFrame);
			}

	/* The service's CPU per wake-up against the floor measured alongside that row. */
	auto perWakeOverFloor = [](const Row &r) {
		return r.floorWakeUs > 0 ? r.cpuUsPerFrame / std::max(r.wakeupsPerFrame, 1.0) / r.floorWakeUs : 0;
	};
	auto get = [&](bool copy, uint32_t w, unsigned g) -> const Row * {
		for (const auto &r : rows)
			if (r.copy == copy && r.w == w && r.guests == g)
				return &r;
		return nullptr;
	};
	char line[8192];
	std::string out;
	std::snprintf(line, sizeof(line),
		      "Platform floor (same run, loopback event channels): one 32-byte event written, "
		      "notified, and taken by the peer (pending + unmask): %.2f µs CPU; notification round trip between two domains' "
		      "threads p50 %.1f µs, p99 %.1f µs, %.2f µs CPU per round trip on one side (its notify wakes "
		      "the sleeping peer, it is woken by the answer); paced at %u fps (the peer sleeps a frame period, "
		      "wakes, takes the event, writes one and notifies back): %.2f µs CPU per wake-up, round trip p50 %.1f µs, "
		      "p99 %.1f µs.\n"
		      "Plain memcpy of one NV12 frame (one source into four faulted-in buffers in turn, back to back, median of 24): "
		      "360p %.0f µs, 1080p %.0f µs, 4K %.0f µs; the same bytes as the service copies them (four shared-memory "
		      "buffers into four others in turn, one copy per frame period, median of 24): 360p %.0f µs, 1080p %.0f µs, "
		      "4K %.0f µs.\n"
		      "Idle (one guest connected, buffers queued, not streaming; %.0f s): service thread "
		      "%.1f µs CPU per second, %.2f wake-ups per second; the guest library blocked in waitFrame() "
		      "meanwhile: %.1f µs CPU per second, %.2f wake-ups per second.\n\n",
		      bare.eventUs, bare.rttP50Us, bare.rttP99Us, bare.rttCpuUs, fps, bare.pacedWakeCpuUs, bare.pacedRttP50Us, bare.pacedRttP99Us, memcpyAt[640],
		      memcpyAt[1920], memcpyAt[3840], pacedMemcpyAt[640], pacedMemcpyAt[1920], pacedMemcpyAt[3840], seconds, idle.serviceCpuUsPerS, idle.serviceWakeupsPerS,
		      idle.guestCpuUsPerS, idle.guestWakeupsPerS);
	out += line;
	out += "| mode | size | guests | frames | service CPU µs/frame | service wake-ups/frame | guest CPU µs/frame "
	       "| latency p50 µs | latency p99 µs | bytes copied/frame | service page faults/frame "
	       "| floor: one wake-up's CPU alongside, µs | service CPU per wake-up / floor |\n"
	       "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
	for (const auto &r : rows) {
		std::snprintf(line, sizeof(line),
			      "| %s | %ux%u | %u | %lu | %.1f | %.2f | %.1f | %.0f | %.0f | %.0f | %.2f | %.1f | %.2f |\n",
			      r.copy ? "copy" : "zero-copy", r.w, r.h, r.guests, (unsigned long)r.frames,
			      r.cpuUsPerFrame, r.wakeupsPerFrame, r.guestCpuUsPerFrame, r.latP50Us, r.latP99Us,
			      r.bytesCopiedPerFrame, r.faultsPerFrame, r.floorWakeUs, perWakeOverFloor(r));
		out += line;
	}
	const Row *z4k = get(false, 3840, 1), *z360 = get(false, 640, 1), *c4k = get(true, 3840, 1);
	if (z4k && z360 && c4k && z4k->cpuUsPerFrame > 0 && z360->cpuUsPerFrame > 0) {
		/* Copy overhead: what copy mode costs above zero copy, against a plain memcpy. */
		double copyOver = c4k->cpuUsPerFrame - z4k->cpuUsPerFrame;
		std::snprintf(line, sizeof(line),
			      "\nRatios (1 guest, same run): zero-copy 4K/360p per-frame service cost = %.2f; "
			      "copy/zero-copy at 4K = %.1f; zero-copy service CPU per frame / one event through "
			      "the platform = %.0f at 360p, %.0f at 4K; per wake-up (%.2f wake-ups per frame at 360p) / "
			      "one paced wake-up's CPU = %.2f at 360p, %.2f at 4K (against the floor measured alongside each: "
			      "%.2f, %.2f); latency p99 / notification round trip p99 = "
			      "%.1f at 360p, %.1f at 4K (paced: %.1f, %.1f); copy mode's extra CPU per 4K frame / plain memcpy = %.2f back to back, %.2f paced "
			      "as the service copies\n",
			      z4k->cpuUsPerFrame / z360->cpuUsPerFrame, c4k->cpuUsPerFrame / z4k->cpuUsPerFrame,
			      z360->cpuUsPerFrame / bare.eventUs, z4k->cpuUsPerFrame / bare.eventUs,
			      z360->wakeupsPerFrame,
			      z360->cpuUsPerFrame / std::max(z360->wakeupsPerFrame, 1.0) / bare.pacedWakeCpuUs,
			      z4k->cpuUsPerFrame / std::max(z4k->wakeupsPerFrame, 1.0) / bare.pacedWakeCpuUs,
			      perWakeOverFloor(*z360), perWakeOverFloor(*z4k),
			      z360->latP99Us / bare.rttP99Us, z4k->latP99Us / bare.rttP99Us,
			      z360->latP99Us / bare.pacedRttP99Us, z4k->latP99Us / bare.pacedRttP99Us,
			      memcpyAt[3840] > 0 ? copyOver / memcpyAt[3840] : 0,
			      pacedMemcpyAt[3840] > 0 ? copyOver / pacedMemcpyAt[3840] : 0);
		out += line;
	}
	std::fputs(out.c_str(), stdout);
	if (!md.empty())
		std::ofstream(md) << out;
	if (!svg.empty())
		writeSvg(svg, rows);
	return 0;
}
