/* SPDX-License-Identifier: MIT */
/*
 * V4L2 capture logic against the fake device: the same code paths the
 * vivid tests run on a kernel, minus the kernel.
 */
#include <gtest/gtest.h>
#include <linux/videodev2.h>

#include <algorithm>
#include <cstring>
#include <fstream>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <xen/io/cameraif.h>

#include "fake_v4l2_device.h"
#include "test_util.h"
#include "v4l2/v4l2_camera_source.h"
#include "v4l2/v4l2_video_device.h"

using namespace xmb;
using namespace xmb::testing;
using Kind = FakeV4L2Device::Kind;

namespace {

class CaptureTest : public ::testing::TestWithParam<Kind>
{
protected:
	void SetUp() override { fake_ = std::make_unique<FakeV4L2Device>(GetParam()); }

	bool expectFrameData(const uint8_t *data, size_t size, uint32_t seq)
	{
		for (size_t i = 0; i < size; i++)
			if (data[i] != FakeV4L2Device::frameByte(seq, i))
				return false;
		return true;
	}

	std::unique_ptr<FakeV4L2Device> fake_;
};

StreamConfig nv12Config(uint32_t width, uint32_t height)
{
	StreamConfig c;
	c.fourcc = V4L2_PIX_FMT_NV12;
	c.width = width;
	c.height = height;
	return c;
}

/* Queue \a pages as buffer \a index, start, let the fake capture one frame, dequeue it into \a f. */
::testing::AssertionResult captureOne(V4L2CameraSource &src, FakeV4L2Device &fake, unsigned index,
				      const AnonymousPages &pages, CompletedFrame &f)
{
	if (int r = src.queueBuffer(index, { pages.data(), -1, pages.size() }); r != 0)
		return ::testing::AssertionFailure() << "queueBuffer: " << r;
	if (int r = src.start(); r != 0)
		return ::testing::AssertionFailure() << "start: " << r;
	if (!fake.produceFrame())
		return ::testing::AssertionFailure() << "the fake had no buffer to fill";
	if (int r = src.dequeueFrame(f); r != 0)
		return ::testing::AssertionFailure() << "dequeueFrame: " << r;
	return ::testing::AssertionSuccess();
}

/* The first of \a size bytes at \a data that is not the fake camera's frame \a seq, or \a size. */
size_t firstWrongByte(const uint8_t *data, size_t size, uint32_t seq)
{
	for (size_t i = 0; i < size; i++)
		if (data[i] != FakeV4L2Device::frameByte(seq, i))
			return i;
	return size;
}

std::string kindName(const ::testing::TestParamInfo<Kind> &info)
{
	return info.param == Kind::Capture ? "SinglePlane" : "MultiPlane";
}

} /* namespace */

TEST_P(CaptureTest, OpensAndPicksBufferTypeFromCaps)
{
	V4L2VideoDevice dev(*fake_);
	ASSERT_EQ(dev.open("/dev/fake-video0"), 0);
	EXPECT_EQ(dev.caps().driver(), "fake");
	EXPECT_EQ(dev.bufferType(), GetParam() == Kind::Capture ? V4L2_BUF_TYPE_VIDEO_CAPTURE
								: V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE);
}

TEST_P(CaptureTest, OpenOfMissingNodeFailsCleanly)
{
	V4L2VideoDevice dev(*fake_);
	EXPECT_EQ(dev.open("/dev/nope"), -ENOENT);
	EXPECT_FALSE(dev.isOpen());
}

TEST_P(CaptureTest, QuerycapFailureClosesTheFd)
{
	fake_->failIoctl(VIDIOC_QUERYCAP, EIO);
	V4L2VideoDevice dev(*fake_);
	EXPECT_EQ(dev.open("/dev/fake-video0"), -EIO);
	EXPECT_EQ(fake_->openCount(), 0u);
}

