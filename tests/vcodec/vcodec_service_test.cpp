/* SPDX-License-Identifier: MIT */
/*
 * The vcodec service end to end on the loopback hypervisor: Dom0's service
 * loop in a thread, guests (frontend library) in the test thread, real
 * GStreamer software encoders.  The output is decoded with GStreamer and
 * compared with the input frames (PSNR).
 */
#include <atomic>
#include <cstdlib>
#include <dirent.h>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <thread>

#include <sys/resource.h>
#include <unistd.h>

#include <gst/app/gstappsink.h>
#include <gst/gst.h>
#include <gst/video/video.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/common/process_stats.h"

extern "C" {
#include <xen/errno.h>
}

#include "bridge/platform/loopback/loopback_xen.h"
#include "bridge/vcodec/codec_frontend.h"
#include "bridge/vcodec/codec_service.h"
#include "bridge/vcodec/encode_app.h"
#include "bridge/vcodec/gst_encoder.h"
#include "v4l2/test_pattern.h"

using namespace xmb;
using namespace xmb::vcodec;
using namespace std::chrono_literals;

using xmb::test::envOr;
using xmb::test::openFds;
using xmb::test::rssKiB;

namespace {

constexpr uint32_t kYU12 = 0x32315559;
/* PSNR threshold at a generous bitrate (4 Mbit/s for 320x240 VP8). */
constexpr double kMinPsnr = 30.0;

class VcodecServiceTest : public ::testing::Test
{
protected:
	void start(std::vector<xen::DomId> guests, uint8_t maxBuffers = 8)
	{
		hv = xen::LoopbackXen::create();
		CodecServiceConfig cfg;
		for (auto g : guests) {
			ASSERT_TRUE(hv->createDomain(g, "guest" + std::to_string(g)));
			CodecGuest cg;
			cg.name = "guest" + std::to_string(g);
			cg.domid = g;
			cg.maxBuffers = maxBuffers;
			cfg.guests.push_back(cg);
		}
		for (auto g : guests) {
			auto gp = hv->open(g);
			ASSERT_TRUE(gp);
			guest[g] = std::move(*gp);
		}
		startService(cfg);
	}

	/*
	 * The service for one guest configured by domain name (it may come and
	 * go with new domids); domains named so made before are attached at once.
	 */
	void startNamed(const std::string &name)
	{
		CodecServiceConfig cfg;
		CodecGuest cg;
		cg.name = name;
		cg.domainName = name;
		cfg.guests.push_back(cg);
		startService(cfg);
	}

	/* Dom0 on hv (made by the caller), the service with \a cfg, its loop on a thread. */
	void startService(const CodecServiceConfig &cfg)
	{
		auto p = hv->open(0);
		ASSERT_TRUE(p);
		dom0 = std::move(*p);
		svc = std::make_unique<CodecService>(*dom0, loop, probeGstCodecs());
		Status s = svc->start(cfg);
		ASSERT_TRUE(s) << s.error().message;
		thread = std::thread([this] {
			while (!stop)
				loop.dispatch(20);
		});
	}

	template<typename Fn>
	void onService(Fn fn)
	{
		std::atomic<bool> done{ false };
		loop.defer([&] {
			fn();
			done = true;
		});
		while (!done)
			std::this_thread::sleep_for(2ms);
	}

	std::vector<CodecDeviceReport> report()
	{
		std::vector<CodecDeviceReport> r;
		onService([&] { r = svc->report(); });
		return r;
	}

	bool waitFor(const std::function<bool()> &cond, std::chrono::milliseconds t = 5000ms)
	{
		auto end = std::chrono::steady_clock::now() + t;
		while (std::chrono::steady_clock::now() < end) {
			if (cond())
				return true;
			std::this_thread::sleep_for(10ms);
		}
		return cond();
	}

	void TearDown() override
	{
		if (svc)
			onService([&] { svc->stop(); });
		stop = true;
		if (thread.joinable())
			thread.join();
	}

	service::EventLoop loop;
	std::shared_ptr<xen::LoopbackXen> hv;
	std::unique_ptr<xen::Platform> dom0;
	std::map<xen::DomId, std::unique_ptr<xen::Platform>> guest;
	std::unique_ptr<CodecService> svc;
	std::thread thread;
	std::atomic<bool> stop{ false };
};

/* Decode an IVF file with GStreamer into tightly packed I420 frames. */
std::vector<std::vector<uint8_t>> decodeIvf(const std::string &path, const char *decoder, uint32_t w,
					    uint32_t h)
{
	initGstreamer();
	std::string desc = "filesrc location=" + path + " ! ivfparse ! " + decoder +
			   " ! videoconvert ! video/x-raw,format=I420 ! appsink name=sink sync=false";
	GError *err = nullptr;
	GstElement *pl = gst_parse_launch(desc.c_str(), &err);
	EXPECT_TRUE(pl && !err);
	if (err)
		g_clear_error(&err);
	GstElement *sink = gst_bin_get_by_name(GST_BIN(pl), "sink");
	gst_element_set_state(pl, GST_STATE_PLAYING);
	std::vector<std::vector<uint8_t>> frames;
	while (GstSample *s = gst_app_sink_try_pull_sample(GST_APP_SINK(sink), 5 * GST_SECOND)) {
		GstVideoInfo info;
		gst_video_info_from_caps(&info, gst_sample_get_caps(s));
		GstVideoFrame vf;
		if (gst_video_frame_map(&vf, &info, gst_sample_get_buffer(s), GST_MAP_READ)) {
			std::vector<uint8_t> out;
			for (unsigned p = 0; p < 3; p++) {
				uint32_t pw = p ? w / 2 : w, ph = p ? h / 2 : h;
				const uint8_t *src = static_cast<const uint8_t *>(GST_VIDEO_FRAME_PLANE_DATA(&vf, p));
				int stride = GST_VIDEO_FRAME_PLANE_STRIDE(&vf, p);
				for (uint32_t y = 0; y < ph; y++)
					out.insert(out.end(), src + y * stride, src + y * stride + pw);
			}
			gst_video_frame_unmap(&vf);
			frames.push_back(std::move(out));
		}
		gst_sample_unref(s);
	}
	gst_element_set_state(pl, GST_STATE_NULL);
	gst_object_unref(sink);
	gst_object_unref(pl);
	return frames;
}

/* VP8 from YU12 at 30 fps, the configuration most tests open. */
xenvcodec_config vp8Config(uint32_t width, uint32_t height, uint32_t bitrate)
{
	xenvcodec_config c{};
	c.codec = XENVCODEC_CODEC_VP8;
	c.raw_fourcc = kYU12;
	c.width = width;
	c.height = height;
	c.frame_rate_numer = 30;
	c.frame_rate_denom = 1;
	c.bitrate = bitrate;
	return c;
}

double psnr(const std::vector<uint8_t> &a, const std::vector<uint8_t> &b)
{
	double se = 0;
	size_t n = std::min(a.size(), b.size());
	for (size_t i = 0; i < n; i++) {
		double d = double(a[i]) - double(b[i]);
		se += d * d;
	}
	double mse = se / n;
	return mse == 0 ? 99.0 : 10 * std::log10(255.0 * 255.0 / mse);
}

} /* namespace */

