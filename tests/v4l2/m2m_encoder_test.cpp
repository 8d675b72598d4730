/* SPDX-License-Identifier: MIT */
/*
 * The stateful encoder logic against the fake M2M device (no encoder
 * exists on this kernel: Debian ships no vicodec).
 */
#include <gtest/gtest.h>
#include <linux/videodev2.h>

#include <cstring>
#include <string>

#include "fake_v4l2_device.h"
#include "test_util.h"
#include "v4l2/v4l2_m2m_encoder.h"

using namespace xmb;
using namespace xmb::testing;
using Kind = FakeV4L2Device::Kind;

namespace {

class EncoderTest : public ::testing::TestWithParam<Kind>
{
protected:
	void SetUp() override
	{
		fake_ = std::make_unique<FakeV4L2Device>(GetParam());
		enc_ = std::make_unique<V4L2M2MEncoder>(*fake_);
	}

	/* Open, configure 640x480 NV12 -> H264, allocate, start. */
	void startEncoder(V4L2Memory rawMemory = V4L2Memory::Mmap, unsigned raw = 2, unsigned coded = 2)
	{
		ASSERT_EQ(enc_->open("/dev/fake-video0"), 0);
		EncoderConfig c{ V4L2_PIX_FMT_NV12, 640, 480, V4L2_PIX_FMT_H264, 0, { 1, 30 } };
		ASSERT_EQ(enc_->configure(c), 0);
		ASSERT_EQ(enc_->allocateBuffers(raw, rawMemory, coded), 0);
		ASSERT_EQ(enc_->start(), 0);
	}

	/* Queue MMAP raw buffer \a index with its first byte set to \a marker. */
	void queueMmapRaw(unsigned index, uint8_t marker, uint64_t ts = 0)
	{
		ASSERT_EQ(enc_->output().mapBuffer(index), 0);
		enc_->output().planeData(index, 0)[0] = marker;
		V4L2QueueArgs a;
		a.planes[0].bytesUsed = enc_->rawFormat().planes[0].sizeImage;
		a.timestampNs = ts;
		ASSERT_EQ(enc_->queueRaw(index, a), 0);
	}

	std::string payload(const EncodedFrame &f)
	{
		return std::string(reinterpret_cast<const char *>(f.data), f.bytesUsed);
	}

	std::unique_ptr<FakeV4L2Device> fake_;
	std::unique_ptr<V4L2M2MEncoder> enc_;
};

std::string kindName(const ::testing::TestParamInfo<Kind> &info)
{
	return info.param == Kind::Encoder ? "SinglePlane" : "MultiPlane";
}

} /* namespace */

TEST_P(EncoderTest, DiscoveredByCapabilityAndFormats)
{
	ASSERT_EQ(enc_->open("/dev/fake-video0"), 0);
	EXPECT_TRUE(isM2MEncoder(*enc_));
	EXPECT_EQ(enc_->rawFormats(), (std::vector<uint32_t>{ V4L2_PIX_FMT_NV12, V4L2_PIX_FMT_YUV420 }));
	EXPECT_EQ(enc_->codedFormats(), (std::vector<uint32_t>{ V4L2_PIX_FMT_H264, V4L2_PIX_FMT_HEVC }));
}

TEST_P(EncoderTest, CaptureDeviceIsNotAnEncoder)
{
	FakeV4L2Device cam(Kind::Capture);
	V4L2M2MEncoder enc(cam);
	EXPECT_EQ(enc.open("/dev/fake-video0"), -ENODEV);
	EXPECT_EQ(cam.openCount(), 0u);
}

TEST_P(EncoderTest, NegotiatesCodedThenRawAndReportsDriverChoice)
{
	ASSERT_EQ(enc_->open("/dev/fake-video0"), 0);
	EncoderConfig c{ V4L2_PIX_FMT_NV12, 1000, 500, V4L2_PIX_FMT_HEVC, 0, { 1, 25 } };
	ASSERT_EQ(enc_->configure(c), 0);
	EXPECT_EQ(c.width, 992u) << "driver alignment is reported back";
	EXPECT_EQ(c.height, 496u);
	EXPECT_EQ(c.interval, (Fraction{ 1, 25 }));
	EXPECT_EQ(enc_->codedFormat().fourcc, V4L2_PIX_FMT_HEVC);
	EXPECT_GE(c.codedBufferSize, 64u * 1024);
	EXPECT_EQ(enc_->rawFormat().planes[0].sizeImage, 992u * 496u * 3 / 2);
	EXPECT_EQ(enc_->state(), V4L2M2MEncoder::State::Configured);
}