TEST_P(CaptureTest, EnumeratesDiscreteAndStepwiseFormats)
{
	V4L2VideoDevice dev(*fake_);
	ASSERT_EQ(dev.open("/dev/fake-video0"), 0);
	auto fmts = dev.enumerateFormats();
	ASSERT_EQ(fmts.size(), 2u);
	EXPECT_EQ(fmts[0].fourcc, V4L2_PIX_FMT_YUYV);
	EXPECT_EQ(fmts[0].sizes.discrete.size(), 2u);
	EXPECT_EQ(fmts[1].sizes.type, FrameSizeEnum::Type::Stepwise);

	auto flat = dev.flatFormats();
	auto yuyv480 = std::find_if(flat.begin(), flat.end(), [](const FormatEntry &e) {
		return e.fourcc == V4L2_PIX_FMT_YUYV && e.width == 640;
	});
	ASSERT_NE(yuyv480, flat.end());
	EXPECT_EQ(yuyv480->intervals, (std::vector<Fraction>{ { 1, 30 }, { 1, 15 } }));
	size_t nv12 = std::count_if(flat.begin(), flat.end(),
				    [](const FormatEntry &e) { return e.fourcc == V4L2_PIX_FMT_NV12; });
	EXPECT_GT(nv12, 2u);
	EXPECT_LE(nv12, SamplingLimits{}.maxSizesPerFormat);
}

TEST_P(CaptureTest, SetFormatReturnsDriverAdjustedFormat)
{
	V4L2VideoDevice dev(*fake_);
	ASSERT_EQ(dev.open("/dev/fake-video0"), 0);
	V4L2Format f;
	f.fourcc = V4L2_PIX_FMT_NV12;
	f.width = 650;
	f.height = 490;
	ASSERT_EQ(dev.tryFormat(f), 0);
	EXPECT_EQ(f.width, 640u);
	ASSERT_EQ(dev.setFormat(f), 0);
	V4L2Format g;
	ASSERT_EQ(dev.getFormat(g), 0);
	EXPECT_EQ(g.fourcc, V4L2_PIX_FMT_NV12);
	EXPECT_EQ(g.planes[0].sizeImage, 640u * 488u * 3 / 2);
}

TEST_P(CaptureTest, FrameIntervalRoundTrips)
{
	V4L2VideoDevice dev(*fake_);
	ASSERT_EQ(dev.open("/dev/fake-video0"), 0);
	Fraction iv{ 1, 15 };
	ASSERT_EQ(dev.setFrameInterval(iv), 0);
	Fraction got;
	ASSERT_EQ(dev.getFrameInterval(got), 0);
	EXPECT_EQ(got, (Fraction{ 1, 15 }));
}

TEST_P(CaptureTest, MmapStreamingDeliversMappedFramesInSequence)
{
	V4L2VideoDevice dev(*fake_);
	ASSERT_EQ(dev.open("/dev/fake-video0"), 0);
	V4L2BufferQueue &q = dev.queue();
	ASSERT_EQ(q.requestBuffers(3, V4L2Memory::Mmap), 3);
	for (unsigned i = 0; i < 3; i++) {
		ASSERT_EQ(q.mapBuffer(i), 0);
		ASSERT_EQ(q.queueBuffer(i), 0);
	}
	ASSERT_EQ(q.streamOn(), 0);
	for (uint32_t n = 0; n < 5; n++) {
		ASSERT_TRUE(fake_->produceFrame());
		V4L2DequeuedBuffer b;
		ASSERT_EQ(q.dequeueBuffer(b), 0);
		EXPECT_EQ(b.sequence, n);
		EXPECT_GT(b.timestampNs, 0u);
		EXPECT_TRUE(expectFrameData(q.planeData(b.index, 0), b.bytesUsed[0], n));
		ASSERT_EQ(q.queueBuffer(b.index), 0);
	}
	V4L2DequeuedBuffer none;
	EXPECT_EQ(q.dequeueBuffer(none), -EAGAIN);
}

TEST_P(CaptureTest, UserPtrCapturesIntoCallerPages)
{
	V4L2VideoDevice dev(*fake_);
	ASSERT_EQ(dev.open("/dev/fake-video0"), 0);
	V4L2BufferQueue &q = dev.queue();
	ASSERT_EQ(q.requestBuffers(2, V4L2Memory::UserPtr), 2);
	uint32_t size = q.planeLength(0, 0);
	AnonymousPages a(size), b(size);
	V4L2QueueArgs args;
	args.planes[0] = { a.data(), -1, size };
	ASSERT_EQ(q.queueBuffer(0, args), 0);
	args.planes[0] = { b.data(), -1, size };
	ASSERT_EQ(q.queueBuffer(1, args), 0);
	ASSERT_EQ(q.streamOn(), 0);
	ASSERT_TRUE(fake_->produceFrame());
	V4L2DequeuedBuffer d;
	ASSERT_EQ(q.dequeueBuffer(d), 0);
	EXPECT_EQ(d.index, 0u);
	EXPECT_TRUE(expectFrameData(a.data(), size, 0));
}