TEST_F(VcodecServiceTest, PublishesCapabilities)
{
	start({ 1 });
	auto caps = CodecFrontend::describe(*guest[1], 0);
	ASSERT_TRUE(caps) << caps.error().message;
	ASSERT_TRUE(caps->find(XENVCODEC_CODEC_VP8));
	EXPECT_EQ(caps->maxBuffers, 8);
	const auto *vp8 = caps->find(XENVCODEC_CODEC_VP8);
	EXPECT_NE(std::find(vp8->rawFormats.begin(), vp8->rawFormats.end(), kYU12), vp8->rawFormats.end());
}

TEST_F(VcodecServiceTest, Vp8EndToEndDecodesAbovePsnrThreshold)
{
	start({ 1 });
	CodecFrontend fe(*guest[1]);
	ASSERT_TRUE(fe.connect(0));
	EncodeOptions opt;
	opt.codec = "vp8";
	opt.width = 320;
	opt.height = 240;
	opt.frames = 30;
	opt.bitrate = 4000000;
	opt.output = ::testing::TempDir() + "vcodec_e2e.ivf";
	auto r = runEncode(fe, opt);
	ASSERT_TRUE(r) << r.error().message;
	EXPECT_TRUE(r->drained);
	EXPECT_EQ(r->frames.size(), 30u);
	EXPECT_EQ(r->errors, 0u);

	auto rep = report();
	ASSERT_EQ(rep.size(), 1u);
	EXPECT_EQ(rep[0].stats.rawBytesCopied, 0u);
	EXPECT_EQ(rep[0].stats.compressedBytesCopied, r->bytes);
	EXPECT_EQ(rep[0].stats.framesIn, 30u);
	/* What --status shows: what was opened, the bitstream rate, QUEUE_RAW-to-bitstream latency. */
	EXPECT_THAT(rep[0].format, ::testing::StartsWith("vp8 320x240 "));
	EXPECT_GT(rep[0].stats.fpsMilli, 0u);
	ASSERT_TRUE(rep[0].stats.latencyP50Us && rep[0].stats.latencyP99Us);
	EXPECT_GE(*rep[0].stats.latencyP99Us, *rep[0].stats.latencyP50Us);

	auto decoded = decodeIvf(opt.output, "vp8dec", opt.width, opt.height);
	ASSERT_EQ(decoded.size(), 30u);
	double minPsnr = 1e9, sum = 0;
	for (uint32_t n = 0; n < decoded.size(); n++) {
		auto ref = test_pattern::frame(kYU12, opt.width, opt.height, n);
		double p = psnr(decoded[n], ref);
		minPsnr = std::min(minPsnr, p);
		sum += p;
	}
	std::printf("vp8 320x240 @ 4 Mbit/s: PSNR min %.2f dB, mean %.2f dB (threshold %.0f)\n", minPsnr,
		    sum / decoded.size(), kMinPsnr);
	EXPECT_GT(minPsnr, kMinPsnr);

	fe.disconnect();
	EXPECT_TRUE(waitFor([&] { return hv->mappedGrants(1) == 0; }));
}

TEST_F(VcodecServiceTest, ForcedKeyFramesAreKeyFrames)
{
	start({ 1 });
	CodecFrontend fe(*guest[1]);
	ASSERT_TRUE(fe.connect(0));
	EncodeOptions opt;
	opt.width = 320;
	opt.height = 240;
	opt.frames = 24;
	opt.gop = 1000; /* no automatic key frame after the first */
	opt.keyFrames = { 7, 13 };
	auto r = runEncode(fe, opt);
	ASSERT_TRUE(r) << r.error().message;
	ASSERT_EQ(r->frames.size(), 24u);
	const uint64_t frameNs = 1000000000ull / 30;
	for (const auto &f : r->frames) {
		bool want = f.seq == 0 || f.seq == 7 || f.seq == 13;
		EXPECT_EQ(f.key, want) << "frame " << f.seq;
		EXPECT_EQ(f.timestamp, f.seq * frameNs); /* the guest's timestamp comes back */
	}
	/* FORCE_KEY (the request, not the flag) applies to the next queued frame.  runEncode
	 * left every OUTPUT buffer queued and every INPUT buffer free. */
	auto encodeOne = [&](uint8_t idx, uint64_t ts) -> std::optional<bool> {
		if (!fe.queueRaw(idx, ts))
			return std::nullopt;
		for (int i = 0; i < 4; i++) {
			auto e = fe.waitEvent();
			if (!e)
				return std::nullopt;
			if (e->type == XENVCODEC_EVT_BITSTREAM_READY) {
				EXPECT_TRUE(fe.queueOut(e->index));
				return e->key;
			}
		}
		return std::nullopt;
	};
	EXPECT_EQ(encodeOne(0, 100), std::optional<bool>(true)); /* first after the drain's restart */
	EXPECT_EQ(encodeOne(1, 101), std::optional<bool>(false));
	ASSERT_TRUE(fe.forceKeyFrame());
	EXPECT_EQ(encodeOne(2, 102), std::optional<bool>(true));
	EXPECT_EQ(encodeOne(3, 103), std::optional<bool>(false));
	fe.disconnect();
}

