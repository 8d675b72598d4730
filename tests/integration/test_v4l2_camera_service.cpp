/* SPDX-License-Identifier: MIT */
/*
 * The camera service over a V4L2 camera, the fake V4L2 device standing in
 * for the driver.
 *
 * MultiBufferCamera: a camera whose format puts each plane in a buffer of its own (V4L2's
 * NV12M, what SoC cameras and vivid multiplanar=2 offer) served to guests as
 * NV12, the one-buffer format cameraif and Linux's xen-camera-front know:
 * the camera writes each memory plane straight to its place in the guest's
 * one buffer, no copy.  The fake V4L2 device stands in for the driver and
 * writes the bytes of both planes as if they were one buffer, so a guest
 * buffer that matches FakeV4L2Device::frameByte() end to end proves each
 * plane landed at its offset.
 */
#include <cstdio>

#include <gmock/gmock.h>
#include <linux/videodev2.h>

#include "../v4l2/fake_v4l2_device.h"
#include "service_fixture.h"
#include "v4l2/v4l2_camera_source.h"

using namespace xmb;
using namespace xmb::test;
using frontend::CameraFrontend;
using xmb::testing::FakeV4L2Device;
using namespace std::chrono_literals;

namespace {

std::string config(const std::string &formats)
{
	std::string c = "[camera m]\nsource = test-pattern\n";
	if (!formats.empty())
		c += "formats = " + formats + "\n";
	return c + "[guest one]\ndomain = 1\ncamera = m\nmax-buffers = 4\n"
		   "[guest two]\ndomain = 2\ncamera = m\nbe-alloc = yes\nmax-buffers = 4\n";
}

class FakeCameraService : public ServiceTest
{
protected:
	void startFake(const std::string &formats)
	{
		sourceFactory = [this](const service::CameraEntry &) -> Result<std::unique_ptr<CameraSource>> {
			auto src = std::make_unique<V4L2CameraSource>(fake);
			int r = src->open("/dev/fake-video0");
			if (r < 0)
				return Error{ r, "open the fake camera" };
			return std::unique_ptr<CameraSource>(std::move(src));
		};
		startService(config(formats), { 1, 2 });
	}

	/*
	 * \a n frames into \a fe's buffers, each checked over \a size bytes
	 * (and its payload \a used bytes, if not 0).
	 */
	void streamFrames(CameraFrontend &fe, int n, size_t size, uint32_t used = 0)
	{
		for (int k = 0; k < n; k++) {
			bool made = false;
			onService([&] { made = fake.produceFrame(); });
			ASSERT_TRUE(made) << "frame " << k << ": the camera had no buffer of the guest";
			auto f = fe.waitFrame(5s);
			ASSERT_TRUE(f) << f.error().message;
			if (used) {
				ASSERT_EQ(f->usedSize, used) << "the payload ends with the last plane";
			}
			auto data = fe.bufferData(f->index);
			ASSERT_GE(data.size(), size);
			size_t bad = size;
			for (size_t i = 0; i < size && bad == size; i++)
				if (data[i] != FakeV4L2Device::frameByte(static_cast<uint32_t>(k), i))
					bad = i;
			EXPECT_EQ(bad, size) << "frame " << k << " differs at byte " << bad;
			ASSERT_TRUE(fe.bufQueue(f->index));
		}
	}

	/* The fake is not thread-safe: frames are made on the service thread. */
	uint32_t deviceFourcc()
	{
		uint32_t f = 0;
		onService([&] { f = fake.captureFourcc(); });
		return f;
	}

	/*
	 * NV12 640x480 in \a fe, \a n frames, each checked over its whole
	 * length: Y at 0, CbCr right after it, as in one NV12 buffer.
	 */
	void streamAndCheck(CameraFrontend &fe, int n)
	{
		ASSERT_TRUE(fe.connect(0, 5s));
		auto c = fe.configSet(V4L2_PIX_FMT_NV12, 640, 480);
		ASSERT_TRUE(c) << c.error().message;
		ASSERT_TRUE(fe.allocateBuffers(4));
		const auto &l = *fe.layout();
		ASSERT_EQ(l.numPlanes, 2u);
		EXPECT_EQ(l.planeSize[0], 640u * 480);
		EXPECT_EQ(l.planeSize[1], 640u * 240);
		EXPECT_EQ(l.planeStride[1], 640u);
		EXPECT_EQ(l.size, 640u * 480 * 3 / 2);
		ASSERT_TRUE(fe.queueAll());
		ASSERT_TRUE(fe.streamStart());
		streamFrames(fe, n, l.size, l.size); /* a mismatch at or past byte 307200: the CbCr plane */
	}

	const service::DeviceReport *reportOf(const std::string &who)
	{
		last_ = report();
		for (const auto &d : last_)
			if (d.label.find(who) != std::string::npos)
				return &d;
		return nullptr;
	}