TEST_P(EncoderTest, UnsupportedCodedFormatIsRefused)
{
	ASSERT_EQ(enc_->open("/dev/fake-video0"), 0);
	EncoderConfig c{ V4L2_PIX_FMT_NV12, 640, 480, V4L2_PIX_FMT_VP9, 0, {} };
	EXPECT_EQ(enc_->configure(c), -EINVAL);
}

TEST_P(EncoderTest, ParamsApplyWhereControlsExistAndReportWhatTookEffect)
{
	ASSERT_EQ(enc_->open("/dev/fake-video0"), 0);
	EncoderParams p;
	p.bitrate = 50000000; /* above max: clamped by the driver */
	p.gopSize = 30;
	p.h264Profile = V4L2_MPEG_VIDEO_H264_PROFILE_MAIN;
	p.h264Level = V4L2_MPEG_VIDEO_H264_LEVEL_4_0; /* fake has no level control */
	EncoderParams applied;
	ASSERT_EQ(enc_->setParams(p, &applied), 0);
	EXPECT_EQ(applied.bitrate, 20000000);
	EXPECT_EQ(applied.gopSize, 30);
	EXPECT_EQ(applied.h264Profile, V4L2_MPEG_VIDEO_H264_PROFILE_MAIN);
	EXPECT_FALSE(applied.h264Level);
	EXPECT_EQ(fake_->controlValue(V4L2_CID_MPEG_VIDEO_GOP_SIZE), 30);
}

TEST_P(EncoderTest, OutOfRangeMenuValueIsAnError)
{
	ASSERT_EQ(enc_->open("/dev/fake-video0"), 0);
	EncoderParams p;
	p.h264Profile = 99;
	EXPECT_EQ(enc_->setParams(p), -ERANGE);
}

TEST_P(EncoderTest, EncodesQueuedFramesAndCopiesTimestamps)
{
	startEncoder();
	queueMmapRaw(0, 0xab, 1000000);
	queueMmapRaw(1, 0xcd, 2000000);
	EncodedFrame f;
	ASSERT_EQ(enc_->dequeueCoded(f), 0);
	EXPECT_TRUE(f.keyFrame);
	EXPECT_EQ(f.timestampNs, 1000000u);
	EXPECT_EQ(payload(f), "FAKEI seq=0 first=ab");
	ASSERT_EQ(enc_->requeueCoded(f.index), 0);
	ASSERT_EQ(enc_->dequeueCoded(f), 0);
	EXPECT_FALSE(f.keyFrame);
	EXPECT_EQ(f.timestampNs, 2000000u);
	unsigned raw;
	EXPECT_EQ(enc_->dequeueRaw(raw), 0);
	EXPECT_EQ(enc_->dequeueRaw(raw), 0);
	EXPECT_EQ(enc_->dequeueRaw(raw), -EAGAIN);
}

TEST_P(EncoderTest, ForceKeyFrameMakesNextFrameKey)
{
	startEncoder();
	queueMmapRaw(0, 1);
	EncodedFrame f;
	ASSERT_EQ(enc_->dequeueCoded(f), 0);
	ASSERT_EQ(enc_->requeueCoded(f.index), 0);
	unsigned raw;
	ASSERT_EQ(enc_->dequeueRaw(raw), 0);
	queueMmapRaw(raw, 2);
	ASSERT_EQ(enc_->dequeueCoded(f), 0);
	EXPECT_FALSE(f.keyFrame);
	ASSERT_EQ(enc_->requeueCoded(f.index), 0);
	ASSERT_EQ(enc_->dequeueRaw(raw), 0);

	ASSERT_EQ(enc_->forceKeyFrame(), 0);
	queueMmapRaw(raw, 3);
	ASSERT_EQ(enc_->dequeueCoded(f), 0);
	EXPECT_TRUE(f.keyFrame);
	EXPECT_EQ(fake_->keyFramesEncoded(), 2u);
}

TEST_P(EncoderTest, DmaBufRawFramesAreImportedNotCopied)
{
	startEncoder(V4L2Memory::DmaBuf);
	size_t size = enc_->rawFormat().planes[0].sizeImage;
	UniqueFD frame = makeMemfd(size);
	uint8_t marker = 0x5a;
	ASSERT_EQ(::pwrite(frame.get(), &marker, 1, 0), 1);
	V4L2QueueArgs a;
	a.planes[0].fd = frame.get();
	a.planes[0].bytesUsed = static_cast<uint32_t>(size);
	ASSERT_EQ(enc_->queueRaw(0, a), 0);
	EncodedFrame f;
	ASSERT_EQ(enc_->dequeueCoded(f), 0);
	EXPECT_EQ(payload(f), "FAKEI seq=0 first=5a") << "the encoder read the caller's dma-buf";
}