TEST_F(VcodecServiceTest, BitrateChangeMidStreamIsApplied)
{
	start({ 1 });
	CodecFrontend fe(*guest[1]);
	ASSERT_TRUE(fe.connect(0));
	EncodeOptions opt;
	opt.width = 320;
	opt.height = 240;
	opt.frames = 60;
	opt.rc = "cbr";
	opt.bitrate = 150000;
	opt.bitrateAt = std::pair<uint32_t, uint32_t>(30, 3000000);
	auto r = runEncode(fe, opt);
	ASSERT_TRUE(r) << r.error().message;
	ASSERT_EQ(r->frames.size(), 60u);
	uint64_t first = 0, second = 0;
	for (const auto &f : r->frames)
		(f.seq < 30 ? first : second) += f.bytes;
	std::printf("bitrate 150 kbit/s -> 3 Mbit/s at frame 30: %llu bytes before, %llu after\n",
		    (unsigned long long)first, (unsigned long long)second);
	EXPECT_GT(second, first * 2); /* 20x the bitrate; rate control ramps, so only 2x is asserted */
	fe.disconnect();
}

TEST_F(VcodecServiceTest, DrainReturnsAllPendingBitstream)
{
	start({ 1 });
	CodecFrontend fe(*guest[1]);
	ASSERT_TRUE(fe.connect(0));
	xenvcodec_config cfg = vp8Config(160, 120, 500000);
	ASSERT_TRUE(fe.open(cfg));
	ASSERT_TRUE(fe.createBuffers(4, 2));
	auto layout = *fe.layout();
	/* Four frames in, no OUTPUT buffer queued: Dom0 must hold the bitstream. */
	for (uint8_t i = 0; i < 4; i++) {
		std::fill(fe.inputData(i).begin(), fe.inputData(i).end(), uint8_t(i * 40));
		ASSERT_TRUE(fe.queueRaw(i, 1000 + i));
	}
	ASSERT_TRUE(fe.drain());
	EXPECT_EQ(fe.drain().error().code, -XEN_EBUSY); /* one drain at a time */
	unsigned inputsDone = 0, bitstreams = 0;
	bool drained = false;
	while (inputsDone < 4) {
		auto e = fe.waitEvent();
		ASSERT_TRUE(e) << e.error().message;
		ASSERT_EQ(e->type, XENVCODEC_EVT_INPUT_DONE);
		inputsDone++;
	}
	EXPECT_FALSE(fe.takeEvent()); /* nothing more until outputs are queued */
	for (int round = 0; round < 2; round++) {
		ASSERT_TRUE(fe.queueOut(0));
		ASSERT_TRUE(fe.queueOut(1));
		while (bitstreams < unsigned(2 * (round + 1))) {
			auto e = fe.waitEvent();
			ASSERT_TRUE(e) << e.error().message;
			ASSERT_EQ(e->type, XENVCODEC_EVT_BITSTREAM_READY);
			EXPECT_EQ(e->timestamp, 1000u + bitstreams);
			EXPECT_GT(e->bytesUsed, 0u);
			EXPECT_LE(e->bytesUsed, layout.outSize);
			bitstreams++;
		}
	}
	auto e = fe.waitEvent();
	ASSERT_TRUE(e);
	EXPECT_EQ(e->type, XENVCODEC_EVT_DRAINED);
	drained = true;
	EXPECT_TRUE(drained);
	/* The session goes on after a drain. */
	ASSERT_TRUE(fe.queueOut(0));
	ASSERT_TRUE(fe.queueRaw(0, 5000));
	bool gotBs = false;
	for (int i = 0; i < 4 && !gotBs; i++) {
		auto ev = fe.waitEvent();
		ASSERT_TRUE(ev) << ev.error().message;
		if (ev->type == XENVCODEC_EVT_BITSTREAM_READY) {
			gotBs = true;
			EXPECT_TRUE(ev->key); /* a restarted encoder begins with a key frame */
			EXPECT_EQ(ev->timestamp, 5000u);
		}
	}
	EXPECT_TRUE(gotBs);
	fe.disconnect();
	EXPECT_TRUE(waitFor([&] { return hv->mappedGrants(1) == 0; }));
}