	FakeV4L2Device fake{ FakeV4L2Device::Kind::CaptureMplane };
	/* dma-bufs the camera holds (queued or attached), read on the service thread */
	unsigned dmabufQueued()
	{
		unsigned n = 0;
		onService([&] { n = static_cast<unsigned>(fake.heldDmaBufs()); });
		return n;
	}

private:
	std::vector<service::DeviceReport> last_;
};

class MultiBufferCamera : public FakeCameraService
{
protected:
	/* \a formats: the camera's `formats` key; \a nativeNV12: the device has NV12 of its own too. */
	void start(const std::string &formats, bool nativeNV12)
	{
		fake.setMultiBufferNV12(nativeNV12);
		startFake(formats);
	}
};

/*
 * GuestDmaBufs: where Dom0's kernel turns a guest's grant refs into a
 * dma-buf (exp_from_refs: an Arm Dom0; the loopback emulates it), the
 * camera imports frontend-allocated buffers as dma-bufs (V4L2 DMABUF):
 * zero copy for a driver that takes no user pointers (dma-contig) or may
 * not be given foreign user pages.
 */
class GuestDmaBufs : public FakeCameraService
{
protected:
	void start(bool exportRefs)
	{
		hvSetup = [exportRefs](xen::LoopbackXen &h) {
			h.emulateGntdevDmabuf(true);
			h.emulateDmabufExport(exportRefs);
		};
		startFake("YUYV");
	}
	/* YUYV 640x480 in \a fe, 4 buffers queued, streaming. */
	void startStreaming(CameraFrontend &fe)
	{
		ASSERT_TRUE(fe.connect(0, 5s));
		auto c = fe.configSet(V4L2_PIX_FMT_YUYV, 640, 480);
		ASSERT_TRUE(c) << c.error().message;
		ASSERT_TRUE(fe.allocateBuffers(4));
		ASSERT_TRUE(fe.queueAll());
		ASSERT_TRUE(fe.streamStart());
	}
	static constexpr size_t kFrame = 640 * 480 * 2;
	/* A camera without USERPTR (dma-contig-like): \a n frames into dom1's pages imported as dma-bufs. */
	std::unique_ptr<CameraFrontend> streamIntoDmaBufs(int n)
	{
		fake.setUserPtrSupported(false);
		start(true);
		auto fe = std::make_unique<CameraFrontend>(*guest[1]);
		startStreaming(*fe);
		streamFrames(*fe, n, kFrame);
		return fe;
	}
};

} /* namespace */

TEST_F(MultiBufferCamera, ConfiguredNV12MIsPublishedAsNV12AndCapturedIntoTheGuestsPagesWithoutCopies)
{
	start("NV12M", true);
	auto devs = CameraFrontend::discover(*guest[1]);
	ASSERT_TRUE(devs) << devs.error().message;
	ASSERT_EQ(devs->size(), 1u);
	std::vector<uint32_t> fourccs;
	for (const auto &f : (*devs)[0].config.formats)
		fourccs.push_back(f.fourcc);
	EXPECT_THAT(fourccs, ::testing::ElementsAre(uint32_t(V4L2_PIX_FMT_NV12)))
		<< "NV12M is shown as NV12 (the guest's single-planar API has no NV12M), and only it";

	CameraFrontend fe(*guest[1]);
	streamAndCheck(fe, 6);
	EXPECT_EQ(deviceFourcc(), uint32_t(V4L2_PIX_FMT_NV12M)) << "the camera runs NV12M as configured";
	auto r = reportOf("dom1");
	ASSERT_NE(r, nullptr);
	EXPECT_EQ(r->stats.bytesCopied, 0u);
	EXPECT_THAT(r->tier, ::testing::HasSubstr("zero-copy"));
	EXPECT_THAT(r->format, ::testing::HasSubstr("NV12 640x480"));
}

TEST_F(MultiBufferCamera, BeAllocGuestGetsBothPlanesInTheBuffersDom0GrantsIt)
{
	start("NV12M", true);
	CameraFrontend fe(*guest[2]);
	streamAndCheck(fe, 6);
	EXPECT_EQ(deviceFourcc(), uint32_t(V4L2_PIX_FMT_NV12M));
	auto r = reportOf("dom2");
	ASSERT_NE(r, nullptr);
	EXPECT_EQ(r->stats.bytesCopied, 0u);
}

TEST_F(MultiBufferCamera, ACameraWithoutUserPtrCopiesEachPlaneAndSaysSo)
{
	fake.setUserPtrSupported(false); /* like a dma-contig driver */
	start("NV12M", true);
	CameraFrontend fe(*guest[1]);
	streamAndCheck(fe, 3);
	auto r = reportOf("dom1");
	ASSERT_NE(r, nullptr);
	EXPECT_EQ(r->stats.bytesCopied, 3ull * 640 * 480 * 3 / 2) << "each frame's planes copied once, counted";
	EXPECT_EQ(r->tier, "copy") << "not called zero-copy while the source copies";
}