TEST_P(CaptureTest, UserPtrShorterThanFrameIsRefused)
{
	V4L2VideoDevice dev(*fake_);
	ASSERT_EQ(dev.open("/dev/fake-video0"), 0);
	V4L2BufferQueue &q = dev.queue();
	ASSERT_EQ(q.requestBuffers(1, V4L2Memory::UserPtr), 1);
	AnonymousPages small(4096);
	V4L2QueueArgs args;
	args.planes[0] = { small.data(), -1, 4096 };
	EXPECT_EQ(q.queueBuffer(0, args), -EINVAL);
	EXPECT_FALSE(q.isQueued(0));
}

TEST_P(CaptureTest, DmaBufImportCapturesIntoCallerFd)
{
	V4L2VideoDevice dev(*fake_);
	ASSERT_EQ(dev.open("/dev/fake-video0"), 0);
	V4L2BufferQueue &q = dev.queue();
	ASSERT_EQ(q.requestBuffers(1, V4L2Memory::DmaBuf), 1);
	uint32_t size = q.planeLength(0, 0);
	UniqueFD fd = makeMemfd(size);
	V4L2QueueArgs args;
	args.planes[0].fd = fd.get();
	ASSERT_EQ(q.queueBuffer(0, args), 0);
	ASSERT_EQ(q.streamOn(), 0);
	ASSERT_TRUE(fake_->produceFrame());
	V4L2DequeuedBuffer d;
	ASSERT_EQ(q.dequeueBuffer(d), 0);
	std::vector<uint8_t> got(size);
	ASSERT_EQ(::pread(fd.get(), got.data(), size, 0), static_cast<ssize_t>(size));
	EXPECT_TRUE(expectFrameData(got.data(), size, 0));
	/* Freeing the queue drops the driver's reference to the dma-buf. */
	q.releaseBuffers();
	EXPECT_EQ(fake_->heldDmaBufs(), 0u);
}

TEST_P(CaptureTest, ExpbufGivesCloexecFdWithFrameData)
{
	V4L2VideoDevice dev(*fake_);
	ASSERT_EQ(dev.open("/dev/fake-video0"), 0);
	V4L2BufferQueue &q = dev.queue();
	ASSERT_EQ(q.requestBuffers(1, V4L2Memory::Mmap), 1);
	UniqueFD exp;
	ASSERT_EQ(q.exportBuffer(0, 0, exp), 0);
	EXPECT_TRUE(fake_->lastExpbufFlags() & O_CLOEXEC);
	EXPECT_TRUE(::fcntl(exp.get(), F_GETFD) & FD_CLOEXEC);
	ASSERT_EQ(q.queueBuffer(0), 0);
	ASSERT_EQ(q.streamOn(), 0);
	ASSERT_TRUE(fake_->produceFrame());
	V4L2DequeuedBuffer d;
	ASSERT_EQ(q.dequeueBuffer(d), 0);
	size_t size = q.planeLength(0, 0);
	void *p = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, exp.get(), 0);
	ASSERT_NE(p, MAP_FAILED);
	EXPECT_TRUE(expectFrameData(static_cast<uint8_t *>(p), size, 0));
	::munmap(p, size);
}

TEST_P(CaptureTest, DroppedFrameShowsAsSequenceGap)
{
	V4L2VideoDevice dev(*fake_);
	ASSERT_EQ(dev.open("/dev/fake-video0"), 0);
	V4L2BufferQueue &q = dev.queue();
	ASSERT_EQ(q.requestBuffers(1, V4L2Memory::Mmap), 1);
	ASSERT_EQ(q.queueBuffer(0), 0);
	ASSERT_EQ(q.streamOn(), 0);
	ASSERT_TRUE(fake_->produceFrame());
	EXPECT_FALSE(fake_->produceFrame()); /* no buffer: dropped */
	V4L2DequeuedBuffer d;
	ASSERT_EQ(q.dequeueBuffer(d), 0);
	ASSERT_EQ(q.queueBuffer(0), 0);
	ASSERT_TRUE(fake_->produceFrame());
	ASSERT_EQ(q.dequeueBuffer(d), 0);
	EXPECT_EQ(d.sequence, 2u);
}

