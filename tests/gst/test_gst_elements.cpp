/* SPDX-License-Identifier: MIT */
/*
 * The xmb GStreamer elements: harness tests per element (caps, buffers,
 * events, state changes, errors) and the loopback end to end: a Dom0
 * pipeline (appsrc ! xmbcamerasink platform=loopback) serving a guest
 * pipeline (xmbcamerasrc platform=loopback ! appsink) in this process,
 * every frame checked byte-exact against the test pattern, with zero-copy
 * vs copy statistics.
 */
#include <chrono>
#include <cstring>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/base/gstbasesrc.h>
#include <gst/check/gstharness.h>
#include <gst/gst.h>
#include <gst/video/video.h>

#include "v4l2/test_pattern.h"

using namespace xmb;
using namespace std::chrono_literals;

namespace {

constexpr uint32_t kNV12 = 0x3231564e; /* 'NV12' */
constexpr uint32_t kYUYV = 0x56595559; /* 'YUYV' */

class Gst : public ::testing::Test
{
protected:
	static void SetUpTestSuite() { gst_init(nullptr, nullptr); }

	void TearDown() override
	{
		for (GstElement *p : pipelines_) {
			gst_element_set_state(p, GST_STATE_NULL);
			gst_object_unref(p);
		}
	}

	GstElement *pipeline(const std::string &desc)
	{
		GError *err = nullptr;
		GstElement *p = gst_parse_launch(desc.c_str(), &err);
		EXPECT_EQ(err, nullptr) << (err ? err->message : "");
		if (err)
			g_error_free(err);
		if (p)
			pipelines_.push_back(p);
		return p;
	}

	/* The first ERROR on \a p's bus within \a timeout, as "message | debug", or "". */
	static std::string waitError(GstElement *p, GstClockTime timeout = 5 * GST_SECOND)
	{
		GstBus *bus = gst_element_get_bus(p);
		GstMessage *m = gst_bus_timed_pop_filtered(bus, timeout, GST_MESSAGE_ERROR);
		gst_object_unref(bus);
		if (!m)
			return "";
		GError *e = nullptr;
		gchar *dbg = nullptr;
		gst_message_parse_error(m, &e, &dbg);
		std::string s = std::string(e->message) + " | " + (dbg ? dbg : "");
		g_error_free(e);
		g_free(dbg);
		gst_message_unref(m);
		return s;
	}

	static GstElement *byName(GstElement *p, const char *name)
	{
		GstElement *e = gst_bin_get_by_name(GST_BIN(p), name);
		if (e)
			gst_object_unref(e); /* the pipeline keeps it alive */
		return e;
	}

	/* A boolean of the element's "stats" (false if it has none). */
	static bool statFlag(GstElement *e, const char *field)
	{
		GstStructure *s = nullptr;
		g_object_get(e, "stats", &s, nullptr);
		gboolean v = FALSE;
		if (s) {
			EXPECT_TRUE(gst_structure_get_boolean(s, field, &v)) << field;
			gst_structure_free(s);
		}
		return v;
	}

	static guint64 stat(GstElement *sink, const char *field)
	{
		GstStructure *s = nullptr;
		g_object_get(sink, "stats", &s, nullptr);
		guint64 v = 0;
		if (s) {
			if (!gst_structure_get_uint64(s, field, &v)) {
				guint u = 0;
				if (gst_structure_get_uint(s, field, &u))
					v = u;
			}
			gst_structure_free(s);
		}
		return v;
	}