TEST_F(VcodecServiceTest, HostileRequestsAreRejectedAndTheSessionSurvives)
{
	start({ 1 }, 4);
	CodecFrontend fe(*guest[1]);
	ASSERT_TRUE(fe.connect(0));
	auto status = [&](xenvcodec_req r) {
		auto resp = fe.call(r);
		EXPECT_TRUE(resp) << (resp ? "" : resp.error().message);
		return resp ? resp->status : 1;
	};
	/* Before OPEN. */
	EXPECT_EQ(status(proto::makeCodecRequest(0, XENVCODEC_OP_GET_LAYOUT)), -XEN_EINVAL);
	EXPECT_EQ(status(proto::makeCodecRequest(0, XENVCODEC_OP_DRAIN)), -XEN_EINVAL);
	EXPECT_EQ(status(proto::makeCodecRequest(0, 0x77)), -XEN_ENOSYS);

	xenvcodec_config cfg = vp8Config(160, 120, 500000);
	auto badCfg = cfg;
	badCfg.raw_fourcc = 0x34325241; /* AR24: not offered */
	EXPECT_FALSE(fe.open(badCfg));
	badCfg = cfg;
	badCfg.width = 8; /* below min-size */
	EXPECT_FALSE(fe.open(badCfg));
	ASSERT_TRUE(fe.open(cfg));
	auto layout = fe.getLayout();
	ASSERT_TRUE(layout);
	EXPECT_EQ(layout->maxBuffers, 4);

	ASSERT_TRUE(fe.createBuffer(XENVCODEC_BUF_INPUT, 0));
	ASSERT_TRUE(fe.createBuffer(XENVCODEC_BUF_OUTPUT, 0));
	auto dirRef = [&] {
		/* A valid directory for a buffer we will describe wrongly. */
		return fe.bufferRefs(XENVCODEC_BUF_INPUT, 0).at(0);
	};
	xenvcodec_req bc = proto::makeCodecRequest(0, XENVCODEC_OP_BUF_CREATE);
	bc.req.buf_create.type = XENVCODEC_BUF_INPUT;
	bc.req.buf_create.index = 1;
	bc.req.buf_create.size = layout->rawSize + 4096; /* size that does not match the layout */
	bc.req.buf_create.gref_directory = dirRef();
	for (unsigned p = 0; p < layout->numPlanes; p++)
		bc.req.buf_create.plane_offset[p] = layout->planeOffset[p];
	EXPECT_EQ(status(bc), -XEN_EINVAL);
	bc.req.buf_create.size = layout->rawSize;
	bc.req.buf_create.plane_offset[1] += 64; /* plane offset not the layout's */
	EXPECT_EQ(status(bc), -XEN_EINVAL);
	bc.req.buf_create.plane_offset[1] -= 64;
	bc.req.buf_create.index = 0; /* already created */
	EXPECT_EQ(status(bc), -XEN_EINVAL);
	bc.req.buf_create.index = 4; /* >= max-buffers */
	EXPECT_EQ(status(bc), -XEN_EINVAL);
	bc.req.buf_create.index = 1;
	bc.req.buf_create.gref_directory = 4000; /* a ref the guest never granted */
	EXPECT_NE(status(bc), 0);
	xenvcodec_req ob = bc;
	ob.req.buf_create.type = XENVCODEC_BUF_OUTPUT;
	std::memset(ob.req.buf_create.plane_offset, 0, sizeof(ob.req.buf_create.plane_offset));
	ob.req.buf_create.size = layout->outSize - 1;
	EXPECT_EQ(status(ob), -XEN_EINVAL);

	xenvcodec_req q = proto::makeCodecRequest(0, XENVCODEC_OP_QUEUE_RAW);
	q.req.queue_raw.index = 2; /* not created */
	EXPECT_EQ(status(q), -XEN_EINVAL);
	q.req.queue_raw.index = 31; /* beyond max-buffers */
	EXPECT_EQ(status(q), -XEN_EINVAL);
	q.req.queue_raw.index = 200; /* beyond the protocol */
	EXPECT_EQ(status(q), -XEN_EINVAL);
	xenvcodec_req qo = proto::makeCodecRequest(0, XENVCODEC_OP_QUEUE_OUT);
	qo.req.buf_index.type = XENVCODEC_BUF_OUTPUT;
	qo.req.buf_index.index = 3;
	EXPECT_EQ(status(qo), -XEN_EINVAL);
	xenvcodec_req br = proto::makeCodecRequest(0, XENVCODEC_OP_SET_BITRATE);
	br.req.bitrate.bitrate = 999999999; /* above max-bitrate */
	EXPECT_EQ(status(br), -XEN_EINVAL);
	/* OPEN with another layout while buffers exist. */
	auto other = cfg;
	other.width = 320;
	EXPECT_EQ(fe.open(other).error().code, -XEN_EBUSY);

	/* Still serving: one frame through. */
	ASSERT_TRUE(fe.queueOut(0));
	ASSERT_TRUE(fe.queueRaw(0, 42));
	EXPECT_EQ(fe.queueRaw(0, 43).error().code, -XEN_EINVAL); /* already in the encoder */
	bool got = false;
	for (int i = 0; i < 3 && !got; i++) {
		auto e = fe.waitEvent();
		ASSERT_TRUE(e) << e.error().message;
		got = e->type == XENVCODEC_EVT_BITSTREAM_READY;
	}
	EXPECT_TRUE(got);
	ASSERT_EQ(report().at(0).connected, true);
	fe.disconnect();
	EXPECT_TRUE(waitFor([&] { return hv->mappedGrants(1) == 0; }));
}

TEST_F(VcodecServiceTest, GuestDestroyedMidEncodeReleasesEverythingOthersUnaffected)
{
	start({ 1, 2 });
	CodecFrontend victim(*guest[1]);
	ASSERT_TRUE(victim.connect(0));
	xenvcodec_config cfg = vp8Config(640, 480, 2000000);
	ASSERT_TRUE(victim.open(cfg));
	ASSERT_TRUE(victim.createBuffers(8, 2));
	for (uint8_t i = 0; i < 8; i++)
		ASSERT_TRUE(victim.queueRaw(i, i)); /* frames in the encoder, outputs never queued */
	EXPECT_GT(hv->mappedGrants(1), 0u);

	/* The other guest encodes meanwhile. */
	CodecFrontend other(*guest[2]);
	ASSERT_TRUE(other.connect(0));
	EncodeOptions opt;
	opt.width = 320;
	opt.height = 240;
	opt.frames = 40;
	std::atomic<bool> killed{ false };
	std::thread killer([&] {
		std::this_thread::sleep_for(30ms);
		(void)hv->destroyDomain(1);
		killed = true;
	});
	auto r = runEncode(other, opt);
	killer.join();
	ASSERT_TRUE(r) << r.error().message;
	EXPECT_EQ(r->frames.size(), 40u);
	EXPECT_TRUE(r->drained);

	EXPECT_TRUE(waitFor([&] {
		auto rep = report();
		return !rep.at(0).connected && hv->mappedGrants(1) == 0;
	})) << "mapped grants of the dead guest: " << hv->mappedGrants(1);
	EXPECT_TRUE(report().at(1).connected);
	other.disconnect();
	EXPECT_TRUE(waitFor([&] { return hv->mappedGrants(2) == 0; }));
}