TEST_P(CaptureTest, MmapFailureMidwayLeavesNoMappings)
{
	V4L2VideoDevice dev(*fake_);
	ASSERT_EQ(dev.open("/dev/fake-video0"), 0);
	V4L2BufferQueue &q = dev.queue();
	ASSERT_EQ(q.requestBuffers(3, V4L2Memory::Mmap), 3);
	fake_->failMmap(ENOMEM, 1);
	EXPECT_EQ(q.mapBuffer(0), 0);
	EXPECT_EQ(q.mapBuffer(1), -ENOMEM);
	q.releaseBuffers();
	EXPECT_EQ(fake_->liveMappings(), 0u);
	EXPECT_EQ(fake_->allocatedBuffers(), 0u);
}

TEST_P(CaptureTest, QuerybufFailureGivesBuffersBack)
{
	V4L2VideoDevice dev(*fake_);
	ASSERT_EQ(dev.open("/dev/fake-video0"), 0);
	fake_->failIoctl(VIDIOC_QUERYBUF, EIO, 1);
	EXPECT_EQ(dev.queue().requestBuffers(3, V4L2Memory::Mmap), -EIO);
	EXPECT_EQ(dev.queue().count(), 0u);
	EXPECT_EQ(fake_->allocatedBuffers(), 0u);
}

TEST_P(CaptureTest, ClosingReleasesEverything)
{
	int before = countOpenFds();
	{
		V4L2VideoDevice dev(*fake_);
		ASSERT_EQ(dev.open("/dev/fake-video0"), 0);
		ASSERT_EQ(dev.queue().requestBuffers(4, V4L2Memory::Mmap), 4);
		for (unsigned i = 0; i < 4; i++) {
			ASSERT_EQ(dev.queue().mapBuffer(i), 0);
			ASSERT_EQ(dev.queue().queueBuffer(i), 0);
		}
		ASSERT_EQ(dev.queue().streamOn(), 0);
		fake_->produceFrame();
	}
	EXPECT_EQ(fake_->openCount(), 0u);
	EXPECT_EQ(fake_->liveMappings(), 0u);
	EXPECT_EQ(fake_->allocatedBuffers(), 0u);
	EXPECT_EQ(countOpenFds(), before);
}

TEST_P(CaptureTest, ControlsQueryMenusAndSet)
{
	V4L2VideoDevice dev(*fake_);
	ASSERT_EQ(dev.open("/dev/fake-video0"), 0);
	auto ctrls = dev.queryControls();
	ASSERT_EQ(ctrls.size(), 5u);
	auto plf = std::find_if(ctrls.begin(), ctrls.end(), [](const V4L2ControlInfo &c) {
		return c.id == V4L2_CID_POWER_LINE_FREQUENCY;
	});
	ASSERT_NE(plf, ctrls.end());
	ASSERT_EQ(plf->menu.size(), 3u);
	EXPECT_EQ(plf->menu[1].second, "50 Hz");

	int64_t v = 300;
	ASSERT_EQ(dev.setControl(V4L2_CID_BRIGHTNESS, v), 0);
	EXPECT_EQ(v, 255) << "driver clamps and we report what it applied";
	int64_t got = 0;
	ASSERT_EQ(dev.getControl(V4L2_CID_BRIGHTNESS, got), 0);
	EXPECT_EQ(got, 255);
	v = 7;
	EXPECT_EQ(dev.setControl(V4L2_CID_POWER_LINE_FREQUENCY, v), -ERANGE);
}

TEST_P(CaptureTest, SourceMapsControlEventsToCameraif)
{
	V4L2CameraSource src(*fake_);
	ASSERT_EQ(src.open("/dev/fake-video0"), 0);
	fake_->raiseControlChange(V4L2_CID_SATURATION, 77);
	fake_->raiseControlChange(V4L2_CID_POWER_LINE_FREQUENCY, 2); /* not cameraif */
	SourceEvent ev;
	ASSERT_EQ(src.dequeueEvent(ev), 0);
	EXPECT_EQ(ev.type, SourceEvent::Type::ControlChanged);
	EXPECT_EQ(ev.control, XENCAMERA_CTRL_SATURATION);
	EXPECT_EQ(ev.value, 77);
	EXPECT_EQ(src.dequeueEvent(ev), -EAGAIN);
}