	std::vector<GstElement *> pipelines_;
};

using Sink = Gst;
using Src = Gst;
using Loopback = Gst;

/* ---- xmbcamerasink ---------------------------------------------------- */

TEST_F(Sink, IsRegisteredWithDocumentedDefaults)
{
	GstElement *e = gst_element_factory_make("xmbcamerasink", nullptr);
	ASSERT_NE(e, nullptr) << "GST_PLUGIN_PATH must point at build/gst-plugin";
	guint device = 99, maxBuffers = 0, loopDom = 99;
	gboolean beAlloc = TRUE;
	gint platform = -1;
	gchar *guest = nullptr;
	g_object_get(e, "device", &device, "max-buffers", &maxBuffers, "be-alloc", &beAlloc,
		     "platform", &platform, "loopback-guest-domid", &loopDom, "guest", &guest, nullptr);
	EXPECT_EQ(device, 0u);
	EXPECT_EQ(maxBuffers, 4u);
	EXPECT_FALSE(beAlloc);
	EXPECT_EQ(platform, 0); /* xen */
	EXPECT_EQ(loopDom, 0u);
	EXPECT_EQ(guest, nullptr);
	gst_object_unref(e);
}

TEST_F(Sink, WithoutAGuestFailsNamingTheProperty)
{
	GstElement *p = pipeline("videotestsrc ! xmbcamerasink platform=loopback");
	ASSERT_NE(p, nullptr);
	EXPECT_EQ(gst_element_set_state(p, GST_STATE_PAUSED), GST_STATE_CHANGE_FAILURE);
	std::string err = waitError(p);
	EXPECT_NE(err.find("No guest"), std::string::npos) << err;
	EXPECT_NE(err.find("guest="), std::string::npos) << err;
}

TEST_F(Sink, BadConfigFileIsNamed)
{
	GstElement *p = pipeline("videotestsrc ! xmbcamerasink platform=loopback config=/nonexistent/xmb.conf");
	ASSERT_NE(p, nullptr);
	EXPECT_EQ(gst_element_set_state(p, GST_STATE_PAUSED), GST_STATE_CHANGE_FAILURE);
	std::string err = waitError(p);
	EXPECT_NE(err.find("/nonexistent/xmb.conf"), std::string::npos) << err;
}

TEST_F(Sink, ConfigFileNeedsAPipelineCamera)
{
	char path[] = "/tmp/xmb-gst-test-XXXXXX";
	int fd = mkstemp(path);
	ASSERT_GE(fd, 0);
	std::string text = "[camera c]\nsource = test-pattern\n[guest g]\ndomain = 5\ncamera = c\n";
	ASSERT_EQ(write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
	close(fd);
	GstElement *p = pipeline(std::string("videotestsrc ! xmbcamerasink platform=loopback config=") + path);
	EXPECT_EQ(gst_element_set_state(p, GST_STATE_PAUSED), GST_STATE_CHANGE_FAILURE);
	std::string err = waitError(p);
	EXPECT_NE(err.find("source = pipeline"), std::string::npos) << err;
	unlink(path);
}

TEST_F(Sink, RealXenPlatformErrorSaysWhatToDo)
{
	if (access("/dev/xen/gntdev", F_OK) == 0)
		GTEST_SKIP() << "this machine has Xen";
	GstElement *p = pipeline("videotestsrc ! xmbcamerasink guest=guest1");
	EXPECT_EQ(gst_element_set_state(p, GST_STATE_PAUSED), GST_STATE_CHANGE_FAILURE);
	std::string err = waitError(p);
	EXPECT_NE(err.find("Xen platform"), std::string::npos) << err;
	EXPECT_NE(err.find("platform=loopback"), std::string::npos) << err;
}

TEST_F(Sink, AcceptsMappedFormatsSystemAndDmaBufMemory)
{
	GstHarness *h = gst_harness_new_parse("xmbcamerasink platform=loopback loopback-guest-domid=11");
	GstPad *sinkpad = gst_element_get_static_pad(h->element, "sink");
	auto accepts = [&](const char *caps) {
		GstCaps *c = gst_caps_from_string(caps);
		gboolean r = gst_pad_query_accept_caps(sinkpad, c);
		gst_caps_unref(c);
		return r;
	};
	EXPECT_TRUE(accepts("video/x-raw,format=NV12,width=640,height=480,framerate=30/1"));
	EXPECT_TRUE(accepts("video/x-raw,format=YUY2,width=320,height=240,framerate=15/1"));
	EXPECT_TRUE(accepts("video/x-raw,format=BGRx,width=320,height=240,framerate=15/1"));
	EXPECT_TRUE(accepts("video/x-raw(memory:DMABuf),format=NV12,width=640,height=480,framerate=30/1"));
	EXPECT_FALSE(accepts("video/x-raw,format=v210,width=640,height=480,framerate=30/1"));
	EXPECT_FALSE(accepts("image/jpeg,width=640,height=480"));
	gst_object_unref(sinkpad);
	gst_harness_teardown(h);
}

TEST_F(Sink, ProposesTheGuestBufferPoolAndTakesBuffersEventsAndRestarts)
{
	GstHarness *h = gst_harness_new_parse("xmbcamerasink name=s platform=loopback loopback-guest-domid=12");
	GstElement *sink = byName(h->element, "s");
	ASSERT_NE(sink, nullptr);
	gst_harness_set_src_caps_str(h, "video/x-raw,format=NV12,width=320,height=240,framerate=30/1");

	GstCaps *caps = gst_caps_from_string("video/x-raw,format=NV12,width=320,height=240,framerate=30/1");
	GstQuery *q = gst_query_new_allocation(caps, TRUE);
	ASSERT_TRUE(gst_pad_peer_query(h->srcpad, q));
	ASSERT_GE(gst_query_get_n_allocation_pools(q), 1u);
	GstBufferPool *pool = nullptr;
	guint size = 0, min = 0, max = 0;
	gst_query_parse_nth_allocation_pool(q, 0, &pool, &size, &min, &max);
	ASSERT_NE(pool, nullptr);
	EXPECT_STREQ(G_OBJECT_TYPE_NAME(pool), "GstXmbGuestPool");
	EXPECT_EQ(size, 320u * 240u * 3u / 2u);
	EXPECT_TRUE(gst_query_find_allocation_meta(q, GST_VIDEO_META_API_TYPE, nullptr));
	/* No guest streams: the pool hands out scratch buffers at once, never blocks. */
	ASSERT_TRUE(gst_buffer_pool_set_active(pool, TRUE));
	GstBuffer *b = nullptr;
	ASSERT_EQ(gst_buffer_pool_acquire_buffer(pool, &b, nullptr), GST_FLOW_OK);
	EXPECT_EQ(gst_buffer_get_size(b), size);
	EXPECT_EQ(gst_harness_push(h, b), GST_FLOW_OK);
	EXPECT_GE(stat(sink, "scratch-buffers"), 1u);
	gst_buffer_pool_set_active(pool, FALSE);
	gst_object_unref(pool);
	gst_query_unref(q);

	/* dma-buf input: no pool proposed (the copy tier maps it). */
	GstCaps *dcaps = gst_caps_from_string("video/x-raw(memory:DMABuf),format=NV12,width=320,height=240,framerate=30/1");
	q = gst_query_new_allocation(dcaps, TRUE);
	ASSERT_TRUE(gst_pad_peer_query(h->srcpad, q));
	EXPECT_EQ(gst_query_get_n_allocation_pools(q), 0u);
	gst_query_unref(q);
	gst_caps_unref(dcaps);

	for (int i = 0; i < 3; i++)
		EXPECT_EQ(gst_harness_push(h, gst_harness_create_buffer(h, size)), GST_FLOW_OK);
	/* Flushing and renegotiation (a new format restarts the vcamera). */
	EXPECT_TRUE(gst_harness_push_event(h, gst_event_new_flush_start()));
	EXPECT_TRUE(gst_harness_push_event(h, gst_event_new_flush_stop(TRUE)));
	gst_harness_set_src_caps_str(h, "video/x-raw,format=YUY2,width=640,height=480,framerate=15/1");
	EXPECT_EQ(gst_harness_push(h, gst_harness_create_buffer(h, 640 * 480 * 2)), GST_FLOW_OK);
	EXPECT_TRUE(gst_harness_push_event(h, gst_event_new_eos()));
	gst_caps_unref(caps);
	gst_harness_teardown(h);
}

TEST_F(Sink, StateChangesRepeatCleanly)
{
	GstElement *p = pipeline("videotestsrc is-live=true ! video/x-raw,format=NV12,width=320,height=240 ! "
				 "xmbcamerasink platform=loopback loopback-guest-domid=13");
	for (int i = 0; i < 3; i++) {
		ASSERT_NE(gst_element_set_state(p, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
		ASSERT_EQ(gst_element_get_state(p, nullptr, nullptr, 5 * GST_SECOND), GST_STATE_CHANGE_SUCCESS);
		std::this_thread::sleep_for(100ms);
		ASSERT_EQ(gst_element_set_state(p, GST_STATE_READY), GST_STATE_CHANGE_SUCCESS);
	}
	EXPECT_EQ(waitError(p, 0), "");
}

/* ---- xmbcamerasrc ----------------------------------------------------- */

TEST_F(Src, IsRegisteredLiveWithDocumentedDefaults)
{
	GstElement *e = gst_element_factory_make("xmbcamerasrc", nullptr);
	ASSERT_NE(e, nullptr);
	guint device = 99, buffers = 0, timeout = 0;
	gint platform = -1;
	g_object_get(e, "device", &device, "buffers", &buffers, "timeout", &timeout, "platform",
		     &platform, nullptr);
	EXPECT_EQ(device, 0u);
	EXPECT_EQ(buffers, 4u);
	EXPECT_EQ(timeout, 10000u);
	EXPECT_EQ(platform, 0);
	EXPECT_TRUE(gst_base_src_is_live(GST_BASE_SRC(e)));
	GstPad *pad = gst_element_get_static_pad(e, "src");
	GstCaps *caps = gst_pad_query_caps(pad, nullptr); /* not connected: the template */
	GstCaps *nv12 = gst_caps_from_string("video/x-raw,format=NV12,width=640,height=480,framerate=30/1");
	EXPECT_TRUE(gst_caps_can_intersect(caps, nv12));
	gst_caps_unref(nv12);
	gst_caps_unref(caps);
	gst_object_unref(pad);
	gst_object_unref(e);
}

TEST_F(Src, LoopbackWithoutDomidIsRefused)
{
	GstElement *p = pipeline("xmbcamerasrc platform=loopback ! fakesink");
	EXPECT_EQ(gst_element_set_state(p, GST_STATE_PAUSED), GST_STATE_CHANGE_FAILURE);
	std::string err = waitError(p);
	EXPECT_NE(err.find("loopback-domid"), std::string::npos) << err;
}

TEST_F(Src, NoDom0CameraTimesOutNamingTheDevice)
{
	GstElement *p = pipeline("xmbcamerasrc platform=loopback loopback-domid=21 device=3 timeout=300 ! fakesink");
	ASSERT_NE(gst_element_set_state(p, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
	std::string err = waitError(p, 5 * GST_SECOND);
	EXPECT_NE(err.find("vcamera device 3"), std::string::npos) << err;
	EXPECT_NE(err.find("dom21"), std::string::npos) << err;
}

TEST_F(Src, HarnessGetsNoBufferAndStopsCleanlyWhileWaiting)
{
	/*
	 * Unlock while waiting for Dom0: the wait (XenStore watches, no timer) is
	 * interrupted at once, whenever it comes; an element that re-checked on a
	 * period would take up to that period here in some of the rounds.
	 */
	for (int round = 0; round < 3; round++) {
		GstElement *p = pipeline("xmbcamerasrc platform=loopback loopback-domid=22 timeout=60000 ! fakesink");
		ASSERT_NE(gst_element_set_state(p, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
		std::this_thread::sleep_for(std::chrono::milliseconds(200 + 130 * round));
		auto t0 = std::chrono::steady_clock::now();
		EXPECT_EQ(gst_element_set_state(p, GST_STATE_NULL), GST_STATE_CHANGE_SUCCESS);
		EXPECT_LT(std::chrono::steady_clock::now() - t0, 250ms) << "round " << round;
		EXPECT_EQ(waitError(p, 0), "") << "stopping is not an error";
		gst_element_set_state(p, GST_STATE_NULL);
	}
}

/* ---- loopback end to end -------------------------------------------- */

struct Ends {
	GstElement *dom0 = nullptr, *guest = nullptr;
	GstElement *appsrc = nullptr, *sink = nullptr, *appsink = nullptr;
};

class E2E : public Gst
{
protected:
	Ends start(unsigned domid, const char *gstFormat, int w, int h, bool beAlloc = false)
	{
		Ends e;
		std::string caps = std::string("video/x-raw,format=") + gstFormat + ",width=" +
				   std::to_string(w) + ",height=" + std::to_string(h) + ",framerate=30/1";
		e.dom0 = pipeline("appsrc name=src format=time caps=" + caps +
				  " ! xmbcamerasink name=sink sync=false platform=loopback loopback-guest-domid=" +
				  std::to_string(domid) + (beAlloc ? " be-alloc=true" : ""));
		e.appsrc = byName(e.dom0, "src");
		e.sink = byName(e.dom0, "sink");
		EXPECT_NE(gst_element_set_state(e.dom0, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
		e.guest = startGuest(domid);
		e.appsink = byName(e.guest, "out");
		return e;
	}

	GstElement *startGuest(unsigned domid)
	{
		GstElement *g = pipeline("xmbcamerasrc platform=loopback timeout=5000 loopback-domid=" +
					 std::to_string(domid) + " ! appsink name=out sync=false");
		EXPECT_NE(gst_element_set_state(g, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
		return g;
	}

	/*
	 * Push frame n from \a pool (zero copy) or system memory (copy), in
	 * lock-step with the guest, until \a want frames arrived; each checked
	 * byte-exact.  \return frames received.
	 */
	int stream(Ends &e, GstElement *appsink, uint32_t fourcc, int w, int h, int want, GstBufferPool *pool)
	{
		int got = 0;
		for (uint64_t n = 0; n < 400 && got < want; n++) {
			std::vector<uint8_t> frame = test_pattern::frame(fourcc, w, h, n);
			GstBuffer *b = nullptr;
			if (pool) {
				EXPECT_EQ(gst_buffer_pool_acquire_buffer(pool, &b, nullptr), GST_FLOW_OK);
				gst_buffer_fill(b, 0, frame.data(), frame.size());
			} else {
				b = gst_buffer_new_memdup(frame.data(), frame.size());
			}
			GST_BUFFER_PTS(b) = n * GST_SECOND / 30;
			EXPECT_EQ(gst_app_src_push_buffer(GST_APP_SRC(e.appsrc), b), GST_FLOW_OK);
			GstSample *s = gst_app_sink_try_pull_sample(GST_APP_SINK(appsink), 100 * GST_MSECOND);
			if (!s)
				continue;
			GstBuffer *out = gst_sample_get_buffer(s);
			GstMapInfo map;
			EXPECT_TRUE(gst_buffer_map(out, &map, GST_MAP_READ));
			auto counter = test_pattern::readCounter(fourcc, w, h, map.data, map.size);
			EXPECT_TRUE(counter.has_value());
			if (counter) {
				EXPECT_LE(*counter, n);
				auto bad = test_pattern::firstMismatch(fourcc, w, h, *counter, map.data, map.size);
				EXPECT_FALSE(bad.has_value()) << "frame " << *counter << " differs at byte " << *bad;
			}
			EXPECT_TRUE(GST_BUFFER_PTS_IS_VALID(out));
			gst_buffer_unmap(out, &map);
			gst_sample_unref(s);
			got++;
		}
		return got;
	}

	static GstBufferPool *sinkPool(Ends &e)
	{
		GstPad *pad = gst_element_get_static_pad(e.appsrc, "src");
		GstCaps *caps = gst_pad_get_current_caps(pad);
		if (!caps)
			caps = gst_app_src_get_caps(GST_APP_SRC(e.appsrc));
		GstQuery *q = gst_query_new_allocation(caps, TRUE);
		GstBufferPool *pool = nullptr;
		if (gst_pad_peer_query(pad, q) && gst_query_get_n_allocation_pools(q) > 0)
			gst_query_parse_nth_allocation_pool(q, 0, &pool, nullptr, nullptr, nullptr);
		gst_query_unref(q);
		gst_caps_unref(caps);
		gst_object_unref(pad);
		if (pool)
			gst_buffer_pool_set_active(pool, TRUE);
		return pool;
	}
};

TEST_F(E2E, CopyTierDeliversExactFramesFromSystemMemory)
{
	Ends e = start(31, "NV12", 320, 240);
	ASSERT_EQ(stream(e, e.appsink, kNV12, 320, 240, 10, nullptr), 10);
	EXPECT_GE(stat(e.sink, "frames-copied"), 10u);
	EXPECT_GT(stat(e.sink, "bytes-copied"), 0u);
	EXPECT_EQ(stat(e.sink, "guests-connected"), 1u);
	GstPad *pad = gst_element_get_static_pad(e.appsink, "sink");
	GstCaps *caps = gst_pad_get_current_caps(pad);
	ASSERT_NE(caps, nullptr);
	GstCaps *want = gst_caps_from_string("video/x-raw,format=NV12,width=320,height=240,framerate=30/1");
	EXPECT_TRUE(gst_caps_is_subset(caps, want)) << gst_caps_to_string(caps);
	gst_caps_unref(want);
	gst_caps_unref(caps);
	gst_object_unref(pad);
	EXPECT_EQ(waitError(e.dom0, 0), "");
	EXPECT_EQ(waitError(e.guest, 0), "");
}

void expectZeroCopy(GstElement *sink, guint64 copiedBefore, guint64 zeroBefore, int frames)
{
	GstStructure *s = nullptr;
	g_object_get(sink, "stats", &s, nullptr);
	ASSERT_NE(s, nullptr);
	guint64 copied = 0, zero = 0;
	gst_structure_get_uint64(s, "frames-copied", &copied);
	gst_structure_get_uint64(s, "frames-zero-copy", &zero);
	gchar *str = gst_structure_to_string(s);
	EXPECT_EQ(copied, copiedBefore) << str;
	EXPECT_GE(zero - zeroBefore, static_cast<guint64>(frames)) << str;
	g_free(str);
	gst_structure_free(s);
}

TEST_F(E2E, UpstreamWritingIntoThePoolIsZeroCopy)
{
	Ends e = start(32, "NV12", 320, 240);
	/* Until the guest streams, frames are dropped (or copied once it does). */
	ASSERT_EQ(stream(e, e.appsink, kNV12, 320, 240, 1, nullptr), 1);
	GstBufferPool *pool = sinkPool(e);
	ASSERT_NE(pool, nullptr);
	guint64 copied = stat(e.sink, "frames-copied"), zero = stat(e.sink, "frames-zero-copy");
	ASSERT_EQ(stream(e, e.appsink, kNV12, 320, 240, 12, pool), 12);
	expectZeroCopy(e.sink, copied, zero, 12);
	gst_buffer_pool_set_active(pool, FALSE);
	gst_object_unref(pool);
}

TEST_F(E2E, BackendAllocatedBuffersAreZeroCopyToo)
{
	Ends e = start(33, "YUY2", 320, 240, true);
	ASSERT_EQ(stream(e, e.appsink, kYUYV, 320, 240, 1, nullptr), 1);
	GstBufferPool *pool = sinkPool(e);
	ASSERT_NE(pool, nullptr);
	guint64 copied = stat(e.sink, "frames-copied"), zero = stat(e.sink, "frames-zero-copy");
	ASSERT_EQ(stream(e, e.appsink, kYUYV, 320, 240, 8, pool), 8);
	expectZeroCopy(e.sink, copied, zero, 8);
	GstStructure *s = nullptr;
	g_object_get(e.sink, "stats", &s, nullptr);
	EXPECT_NE(std::string(gst_structure_get_string(s, "tier")).find("be-alloc"), std::string::npos);
	gst_structure_free(s);
	gst_buffer_pool_set_active(pool, FALSE);
	gst_object_unref(pool);
}

TEST_F(E2E, NewCapsRestartTheVcameraWithTheNewFormat)
{
	Ends e = start(34, "NV12", 320, 240);
	ASSERT_EQ(stream(e, e.appsink, kNV12, 320, 240, 3, nullptr), 3);
	gst_element_set_state(e.guest, GST_STATE_NULL);

	GstCaps *caps = gst_caps_from_string("video/x-raw,format=YUY2,width=640,height=480,framerate=30/1");
	gst_app_src_set_caps(GST_APP_SRC(e.appsrc), caps);
	gst_caps_unref(caps);
	/* The sink sees the new caps with the next buffer. */
	std::vector<uint8_t> f = test_pattern::frame(kYUYV, 640, 480, 0);
	ASSERT_EQ(gst_app_src_push_buffer(GST_APP_SRC(e.appsrc), gst_buffer_new_memdup(f.data(), f.size())), GST_FLOW_OK);
	std::this_thread::sleep_for(300ms);

	GstElement *g2 = startGuest(34);
	ASSERT_EQ(stream(e, byName(g2, "out"), kYUYV, 640, 480, 3, nullptr), 3);
	EXPECT_EQ(waitError(g2, 0), "");
}

TEST_F(E2E, EosReachesTheDom0Bus)
{
	Ends e = start(35, "NV12", 320, 240);
	ASSERT_EQ(stream(e, e.appsink, kNV12, 320, 240, 2, nullptr), 2);
	ASSERT_EQ(gst_app_src_end_of_stream(GST_APP_SRC(e.appsrc)), GST_FLOW_OK);
	GstBus *bus = gst_element_get_bus(e.dom0);
	GstMessage *m = gst_bus_timed_pop_filtered(bus, 5 * GST_SECOND,
						   static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
	ASSERT_NE(m, nullptr);
	EXPECT_EQ(GST_MESSAGE_TYPE(m), GST_MESSAGE_EOS);
	gst_message_unref(m);
	gst_object_unref(bus);
}

TEST_F(E2E, VideotestsrcThroughGstLaunchStylePipelineUsesThePool)
{
	/* One pipeline holding Dom0 and the guest, as the example script does. */
	GstElement *p = pipeline(
		"videotestsrc is-live=true num-buffers=150 ! video/x-raw,format=NV12,width=320,height=240,framerate=30/1 ! "
		"xmbcamerasink name=sink platform=loopback loopback-guest-domid=36 "
		"xmbcamerasrc platform=loopback loopback-domid=36 num-buffers=20 ! videoconvert ! "
		"video/x-raw,format=RGB ! fakesink name=out");
	ASSERT_NE(gst_element_set_state(p, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
	GstBus *bus = gst_element_get_bus(p);
	GstMessage *m = gst_bus_timed_pop_filtered(bus, 20 * GST_SECOND,
						   static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
	gst_object_unref(bus);
	ASSERT_NE(m, nullptr);
	EXPECT_EQ(GST_MESSAGE_TYPE(m), GST_MESSAGE_EOS) << waitError(p, 0);
	gst_message_unref(m);
	GstElement *sink = byName(p, "sink");
	EXPECT_GE(stat(sink, "frames-zero-copy"), 15u);
}

/* ---- xmbencoder (guest) ---------------------------------------------- */


/* Run \a p to EOS (or fail); the pipeline's appsink "out" collects the output. */
std::vector<GstBuffer *> runToEos(GstElement *p, const char *sinkName = "out")
{
	std::vector<GstBuffer *> out;
	GstElement *sink = gst_bin_get_by_name(GST_BIN(p), sinkName);
	EXPECT_NE(gst_element_set_state(p, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
	while (GstSample *smp = gst_app_sink_try_pull_sample(GST_APP_SINK(sink), 10 * GST_SECOND)) {
		out.push_back(gst_buffer_ref(gst_sample_get_buffer(smp)));
		gst_sample_unref(smp);
	}
	gst_object_unref(sink);
	return out;
}

/* Play \a p to its end, copying each frame out of appsink "out" and letting it go at once. */
std::vector<std::vector<uint8_t>> pullCopies(GstElement *p)
{
	std::vector<std::vector<uint8_t>> got;
	GstElement *sink = gst_bin_get_by_name(GST_BIN(p), "out");
	EXPECT_NE(gst_element_set_state(p, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
	while (GstSample *smp = gst_app_sink_try_pull_sample(GST_APP_SINK(sink), 10 * GST_SECOND)) {
		GstMapInfo m;
		if (gst_buffer_map(gst_sample_get_buffer(smp), &m, GST_MAP_READ)) {
			got.emplace_back(m.data, m.data + m.size);
			gst_buffer_unmap(gst_sample_get_buffer(smp), &m);
		}
		gst_sample_unref(smp);
	}
	gst_object_unref(sink);
	return got;
}

void unrefAll(std::vector<GstBuffer *> &v)
{
	for (GstBuffer *b : v)
		gst_buffer_unref(b);
	v.clear();
}

/* Decode \a stream (VP8 frames) with vp8dec; the number of I420 frames out. */
size_t decodeVp8(const std::vector<GstBuffer *> &stream, int w, int h)
{
	GstHarness *d = gst_harness_new("vp8dec");
	gst_harness_set_src_caps_str(d, ("video/x-vp8,width=" + std::to_string(w) + ",height=" +
					 std::to_string(h) + ",framerate=30/1").c_str());
	for (GstBuffer *b : stream) {
		GstFlowReturn r = gst_harness_push(d, gst_buffer_ref(b));
		EXPECT_EQ(r, GST_FLOW_OK) << gst_flow_get_name(r);
		if (r != GST_FLOW_OK)
			break;
	}
	gst_harness_push_event(d, gst_event_new_eos());
	size_t n = 0;
	while (GstBuffer *o = gst_harness_try_pull(d)) {
		EXPECT_EQ(gst_buffer_get_size(o), size_t(w) * h * 3 / 2);
		gst_buffer_unref(o);
		n++;
	}
	gst_harness_teardown(d);
	return n;
}

class Encoder : public Gst
{
protected:
	/*
	 * videotestsrc ! xmbencoder (loopback Dom0, VP8, \a n frames, \a props
	 * added): every frame rendered into the element's pool, none copied, the
	 * stream decodes.  The stream, for the caller's own checks (unref it).
	 */
	std::vector<GstBuffer *> encodeFromThePool(GstElement *&p, unsigned domid, const std::string &props, unsigned n)
	{
		p = pipeline("videotestsrc num-buffers=" + std::to_string(n) +
			     " ! video/x-raw,format=I420,width=320,height=240,framerate=30/1 ! xmbencoder name=enc "
			     "platform=loopback loopback-domid=" + std::to_string(domid) + " " + props +
			     " ! video/x-vp8 ! appsink name=out sync=false");
		auto stream = runToEos(p);
		EXPECT_EQ(stream.size(), n) << waitError(p, 0);
		EXPECT_EQ(decodeVp8(stream, 320, 240), n);
		GstElement *enc = byName(p, "enc");
		EXPECT_EQ(stat(enc, "frames-in"), n);
		EXPECT_EQ(stat(enc, "zero-copy-frames"), n) << "videotestsrc allocates from the element's pool";
		EXPECT_EQ(stat(enc, "raw-bytes-copied"), 0u);
		return stream;
	}
};

TEST_F(Encoder, IsRegisteredWithDocumentedDefaults)
{
	GstElement *e = gst_element_factory_make("xmbencoder", nullptr);
	ASSERT_NE(e, nullptr) << "GST_PLUGIN_PATH must point at build/gst-plugin";
	guint device = 9, bitrate = 0, buffers = 0, keyInt = 9;
	gint platform = -1;
	g_object_get(e, "device", &device, "bitrate", &bitrate, "buffers", &buffers, "key-int-max", &keyInt,
		     "platform", &platform, nullptr);
	EXPECT_EQ(device, 0u);
	EXPECT_EQ(bitrate, 2000000u);
	EXPECT_EQ(buffers, 4u);
	EXPECT_EQ(keyInt, 0u);
	EXPECT_EQ(platform, 0) << "real Xen by default";
	GstElementFactory *f = gst_element_get_factory(e);
	EXPECT_STREQ(gst_element_factory_get_klass(f), "Codec/Encoder/Video");
	gst_object_unref(e);
}

TEST_F(Encoder, LoopbackWithoutDomidFailsNamingTheProperty)
{
	GstElement *p = pipeline("videotestsrc num-buffers=1 ! xmbencoder platform=loopback ! fakesink");
	EXPECT_EQ(gst_element_set_state(p, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
	EXPECT_NE(waitError(p, GST_SECOND).find("loopback-domid"), std::string::npos);
}

TEST_F(Encoder, VideotestsrcRendersIntoGrantedPagesAndTheStreamDecodes)
{
	GstElement *p = nullptr;
	auto stream = encodeFromThePool(p, 41, "", 30);
	ASSERT_EQ(stream.size(), 30u);
	EXPECT_FALSE(GST_BUFFER_FLAG_IS_SET(stream[0], GST_BUFFER_FLAG_DELTA_UNIT)) << "starts with a key frame";
	EXPECT_TRUE(GST_BUFFER_FLAG_IS_SET(stream[1], GST_BUFFER_FLAG_DELTA_UNIT));
	EXPECT_FALSE(statFlag(byName(p, "enc"), "dom0-allocated"));
	unrefAll(stream);
}

/*
 * be-alloc: the element's pool is the INPUT buffers Dom0 allocated and
 * granted (mapped here), so videotestsrc renders straight into Dom0's pages:
 * every frame zero-copy, nothing copied, the stream still decodes.
 */
TEST_F(Encoder, WithABeAllocDom0ThePoolIsDom0sGrantedBuffers)
{
	GstElement *p = nullptr;
	auto stream = encodeFromThePool(p, 43, "loopback-be-alloc=true", 20);
	EXPECT_TRUE(statFlag(byName(p, "enc"), "dom0-allocated")) << "Dom0 published be-alloc and the buffers are its";
	unrefAll(stream);
}

TEST_F(Encoder, SystemMemoryIsCopiedCountedAndStillEncoded)
{
	GstHarness *h = gst_harness_new_parse("xmbencoder platform=loopback loopback-domid=42 ! capsfilter caps=video/x-vp8");
	gst_harness_set_src_caps_str(h, "video/x-raw,format=I420,width=160,height=120,framerate=30/1");
	const size_t size = 160 * 120 * 3 / 2;
	for (int i = 0; i < 10; i++) {
		GstBuffer *b = gst_buffer_new_allocate(nullptr, size, nullptr);
		gst_buffer_memset(b, 0, static_cast<guint8>(16 + i * 10), size);
		GST_BUFFER_PTS(b) = i * GST_SECOND / 30;
		GST_BUFFER_DURATION(b) = GST_SECOND / 30;
		if (i == 5) /* GstForceKeyUnit for the next frame */
			gst_harness_push_event(h, gst_video_event_new_downstream_force_key_unit(
							  GST_BUFFER_PTS(b), GST_CLOCK_TIME_NONE, GST_CLOCK_TIME_NONE,
							  TRUE, 1));
		ASSERT_EQ(gst_harness_push(h, b), GST_FLOW_OK);
	}
	ASSERT_TRUE(gst_harness_push_event(h, gst_event_new_eos()));
	std::vector<GstBuffer *> stream;
	while (GstBuffer *o = gst_harness_try_pull(h))
		stream.push_back(o);
	ASSERT_EQ(stream.size(), 10u) << "EOS drains every frame";
	for (size_t i = 0; i < stream.size(); i++)
		EXPECT_EQ(!GST_BUFFER_FLAG_IS_SET(stream[i], GST_BUFFER_FLAG_DELTA_UNIT), i == 0 || i == 5)
			<< "frame " << i << ": key frames are the first and the forced one";
	EXPECT_EQ(decodeVp8(stream, 160, 120), 10u);
	GstElement *enc = gst_harness_find_element(h, "xmbencoder");
	ASSERT_NE(enc, nullptr);
	EXPECT_EQ(stat(enc, "zero-copy-frames"), 0u);
	EXPECT_EQ(stat(enc, "raw-bytes-copied"), 10u * size) << "each copy counted";
	gst_object_unref(enc);
	unrefAll(stream);
	gst_harness_teardown(h);
}

TEST_F(Encoder, H264ThroughParseAndMp4muxAsInTheExample)
{
	GstElement *p = pipeline("videotestsrc num-buffers=20 ! video/x-raw,width=320,height=240,framerate=30/1 ! "
				 "xmbencoder name=enc platform=loopback loopback-domid=43 ! h264parse ! "
				 "video/x-h264,stream-format=avc ! appsink name=out sync=false");
	auto stream = runToEos(p);
	EXPECT_EQ(stream.size(), 20u) << waitError(p, 0);
	EXPECT_EQ(stat(byName(p, "enc"), "raw-bytes-copied"), 0u);
	unrefAll(stream);
}

TEST_F(Encoder, H265DownstreamCapsChooseHevcAndTheStreamDecodes)
{
	GstElement *p = pipeline("videotestsrc num-buffers=12 ! video/x-raw,format=I420,width=320,height=240,"
				 "framerate=30/1 ! xmbencoder name=enc platform=loopback loopback-domid=44 ! "
				 "video/x-h265 ! appsink name=out sync=false");
	auto stream = runToEos(p);
	ASSERT_EQ(stream.size(), 12u) << waitError(p, 0);
	EXPECT_EQ(stat(byName(p, "enc"), "raw-bytes-copied"), 0u);
	GstHarness *d = gst_harness_new_parse("h265parse ! libde265dec");
	gst_harness_set_src_caps_str(d, "video/x-h265,stream-format=byte-stream,alignment=au");
	for (GstBuffer *b : stream)
		ASSERT_EQ(gst_harness_push(d, gst_buffer_ref(b)), GST_FLOW_OK);
	gst_harness_push_event(d, gst_event_new_eos());
	size_t decoded = 0; /* libde265dec decodes on threads of its own: wait for them */
	for (auto end = std::chrono::steady_clock::now() + 5s; decoded < 12 && std::chrono::steady_clock::now() < end;) {
		if (GstBuffer *o = gst_harness_try_pull(d)) {
			gst_buffer_unref(o);
			decoded++;
		} else {
			std::this_thread::sleep_for(10ms);
		}
	}
	EXPECT_EQ(decoded, 12u);
	gst_harness_teardown(d);
	unrefAll(stream);
}

/* ---- xmbguestsrc (Dom0) and xmbguestsink (guest): guest frames into a Dom0 pipeline ---- */

using GuestSrc = Gst;
using GuestSink = Gst;
using GuestFrames = Gst;

TEST_F(GuestSrc, IsRegisteredLiveWithDocumentedDefaults)
{
	GstElement *e = gst_element_factory_make("xmbguestsrc", nullptr);
	ASSERT_NE(e, nullptr) << "GST_PLUGIN_PATH must point at build/gst-plugin";
	guint device = 9, maxBuffers = 0, loopDom = 9;
	gboolean eos = TRUE;
	gint platform = -1;
	gchar *guest = nullptr;
	g_object_get(e, "device", &device, "max-buffers", &maxBuffers, "eos-on-drain", &eos, "platform",
		     &platform, "loopback-guest-domid", &loopDom, "guest", &guest, nullptr);
	EXPECT_EQ(device, 0u);
	EXPECT_EQ(maxBuffers, 8u);
	EXPECT_FALSE(eos);
	EXPECT_EQ(platform, 0) << "real Xen by default";
	EXPECT_EQ(loopDom, 0u);
	EXPECT_EQ(guest, nullptr);
	EXPECT_TRUE(gst_base_src_is_live(GST_BASE_SRC(e)));
	EXPECT_STREQ(gst_element_factory_get_klass(gst_element_get_factory(e)), "Source/Video");
	EXPECT_EQ(stat(e, "raw-bytes-copied"), 0u);
	gst_object_unref(e);
}

TEST_F(GuestSrc, WithoutAGuestFailsNamingTheProperty)
{
	GstElement *p = pipeline("xmbguestsrc platform=loopback ! fakesink");
	EXPECT_EQ(gst_element_set_state(p, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
	EXPECT_NE(waitError(p, GST_SECOND).find("guest=<domain name or domid>"), std::string::npos);
}

TEST_F(GuestSrc, RealXenPlatformErrorSaysWhatToDo)
{
	GstElement *p = pipeline("xmbguestsrc guest=1 ! fakesink");
	EXPECT_EQ(gst_element_set_state(p, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
	EXPECT_NE(waitError(p, GST_SECOND).find("platform=loopback"), std::string::npos);
}

TEST_F(GuestSrc, WaitsForAGuestAndStopsCleanly)
{
	GstElement *p = pipeline("xmbguestsrc platform=loopback loopback-guest-domid=70 ! fakesink");
	ASSERT_NE(gst_element_set_state(p, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
	std::this_thread::sleep_for(200ms);
	auto t0 = std::chrono::steady_clock::now();
	EXPECT_EQ(gst_element_set_state(p, GST_STATE_NULL), GST_STATE_CHANGE_SUCCESS);
	EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
	EXPECT_EQ(waitError(p, 0), "");
}

TEST_F(GuestSink, LoopbackWithoutDomidFailsNamingTheProperty)
{
	GstElement *p = pipeline("videotestsrc num-buffers=1 ! xmbguestsink platform=loopback");
	EXPECT_EQ(gst_element_set_state(p, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
	EXPECT_NE(waitError(p, GST_SECOND).find("loopback-domid"), std::string::npos);
}

TEST_F(GuestSink, NoDom0PipelineTimesOutNamingTheDevice)
{
	GstElement *p = pipeline("videotestsrc num-buffers=1 ! video/x-raw,format=NV12 ! "
				 "xmbguestsink platform=loopback loopback-domid=71 device=3 timeout=300");
	ASSERT_NE(gst_element_set_state(p, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
	std::string err = waitError(p, 5 * GST_SECOND);
	EXPECT_NE(err.find("vcodec device 3"), std::string::npos) << err;
	EXPECT_NE(err.find("xmbguestsrc"), std::string::npos) << err;
}

TEST_F(GuestSink, StoppingWhileWaitingForDom0IsPrompt)
{
	/* No Dom0 pipeline and a long timeout: neither going to PLAYING (the first
	 * caps wait for Dom0 under GstBaseSink's preroll lock), nor stopping, nor
	 * disposing of the pipeline (which joins every streaming thread) waits for it. */
	for (int round = 0; round < 3; round++) {
		auto start = std::chrono::steady_clock::now();
		GstElement *p = gst_parse_launch("videotestsrc ! video/x-raw,format=NV12 ! "
						 "xmbguestsink platform=loopback loopback-domid=76 timeout=20000",
						 nullptr);
		ASSERT_NE(p, nullptr);
		ASSERT_NE(gst_element_set_state(p, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
		std::this_thread::sleep_for(std::chrono::milliseconds(100 + 150 * round));
		auto t0 = std::chrono::steady_clock::now();
		EXPECT_EQ(gst_element_set_state(p, GST_STATE_NULL), GST_STATE_CHANGE_SUCCESS);
		EXPECT_EQ(waitError(p, 0), "") << "stopping is not an error";
		gst_object_unref(p);
		EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s) << "round " << round;
		EXPECT_LT(std::chrono::steady_clock::now() - start, 4s) << "round " << round << ": PLAYING waited";
	}
}

/* The same frames a reference videotestsrc makes, byte for byte. */
static std::vector<std::vector<uint8_t>> referenceFrames(const std::string &caps, int n)
{
	GError *err = nullptr;
	GstElement *p = gst_parse_launch(("videotestsrc num-buffers=" + std::to_string(n) + " ! " + caps +
					  " ! appsink name=out sync=false")
						 .c_str(),
					 &err);
	EXPECT_EQ(err, nullptr);
	auto bufs = runToEos(p);
	std::vector<std::vector<uint8_t>> out;
	for (GstBuffer *b : bufs) {
		GstMapInfo m;
		gst_buffer_map(b, &m, GST_MAP_READ);
		out.emplace_back(m.data, m.data + m.size);
		gst_buffer_unmap(b, &m);
	}
	unrefAll(bufs);
	gst_element_set_state(p, GST_STATE_NULL);
	gst_object_unref(p);
	return out;
}

/* A guest pipeline (videotestsrc, \a n frames of \a caps) into a Dom0 one, both in loopback domain \a domid. */
static std::string guestToDom0(const std::string &caps, unsigned n, unsigned domid, const std::string &srcProps = "")
{
	const std::string d = std::to_string(domid);
	return "videotestsrc num-buffers=" + std::to_string(n) + " ! " + caps +
	       " ! xmbguestsink name=gsink platform=loopback loopback-domid=" + d +
	       " sync=false xmbguestsrc name=gsrc platform=loopback loopback-guest-domid=" + d + " " + srcProps +
	       " eos-on-drain=true ! appsink name=out sync=false enable-last-sample=false";
}

TEST_F(GuestFrames, GuestPipelineFramesReachTheDom0PipelineInPlaceWithTheirTimestamps)
{
	const std::string caps = "video/x-raw,format=NV12,width=320,height=240,framerate=30/1";
	GstElement *p = pipeline(guestToDom0(caps, 30, 72));
	GstElement *sink = byName(p, "out");
	ASSERT_NE(gst_element_set_state(p, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
	/* Each frame is checked and let go at once: the guest has only 4 granted buffers. */
	std::vector<std::vector<uint8_t>> got;
	std::vector<GstClockTime> pts;
	while (GstSample *smp = gst_app_sink_try_pull_sample(GST_APP_SINK(sink), 10 * GST_SECOND)) {
		GstBuffer *b = gst_sample_get_buffer(smp);
		EXPECT_TRUE(GST_MEMORY_IS_READONLY(gst_buffer_peek_memory(b, 0)))
			<< "guest pages are handed over read-only";
		GstMapInfo m;
		EXPECT_TRUE(gst_buffer_map(b, &m, GST_MAP_READ));
		got.emplace_back(m.data, m.data + m.size);
		gst_buffer_unmap(b, &m);
		pts.push_back(GST_BUFFER_PTS(b));
		if (got.size() == 1) {
			GstCaps *c = gst_sample_get_caps(smp);
			GstCaps *want = gst_caps_from_string(caps.c_str());
			EXPECT_TRUE(c && gst_caps_is_subset(c, want)) << (c ? gst_caps_to_string(c) : "no caps");
			gst_caps_unref(want);
		}
		gst_sample_unref(smp);
	}
	ASSERT_EQ(got.size(), 30u) << waitError(p, 0);
	auto ref = referenceFrames(caps, 30);
	ASSERT_EQ(ref.size(), 30u);
	for (size_t i = 0; i < got.size(); i++) {
		ASSERT_GE(got[i].size(), ref[i].size());
		EXPECT_EQ(std::memcmp(got[i].data(), ref[i].data(), ref[i].size()), 0) << "frame " << i;
		/* The guest's timestamps: 1/30 s apart, whatever the arrival times were. */
		EXPECT_EQ(pts[i] - pts[0], gst_util_uint64_scale(i, GST_SECOND, 30)) << i;
	}
	EXPECT_EQ(stat(byName(p, "gsink"), "zero-copy-frames"), 30u) << "videotestsrc renders into granted pages";
	EXPECT_EQ(stat(byName(p, "gsink"), "raw-bytes-copied"), 0u);
	EXPECT_EQ(stat(byName(p, "gsrc"), "frames-in"), 30u);
	EXPECT_EQ(stat(byName(p, "gsrc"), "frames-pushed"), 30u);
	/* Freed frames went back to the guest; appsink caches its last sample (1.22). */
	EXPECT_LE(stat(byName(p, "gsrc"), "frames-in-pipeline"), 1u);
	EXPECT_EQ(waitError(p, 0), "");
}

/*
 * xmbguestsrc be-alloc=true: Dom0 allocates the guest's INPUT buffers and
 * grants them; xmbguestsink's pool is those pages, so videotestsrc renders
 * into Dom0's memory and the Dom0 pipeline gets the very frames, exact.
 */
TEST_F(GuestFrames, WithBeAllocTheGuestsPoolIsDom0sPagesAndFramesArriveExact)
{
	const std::string caps = "video/x-raw,format=NV12,width=320,height=240,framerate=30/1";
	GstElement *p = pipeline(guestToDom0(caps, 20, 77, "be-alloc=true"));
	/* Copied and let go at once, like the Dom0 pipeline above: the guest has few granted buffers. */
	auto got = pullCopies(p);
	ASSERT_EQ(got.size(), 20u) << waitError(p, 0);
	auto ref = referenceFrames(caps, 20);
	ASSERT_EQ(ref.size(), 20u);
	for (size_t i = 0; i < got.size(); i++)
		EXPECT_TRUE(got[i].size() >= ref[i].size() && std::memcmp(got[i].data(), ref[i].data(), ref[i].size()) == 0)
			<< "frame " << i;
	GstElement *gsink = byName(p, "gsink");
	EXPECT_EQ(stat(gsink, "zero-copy-frames"), 20u) << "videotestsrc renders into the granted pages";
	EXPECT_EQ(stat(gsink, "raw-bytes-copied"), 0u);
	EXPECT_TRUE(statFlag(gsink, "dom0-allocated")) << "the pool's buffers are Dom0's pages";
	EXPECT_EQ(waitError(p, 0), "");
}

TEST_F(GuestFrames, FramesHeldInDom0ThrottleTheGuestUntilFreed)
{
	GstElement *p = pipeline("videotestsrc num-buffers=10 ! video/x-raw,format=I420,width=160,height=120 ! "
				 "xmbguestsink name=gsink buffers=2 platform=loopback loopback-domid=75 sync=false "
				 "xmbguestsrc name=gsrc platform=loopback loopback-guest-domid=75 eos-on-drain=true ! "
				 "appsink name=out sync=false enable-last-sample=false");
	GstElement *sink = byName(p, "out");
	ASSERT_NE(gst_element_set_state(p, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
	std::vector<GstBuffer *> held;
	for (int i = 0; i < 2; i++) {
		GstSample *smp = gst_app_sink_try_pull_sample(GST_APP_SINK(sink), 5 * GST_SECOND);
		ASSERT_NE(smp, nullptr);
		held.push_back(gst_buffer_ref(gst_sample_get_buffer(smp)));
		gst_sample_unref(smp);
	}
	std::this_thread::sleep_for(300ms);
	EXPECT_EQ(stat(byName(p, "gsrc"), "frames-in"), 2u) << "both granted buffers are in use in Dom0";
	EXPECT_EQ(stat(byName(p, "gsrc"), "frames-in-pipeline"), 2u);
	unrefAll(held); /* INPUT_DONE: the guest goes on */
	int rest = 0;
	while (GstSample *smp = gst_app_sink_try_pull_sample(GST_APP_SINK(sink), 5 * GST_SECOND)) {
		gst_sample_unref(smp);
		rest++;
	}
	EXPECT_EQ(rest, 8);
	EXPECT_EQ(waitError(p, 0), "");
}

TEST_F(GuestFrames, SystemMemoryIsCopiedCountedAndPixelExact)
{
	GstElement *p = pipeline("appsrc name=src format=time caps=video/x-raw,format=NV12,width=160,height=120,"
				 "framerate=30/1 ! xmbguestsink name=gsink platform=loopback loopback-domid=73 "
				 "sync=false xmbguestsrc platform=loopback loopback-guest-domid=73 eos-on-drain=true ! "
				 "appsink name=out sync=false");
	GstElement *src = byName(p, "src");
	ASSERT_NE(gst_element_set_state(p, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
	for (uint64_t n = 0; n < 8; n++) {
		auto frame = test_pattern::frame(kNV12, 160, 120, n);
		GstBuffer *b = gst_buffer_new_memdup(frame.data(), frame.size());
		GST_BUFFER_PTS(b) = n * GST_SECOND / 30;
		ASSERT_EQ(gst_app_src_push_buffer(GST_APP_SRC(src), b), GST_FLOW_OK);
	}
	gst_app_src_end_of_stream(GST_APP_SRC(src));
	GstElement *sink = byName(p, "out");
	int got = 0;
	while (GstSample *s = gst_app_sink_try_pull_sample(GST_APP_SINK(sink), 5 * GST_SECOND)) {
		GstMapInfo m;
		GstBuffer *b = gst_sample_get_buffer(s);
		ASSERT_TRUE(gst_buffer_map(b, &m, GST_MAP_READ));
		auto bad = test_pattern::firstMismatch(kNV12, 160, 120, static_cast<uint64_t>(got), m.data, m.size);
		EXPECT_FALSE(bad.has_value()) << "frame " << got << " differs at byte " << *bad;
		gst_buffer_unmap(b, &m);
		gst_sample_unref(s);
		got++;
	}
	EXPECT_EQ(got, 8);
	EXPECT_EQ(stat(byName(p, "gsink"), "raw-bytes-copied"), 8u * 160 * 120 * 3 / 2) << "each copy counted";
	EXPECT_EQ(stat(byName(p, "gsink"), "zero-copy-frames"), 0u);
}

TEST_F(GuestFrames, ForceKeyUnitInTheGuestMakesTheDom0EncoderEmitAKeyFrame)
{
	GstElement *p = pipeline("appsrc name=src format=time caps=video/x-raw,format=I420,width=160,height=120,"
				 "framerate=30/1 ! xmbguestsink platform=loopback loopback-domid=74 sync=false "
				 "xmbguestsrc platform=loopback loopback-guest-domid=74 eos-on-drain=true ! "
				 "vp8enc deadline=1 keyframe-max-dist=1000 ! appsink name=out sync=false");
	GstElement *src = byName(p, "src");
	ASSERT_NE(gst_element_set_state(p, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
	for (uint64_t n = 0; n < 10; n++) {
		if (n == 6)
			gst_element_send_event(src, gst_video_event_new_downstream_force_key_unit(
							    n * GST_SECOND / 30, GST_CLOCK_TIME_NONE,
							    GST_CLOCK_TIME_NONE, TRUE, 1));
		auto frame = test_pattern::frame(0x32315559 /* YU12 */, 160, 120, n);
		GstBuffer *b = gst_buffer_new_memdup(frame.data(), frame.size());
		GST_BUFFER_PTS(b) = n * GST_SECOND / 30;
		ASSERT_EQ(gst_app_src_push_buffer(GST_APP_SRC(src), b), GST_FLOW_OK);
	}
	gst_app_src_end_of_stream(GST_APP_SRC(src));
	std::vector<GstBuffer *> out;
	GstElement *sink = byName(p, "out");
	while (GstSample *s = gst_app_sink_try_pull_sample(GST_APP_SINK(sink), 5 * GST_SECOND)) {
		out.push_back(gst_buffer_ref(gst_sample_get_buffer(s)));
		gst_sample_unref(s);
	}
	ASSERT_EQ(out.size(), 10u) << waitError(p, 0);
	for (size_t i = 0; i < out.size(); i++)
		EXPECT_EQ(!GST_BUFFER_FLAG_IS_SET(out[i], GST_BUFFER_FLAG_DELTA_UNIT), i == 0 || i == 6)
			<< "frame " << i << ": key frames are the first and the one the guest asked for";
	EXPECT_EQ(decodeVp8(out, 160, 120), 10u);
	unrefAll(out);
}

} /* namespace */
