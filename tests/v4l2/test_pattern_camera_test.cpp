/* SPDX-License-Identifier: MIT */
#include <gtest/gtest.h>
#include <linux/videodev2.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/mman.h>

#include "test_util.h"
#include "v4l2/test_pattern.h"
#include "v4l2/test_pattern_camera.h"

using namespace xmb;
using namespace xmb::testing;

namespace {

/* A fast camera so tests do not wait long: 200 fps. */
TestPatternOptions fastOptions()
{
	TestPatternOptions o;
	o.sizes = { { 160, 120 }, { 320, 240 } };
	o.intervals = { { 1, 200 } };
	return o;
}

/* Wait for the camera's fd and dequeue one frame (bounded). */
bool waitFrame(TestPatternCamera &cam, CompletedFrame &f, int timeoutMs = 2000)
{
	auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
	while (std::chrono::steady_clock::now() < deadline) {
		pollfd p{ cam.pollFd(), POLLIN, 0 };
		::poll(&p, 1, 50);
		if (cam.dequeueFrame(f) == 0)
			return true;
	}
	return false;
}

StreamConfig nv12Config()
{
	StreamConfig c;
	c.fourcc = V4L2_PIX_FMT_NV12;
	c.width = 320;
	c.height = 240;
	c.interval = { 1, 200 };
	return c;
}

} /* namespace */

TEST(TestPatternCamera, FormatsCoverRequiredFormatsUpTo4K)
{
	TestPatternCamera cam;
	auto formats = cam.formats();
	for (uint32_t f : { V4L2_PIX_FMT_NV12, V4L2_PIX_FMT_YUYV, V4L2_PIX_FMT_RGB24,
			    V4L2_PIX_FMT_XBGR32 }) {
		auto it = std::find_if(formats.begin(), formats.end(), [&](const FormatEntry &e) {
			return e.fourcc == f && e.width == 3840 && e.height == 2160;
		});
		ASSERT_NE(it, formats.end());
		EXPECT_FALSE(it->intervals.empty());
		EXPECT_GE(it->intervals.front(), (Fraction{ 1, 30 })) << "4K is at most 30 fps";
	}
}

TEST(TestPatternCamera, SupportsAllThreeMemoryTiers)
{
	TestPatternCamera cam;
	MemoryTypes m = cam.supportedMemory();
	EXPECT_TRUE(hasMemoryType(m, MemoryType::UserPtr));
	EXPECT_TRUE(hasMemoryType(m, MemoryType::DmaBufImport));
	EXPECT_TRUE(hasMemoryType(m, MemoryType::MmapExport));
}

TEST(TestPatternCamera, ConfigureSnapsToNearestAdvertisedModeAndReportsLayout)
{
	TestPatternCamera cam;
	StreamConfig c;
	c.fourcc = V4L2_PIX_FMT_MJPEG; /* unsupported: first format instead */
	c.width = 1900;
	c.height = 1000;
	c.interval = { 1, 29 };
	ASSERT_EQ(cam.configure(c), 0);
	EXPECT_EQ(c.fourcc, test_pattern::formats().front());
	EXPECT_EQ(c.width, 1920u);
	EXPECT_EQ(c.height, 1080u);
	EXPECT_EQ(c.interval, (Fraction{ 1, 30 }));
	EXPECT_EQ(c.layout, *test_pattern::layout(c.fourcc, 1920, 1080));
}