TEST_P(EncoderTest, UserPtrRawFramesAreImported)
{
	startEncoder(V4L2Memory::UserPtr);
	size_t size = enc_->rawFormat().planes[0].sizeImage;
	AnonymousPages pages(size);
	pages.data()[0] = 0x77;
	V4L2QueueArgs a;
	a.planes[0] = { pages.data(), -1, static_cast<uint32_t>(size), static_cast<uint32_t>(size), 0 };
	ASSERT_EQ(enc_->queueRaw(0, a), 0);
	EncodedFrame f;
	ASSERT_EQ(enc_->dequeueCoded(f), 0);
	EXPECT_EQ(payload(f), "FAKEI seq=0 first=77");
}

TEST_P(EncoderTest, DrainEndsWithLastBufferThenEpipe)
{
	startEncoder(V4L2Memory::Mmap, 2, 3);
	queueMmapRaw(0, 1);
	queueMmapRaw(1, 2);
	ASSERT_EQ(enc_->drain(), 0);
	EXPECT_EQ(enc_->state(), V4L2M2MEncoder::State::Draining);

	int frames = 0;
	bool sawLast = false;
	EncodedFrame f;
	int ret;
	while ((ret = enc_->dequeueCoded(f)) == 0) {
		if (f.last) {
			sawLast = true;
			EXPECT_EQ(f.bytesUsed, 0u);
		} else {
			frames++;
		}
	}
	EXPECT_EQ(frames, 2) << "every queued frame is encoded before LAST";
	EXPECT_TRUE(sawLast);
	EXPECT_EQ(ret, -EPIPE);
	EXPECT_EQ(enc_->state(), V4L2M2MEncoder::State::Drained);
	V4L2M2MEncoder::Events ev;
	ASSERT_EQ(enc_->handleEvents(ev), 0);
	EXPECT_TRUE(ev.endOfStream);
}

TEST_P(EncoderTest, DrainWaitsForACaptureBufferForLast)
{
	startEncoder(V4L2Memory::Mmap, 2, 1);
	queueMmapRaw(0, 1);
	ASSERT_EQ(enc_->drain(), 0);
	EncodedFrame f;
	ASSERT_EQ(enc_->dequeueCoded(f), 0);
	EXPECT_FALSE(f.last);
	EncodedFrame none;
	EXPECT_EQ(enc_->dequeueCoded(none), -EAGAIN) << "no CAPTURE buffer for LAST yet";
	ASSERT_EQ(enc_->requeueCoded(f.index), 0);
	ASSERT_EQ(enc_->dequeueCoded(f), 0);
	EXPECT_TRUE(f.last);
}

TEST_P(EncoderTest, ResumeAfterDrainEncodesAgain)
{
	startEncoder();
	queueMmapRaw(0, 1);
	ASSERT_EQ(enc_->drain(), 0);
	EncodedFrame f;
	while (enc_->dequeueCoded(f) == 0) {
	}
	ASSERT_EQ(enc_->state(), V4L2M2MEncoder::State::Drained);
	ASSERT_EQ(enc_->resume(), 0);
	EXPECT_EQ(enc_->state(), V4L2M2MEncoder::State::Streaming);
	unsigned raw;
	ASSERT_EQ(enc_->dequeueRaw(raw), 0);
	queueMmapRaw(raw, 9);
	ASSERT_EQ(enc_->dequeueCoded(f), 0);
	EXPECT_FALSE(f.last);
	EXPECT_EQ(f.bytesUsed, std::strlen("FAKEP seq=3 first=09"));
}

TEST_P(EncoderTest, DrainWithoutEncoderCommandsIsNotSupported)
{
	fake_->setEncoderCommandsSupported(false);
	startEncoder();
	EXPECT_EQ(enc_->drain(), -ENOTSUP);
	EXPECT_EQ(enc_->state(), V4L2M2MEncoder::State::Streaming);
}

TEST_P(EncoderTest, SourceChangeReallocatesCaptureBuffers)
{
	startEncoder(V4L2Memory::Mmap, 2, 2);
	fake_->raiseSourceChange(512 * 1024);
	V4L2M2MEncoder::Events ev;
	ASSERT_EQ(enc_->handleEvents(ev), 0);
	EXPECT_TRUE(ev.sourceChanged);
	EXPECT_EQ(enc_->codedFormat().planes[0].sizeImage, 512u * 1024);
	EXPECT_EQ(enc_->capture().planeLength(0, 0), 512u * 1024);
	EXPECT_TRUE(enc_->capture().isStreaming());
	queueMmapRaw(0, 4);
	EncodedFrame f;
	ASSERT_EQ(enc_->dequeueCoded(f), 0);
	EXPECT_GT(f.bytesUsed, 0u);
}

