/* SPDX-License-Identifier: MIT */
/*
 * The vcodec V4L2 M2M encoder adapter against the fake stateful encoder at
 * the DeviceIO seam (no M2M encoder exists in Debian's kernel or on our
 * machines): frames in place (USERPTR), bitstream buffers held until the
 * session copied them, key frames, drain with and without encoder
 * commands, stop, the copy fallback for drivers without USERPTR, refusals;
 * and the whole vcodec service over it on the loopback hypervisor.
 *
 * The fake encoder writes "FAKE<I|P> seq=<n> first=<byte>" as the
 * bitstream, where <byte> is the first byte it read from the raw frame: so
 * a test sees which frame memory the device read.
 */
#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "bridge/platform/loopback/loopback_xen.h"
#include "bridge/vcodec/codec_frontend.h"
#include "bridge/vcodec/codec_service.h"
#include "bridge/vcodec/encode_app.h"
#include "bridge/vcodec/v4l2_encoder.h"
#include "tests/v4l2/fake_v4l2_device.h"
#include "v4l2/test_pattern.h"

using namespace xmb;
using namespace xmb::vcodec;
using namespace std::chrono_literals;
using Kind = xmb::testing::FakeV4L2Device::Kind;

namespace {

constexpr const char *kPath = "/dev/fake-video0";

class V4L2EncoderTest : public ::testing::TestWithParam<Kind>
{
protected:
	void SetUp() override { fake = std::make_unique<xmb::testing::FakeV4L2Device>(GetParam(), kPath); }

	EncodeParams params(uint32_t w = 320, uint32_t h = 240)
	{
		EncodeParams p;
		p.codec = XENVCODEC_CODEC_H264;
		p.rawFourcc = V4L2_PIX_FMT_NV12;
		p.width = w;
		p.height = h;
		p.bitrate = 1000000;
		return p;
	}

	EncoderSink sink()
	{
		EncoderSink s;
		s.bitstream = [this](Bitstream b) { out.push_back(std::move(b)); };
		s.drained = [this] { drained++; };
		s.error = [this](const std::string &w) { errors.push_back(w); };
		return s;
	}

	std::unique_ptr<V4L2Encoder> create(const EncodeParams &p)
	{
		auto e = V4L2Encoder::create(p, loop, kPath, sink(), true, *fake);
		EXPECT_TRUE(e) << (e ? "" : e.error().message);
		return e ? std::move(*e) : nullptr;
	}

	/* An encoder lending \a n raw and \a n bitstream buffers (be-alloc where Dom0 grants dma-bufs). */
	std::unique_ptr<V4L2Encoder> createLending(unsigned n)
	{
		EncodeParams p = params();
		p.lendBuffers = n;
		auto e = create(p);
		if (e) {
			EXPECT_EQ(e->lentRawBuffers().size(), n);
			EXPECT_EQ(e->lentCodedBuffers().size(), n);
		}
		return e;
	}

	/* A guest frame: every byte \a fill. */
	std::vector<uint8_t> &frame(size_t n, uint8_t fill, size_t size)
	{
		if (frames.size() <= n)
			frames.resize(n + 1);
		frames[n].assign(size, fill);
		return frames[n];
	}

	Status encode(V4L2Encoder &e, uint64_t seq, uint8_t fill, bool key = false)
	{
		auto &f = frame(seq, fill, e.layout().size);
		return e.encode(f.data(), seq, seq * 1000, key, [this] { released++; });
	}

	/* Run the loop until \a cond or 2 s. */
	bool pump(const std::function<bool()> &cond)
	{
		auto end = std::chrono::steady_clock::now() + 2s;
		while (!cond() && std::chrono::steady_clock::now() < end)
			loop.dispatch(10);
		return cond();
	}

	static std::string text(const Bitstream &b)
	{
		return std::string(reinterpret_cast<const char *>(b.data), b.size);
	}