/*
 * Xen fires @releaseDomain when the domain is dead; the toolstack removes
 * its XenStore directory later.  A backend that reads "directory still
 * there" as "alive" keeps a dead guest's device attached for ever, and a
 * guest configured by name that comes back is never attached again.
 */
TEST_F(VcodecServiceTest, GuestDeathBeforeTheToolstackCleansUpIsSeenAndANamedGuestComesBack)
{
	hv = xen::LoopbackXen::create();
	ASSERT_TRUE(hv->createDomain(5, "enc"));
	auto gp = hv->open(5);
	ASSERT_TRUE(gp);
	startNamed("enc");
	{
		CodecFrontend fe(**gp);
		ASSERT_TRUE(fe.connect(0));
		xenvcodec_config c = vp8Config(320, 240, 1000000);
		ASSERT_TRUE(fe.open(c));
		ASSERT_TRUE(fe.createBuffers(4, 2));
		EXPECT_GT(hv->mappedGrants(5), 0u);

		hv->keepDirectoryOnDestroy(true); /* the toolstack is slow, as it may be */
		ASSERT_TRUE(hv->destroyDomain(5));
		EXPECT_TRUE(waitFor([&] { return hv->mappedGrants(5) == 0; }, 2000ms))
			<< "the dead guest's mappings are released within 2 s";
		EXPECT_TRUE(waitFor([&] {
			return !dom0->store->read("/local/domain/0/backend/vcodec/5/0/state");
		}, 2000ms)) << "its device is detached";
	}
	gp->reset();
	ASSERT_TRUE(hv->removeDomainDirectory(5));
	hv->keepDirectoryOnDestroy(false);

	/* The guest is started again (a new domid, the same name): attached again. */
	ASSERT_TRUE(hv->createDomain(6, "enc"));
	EXPECT_TRUE(waitFor([&] {
		auto st = dom0->store->read("/local/domain/0/backend/vcodec/6/0/state");
		return st && *st == "2";
	}, 2000ms)) << "re-attached to the new domain (backend InitWait)";
}

/* One guest session: OPEN, buffers, a frame encoded and its bitstream read. */
void encodeOneFrame(CodecFrontend &fe)
{
	ASSERT_TRUE(fe.connect(0));
	ASSERT_TRUE(fe.open(vp8Config(160, 120, 500000)));
	ASSERT_TRUE(fe.createBuffers(2, 2));
	ASSERT_TRUE(fe.queueOut(0));
	ASSERT_TRUE(fe.queueRaw(0, 1));
	ASSERT_TRUE(fe.forceKeyFrame());
	ASSERT_TRUE(fe.drain());
	for (;;) {
		auto e = fe.waitEvent(5000ms);
		ASSERT_TRUE(e) << e.error().message;
		if (e->type == XENVCODEC_EVT_DRAINED)
			break;
	}
}

/*
 * Endurance, vcodec (the camera's is tests/integration/test_endurance.cpp):
 * connect/encode/disconnect cycles leave Dom0's fds, mapped pages and the
 * guest's grants flat.  XMB_ENDURANCE_CYCLES scales it (unit suite: 50;
 * suite 'endurance': 1000).
 */
TEST_F(VcodecServiceTest, EnduranceCyclesLeaveNothingBehind)
{
	const unsigned cycles = envOr("XMB_ENDURANCE_CYCLES", 50);
	start({ 1 });
	auto cycle = [&] {
		CodecFrontend fe(*guest[1]);
		encodeOneFrame(fe);
		fe.disconnect();
	};
	cycle(); /* warm */
	ASSERT_TRUE(waitFor([&] { return hv->mappedGrants(1) == 0; }));
	const size_t fds0 = openFds();
	for (unsigned i = 0; i < cycles && !HasFatalFailure(); i++)
		cycle();
	ASSERT_TRUE(waitFor([&] { return hv->mappedGrants(1) == 0; }))
		<< "Dom0 still maps " << hv->mappedGrants(1) << " grants of the guest";
	const size_t fds1 = openFds();
	std::printf("vcodec endurance: %u cycles: fds %zu -> %zu, guest grants %zu, Dom0 maps %zu\n", cycles,
		    fds0, fds1, hv->grantEntries(1), hv->mappedGrants(1));
	EXPECT_EQ(fds1, fds0) << "an fd leaks per cycle";
	EXPECT_EQ(hv->grantEntries(1), 0u) << "the guest's grants are all ended";
}

/*
 * Guests destroyed mid-encode, again and again (the named guest comes back
 * with a new domid, as after `xl create` again): each one's mappings are
 * gone within 2 s and nothing accumulates.  XMB_ENDURANCE_DEATHS scales it
 * (unit suite: 20; suite 'endurance': 100).
 */
TEST_F(VcodecServiceTest, EnduranceGuestsDestroyedMidEncodeLeaveNothingBehind)
{
	const unsigned deaths = envOr("XMB_ENDURANCE_DEATHS", 20);
	hv = xen::LoopbackXen::create();
	startNamed("enc");
	size_t fds0 = 0;
	for (unsigned i = 0; i <= deaths && !HasFatalFailure(); i++) {
		if (i == 1)
			fds0 = openFds(); /* after a warm round */
		const xen::DomId id = static_cast<xen::DomId>(10 + i);
		ASSERT_TRUE(hv->createDomain(id, "enc"));
		auto gp = hv->open(id);
		ASSERT_TRUE(gp);
		{
			CodecFrontend fe(**gp);
			encodeOneFrame(fe);
			ASSERT_TRUE(fe.queueRaw(1, 2)); /* a frame in the encoder at death */
			EXPECT_GT(hv->mappedGrants(id), 0u);
			fe.setTimeout(50ms); /* a dead guest's library does not wait for its goodbyes */
			ASSERT_TRUE(hv->destroyDomain(id));
			EXPECT_TRUE(waitFor([&] { return hv->mappedGrants(id) == 0; }, 2000ms))
				<< "dom" << id << "'s mappings still there 2 s after its death";
			fe.disconnect(50ms);
		}
		gp->reset();
	}
	const size_t fds1 = openFds();
	std::printf("vcodec endurance: %u guests destroyed mid-encode: fds %zu -> %zu\n", deaths, fds0, fds1);
	EXPECT_EQ(fds1, fds0);
}