TEST_P(EncoderTest, CaptureAllocationFailureFreesOutputBuffers)
{
	ASSERT_EQ(enc_->open("/dev/fake-video0"), 0);
	EncoderConfig c{ V4L2_PIX_FMT_NV12, 640, 480, V4L2_PIX_FMT_H264, 0, {} };
	ASSERT_EQ(enc_->configure(c), 0);
	fake_->failIoctl(VIDIOC_REQBUFS, ENOMEM, 1); /* the CAPTURE request */
	EXPECT_EQ(enc_->allocateBuffers(2, V4L2Memory::Mmap, 2), -ENOMEM);
	EXPECT_EQ(fake_->allocatedBuffers(), 0u);
}

TEST_P(EncoderTest, CaptureMapFailureLeavesNoMappingsOrBuffers)
{
	ASSERT_EQ(enc_->open("/dev/fake-video0"), 0);
	EncoderConfig c{ V4L2_PIX_FMT_NV12, 640, 480, V4L2_PIX_FMT_H264, 0, {} };
	ASSERT_EQ(enc_->configure(c), 0);
	fake_->failMmap(EIO, 2);
	EXPECT_EQ(enc_->allocateBuffers(2, V4L2Memory::Mmap, 4), -EIO);
	EXPECT_EQ(fake_->liveMappings(), 0u);
	EXPECT_EQ(fake_->allocatedBuffers(), 0u);
}

TEST_P(EncoderTest, StreamonFailureLeavesQueuesStopped)
{
	ASSERT_EQ(enc_->open("/dev/fake-video0"), 0);
	EncoderConfig c{ V4L2_PIX_FMT_NV12, 640, 480, V4L2_PIX_FMT_H264, 0, {} };
	ASSERT_EQ(enc_->configure(c), 0);
	ASSERT_EQ(enc_->allocateBuffers(2, V4L2Memory::Mmap, 2), 0);
	fake_->failIoctl(VIDIOC_STREAMON, EIO, 1); /* the OUTPUT one */
	EXPECT_EQ(enc_->start(), -EIO);
	EXPECT_FALSE(fake_->isStreaming(false));
	EXPECT_FALSE(fake_->isStreaming(true));
	EXPECT_EQ(enc_->state(), V4L2M2MEncoder::State::Configured);
}

TEST_P(EncoderTest, CloseMidStreamLeaksNothing)
{
	int before = countOpenFds();
	startEncoder(V4L2Memory::DmaBuf);
	size_t size = enc_->rawFormat().planes[0].sizeImage;
	{
		UniqueFD frame = makeMemfd(size);
		V4L2QueueArgs a;
		a.planes[0].fd = frame.get();
		ASSERT_EQ(enc_->queueRaw(0, a), 0);
	}
	EXPECT_EQ(fake_->heldDmaBufs(), 1u) << "the device holds the dma-buf, like the kernel";
	enc_->close();
	EXPECT_EQ(fake_->openCount(), 0u);
	EXPECT_EQ(fake_->liveMappings(), 0u);
	EXPECT_EQ(fake_->allocatedBuffers(), 0u);
	EXPECT_EQ(fake_->heldDmaBufs(), 0u);
	EXPECT_EQ(countOpenFds(), before);
}

TEST_P(EncoderTest, FindEncodersScansByCapability)
{
	char tmpl[] = "/tmp/xmb-enc-XXXXXX";
	ASSERT_NE(::mkdtemp(tmpl), nullptr);
	std::string dir = tmpl;
	FILE *f = std::fopen((dir + "/video3").c_str(), "w");
	std::fclose(f);
	FakeV4L2Device fake(GetParam(), dir + "/video3");
	auto found = findM2MEncoders(fake, dir);
	ASSERT_EQ(found.size(), 1u);
	EXPECT_EQ(found[0].card, "Fake Encoder");
	FakeV4L2Device cam(Kind::Capture, dir + "/video3");
	EXPECT_TRUE(findM2MEncoders(cam, dir).empty());
	::unlink((dir + "/video3").c_str());
	::rmdir(dir.c_str());
}

INSTANTIATE_TEST_SUITE_P(Fake, EncoderTest, ::testing::Values(Kind::Encoder, Kind::EncoderMplane),
			 kindName);