TEST_F(MultiBufferCamera, TheCamerasOwnNV12IsUsedWhenTheConfigNamesNV12)
{
	start("NV12", true);
	CameraFrontend fe(*guest[1]);
	ASSERT_TRUE(fe.connect(0, 5s));
	auto c = fe.configSet(V4L2_PIX_FMT_NV12, 640, 480);
	ASSERT_TRUE(c) << c.error().message;
	EXPECT_EQ(deviceFourcc(), uint32_t(V4L2_PIX_FMT_NV12));
}

TEST_F(MultiBufferCamera, ACameraWithOnlyNV12MServesNV12WithoutConfiguration)
{
	start("", false);
	auto devs = CameraFrontend::discover(*guest[1]);
	ASSERT_TRUE(devs) << devs.error().message;
	std::vector<uint32_t> fourccs;
	for (const auto &f : (*devs)[0].config.formats)
		fourccs.push_back(f.fourcc);
	EXPECT_THAT(fourccs, ::testing::UnorderedElementsAre(uint32_t(V4L2_PIX_FMT_YUYV), uint32_t(V4L2_PIX_FMT_NV12)));
	CameraFrontend fe(*guest[1]);
	streamAndCheck(fe, 3);
	EXPECT_EQ(deviceFourcc(), uint32_t(V4L2_PIX_FMT_NV12M));
}

TEST_F(GuestDmaBufs, ACameraWithoutUserPtrCapturesIntoTheGuestsPagesImportedAsDmaBufs)
{
	auto fe = streamIntoDmaBufs(5);
	EXPECT_GT(dmabufQueued(), 0u) << "the camera holds the guest's buffers as dma-bufs";
	auto r = reportOf("dom1");
	ASSERT_NE(r, nullptr);
	EXPECT_EQ(r->stats.bytesCopied, 0u) << "the camera wrote the guest's pages itself";
	EXPECT_THAT(r->tier, ::testing::HasSubstr("dma-bufs"));
}

TEST_F(GuestDmaBufs, WithoutExportTheSameCameraCopies)
{
	fake.setUserPtrSupported(false);
	start(false); /* x86: gntdev imports, never exports */
	CameraFrontend fe(*guest[1]);
	startStreaming(fe);
	streamFrames(fe, 3, kFrame);
	auto r = reportOf("dom1");
	ASSERT_NE(r, nullptr);
	EXPECT_GE(r->stats.bytesCopied, 3 * kFrame) << "no dma-buf of the guest's pages: copies";
	EXPECT_EQ(r->tier, "copy");
}

TEST_F(GuestDmaBufs, ADmaBufTheCameraRefusesFallsBackToUserPointers)
{
	start(true);
	onService([&] { fake.failIoctl(VIDIOC_QBUF, EINVAL); }); /* the first QBUF of a dma-buf */
	CameraFrontend fe(*guest[1]);
	startStreaming(fe);
	streamFrames(fe, 3, kFrame);
	auto r = reportOf("dom1");
	ASSERT_NE(r, nullptr);
	EXPECT_EQ(r->stats.bytesCopied, 0u) << "user pointers into the guest's pages: still zero copy";
	EXPECT_THAT(r->tier, ::testing::HasSubstr("USERPTR"));
	EXPECT_EQ(dmabufQueued(), 0u);
}

TEST_F(GuestDmaBufs, ADomainDestroyedMidStreamLeavesNoDmaBufOfItsPagesHeld)
{
	auto fe = streamIntoDmaBufs(3);
	auto r = reportOf("dom1");
	ASSERT_NE(r, nullptr);
	EXPECT_EQ(r->domainDmaBufs, 4u) << "each of the guest's buffers exported once";
	ASSERT_GT(dmabufQueued(), 0u);
	ASSERT_TRUE(hv->destroyDomain(1));
	ASSERT_TRUE(waitFor([&] { return !reportOf("dom1")->connected; }));
	EXPECT_EQ(dmabufQueued(), 0u) << "the camera let go of the dead guest's buffers";
	EXPECT_TRUE(waitFor([&] { return reportOf("dom1")->domainDmaBufs == 0; }, 2000ms))
		<< "every export released (exp_wait_released), none left held by the camera";
	EXPECT_TRUE(waitFor([&] { return hv->mappedGrants(1) == 0; }, 2000ms));
}

/* xmb-sgcap on the arm64 Dom0 showed it: a driver with no events must stream, not be "device error". */
TEST_F(GuestDmaBufs, ACameraWithoutEventsStreams)
{
	fake.setEventsSupported(false);
	auto fe = streamIntoDmaBufs(4);
	auto r = reportOf("dom1");
	ASSERT_NE(r, nullptr);
	EXPECT_EQ(r->stats.frames, 4u);
	EXPECT_THAT(r->tier, ::testing::HasSubstr("dma-bufs"));
}