/* Each OPEN builds an encoder pipeline on the loop thread: a flood is throttled. */
TEST_F(VcodecServiceTest, OpenFloodIsThrottled)
{
	start({ 1 });
	CodecFrontend fe(*guest[1]);
	ASSERT_TRUE(fe.connect(0));
	xenvcodec_config c = vp8Config(320, 240, 1000000);
	unsigned ok = 0, again = 0;
	for (int i = 0; i < 40; i++) {
		auto st = fe.open(c);
		if (st)
			ok++;
		else if (st.error().code == -XEN_EAGAIN)
			again++;
	}
	EXPECT_LE(ok, 10u) << "a burst of 5 and 2 per second";
	EXPECT_GE(again, 30u);
	std::this_thread::sleep_for(1100ms);
	EXPECT_TRUE(fe.open(c)) << "the budget refills";
}

/* Encode at 30 fps for \a d (a camera's pace); the bitstreams that came back. */
unsigned pacedBitstreams(CodecFrontend &fe, std::chrono::milliseconds d,
			 std::chrono::milliseconds *longestWait = nullptr)
{
	unsigned got = 0;
	auto last = std::chrono::steady_clock::now();
	const auto end = std::chrono::steady_clock::now() + d;
	auto next = std::chrono::steady_clock::now();
	for (uint64_t n = 0; std::chrono::steady_clock::now() < end; n++) {
		std::this_thread::sleep_until(next);
		next += 33ms;
		if (!fe.queueRaw(static_cast<uint8_t>(n % 2), n))
			break;
		bool input = false, bits = false;
		while (!(input && bits)) {
			auto e = fe.waitEvent(2000ms);
			if (!e)
				return got;
			if (e->type == XENVCODEC_EVT_INPUT_DONE)
				input = true;
			if (e->type == XENVCODEC_EVT_BITSTREAM_READY) {
				bits = true;
				got++;
				(void)fe.queueOut(e->index);
				const auto now = std::chrono::steady_clock::now();
				if (longestWait)
					*longestWait = std::max(*longestWait, std::chrono::duration_cast<
									   std::chrono::milliseconds>(now - last));
				last = now;
			}
		}
	}
	return got;
}

/*
 * Guest one floods OPEN (each allowed one builds a pipeline on the one
 * loop thread) while guest two encodes at a camera's pace.  What protects
 * guest two is the OPEN budget (5 at once, 2 per second per guest): checked
 * exactly, from the session's own count of OPENs it refused.  Guest two
 * keeps encoding: no wait for a bitstream over a second, and at least half
 * its frames (it kept >= 90 % on a quiet machine; with a CI run on the other
 * core its 30 fps VP8 encodes are CPU-bound before the flood, and the
 * niced flood thread still takes CPU from them: 81 % seen).
 */
TEST_F(VcodecServiceTest, OpenFloodStarvesNoOne)
{
	start({ 1, 2 });
	CodecFrontend two(*guest[2]);
	ASSERT_TRUE(two.connect(0));
	ASSERT_TRUE(two.open(vp8Config(320, 240, 1000000)));
	ASSERT_TRUE(two.createBuffers(2, 2));
	ASSERT_TRUE(two.queueOut(0));
	ASSERT_TRUE(two.queueOut(1));
	const unsigned base = pacedBitstreams(two, 1500ms);
	/*
	 * Enough to measure a ratio against; not a speed check (45 at 30 fps
	 * idle, 28 seen on a machine also running a VM and a build).
	 */
	ASSERT_GT(base, 15u) << "guest two encodes at all before the flood";

	CodecFrontend one(*guest[1]);
	ASSERT_TRUE(one.connect(0));
	std::atomic<bool> stopFlood{ false };
	std::atomic<unsigned> opens{ 0 };
	std::thread flood([&] {
		/*
		 * The flooding guest runs on its own vCPU, not on Dom0's: niced
		 * here, so what is measured is the work the flood makes Dom0's
		 * loop do, not this test thread taking the CPU from the others
		 * (seen failing with a VM on the other core: 35 vs 47).
		 */
		(void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 19);
		xenvcodec_config c = vp8Config(320, 240, 1000000);
		while (!stopFlood) {
			(void)one.open(c);
			opens++;
		}
	});
	const auto t0 = std::chrono::steady_clock::now();
	std::chrono::milliseconds longestWait{ 0 };
	const unsigned flooded = pacedBitstreams(two, 1500ms, &longestWait);
	stopFlood = true;
	flood.join();
	const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
	EXPECT_GT(opens.load(), 100u) << "the flood reached Dom0";
	const auto reports = report();
	const CodecDeviceReport &r1 = reports.at(0);
	ASSERT_NE(r1.label.find("dom1 "), std::string::npos) << r1.label;
	const uint64_t served = opens.load() - r1.stats.throttledOpens;
	EXPECT_LE(served, 5 + static_cast<uint64_t>(2 * secs) + 1)
		<< "OPENs Dom0 built an encoder for in " << secs << " s (budget: 5 at once, 2 per second)";
	EXPECT_GE(flooded * 2, base) << "guest two got " << flooded << " bitstreams under the flood, " << base
				     << " before";
	EXPECT_LT(longestWait.count(), 1000) << "guest two waited that long (ms) for a bitstream";
	EXPECT_TRUE(reports.at(1).connected);
}

