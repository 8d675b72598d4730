/* SPDX-License-Identifier: MIT */
/*
 * xmb-capture-bench: the camera's own cost per frame, without the bridge, for
 * the benchmarks on real Xen.  The camera service's CPU per frame includes
 * the V4L2 work any capture program pays (poll, DQBUF, QBUF, and for
 * imported dma-bufs vb2 mapping them at every QBUF); this measures that part
 * alone, in the same VM run, so what the bridge adds can be told apart.  Not
 * a test: it asserts no speed.
 *
 *   xmb-capture-bench --device /dev/videoN [--format YUYV] [--size 640x360]
 *                     [--frames 150] [--memory mmap|dmabuf]
 *
 * The capture goes through the service's own V4L2 source (V4L2CameraSource),
 * four buffers, one epoll wait per wake-up as the service's loop does.
 * mmap: the camera's own buffers (the be-alloc "device buffers" path).
 * dmabuf: buffers of our own imported as dma-bufs (udmabuf over a memfd),
 * as the service imports a guest's pages exported by gntdev.  Each frame is
 * held until the next one arrives, as a guest holds it, then queued again.
 * Prints one line: CPU (user + system, the whole process) and wake-ups per
 * frame over the frames after the first (the start-up excluded).
 */
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <getopt.h>
#include <string>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <vector>

#include "v4l2/dma_buf.h"
#include "v4l2/pixel_format.h"
#include "v4l2/v4l2_camera_source.h"

using namespace xmb;

namespace {

double processCpuUs()
{
	rusage ru{};
	getrusage(RUSAGE_SELF, &ru);
	return double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
	       double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

long voluntarySwitches()
{
	rusage ru{};
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_nvcsw;
}

int usage(const char *argv0)
{
	std::fprintf(stderr,
		     "usage: %s --device /dev/videoN [--format YUYV] [--size WxH] [--frames N] "
		     "[--memory mmap|dmabuf]\n",
		     argv0);
	return 2;
}

int fail(const char *what, int ret)
{
	std::fprintf(stderr, "capture-bench: %s: %s\n", what, std::strerror(-ret));
	return 1;
}

} /* namespace */

int main(int argc, char **argv)
{
	std::string device, format = "YUYV", memoryName = "mmap";
	unsigned width = 640, height = 360, frames = 150;
	static const option opts[] = { { "device", required_argument, nullptr, 'd' },
				       { "format", required_argument, nullptr, 'f' },
				       { "size", required_argument, nullptr, 's' },
				       { "frames", required_argument, nullptr, 'n' },
				       { "memory", required_argument, nullptr, 'm' },
				       { nullptr, 0, nullptr, 0 } };
	for (int c; (c = getopt_long(argc, argv, "", opts, nullptr)) != -1;) {
		switch (c) {
		case 'd': device = optarg; break;
		case 'f': format = optarg; break;
		case 's':
			if (std::sscanf(optarg, "%ux%u", &width, &height) != 2)
				return usage(argv[0]);
			break;
		case 'n': frames = unsigned(std::strtoul(optarg, nullptr, 10)); break;
		case 'm': memoryName = optarg; break;
		default: return usage(argv[0]);
		}
	}
	const bool dmabuf = memoryName == "dmabuf";
	if (device.empty() || frames < 2 || (!dmabuf && memoryName != "mmap"))
		return usage(argv[0]);

	V4L2CameraSource src;
	if (int ret = src.open(device); ret < 0)
		return fail(device.c_str(), ret);
	StreamConfig config;
	config.fourcc = fourccFromString(format);
	config.width = width;
	config.height = height;
	if (int ret = src.configure(config); ret < 0)
		return fail("configure", ret);
	if (config.width != width || config.height != height) {
		std::fprintf(stderr, "capture-bench: %s gives %ux%u for %ux%u\n", device.c_str(), config.width,
			     config.height, width, height);
		return 1;
	}
	if (!config.fourcc) {
		std::fprintf(stderr, "capture-bench: unknown format %s\n", format.c_str());
		return 1;
	}
	const MemoryType memory = dmabuf ? MemoryType::DmaBufImport : MemoryType::MmapExport;
	int count = src.allocateBuffers(memory, 4);
	if (count < 2)
		return fail("allocate buffers", count < 0 ? count : -ENOMEM);
	std::vector<SharedBuffer> own(dmabuf ? static_cast<size_t>(count) : 0);
	std::vector<CallerBuffer> caller(static_cast<size_t>(count));
	for (unsigned i = 0; i < unsigned(count); i++) {
		if (dmabuf) {
			int ret = allocateSharedBuffer(config.layout.size, "xmb-capture-bench", true, own[i]);
			if (ret < 0)
				return fail("allocate a shared buffer", ret);
			if (!own[i].dmabuf.isValid()) {
				std::fprintf(stderr, "capture-bench: no /dev/udmabuf: no dma-buf to import\n");
				return 1;
			}
			caller[i].dmabufFd = own[i].dmabuf.get();
			caller[i].length = own[i].length;
		}
		if (int ret = src.queueBuffer(i, caller[i]); ret < 0)
			return fail("queue", ret);
	}
	UniqueFD ep(epoll_create1(EPOLL_CLOEXEC));
	epoll_event ev{};
	ev.events = src.pollEvents();
	if (!ep.isValid() || epoll_ctl(ep.get(), EPOLL_CTL_ADD, src.pollFd(), &ev) < 0)
		return fail("epoll", -errno);
	if (int ret = src.start(); ret < 0)
		return fail("stream on", ret);

	unsigned got = 0, wakeups = 0;
	int held = -1;
	double cpu0 = 0;
	long sleeps0 = 0;
	while (got < frames) {
		epoll_event out;
		int n = epoll_wait(ep.get(), &out, 1, 5000);
		if (n == 0) {
			std::fprintf(stderr, "capture-bench: no frame in 5 s after %u\n", got);
			return 1;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return fail("epoll_wait", -errno);
		}
		if (got > 0)
			wakeups++;
		CompletedFrame frame;
		int ret;
		while (got < frames && (ret = src.dequeueFrame(frame)) == 0) {
			if (held >= 0 && (ret = src.queueBuffer(unsigned(held), caller[unsigned(held)])) < 0)
				return fail("queue", ret);
			held = int(frame.index);
			if (++got == 1) {
				cpu0 = processCpuUs(); /* from the first frame on: start-up excluded */
				sleeps0 = voluntarySwitches();
			}
		}
		if (got < frames && ret != -EAGAIN)
			return fail("dequeue", ret);
	}
	const double cpu = processCpuUs() - cpu0;
	const long sleeps = voluntarySwitches() - sleeps0;
	src.stop();
	const unsigned measured = frames - 1;
	std::printf("capture-bench: %s %s %ux%u %s: %u frames, %.0f us CPU/frame (process user+sys), "
		    "%.2f wake-ups/frame, %.2f sleeps/frame\n",
		    device.c_str(), format.c_str(), width, height, memoryName.c_str(), measured,
		    cpu / measured, double(wakeups) / measured, double(sleeps) / measured);
	return 0;
}