TEST(TestPatternCamera, UserPtrFramesArePixelExactAndSequenced)
{
	TestPatternCamera cam(fastOptions());
	StreamConfig c = nv12Config();
	ASSERT_EQ(cam.configure(c), 0);
	ASSERT_EQ(cam.allocateBuffers(MemoryType::UserPtr, 2), 2);
	std::vector<AnonymousPages> pages;
	for (int i = 0; i < 2; i++) {
		pages.emplace_back(c.layout.size);
		ASSERT_EQ(cam.queueBuffer(i, { pages.back().data(), -1, pages.back().size() }), 0);
	}
	ASSERT_EQ(cam.start(), 0);

	uint32_t lastSeq = 0;
	for (int n = 0; n < 6; n++) {
		CompletedFrame f;
		ASSERT_TRUE(waitFrame(cam, f));
		EXPECT_EQ(f.bytesUsed, c.layout.size);
		if (n) {
			EXPECT_GT(f.sequence, lastSeq);
		}
		lastSeq = f.sequence;
		const AnonymousPages &p = pages[f.index];
		EXPECT_FALSE(test_pattern::firstMismatch(c.fourcc, c.width, c.height, f.sequence,
							 p.data(), p.size()))
			<< "frame " << f.sequence;
		EXPECT_EQ(test_pattern::readCounter(c.fourcc, c.width, c.height, p.data(), p.size()),
			  f.sequence);
		ASSERT_EQ(cam.queueBuffer(f.index, { p.data(), -1, p.size() }), 0);
	}
	EXPECT_EQ(cam.stop(), 0);
}

TEST(TestPatternCamera, DmaBufImportRendersIntoCallersFd)
{
	TestPatternCamera cam(fastOptions());
	StreamConfig c = nv12Config();
	ASSERT_EQ(cam.configure(c), 0);
	ASSERT_EQ(cam.allocateBuffers(MemoryType::DmaBufImport, 1), 1);
	UniqueFD buf = makeMemfd(c.layout.size);
	ASSERT_TRUE(buf);
	ASSERT_EQ(cam.queueBuffer(0, { nullptr, buf.get(), c.layout.size }), 0);
	ASSERT_EQ(cam.start(), 0);
	CompletedFrame f;
	ASSERT_TRUE(waitFrame(cam, f));
	cam.stop();

	void *p = ::mmap(nullptr, c.layout.size, PROT_READ, MAP_SHARED, buf.get(), 0);
	ASSERT_NE(p, MAP_FAILED);
	EXPECT_FALSE(test_pattern::firstMismatch(c.fourcc, c.width, c.height, f.sequence,
						 static_cast<uint8_t *>(p), c.layout.size));
	::munmap(p, c.layout.size);
}

TEST(TestPatternCamera, MmapExportFdShowsTheFrame)
{
	TestPatternCamera cam(fastOptions());
	StreamConfig c = nv12Config();
	c.fourcc = V4L2_PIX_FMT_YUYV;
	ASSERT_EQ(cam.configure(c), 0);
	ASSERT_EQ(cam.allocateBuffers(MemoryType::MmapExport, 2), 2);
	ExportedBuffer exp;
	ASSERT_EQ(cam.exportBuffer(0, exp), 0);
	ASSERT_TRUE(exp.fd);
	EXPECT_GE(exp.length, c.layout.size);
	EXPECT_TRUE(::fcntl(exp.fd.get(), F_GETFD) & FD_CLOEXEC);

	ASSERT_EQ(cam.queueBuffer(0), 0);
	ASSERT_EQ(cam.start(), 0);
	CompletedFrame f;
	ASSERT_TRUE(waitFrame(cam, f));
	ASSERT_EQ(f.index, 0u);
	cam.stop();

	void *p = ::mmap(nullptr, exp.length, PROT_READ, MAP_SHARED, exp.fd.get(), 0);
	ASSERT_NE(p, MAP_FAILED);
	EXPECT_FALSE(test_pattern::firstMismatch(c.fourcc, c.width, c.height, f.sequence,
						 static_cast<uint8_t *>(p), c.layout.size));
	::munmap(p, exp.length);
}

TEST(TestPatternCamera, ExportedFdOutlivesReleasedBuffers)
{
	TestPatternCamera cam(fastOptions());
	StreamConfig c = nv12Config();
	ASSERT_EQ(cam.configure(c), 0);
	ASSERT_EQ(cam.allocateBuffers(MemoryType::MmapExport, 1), 1);
	ExportedBuffer exp;
	ASSERT_EQ(cam.exportBuffer(0, exp), 0);
	cam.releaseBuffers();
	void *p = ::mmap(nullptr, exp.length, PROT_READ, MAP_SHARED, exp.fd.get(), 0);
	EXPECT_NE(p, MAP_FAILED);
	if (p != MAP_FAILED)
		::munmap(p, exp.length);
}