/*
 * The connect budget is the shared xenbus core's: a vcodec frontend that
 * flaps Initialising/Initialised 100 times gets at most the burst plus the
 * rate of session set-ups, and the state it settles on is served.
 */
TEST_F(VcodecServiceTest, StateFlappingIsBudgeted)
{
	start({ 1 });
	CodecFrontend fe(*guest[1]);
	ASSERT_TRUE(fe.connect(0));
	const std::string state = xen::XenStore::domainPath(1) + "/device/vcodec/0/state";
	auto t0 = std::chrono::steady_clock::now();
	for (int i = 0; i < 100; i++) {
		ASSERT_TRUE(guest[1]->store->write(state, "1"));
		ASSERT_TRUE(guest[1]->store->write(state, "3"));
	}
	double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
	std::this_thread::sleep_for(100ms);
	auto rep = report();
	ASSERT_EQ(rep.size(), 1u);
	EXPECT_LE(rep[0].connects, 1u + 10u + static_cast<uint64_t>(10 * (secs + 0.2)) + 1u)
		<< "100 flaps in " << secs << " s";
	EXPECT_TRUE(waitFor([&] { return report()[0].connected; }, 2000ms))
		<< "the state it settled on (Initialised) is served";
}

TEST_F(VcodecServiceTest, OtherCodecsProduceDecodableStreams)
{
	start({ 1 });
	auto caps = CodecFrontend::describe(*guest[1], 0);
	ASSERT_TRUE(caps);
	struct Case { const char *codec, *ext, *check; };
	const Case cases[] = {
		{ "vp9", "ivf", "ivfparse ! vp9dec" },
		{ "h264", "h264", "h264parse ! openh264dec" },
		{ "hevc", "h265", "h265parse ! libde265dec" },
		{ "jpeg", "mjpeg", "jpegparse ! jpegdec" },
	};
	for (const auto &c : cases) {
		if (!caps->find(*proto::codecFromName(c.codec))) {
			std::printf("%s: not installed, skipped\n", c.codec);
			continue;
		}
		CodecFrontend fe(*guest[1]);
		ASSERT_TRUE(fe.connect(0)) << c.codec;
		EncodeOptions opt;
		opt.codec = c.codec;
		opt.rc = opt.codec == "h264" ? "cbr" : opt.codec == "jpeg" ? "cqp" : "vbr";
		opt.width = 320;
		opt.height = 240;
		opt.frames = 10;
		opt.output = ::testing::TempDir() + "vcodec_out." + c.ext;
		auto r = runEncode(fe, opt);
		ASSERT_TRUE(r) << c.codec << ": " << r.error().message;
		EXPECT_EQ(r->frames.size(), 10u) << c.codec;
		for (size_t n = 0; n < r->frames.size(); n++) /* each bitstream carries its frame's timestamp */
			EXPECT_EQ(r->frames[n].timestamp, n * (1000000000ull / 30)) << c.codec << " frame " << n;
		fe.disconnect();
		std::string desc = "filesrc location=" + opt.output + " ! " + c.check + " ! fakesink name=s";
		GstElement *pl = gst_parse_launch(desc.c_str(), nullptr);
		ASSERT_TRUE(pl);
		gst_element_set_state(pl, GST_STATE_PLAYING);
		GstBus *bus = gst_element_get_bus(pl);
		GstMessage *m = gst_bus_timed_pop_filtered(bus, 10 * GST_SECOND,
							   GstMessageType(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
		ASSERT_TRUE(m) << c.codec;
		EXPECT_EQ(GST_MESSAGE_TYPE(m), GST_MESSAGE_EOS) << c.codec << " does not decode";
		gst_message_unref(m);
		gst_object_unref(bus);
		gst_element_set_state(pl, GST_STATE_NULL);
		gst_object_unref(pl);
	}
}

namespace {

/* An encoder that keeps every frame until the test lets go (a Dom0 pipeline holding buffers). */
class HoldingEncoder final : public Encoder
{
public:
	HoldingEncoder(RawLayout l, std::shared_ptr<std::vector<std::function<void()>>> held)
		: layout_(l), held_(std::move(held))
	{
	}
	std::string description() const override { return "holding"; }
	const RawLayout &layout() const override { return layout_; }
	Status encode(const uint8_t *, uint64_t, uint64_t, bool, std::function<void()> release) override
	{
		held_->push_back(std::move(release));
		return {};
	}
	Status setBitrate(uint32_t) override { return {}; }
	Status drain() override { return {}; }
	void stop() override {} /* frames stay held: the release owns the mapping */
	Status restart() override { return {}; }

private:
	RawLayout layout_;
	std::shared_ptr<std::vector<std::function<void()>>> held_;
};

} /* namespace */

TEST(VcodecLifetime, FrameReleasedAfterTheServiceAndItsLoopAreGoneUnmapsAndTouchesNothing)
{
	auto hv = xen::LoopbackXen::create();
	ASSERT_TRUE(hv->createDomain(1, "guest1"));
	auto dom0 = std::move(hv->open(0).value());
	auto guest = std::move(hv->open(1).value());
	auto loop = std::make_unique<service::EventLoop>();
	auto held = std::make_shared<std::vector<std::function<void()>>>();
	auto caps = probeGstCodecs();
	ASSERT_FALSE(caps.empty());
	EncoderFactory factory = [held](const EncodeParams &p, const proto::CodecCaps &,
					EncoderSink) -> Result<std::unique_ptr<Encoder>> {
		return std::unique_ptr<Encoder>(
			std::make_unique<HoldingEncoder>(*gstRawLayout(p.rawFourcc, p.width, p.height), held));
	};
	auto svc = std::make_unique<CodecService>(*dom0, *loop, caps, factory);
	CodecGuest g;
	g.domid = 1;
	ASSERT_TRUE(svc->start({ { g } }));
	std::atomic<bool> stop{ false };
	std::thread t([&] {
		while (!stop)
			loop->dispatch(20);
	});
	{
		CodecFrontend fe(*guest);
		ASSERT_TRUE(fe.connect(0));
		xenvcodec_config cfg{};
		cfg.codec = caps[0].codec;
		cfg.raw_fourcc = caps[0].rawFormats[0];
		cfg.width = 64;
		cfg.height = 48;
		cfg.frame_rate_numer = 30;
		cfg.frame_rate_denom = 1;
		cfg.rc_mode = caps[0].rcModes[0];
		cfg.bitrate = 100000;
		cfg.qp = 50;
		ASSERT_TRUE(fe.open(cfg));
		ASSERT_TRUE(fe.createBuffers(1, 1));
		ASSERT_TRUE(fe.queueRaw(0, 1234));
		for (int i = 0; i < 200 && held->empty(); i++)
			std::this_thread::sleep_for(10ms);
		ASSERT_EQ(held->size(), 1u);
		std::atomic<bool> done{ false };
		loop->defer([&] {
			svc->stop();
			done = true;
		});
		while (!done)
			std::this_thread::sleep_for(2ms);
	}
	stop = true;
	t.join();
	svc.reset();
	loop.reset();
	/* The frame's pages stay mapped for as long as the encoder can read them... */
	EXPECT_GT(hv->mappedGrants(1), 0u);
	(*held)[0](); /* ...and its release, with the service and loop gone, only unmaps. */
	EXPECT_EQ(hv->mappedGrants(1), 0u);
}

namespace {

/* A Dom0 consumer of raw frames (what xmbguestsrc is), recording what arrives. */
class RawConsumer final : public Encoder
{
public:
	struct Seen {
		std::vector<uint64_t> timestamps;
		std::vector<bool> keys;
		std::vector<uint8_t> firstBytes;
	};
	RawConsumer(RawLayout l, EncoderSink sink, std::shared_ptr<Seen> seen)
		: layout_(l), sink_(std::move(sink)), seen_(std::move(seen))
	{
	}
	std::string description() const override { return "raw consumer"; }
	const RawLayout &layout() const override { return layout_; }
	Status encode(const uint8_t *data, uint64_t, uint64_t ts, bool key, std::function<void()> release) override
	{
		seen_->timestamps.push_back(ts);
		seen_->keys.push_back(key);
		seen_->firstBytes.push_back(data[0]);
		release();
		return {};
	}
	Status setBitrate(uint32_t) override { return Error{ -ENOTSUP, "raw" }; }
	Status drain() override
	{
		sink_.drained();
		return {};
	}
	void stop() override {}
	Status restart() override { return {}; }

private:
	RawLayout layout_;
	EncoderSink sink_;
	std::shared_ptr<Seen> seen_;
};

} /* namespace */

TEST_F(VcodecServiceTest, RawCodecHandsGuestFramesAndTimestampsToADom0Consumer)
{
	hv = xen::LoopbackXen::create();
	ASSERT_TRUE(hv->createDomain(1, "guest1"));
	dom0 = std::move(hv->open(0).value());
	guest[1] = std::move(hv->open(1).value());
	auto seen = std::make_shared<RawConsumer::Seen>();
	proto::CodecCaps raw;
	raw.codec = XENVCODEC_CODEC_RAW;
	raw.rawFormats = { kYU12 };
	raw.rcModes = { XENVCODEC_RC_VBR };
	raw.profiles = { "raw" };
	raw.levels = { 0 };
	EncoderFactory factory = [seen](const EncodeParams &p, const proto::CodecCaps &,
					EncoderSink sink) -> Result<std::unique_ptr<Encoder>> {
		return std::unique_ptr<Encoder>(std::make_unique<RawConsumer>(
			*gstRawLayout(p.rawFourcc, p.width, p.height), std::move(sink), seen));
	};
	svc = std::make_unique<CodecService>(*dom0, loop, std::vector<proto::CodecCaps>{ raw }, factory);
	CodecGuest g;
	g.domid = 1;
	ASSERT_TRUE(svc->start({ { g } }));
	thread = std::thread([this] {
		while (!stop)
			loop.dispatch(20);
	});
	CodecFrontend fe(*guest[1]);
	ASSERT_TRUE(fe.connect(0));
	EXPECT_NE(fe.caps().find(XENVCODEC_CODEC_RAW), nullptr);
	EncodeOptions opt;
	opt.codec = "raw";
	opt.width = 160;
	opt.height = 120;
	opt.frames = 10;
	opt.keyFrames = { 4 };
	opt.bitrate = 0; /* raw: no rate control */
	opt.output = "/tmp/never-written.raw";
	auto refused = runEncode(fe, opt);
	ASSERT_FALSE(refused); /* nothing comes back to write */
	EXPECT_NE(refused.error().message.find("no bitstream"), std::string::npos);
	opt.output.clear();
	auto r = runEncode(fe, opt);
	ASSERT_TRUE(r) << r.error().message;
	EXPECT_EQ(r->framesIn, 10u);
	EXPECT_TRUE(r->frames.empty());
	EXPECT_TRUE(r->drained);
	ASSERT_EQ(seen->timestamps.size(), 10u);
	for (size_t n = 0; n < 10; n++) {
		EXPECT_EQ(seen->timestamps[n], n * (1000000000ull / 30)) << "the guest's timestamp, in ns";
		EXPECT_EQ(seen->keys[n], n == 4);
		auto ref = test_pattern::frame(kYU12, 160, 120, n);
		EXPECT_EQ(seen->firstBytes[n], ref[0]) << "the frame Dom0 read is the guest's frame " << n;
	}
	auto rep = report();
	ASSERT_EQ(rep.size(), 1u);
	EXPECT_EQ(rep[0].stats.rawBytesCopied, 0u);
	EXPECT_EQ(fe.setBitrate(1000000).error().code, -XEN_EOPNOTSUPP);
	fe.disconnect();
	EXPECT_TRUE(waitFor([&] { return hv->mappedGrants(1) == 0; }));
}