	service::EventLoop loop;
	std::unique_ptr<xmb::testing::FakeV4L2Device> fake;
	std::deque<Bitstream> out;
	std::vector<std::vector<uint8_t>> frames;
	std::vector<std::string> errors;
	int drained = 0;
	int released = 0;
};

TEST_P(V4L2EncoderTest, ProbeReportsCodecsAndRawFormatsInVcodecTerms)
{
	auto caps = probeV4L2Codecs(kPath, *fake);
	ASSERT_EQ(caps.size(), 2u); /* the fake encodes H264 and HEVC */
	EXPECT_EQ(caps[0].codec, uint32_t(XENVCODEC_CODEC_H264));
	EXPECT_EQ(caps[1].codec, uint32_t(XENVCODEC_CODEC_HEVC));
	for (const auto &c : caps) {
		EXPECT_EQ(c.rawFormats, (std::vector<uint32_t>{ V4L2_PIX_FMT_NV12, V4L2_PIX_FMT_YUV420 }));
		EXPECT_EQ(c.rcModes, (std::vector<uint8_t>{ XENVCODEC_RC_VBR, XENVCODEC_RC_CBR }));
	}
	EXPECT_EQ(fake->openCount(), 0u);
	EXPECT_TRUE(probeV4L2Codecs("/dev/nonexistent", *fake).empty());
}

TEST_P(V4L2EncoderTest, LayoutIsTheDriversAndParametersAreApplied)
{
	EncodeParams p = params();
	p.rcMode = XENVCODEC_RC_CBR;
	p.bitrate = 3000000;
	p.gop = 10;
	auto e = create(p);
	ASSERT_TRUE(e);
	EXPECT_EQ(e->layout().size, 320u * 240 * 3 / 2);
	EXPECT_EQ(e->layout().numPlanes, 2);
	EXPECT_EQ(e->layout().offset[1], 320u * 240);
	EXPECT_EQ(e->layout().stride[0], 320u);
	EXPECT_EQ(fake->controlValue(V4L2_CID_MPEG_VIDEO_BITRATE), 3000000);
	EXPECT_EQ(fake->controlValue(V4L2_CID_MPEG_VIDEO_BITRATE_MODE), V4L2_MPEG_VIDEO_BITRATE_MODE_CBR);
	EXPECT_EQ(fake->controlValue(V4L2_CID_MPEG_VIDEO_GOP_SIZE), 10);
	EXPECT_TRUE(e->zeroCopy());
	EXPECT_NE(e->description().find("USERPTR zero-copy"), std::string::npos) << e->description();
}

TEST_P(V4L2EncoderTest, GuestFramesAreReadInPlaceAndBitstreamsCarryTheirSeq)
{
	auto e = create(params());
	ASSERT_TRUE(e);
	for (uint64_t s = 0; s < 3; s++)
		ASSERT_TRUE(encode(*e, s, uint8_t(0xa0 + s)));
	ASSERT_TRUE(pump([&] { return out.size() == 3 && released == 3; }));
	for (uint64_t s = 0; s < 3; s++) {
		EXPECT_EQ(out[s].seq, s);
		char want[64];
		std::snprintf(want, sizeof(want), "FAKE%s seq=%u first=%02x", s ? "P" : "I", unsigned(s),
			      unsigned(0xa0 + s));
		EXPECT_EQ(text(out[s]), want);
		EXPECT_EQ(out[s].key, s == 0);
	}
	EXPECT_EQ(e->rawBytesCopied(), 0u);
	EXPECT_TRUE(errors.empty());
}

TEST_P(V4L2EncoderTest, HevcSessionConfiguresTheCodedQueueForHevc)
{
	EncodeParams p = params();
	p.codec = XENVCODEC_CODEC_HEVC;
	auto e = create(p);
	ASSERT_TRUE(e);
	EXPECT_NE(e->description().find("HEVC"), std::string::npos) << e->description();
	ASSERT_TRUE(encode(*e, 0, 0x31));
	ASSERT_TRUE(pump([&] { return out.size() == 1; }));
	EXPECT_TRUE(out[0].key);
}

TEST_P(V4L2EncoderTest, HeldBitstreamBuffersThrottleTheEncoder)
{
	auto e = create(params());
	ASSERT_TRUE(e);
	for (uint64_t s = 0; s < 6; s++)
		ASSERT_TRUE(encode(*e, s, uint8_t(s)));
	/* Four CAPTURE buffers: while the session holds them, nothing more comes out. */
	ASSERT_TRUE(pump([&] { return out.size() == 4; }));
	for (int i = 0; i < 5; i++)
		loop.dispatch(5);
	EXPECT_EQ(out.size(), 4u);
	EXPECT_EQ(e->framesInFlight(), 2u);
	out.pop_front(); /* the session copied one: its buffer goes back to the driver */
	out.pop_front();
	ASSERT_TRUE(pump([&] { return out.size() == 4 && released == 6; }));
	EXPECT_EQ(out.back().seq, 5u);
	EXPECT_EQ(e->framesInFlight(), 0u);
}

/*
 * Lent buffers: the frame is written through the lent raw dma-buf (as a
 * guest's mapping of the grant would) and queued by index; the encoder
 * writes each bitstream only into a bitstream buffer handed back with
 * returnLentCoded(), and keeps it after delivering it there.
 */
TEST_P(V4L2EncoderTest, LentBuffersAreFilledOnlyWhenReturnedAndReadInPlace)
{
	auto e = createLending(3);
	ASSERT_TRUE(e && e->lentRawBuffers().size() == 3 && e->lentCodedBuffers().size() == 3);
	EXPECT_TRUE(e->zeroCopy());
	for (unsigned i = 0; i < 3; i++) {
		const LentBuffer &b = e->lentRawBuffers()[i];
		EXPECT_GE(b.size, e->layout().size);
		EXPECT_EQ(b.size % 4096, 0u);
		std::vector<uint8_t> fill(e->layout().size, uint8_t(0x40 + i));
		ASSERT_EQ(::pwrite(b.dmabuf.get(), fill.data(), fill.size(), 0), ssize_t(fill.size()));
	}
	for (unsigned i = 0; i < 3; i++)
		ASSERT_TRUE(e->encodeLent(i, i, i * 1000, false, [this] { released++; }));
	/* No bitstream buffer returned yet: the encoder waits. */
	for (int i = 0; i < 5; i++)
		loop.dispatch(5);
	EXPECT_TRUE(out.empty());
	ASSERT_TRUE(e->returnLentCoded(2));
	ASSERT_TRUE(pump([&] { return out.size() == 1; }));
	EXPECT_EQ(out[0].lent, 2);
	EXPECT_EQ(out[0].seq, 0u);
	char got[64] = {};
	ASSERT_GT(::pread(e->lentCodedBuffers()[2].dmabuf.get(), got, out[0].size, 0), 0);
	EXPECT_EQ(std::string(got, out[0].size), "FAKEI seq=0 first=40") << "read in place from the lent buffer";
	/* Delivered: kept until returned again; the next goes to another returned one. */
	ASSERT_TRUE(e->returnLentCoded(0));
	ASSERT_TRUE(pump([&] { return out.size() == 2; }));
	EXPECT_EQ(out[1].lent, 0);
	EXPECT_EQ(out[1].seq, 1u);
	ASSERT_TRUE(e->returnLentCoded(0)); /* read: the guest queues it again */
	ASSERT_TRUE(pump([&] { return out.size() == 3 && released == 3; }));
	EXPECT_EQ(out[2].lent, 0);
	EXPECT_EQ(out[2].seq, 2u);
	EXPECT_EQ(e->rawBytesCopied(), 0u);
	ASSERT_TRUE(e->returnLentCoded(1));
	auto twice = e->returnLentCoded(1); /* already with the driver */
	ASSERT_FALSE(twice);
	EXPECT_EQ(twice.error().code, -EINVAL);
	auto none = e->returnLentCoded(3);
	ASSERT_FALSE(none);
	EXPECT_EQ(none.error().code, -EINVAL);
	EXPECT_TRUE(errors.empty());
}

/* A lent bitstream buffer the guest destroys: refused while the driver holds it, taken back after a stop. */
TEST_P(V4L2EncoderTest, LentBitstreamBufferIsReclaimedOnlyWhenTheDriverLetGo)
{
	auto e = createLending(2);
	ASSERT_TRUE(e && e->lentCodedBuffers().size() == 2);
	EXPECT_TRUE(e->reclaimLentCoded(0)) << "never returned: the driver does not have it";
	ASSERT_TRUE(e->returnLentCoded(1));
	EXPECT_FALSE(e->reclaimLentCoded(1)) << "queued to the driver";
	e->stop();
	EXPECT_TRUE(e->reclaimLentCoded(1)) << "STREAMOFF gave it back";
	ASSERT_TRUE(e->restart());
	ASSERT_TRUE(e->encodeLent(0, 0, 0, false, [this] { released++; }));
	for (int i = 0; i < 5; i++)
		loop.dispatch(5);
	EXPECT_TRUE(out.empty()) << "a reclaimed buffer does not go back to the driver at restart";
	ASSERT_TRUE(e->returnLentCoded(1));
	ASSERT_TRUE(pump([&] { return out.size() == 1; }));
	EXPECT_EQ(out[0].lent, 1);
	EXPECT_TRUE(errors.empty());
}

TEST_P(V4L2EncoderTest, ForcedFrameIsAKeyFrame)
{
	auto e = create(params());
	ASSERT_TRUE(e);
	ASSERT_TRUE(encode(*e, 0, 1));
	ASSERT_TRUE(encode(*e, 1, 2));
	ASSERT_TRUE(encode(*e, 2, 3, true));
	ASSERT_TRUE(pump([&] { return out.size() == 3; }));
	EXPECT_TRUE(out[0].key);
	EXPECT_FALSE(out[1].key);
	EXPECT_TRUE(out[2].key);
}

TEST_P(V4L2EncoderTest, DrainEndsAfterEveryFrameAndRestartBeginsWithAKeyFrame)
{
	auto e = create(params());
	ASSERT_TRUE(e);
	for (uint64_t s = 0; s < 3; s++)
		ASSERT_TRUE(encode(*e, s, uint8_t(s)));
	ASSERT_TRUE(e->drain());
	EXPECT_EQ(e->drain().error().code, -EBUSY);
	ASSERT_TRUE(pump([&] { return drained == 1; }));
	EXPECT_EQ(out.size(), 3u);
	EXPECT_EQ(released, 3);
	out.clear();
	ASSERT_TRUE(e->restart());
	ASSERT_TRUE(encode(*e, 3, 9));
	ASSERT_TRUE(pump([&] { return out.size() == 1; }));
	EXPECT_TRUE(out[0].key);
	EXPECT_EQ(out[0].seq, 3u);
}

TEST_P(V4L2EncoderTest, DrainWithoutEncoderCommandsWaitsForTheQueuesToEmpty)
{
	fake->setEncoderCommandsSupported(false);
	auto e = create(params());
	ASSERT_TRUE(e);
	for (uint64_t s = 0; s < 2; s++)
		ASSERT_TRUE(encode(*e, s, uint8_t(s)));
	ASSERT_TRUE(e->drain());
	ASSERT_TRUE(pump([&] { return drained == 1; }));
	EXPECT_EQ(out.size(), 2u);
	EXPECT_EQ(released, 2);
	ASSERT_TRUE(e->restart());
	ASSERT_TRUE(encode(*e, 2, 7));
	ASSERT_TRUE(pump([&] { return out.size() == 3; }));
	EXPECT_TRUE(out[2].key);
}

TEST_P(V4L2EncoderTest, StopReleasesEveryFrameAndTheEncoderRestarts)
{
	auto e = create(params());
	ASSERT_TRUE(e);
	for (uint64_t s = 0; s < 7; s++)
		ASSERT_TRUE(encode(*e, s, uint8_t(s)));
	ASSERT_TRUE(pump([&] { return out.size() == 4; })); /* three stuck behind held buffers */
	EXPECT_LT(released, 7);
	e->stop();
	EXPECT_EQ(released, 7); /* on return, as the session relies on */
	EXPECT_EQ(e->framesInFlight(), 0u);
	out.clear(); /* old holds do not requeue into the stopped stream */
	ASSERT_TRUE(e->restart());
	ASSERT_TRUE(encode(*e, 7, 0x42));
	ASSERT_TRUE(pump([&] { return out.size() == 1; }));
	EXPECT_EQ(out[0].seq, 7u);
	EXPECT_TRUE(out[0].key);
}

TEST_P(V4L2EncoderTest, DriverWithoutUserPtrGetsCountedCopies)
{
	fake->setUserPtrSupported(false);
	auto e = create(params());
	ASSERT_TRUE(e);
	EXPECT_FALSE(e->zeroCopy());
	EXPECT_NE(e->description().find("copied"), std::string::npos);
	ASSERT_TRUE(encode(*e, 0, 0x5a));
	EXPECT_EQ(released, 1); /* copied at queue time: the guest has its frame back */
	ASSERT_TRUE(encode(*e, 1, 0x5b));
	ASSERT_TRUE(pump([&] { return out.size() == 2; }));
	EXPECT_EQ(text(out[1]), "FAKEP seq=1 first=5b");
	EXPECT_EQ(e->rawBytesCopied(), 2ull * e->layout().size);
}

TEST_P(V4L2EncoderTest, Dom0ThatMustNotHandForeignPagesToDriversCopies)
{
	/* An x86 PV Dom0: the driver could take USERPTR, but must not get guest pages. */
	auto made = V4L2Encoder::create(params(), loop, kPath, sink(), false, *fake);
	ASSERT_TRUE(made) << made.error().message;
	auto &e = *made;
	EXPECT_FALSE(e->zeroCopy());
	ASSERT_TRUE(encode(*e, 0, 0x77));
	EXPECT_EQ(released, 1);
	ASSERT_TRUE(pump([&] { return out.size() == 1; }));
	EXPECT_EQ(text(out[0]), "FAKEI seq=0 first=77");
	EXPECT_EQ(e->rawBytesCopied(), uint64_t(e->layout().size));
}

TEST_P(V4L2EncoderTest, RefusalsNameTheDeviceAndTheReason)
{
	auto aligned = V4L2Encoder::create(params(100, 100), loop, kPath, sink(), true, *fake);
	ASSERT_FALSE(aligned);
	EXPECT_EQ(aligned.error().code, -EINVAL);
	EXPECT_NE(aligned.error().message.find("96x96"), std::string::npos) << aligned.error().message;
	EXPECT_NE(aligned.error().message.find(kPath), std::string::npos);

	EncodeParams cqp = params();
	cqp.rcMode = XENVCODEC_RC_CQP;
	auto c = V4L2Encoder::create(cqp, loop, kPath, sink(), true, *fake);
	ASSERT_FALSE(c);
	EXPECT_EQ(c.error().code, -ENOTSUP);

	EncodeParams vp8 = params();
	vp8.codec = XENVCODEC_CODEC_VP8;
	EXPECT_FALSE(V4L2Encoder::create(vp8, loop, kPath, sink(), true, *fake));

	auto none = V4L2Encoder::create(params(), loop, "/dev/nonexistent", sink(), true, *fake);
	ASSERT_FALSE(none);
	EXPECT_EQ(none.error().code, -ENODEV);
	EXPECT_EQ(fake->openCount(), 0u); /* nothing left open by any refusal */
	EXPECT_EQ(fake->allocatedBuffers(), 0u);
}

TEST_P(V4L2EncoderTest, QueueFailureIsReportedAndReleasesTheFrame)
{
	auto e = create(params());
	ASSERT_TRUE(e);
	fake->failIoctl(VIDIOC_QBUF, EFAULT);
	ASSERT_TRUE(encode(*e, 0, 1));
	EXPECT_EQ(released, 1);
	ASSERT_EQ(errors.size(), 1u);
	EXPECT_NE(errors[0].find("Bad address"), std::string::npos) << errors[0];
	EXPECT_FALSE(encode(*e, 1, 2)); /* failed until restarted */
	EXPECT_EQ(released, 2);
}

TEST_P(V4L2EncoderTest, DestroyedEncoderLeavesNothingBehind)
{
	{
		auto e = create(params());
		ASSERT_TRUE(e);
		for (uint64_t s = 0; s < 6; s++)
			ASSERT_TRUE(encode(*e, s, uint8_t(s)));
		ASSERT_TRUE(pump([&] { return out.size() == 4; }));
	}
	EXPECT_EQ(released, 6);
	out.clear(); /* holds outliving the encoder are harmless */
	EXPECT_EQ(fake->openCount(), 0u);
	EXPECT_EQ(fake->liveMappings(), 0u);
	EXPECT_EQ(fake->allocatedBuffers(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Fake, V4L2EncoderTest, ::testing::Values(Kind::Encoder, Kind::EncoderMplane),
			 [](const auto &p) {
				 return p.param == Kind::Encoder ? std::string("SinglePlane")
								    : std::string("MultiPlane");
			 });

/* ---- The vcodec service with the V4L2 encoder, guest on the loopback hypervisor ---- */

class V4L2ServiceTest : public ::testing::Test
{
protected:
	/*
	 * \a userptr: the driver takes USERPTR; \a foreignUserPtr: the service
	 * may give it the guest's mapped pages; \a beAlloc: the guest's device
	 * is be-alloc (Dom0 allocates and grants the buffers).
	 */
	void start(bool userptr, bool foreignUserPtr = true, bool beAlloc = false, bool gntdevDmabuf = false,
		   bool armExport = false)
	{
		fake.setUserPtrSupported(userptr);
		hv = xen::LoopbackXen::create();
		hv->emulateGntdevDmabuf(gntdevDmabuf || armExport);
		hv->emulateDmabufExport(armExport);
		ASSERT_TRUE(hv->createDomain(1, "guest1"));
		auto p = hv->open(0), g = hv->open(1);
		ASSERT_TRUE(p && g);
		dom0 = std::move(*p);
		guest = std::move(*g);
		auto caps = probeV4L2Codecs(kPath, fake);
		ASSERT_EQ(caps.size(), 2u); /* H264, HEVC */
		svc = std::make_unique<CodecService>(*dom0, loop, caps,
						     v4l2EncoderFactory(loop, kPath, foreignUserPtr, fake));
		CodecServiceConfig cfg;
		CodecGuest cg;
		cg.name = "guest1";
		cg.domid = 1;
		cg.beAlloc = beAlloc;
		cfg.guests.push_back(cg);
		cfg.importGuestFrames = true; /* a V4L2 encoder: as xmb-codec-service sets it */
		Status s = svc->start(cfg);
		ASSERT_TRUE(s) << s.error().message;
		thread = std::thread([this] {
			while (!stop)
				loop.dispatch(20);
		});
	}

	std::vector<CodecDeviceReport> report()
	{
		std::vector<CodecDeviceReport> r;
		std::atomic<bool> done{ false };
		loop.defer([&] {
			r = svc->report();
			done = true;
		});
		while (!done)
			std::this_thread::sleep_for(2ms);
		return r;
	}

	void TearDown() override
	{
		if (svc) {
			std::atomic<bool> done{ false };
			loop.defer([&] {
				svc->stop();
				done = true;
			});
			while (!done)
				std::this_thread::sleep_for(2ms);
		}
		stop = true;
		if (thread.joinable())
			thread.join();
		svc.reset();
	}

	Result<EncodeResult> encode(std::string &stream, uint32_t frames, bool ignoreInputDmaBuf = false)
	{
		CodecFrontend fe(*guest);
		if (ignoreInputDmaBuf) {
			/* A frontend from before input-dmabuf: its INPUT grants stay read-only. */
			const std::string node = xen::XenStore::domainPath(1) + "/device/vcodec/0/input-dmabuf";
			for (int i = 0; i < 200 && !guest->store->read(node); i++)
				std::this_thread::sleep_for(10ms);
			auto published = guest->store->read(node);
			EXPECT_TRUE(published && *published == "1") << "published where Dom0 can export";
			EXPECT_TRUE(guest->store->rm(node));
		}
		if (Status s = fe.connect(0); !s)
			return s.error();
		EncodeOptions opt;
		opt.codec = "h264";
		opt.rawFourcc = V4L2_PIX_FMT_NV12;
		opt.width = 320;
		opt.height = 240;
		opt.frames = frames;
		opt.keyFrames = { 5 };
		auto r = runEncode(fe, opt, [&](std::span<const uint8_t> bs, const EncodedInfo &) {
			stream.append(reinterpret_cast<const char *>(bs.data()), bs.size());
			stream += '\n';
		});
		rep = report(); /* while connected: the device's stats */
		fe.disconnect();
		return r;
	}

	/* What the fake encoder appends for pattern frame \a n (320x240 NV12): " fnv=<FNV-1a>". */
	static std::string patternChecksum(uint32_t n)
	{
		uint32_t h = 2166136261u;
		for (uint8_t c : test_pattern::frame(V4L2_PIX_FMT_NV12, 320, 240, n))
			h = (h ^ c) * 16777619u;
		char want[32];
		std::snprintf(want, sizeof(want), " fnv=%08x", h);
		return want;
	}

	/* \a n frames encoded, the device reading each in place from the buffer the guest rendered. */
	void expectReadInPlace(const Result<EncodeResult> &r, const std::string &stream, uint32_t n)
	{
		ASSERT_TRUE(r) << r.error().message;
		ASSERT_EQ(r->frames.size(), n);
		EXPECT_EQ(r->errors, 0u);
		for (uint32_t i = 0; i < n; i++)
			EXPECT_NE(stream.find("seq=" + std::to_string(i) + " "), std::string::npos) << stream;
		ASSERT_EQ(rep.size(), 1u);
		EXPECT_EQ(rep[0].stats.rawBytesCopied, 0u);
		EXPECT_EQ(rep[0].stats.framesIn, n);
		EXPECT_NE(rep[0].encoder.find("USERPTR zero-copy"), std::string::npos) << rep[0].encoder;
		EXPECT_EQ(fake.framesEncoded(), n);
	}
	/* \a n frames encoded, each raw frame copied once (320x240 NV12). */
	void expectOneCopyEach(const Result<EncodeResult> &r, uint32_t n)
	{
		ASSERT_TRUE(r) << r.error().message;
		EXPECT_EQ(r->frames.size(), n);
		ASSERT_EQ(rep.size(), 1u);
		EXPECT_EQ(rep[0].stats.rawBytesCopied, uint64_t(n) * 320 * 240 * 3 / 2);
	}

	xmb::testing::FakeV4L2Device fake{ Kind::EncoderMplane, kPath };
	service::EventLoop loop;
	std::shared_ptr<xen::LoopbackXen> hv;
	std::unique_ptr<xen::Platform> dom0, guest;
	std::unique_ptr<CodecService> svc;
	std::thread thread;
	std::atomic<bool> stop{ false };
	std::vector<CodecDeviceReport> rep;
};

TEST_F(V4L2ServiceTest, GuestEncodesThroughTheM2MEncoderWithNoRawCopy)
{
	start(true);
	std::string stream;
	auto r = encode(stream, 12);
	expectReadInPlace(r, stream, 12); /* from the guest's own pages */
	ASSERT_TRUE(r);
	EXPECT_TRUE(r->drained);
	for (uint32_t n = 0; n < r->frames.size(); n++) {
		EXPECT_EQ(r->frames[n].seq, n);
		EXPECT_EQ(r->frames[n].key, n == 0 || n == 5) << n;
	}
}

/*
 * be-alloc (issue 13): Dom0 allocates the INPUT buffers and grants them; the
 * guest renders into them.  They are Dom0's own pages, so even where the
 * guest's mapped pages may not go to a driver (x86 PV, read-only frames)
 * the encoder reads them in place: no raw copy.  Without be-alloc, the same
 * service copies every frame.
 */
TEST_F(V4L2ServiceTest, BeAllocFramesAreDom0PagesTheDriverReadsInPlaceWhereGuestPagesWouldBeCopied)
{
	start(true, false, true);
	std::string stream;
	expectReadInPlace(encode(stream, 12), stream, 12); /* from Dom0's pages the guest rendered into */
}

/*
 * be-alloc where Dom0 can grant dma-bufs (issue 13): the guest's INPUT
 * buffers are the encoder's own OUTPUT buffers (MMAP, EXPBUF, imp_to_refs),
 * so the guest renders into the encoder's memory, and its OUTPUT buffers
 * are the encoder's CAPTURE buffers, where it reads each bitstream.  The
 * fake encoder hashes the bytes each frame was queued with: every hash the
 * guest reads must be the test pattern's frame it rendered, so the encoder
 * read what the guest wrote and the guest read what the encoder wrote, in
 * place (nothing copied either way, nothing pinned).
 */
TEST_F(V4L2ServiceTest, BeAllocGuestRendersIntoTheEncodersOwnBuffersWhereDom0GrantsDmaBufs)
{
	fake.setPayloadChecksum(true);
	start(true, false, true, true);
	std::string stream;
	auto r = encode(stream, 12);
	ASSERT_TRUE(r) << r.error().message;
	ASSERT_EQ(r->frames.size(), 12u);
	ASSERT_EQ(rep.size(), 1u);
	EXPECT_EQ(rep[0].stats.rawBytesCopied, 0u);
	EXPECT_NE(rep[0].encoder.find("in its own buffers, granted to the guest"), std::string::npos)
		<< rep[0].encoder;
	/* The bitstream too: read by the guest in the encoder's CAPTURE buffers. */
	EXPECT_NE(rep[0].encoder.find("bitstream in its own buffers, granted"), std::string::npos) << rep[0].encoder;
	EXPECT_EQ(rep[0].stats.compressedBytesCopied, 0u);
	EXPECT_EQ(rep[0].stats.bitstreams, 12u);
	for (uint32_t n = 0; n < 12; n++) {
		const std::string want = patternChecksum(n);
		EXPECT_NE(stream.find("seq=" + std::to_string(n) + " first="), std::string::npos) << stream;
		EXPECT_NE(stream.find(want), std::string::npos) << "frame " << n << " is not what the guest rendered\n"
								<< stream;
	}
}

/* An encoder that cannot export its buffers: Dom0's pages, read in place as before. */
TEST_F(V4L2ServiceTest, BeAllocWithAnEncoderThatCannotExportFallsBackToDom0Pages)
{
	fake.setExpBufSupported(false);
	start(true, false, true, true);
	std::string stream;
	expectReadInPlace(encode(stream, 6), stream, 6);
}

TEST_F(V4L2ServiceTest, WithoutBeAllocTheSameServiceCopiesEveryFrame)
{
	start(true, false, false);
	std::string stream;
	expectOneCopyEach(encode(stream, 4), 4);
}

/*
 * Where Dom0 can export a guest's refs (Arm): the backend publishes
 * input-dmabuf, the guest grants its INPUT pages writable, and every raw
 * frame reaches the device as a dma-buf of the guest's own pages -- not
 * mapped in Dom0 (0 mapped pages with buffers created), not copied.  The
 * fake encoder hashes what it read through each dma-buf: the test
 * pattern frame the guest rendered, every frame.
 */
TEST_F(V4L2ServiceTest, GuestFramesReachTheDeviceAsDmaBufsOfTheGuestsPagesWhereDom0CanExportThem)
{
	fake.setPayloadChecksum(true);
	start(true, false, false, false, true);
	std::string stream;
	auto r = encode(stream, 12);
	ASSERT_TRUE(r) << r.error().message;
	ASSERT_EQ(r->frames.size(), 12u);
	ASSERT_EQ(rep.size(), 1u);
	EXPECT_NE(rep[0].encoder.find("the guest's pages as dma-bufs"), std::string::npos) << rep[0].encoder;
	EXPECT_EQ(rep[0].stats.rawBytesCopied, 0u);
	EXPECT_EQ(rep[0].stats.rawDmaBufFrames, 12u);
	/* One dma-buf per INPUT buffer while connected; what is mapped is the bitstream's and the rings. */
	EXPECT_GE(rep[0].stats.dmaBufs, 2u);
	const uint64_t inputPages = rep[0].stats.dmaBufs * ((320 * 240 * 3 / 2 + 4095) / 4096);
	EXPECT_LT(rep[0].stats.mappedPages, inputPages) << "the INPUT pages are mapped too";
	EXPECT_GE(fake.ioctlCount(VIDIOC_PREPARE_BUF), 1u) << "the first one is handed over before it is queued";
	for (uint32_t n = 0; n < 12; n++) {
		const std::string want = patternChecksum(n);
		EXPECT_NE(stream.find(want), std::string::npos) << "frame " << n << " is not what the guest rendered";
	}
}

/*
 * A driver that cannot read such a dma-buf (vb2-vmalloc: vicodec) refuses
 * the first at PREPARE_BUF: the encoder reallocates its queue for mapped
 * pages and the same frame goes in that way; nothing is lost.
 */
TEST_F(V4L2ServiceTest, ADriverThatCannotReadGuestDmaBufsGetsTheGuestsMappedPagesFromTheFirstFrame)
{
	fake.setDmaBufImportSupported(false);
	start(true, true, false, false, true);
	std::string stream;
	expectReadInPlace(encode(stream, 8), stream, 8);
	EXPECT_EQ(rep[0].stats.rawDmaBufFrames, 0u);
	EXPECT_EQ(fake.ioctlCount(VIDIOC_PREPARE_BUF), 1u);
}

/*
 * A frontend that does not know input-dmabuf grants its INPUT read-only:
 * gntdev cannot export such refs (it maps exports writable), so its frames
 * are mapped and handed over as before -- copied here, with the default
 * foreign-userptr "no" -- and never fail.
 */
TEST_F(V4L2ServiceTest, AFrontendThatGrantsInputReadOnlyIsServedFromMappedPages)
{
	start(true, false, false, false, true);
	std::string stream;
	expectOneCopyEach(encode(stream, 4, true), 4);
	EXPECT_EQ(rep[0].stats.rawDmaBufFrames, 0u);
}

TEST_F(V4L2ServiceTest, DriverWithoutUserPtrIsCountedInTheServiceStats)
{
	start(false);
	std::string stream;
	expectOneCopyEach(encode(stream, 4), 4);
}

} /* namespace */