TEST_P(CaptureTest, SourceReportsAllTiersAndCameraifControls)
{
	V4L2CameraSource src(*fake_);
	ASSERT_EQ(src.open("/dev/fake-video0"), 0);
	EXPECT_EQ(src.id(), "v4l2:platform:fake-0");
	MemoryTypes m = src.supportedMemory();
	EXPECT_TRUE(hasMemoryType(m, MemoryType::UserPtr));
	EXPECT_TRUE(hasMemoryType(m, MemoryType::DmaBufImport));
	EXPECT_TRUE(hasMemoryType(m, MemoryType::MmapExport));
	auto ctrls = src.controls();
	ASSERT_EQ(ctrls.size(), 4u);
	EXPECT_EQ(ctrls[3], (CameraControlInfo{ XENCAMERA_CTRL_HUE, 0, -180, 180, 1, 0 }));
	int64_t v = 1000;
	ASSERT_EQ(src.setControl(XENCAMERA_CTRL_CONTRAST, v), 0);
	EXPECT_EQ(v, 255);
	EXPECT_EQ(fake_->controlValue(V4L2_CID_CONTRAST), 255);
	EXPECT_EQ(src.emulatedCopyBytesPerFrame(), 0u);
}

TEST_P(CaptureTest, SourceStreamsUserPtrAndRestartsWithNewFormat)
{
	V4L2CameraSource src(*fake_);
	ASSERT_EQ(src.open("/dev/fake-video0"), 0);
	StreamConfig c;
	c.fourcc = V4L2_PIX_FMT_YUYV;
	c.width = 640;
	c.height = 480;
	c.interval = { 1, 15 };
	ASSERT_EQ(src.configure(c), 0);
	EXPECT_EQ(c.layout.size, 640u * 480u * 2);
	EXPECT_EQ(c.interval, (Fraction{ 1, 15 }));
	ASSERT_EQ(src.allocateBuffers(MemoryType::UserPtr, 2), 2);
	AnonymousPages pages(c.layout.size);
	ASSERT_EQ(src.queueBuffer(0, { pages.data(), -1, pages.size() }), 0);
	ASSERT_EQ(src.start(), 0);
	ASSERT_TRUE(fake_->produceFrame());
	CompletedFrame f;
	ASSERT_EQ(src.dequeueFrame(f), 0);
	EXPECT_EQ(f.bytesUsed, c.layout.size);
	EXPECT_TRUE(expectFrameData(pages.data(), c.layout.size, 0));

	/* Mid-session format change: stop, free, configure, allocate, start. */
	StreamConfig busy = c;
	EXPECT_EQ(src.configure(busy), -EBUSY);
	ASSERT_EQ(src.stop(), 0);
	ASSERT_EQ(src.releaseBuffers(), 0);
	StreamConfig n = c;
	n.fourcc = V4L2_PIX_FMT_NV12;
	n.width = 320;
	n.height = 240;
	ASSERT_EQ(src.configure(n), 0);
	EXPECT_EQ(n.layout.numPlanes, 2u);
	EXPECT_EQ(n.layout.size, 320u * 240u * 3 / 2);
	ASSERT_EQ(src.allocateBuffers(MemoryType::MmapExport, 2), 2);
	ExportedBuffer exp;
	ASSERT_EQ(src.exportBuffer(1, exp), 0);
	ASSERT_EQ(src.queueBuffer(1), 0);
	ASSERT_EQ(src.start(), 0);
	ASSERT_TRUE(fake_->produceFrame());
	ASSERT_EQ(src.dequeueFrame(f), 0);
	EXPECT_EQ(f.index, 1u);
	EXPECT_EQ(f.sequence, 0u) << "sequence restarts with the stream";
	EXPECT_EQ(f.bytesUsed, n.layout.size);
}