TEST(TestPatternCamera, NoBufferQueuedMeansDropAndSequenceGap)
{
	TestPatternCamera cam(fastOptions());
	StreamConfig c = nv12Config();
	ASSERT_EQ(cam.configure(c), 0);
	ASSERT_EQ(cam.allocateBuffers(MemoryType::MmapExport, 1), 1);
	ASSERT_EQ(cam.queueBuffer(0), 0);
	ASSERT_EQ(cam.start(), 0);
	CompletedFrame first, second;
	ASSERT_TRUE(waitFrame(cam, first));
	/* Ticks pass while the only buffer is with us: they are dropped. */
	for (int i = 0; i < 4; i++) {
		pollfd p{ cam.pollFd(), POLLIN, 0 };
		::poll(&p, 1, 100);
		CompletedFrame none;
		EXPECT_EQ(cam.dequeueFrame(none), -EAGAIN);
	}
	ASSERT_EQ(cam.queueBuffer(0), 0);
	ASSERT_TRUE(waitFrame(cam, second));
	EXPECT_GE(second.sequence, first.sequence + 2) << "dropped ticks leave a gap";
	EXPECT_GT(cam.droppedFrames(), 0u);
}

TEST(TestPatternCamera, TimerPacesFramesRoughlyAtTheInterval)
{
	TestPatternOptions o = fastOptions();
	o.intervals = { { 1, 100 } };
	TestPatternCamera cam(o);
	StreamConfig c = nv12Config();
	c.interval = { 1, 100 };
	ASSERT_EQ(cam.configure(c), 0);
	ASSERT_EQ(cam.allocateBuffers(MemoryType::MmapExport, 4), 4);
	for (unsigned i = 0; i < 4; i++)
		ASSERT_EQ(cam.queueBuffer(i), 0);

	int ep = ::epoll_create1(EPOLL_CLOEXEC);
	UniqueFD epfd(ep);
	epoll_event ev{};
	ev.events = cam.pollEvents();
	ASSERT_EQ(::epoll_ctl(ep, EPOLL_CTL_ADD, cam.pollFd(), &ev), 0);

	auto t0 = std::chrono::steady_clock::now();
	ASSERT_EQ(cam.start(), 0);
	int frames = 0;
	while (frames < 20 && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5)) {
		epoll_event out;
		if (::epoll_wait(ep, &out, 1, 1000) <= 0)
			continue;
		CompletedFrame f;
		while (cam.dequeueFrame(f) == 0) {
			frames++;
			cam.queueBuffer(f.index);
		}
	}
	auto elapsed = std::chrono::steady_clock::now() - t0;
	EXPECT_EQ(frames, 20);
	/* 20 frames at 100 fps: 200 ms nominal; only catch gross errors. */
	EXPECT_GT(elapsed, std::chrono::milliseconds(100));
	EXPECT_LT(elapsed, std::chrono::seconds(3));
}

TEST(TestPatternCamera, StopReturnsBuffersAndRestartResetsSequence)
{
	TestPatternCamera cam(fastOptions());
	StreamConfig c = nv12Config();
	ASSERT_EQ(cam.configure(c), 0);
	ASSERT_EQ(cam.allocateBuffers(MemoryType::MmapExport, 2), 2);
	ASSERT_EQ(cam.queueBuffer(0), 0);
	ASSERT_EQ(cam.queueBuffer(1), 0);
	ASSERT_EQ(cam.start(), 0);
	CompletedFrame f;
	ASSERT_TRUE(waitFrame(cam, f));
	ASSERT_EQ(cam.stop(), 0);
	/* Both buffers are ours again: queueing them is legal. */
	EXPECT_EQ(cam.queueBuffer(0), 0);
	EXPECT_EQ(cam.queueBuffer(1), 0);
	ASSERT_EQ(cam.start(), 0);
	ASSERT_TRUE(waitFrame(cam, f));
	EXPECT_LE(f.sequence, 1u);
}

