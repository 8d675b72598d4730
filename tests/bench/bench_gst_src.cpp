/* SPDX-License-Identifier: MIT */
/*
 * bench_gst_src: what xmbcamerasrc costs per frame in a guest pipeline.
 *
 * One process, loopback platform: a Dom0 pipeline (videotestsrc is-live !
 * NV12 at 30 fps ! xmbcamerasink) serves a guest pipeline (xmbcamerasrc !
 * fakesink). A pad probe on the source's src pad runs in its streaming
 * thread and reads that thread's CPU time and voluntary context switches:
 * per frame, the element's own cost (waiting for the frame, BUF_DEQUEUE,
 * wrapping the guest's buffer, giving the previous one back) plus
 * fakesink's, which is next to nothing.  Not a test: nothing is asserted.
 *
 *   GST_PLUGIN_PATH=build/gst-plugin bench_gst_src [--seconds S]
 */
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include <gst/gst.h>
#include <time.h>

#include "../common/process_stats.h"

namespace {

double threadCpuSeconds()
{
	timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* This thread's voluntary context switches (its wake-ups from a wait). */
unsigned long threadWakeups()
{
	return xmb::test::statusField("/proc/thread-self/status", "voluntary_ctxt_switches");
}

struct Probe {
	bool measuring = false;
	bool started = false;
	double cpu0 = 0, cpu1 = 0;
	unsigned long wake0 = 0, wake1 = 0;
	unsigned long frames = 0;
};

GstPadProbeReturn onBuffer(GstPad *, GstPadProbeInfo *, gpointer data)
{
	auto *p = static_cast<Probe *>(data);
	if (!p->measuring)
		return GST_PAD_PROBE_OK;
	if (!p->started) {
		p->started = true;
		p->cpu0 = threadCpuSeconds();
		p->wake0 = threadWakeups();
		return GST_PAD_PROBE_OK;
	}
	p->frames++;
	p->cpu1 = threadCpuSeconds();
	p->wake1 = threadWakeups();
	return GST_PAD_PROBE_OK;
}

struct Result {
	unsigned long frames;
	double cpuUsPerFrame;
	double wakeupsPerFrame;
};

Result run(unsigned w, unsigned h, double seconds, unsigned domid)
{
	std::string dom0 = "videotestsrc is-live=true pattern=black ! video/x-raw,format=NV12,width=" +
			   std::to_string(w) + ",height=" + std::to_string(h) +
			   ",framerate=30/1 ! xmbcamerasink platform=loopback loopback-guest-domid=" +
			   std::to_string(domid);
	std::string guest = "xmbcamerasrc name=src platform=loopback loopback-domid=" + std::to_string(domid) +
			    " ! fakesink sync=false";
	GError *err = nullptr;
	GstElement *d = gst_parse_launch(dom0.c_str(), &err);
	GstElement *g = d ? gst_parse_launch(guest.c_str(), &err) : nullptr;
	if (!d || !g) {
		std::fprintf(stderr, "bench_gst_src: %s (is GST_PLUGIN_PATH the build's gst-plugin?)\n",
			     err ? err->message : "pipeline");
		std::exit(1);
	}
	Probe probe;
	GstElement *src = gst_bin_get_by_name(GST_BIN(g), "src");
	GstPad *pad = gst_element_get_static_pad(src, "src");
	gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, onBuffer, &probe, nullptr);
	gst_element_set_state(d, GST_STATE_PLAYING);
	gst_element_set_state(g, GST_STATE_PLAYING);
	std::this_thread::sleep_for(std::chrono::seconds(2)); /* connect, negotiate, warm up */
	probe.measuring = true;
	std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
	probe.measuring = false;
	Result r{ probe.frames, 0, 0 };
	if (probe.frames) {
		r.cpuUsPerFrame = (probe.cpu1 - probe.cpu0) * 1e6 / probe.frames;
		r.wakeupsPerFrame = double(probe.wake1 - probe.wake0) / probe.frames;
	}
	gst_element_set_state(g, GST_STATE_NULL);
	gst_element_set_state(d, GST_STATE_NULL);
	gst_object_unref(pad);
	gst_object_unref(src);
	gst_object_unref(g);
	gst_object_unref(d);
	return r;
}

} /* namespace */

int main(int argc, char **argv)
{
	double seconds = 5;
	for (int i = 1; i < argc; i++)
		if (!std::strcmp(argv[i], "--seconds") && i + 1 < argc)
			seconds = std::atof(argv[++i]);
	setenv("XMB_LOG", "warn", 0);
	gst_init(&argc, &argv);
	std::printf("| xmbcamerasrc, NV12 30 fps | frames | streaming thread CPU µs/frame | its wake-ups/frame |\n"
		    "|---|---|---|---|\n");
	const unsigned sizes[][2] = { { 640, 360 }, { 1920, 1080 }, { 3840, 2160 } };
	unsigned domid = 41;
	for (const auto &s : sizes) {
		Result r = run(s[0], s[1], seconds, domid++);
		std::printf("| %ux%u | %lu | %.1f | %.2f |\n", s[0], s[1], r.frames, r.cpuUsPerFrame,
			    r.wakeupsPerFrame);
		std::fflush(stdout);
	}
	return 0;
}