TEST_P(CaptureTest, SourceChangeEventLeadsToRestartAtNewSize)
{
	V4L2CameraSource src(*fake_);
	ASSERT_EQ(src.open("/dev/fake-video0"), 0);
	StreamConfig c;
	c.fourcc = V4L2_PIX_FMT_YUYV;
	c.width = 640;
	c.height = 480;
	ASSERT_EQ(src.configure(c), 0);
	ASSERT_EQ(src.allocateBuffers(MemoryType::MmapExport, 2), 2);
	ASSERT_EQ(src.queueBuffer(0), 0);
	ASSERT_EQ(src.start(), 0);

	fake_->raiseResolutionChange(1280, 720);
	SourceEvent ev;
	ASSERT_EQ(src.dequeueEvent(ev), 0);
	EXPECT_EQ(ev.type, SourceEvent::Type::SourceChanged);

	/* The service's reaction: stop, free, G_FMT the new size, restart. */
	ASSERT_EQ(src.stop(), 0);
	ASSERT_EQ(src.releaseBuffers(), 0);
	V4L2Format now;
	ASSERT_EQ(src.device().getFormat(now), 0);
	EXPECT_EQ(now.width, 1280u);
	StreamConfig n = c;
	n.width = now.width;
	n.height = now.height;
	ASSERT_EQ(src.configure(n), 0);
	EXPECT_EQ(n.layout.size, 1280u * 720u * 2);
	ASSERT_EQ(src.allocateBuffers(MemoryType::MmapExport, 2), 2);
	ASSERT_EQ(src.queueBuffer(0), 0);
	ASSERT_EQ(src.start(), 0);
	ASSERT_TRUE(fake_->produceFrame());
	CompletedFrame f;
	ASSERT_EQ(src.dequeueFrame(f), 0);
	EXPECT_EQ(f.bytesUsed, n.layout.size);
}

TEST_P(CaptureTest, ScanFindsNodesByDriverAndCard)
{
	char tmpl[] = "/tmp/xmb-scan-XXXXXX";
	ASSERT_NE(::mkdtemp(tmpl), nullptr);
	std::string dir = tmpl;
	std::ofstream(dir + "/video0").put('x');
	std::ofstream(dir + "/video10").put('x');
	std::ofstream(dir + "/vbi0").put('x');
	FakeV4L2Device fake(GetParam(), dir + "/video0");
	auto nodes = scanV4L2Nodes(fake, dir);
	ASSERT_EQ(nodes.size(), 1u) << "video10 does not open, vbi0 is not a video node";
	EXPECT_EQ(nodes[0].card, "Fake Camera");
	EXPECT_TRUE(findV4L2Node({ "fake", "Camera", "", 0 }, fake, dir));
	EXPECT_FALSE(findV4L2Node({ "vivid", "", "", 0 }, fake, dir));
	EXPECT_FALSE(findV4L2Node({ "", "", "", V4L2_CAP_VIDEO_M2M }, fake, dir));
	for (const char *f : { "/video0", "/video10", "/vbi0" })
		::unlink((dir + f).c_str());
	::rmdir(dir.c_str());
}

/*
 * Multi-buffer formats (NV12M: Y and CbCr in two memory planes, as SoC
 * cameras and vivid multiplanar=2 offer) are served as their one-buffer
 * twins: the caller's one buffer, a USERPTR per plane into it.
 */
TEST(MultiBufferFormat, NV12MIsListedAsNV12AndCapturesBothPlanesIntoOneCallerBuffer)
{
	FakeV4L2Device fake(Kind::CaptureMplane);
	fake.setMultiBufferNV12(false);
	V4L2CameraSource src(fake);
	ASSERT_EQ(src.open("/dev/fake-video0"), 0);
	auto formats = src.formats();
	bool nv12 = false;
	for (const auto &f : formats) {
		EXPECT_NE(f.fourcc, uint32_t(V4L2_PIX_FMT_NV12M)) << "listed under its twin";
		if (f.fourcc == V4L2_PIX_FMT_NV12) {
			nv12 = true;
			EXPECT_EQ(f.deviceFourcc, uint32_t(V4L2_PIX_FMT_NV12M));
		}
	}
	EXPECT_TRUE(nv12);

	StreamConfig c = nv12Config(640, 480);
	ASSERT_EQ(src.configure(c), 0);
	EXPECT_EQ(fake.captureFourcc(), uint32_t(V4L2_PIX_FMT_NV12M));
	EXPECT_EQ(c.fourcc, uint32_t(V4L2_PIX_FMT_NV12));
	EXPECT_EQ(c.deviceFourcc, uint32_t(V4L2_PIX_FMT_NV12M));
	ASSERT_EQ(c.layout.numPlanes, 2u);
	EXPECT_EQ(c.layout.planes[0], (PlaneLayout{ 0, 640, 640 * 480 }));
	EXPECT_EQ(c.layout.planes[1], (PlaneLayout{ 640 * 480, 640, 640 * 240 }));
	EXPECT_EQ(c.layout.size, 640u * 480 * 3 / 2);
	EXPECT_EQ(src.supportedMemory(), static_cast<MemoryTypes>(MemoryType::UserPtr))
		<< "a dma-buf per plane can be neither granted nor imported as one buffer";

	ASSERT_EQ(src.allocateBuffers(MemoryType::UserPtr, 2), 2);
	AnonymousPages small(c.layout.size - 1);
	EXPECT_EQ(src.queueBuffer(0, { small.data(), -1, small.size() }), -EINVAL)
		<< "a buffer that cannot hold the CbCr plane is refused";
	AnonymousPages pages(c.layout.size);
	CompletedFrame f;
	ASSERT_TRUE(captureOne(src, fake, 0, pages, f));
	EXPECT_EQ(f.bytesUsed, c.layout.size) << "the payload ends where the CbCr plane does";
	size_t bad = firstWrongByte(pages.data(), c.layout.size, 0);
	EXPECT_EQ(bad, c.layout.size) << "byte " << bad << " is not where the camera put it";
}