TEST(TestPatternCamera, FormatChangeMidSessionFollowsTheRestartCycle)
{
	TestPatternCamera cam(fastOptions());
	StreamConfig c = nv12Config();
	ASSERT_EQ(cam.configure(c), 0);
	ASSERT_EQ(cam.allocateBuffers(MemoryType::MmapExport, 1), 1);
	ASSERT_EQ(cam.queueBuffer(0), 0);
	ASSERT_EQ(cam.start(), 0);
	StreamConfig busy = c;
	EXPECT_EQ(cam.configure(busy), -EBUSY);

	cam.stop();
	cam.releaseBuffers();
	StreamConfig rgb;
	rgb.fourcc = V4L2_PIX_FMT_RGB24;
	rgb.width = 160;
	rgb.height = 120;
	rgb.interval = { 1, 200 };
	ASSERT_EQ(cam.configure(rgb), 0);
	ASSERT_EQ(cam.allocateBuffers(MemoryType::MmapExport, 1), 1);
	ExportedBuffer exp;
	ASSERT_EQ(cam.exportBuffer(0, exp), 0);
	ASSERT_EQ(cam.queueBuffer(0), 0);
	ASSERT_EQ(cam.start(), 0);
	CompletedFrame f;
	ASSERT_TRUE(waitFrame(cam, f));
	EXPECT_EQ(f.bytesUsed, 160u * 120u * 3u);
	void *p = ::mmap(nullptr, exp.length, PROT_READ, MAP_SHARED, exp.fd.get(), 0);
	ASSERT_NE(p, MAP_FAILED);
	EXPECT_FALSE(test_pattern::firstMismatch(rgb.fourcc, 160, 120, f.sequence,
						 static_cast<uint8_t *>(p), f.bytesUsed));
	::munmap(p, exp.length);
}

TEST(TestPatternCamera, QueueRejectsShortUserBufferAndDoubleQueue)
{
	TestPatternCamera cam(fastOptions());
	StreamConfig c = nv12Config();
	ASSERT_EQ(cam.configure(c), 0);
	ASSERT_EQ(cam.allocateBuffers(MemoryType::UserPtr, 1), 1);
	AnonymousPages small(c.layout.size / 2);
	EXPECT_EQ(cam.queueBuffer(0, { small.data(), -1, small.size() }), -EINVAL);
	AnonymousPages ok(c.layout.size);
	EXPECT_EQ(cam.queueBuffer(0, { ok.data(), -1, ok.size() }), 0);
	EXPECT_EQ(cam.queueBuffer(0, { ok.data(), -1, ok.size() }), -EBUSY);
	EXPECT_EQ(cam.queueBuffer(5, { ok.data(), -1, ok.size() }), -EINVAL);
}

TEST(TestPatternCamera, ControlsAreCameraifSetAndClamp)
{
	TestPatternCamera cam;
	auto ctrls = cam.controls();
	ASSERT_EQ(ctrls.size(), 4u);
	int64_t v = 1000;
	ASSERT_EQ(cam.setControl(0, v), 0);
	EXPECT_EQ(v, 255);
	int64_t got = 0;
	ASSERT_EQ(cam.getControl(0, got), 0);
	EXPECT_EQ(got, 255);
	EXPECT_EQ(cam.setControl(9, v), -EINVAL);
}

TEST(TestPatternCamera, NoFdLeakAcrossAFullSession)
{
	int before = countOpenFds();
	{
		TestPatternCamera cam(fastOptions());
		StreamConfig c = nv12Config();
		ASSERT_EQ(cam.configure(c), 0);
		ASSERT_EQ(cam.allocateBuffers(MemoryType::MmapExport, 3), 3);
		for (unsigned i = 0; i < 3; i++)
			ASSERT_EQ(cam.queueBuffer(i), 0);
		ASSERT_EQ(cam.start(), 0);
		CompletedFrame f;
		ASSERT_TRUE(waitFrame(cam, f));
	}
	EXPECT_EQ(countOpenFds(), before);
}