TEST(MultiBufferFormat, ACameraWithoutUserPtrHasEachPlaneCopiedToItsPlaceAndCounted)
{
	FakeV4L2Device fake(Kind::CaptureMplane);
	fake.setMultiBufferNV12(false);
	fake.setUserPtrSupported(false); /* like a dma-contig driver */
	V4L2CameraSource src(fake);
	ASSERT_EQ(src.open("/dev/fake-video0"), 0);
	StreamConfig c = nv12Config(320, 240);
	ASSERT_EQ(src.configure(c), 0);
	ASSERT_EQ(c.deviceFourcc, uint32_t(V4L2_PIX_FMT_NV12M));
	ASSERT_EQ(src.allocateBuffers(MemoryType::UserPtr, 2), 2);
	AnonymousPages pages(c.layout.size);
	CompletedFrame f;
	ASSERT_TRUE(captureOne(src, fake, 1, pages, f));
	EXPECT_EQ(f.index, 1u);
	EXPECT_EQ(f.bytesUsed, c.layout.size);
	size_t bad = firstWrongByte(pages.data(), c.layout.size, 0);
	EXPECT_EQ(bad, c.layout.size) << "byte " << bad << " is not where the camera put it";
	EXPECT_EQ(src.emulatedCopyBytesPerFrame(), c.layout.size);
	EXPECT_EQ(src.emulatedCopyBytesTotal(), c.layout.size) << "the copy is counted";
}

TEST(MultiBufferFormat, TheDevicesOwnNV12IsUsedUnlessTheCallerNamesNV12M)
{
	FakeV4L2Device fake(Kind::CaptureMplane);
	fake.setMultiBufferNV12(true);
	V4L2CameraSource src(fake);
	ASSERT_EQ(src.open("/dev/fake-video0"), 0);
	StreamConfig c = nv12Config(320, 240);
	ASSERT_EQ(src.configure(c), 0);
	EXPECT_EQ(fake.captureFourcc(), uint32_t(V4L2_PIX_FMT_NV12));
	EXPECT_EQ(c.deviceFourcc, 0u);
	EXPECT_TRUE(hasMemoryType(src.supportedMemory(), MemoryType::MmapExport));

	StreamConfig m = c;
	m.deviceFourcc = V4L2_PIX_FMT_NV12M;
	ASSERT_EQ(src.configure(m), 0);
	EXPECT_EQ(fake.captureFourcc(), uint32_t(V4L2_PIX_FMT_NV12M));
	EXPECT_EQ(m.fourcc, uint32_t(V4L2_PIX_FMT_NV12));
	EXPECT_EQ(m.deviceFourcc, uint32_t(V4L2_PIX_FMT_NV12M));

	StreamConfig wrong = c;
	wrong.deviceFourcc = V4L2_PIX_FMT_YUYV;
	EXPECT_EQ(src.tryConfigure(wrong), -EINVAL) << "YUYV is no twin of NV12";
	StreamConfig other = c;
	other.deviceFourcc = V4L2_PIX_FMT_NV21M;
	EXPECT_EQ(src.configure(other), -EINVAL) << "a twin the device does not list";
}

INSTANTIATE_TEST_SUITE_P(Fake, CaptureTest, ::testing::Values(Kind::Capture, Kind::CaptureMplane),
			 kindName);
