/* SPDX-License-Identifier: MIT */
/*
 * Real-device tests against vivid (the kernel's virtual camera), and a
 * real-encoder test.  Locally there is no /dev/video*: everything skips.
 * In the Xen VM (tests/vm/xen-vm run -- <this binary>) Dom0 has vivid.
 *
 * XMB_VIVID_DEVICE=/dev/videoN picks the node; otherwise the first vivid
 * capture node found by scanning /dev/video*.
 */
#include <gtest/gtest.h>
#include <linux/videodev2.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>

#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <unistd.h>

#include <xen/io/cameraif.h>

#include "test_util.h"
#include "xmb_config.h"
#include "v4l2/pixel_format.h"
#include "v4l2/test_pattern.h"
#include "v4l2/v4l2_camera_source.h"
#include "v4l2/v4l2_m2m_encoder.h"
#include "v4l2/v4l2_video_device.h"

using namespace xmb;
using namespace xmb::testing;

namespace {

std::optional<std::string> vividNode()
{
	if (const char *env = std::getenv("XMB_VIVID_DEVICE"))
		return std::string(env);
	for (const V4L2NodeInfo &n : scanV4L2Nodes())
		if (n.driver == "vivid" &&
		    (n.deviceCaps & (V4L2_CAP_VIDEO_CAPTURE | V4L2_CAP_VIDEO_CAPTURE_MPLANE)))
			return n.path;
	return std::nullopt;
}

/* Run a shell command, return its stdout (and exit status). */
std::string run(const std::string &cmd, int *status = nullptr)
{
	std::string out;
	FILE *p = ::popen(cmd.c_str(), "r");
	if (!p)
		return out;
	char buf[4096];
	size_t n;
	while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0)
		out.append(buf, n);
	int st = ::pclose(p);
	if (status)
		*status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	return out;
}

bool haveProgram(const char *name)
{
	return run(std::string("command -v ") + name + " 2>/dev/null").size() > 0;
}

#define REQUIRE_VIVID()                                                                          \
	do {                                                                                     \
		if (!node_)                                                                      \
			GTEST_SKIP() << "no vivid capture device in /dev/video*: these tests run " \
					"in the Xen VM (tests/vm/xen-vm run -- "                 \
				     << ::testing::internal::GetArgvs()[0]                         \
				     << ") or after 'modprobe vivid'";                              \
	} while (0)

class Vivid : public ::testing::Test
{
protected:
	void SetUp() override { node_ = vividNode(); }

	/* Configure YUYV 640x480, allocate \a count buffers of \a memory. */
	void setUpSource(V4L2CameraSource &src, MemoryType memory, unsigned count,
			 StreamConfig *out = nullptr, uint32_t fourcc = V4L2_PIX_FMT_YUYV,
			 uint32_t w = 640, uint32_t h = 480)
	{
		ASSERT_EQ(src.open(*node_), 0);
		StreamConfig c;
		c.fourcc = fourcc;
		c.width = w;
		c.height = h;
		c.interval = {};
		ASSERT_EQ(src.configure(c), 0);
		ASSERT_EQ(c.fourcc, fourcc);
		ASSERT_EQ(c.width, w);
		ASSERT_EQ(c.height, h);
		ASSERT_TRUE(hasMemoryType(src.supportedMemory(), memory)) << toString(memory);
		int n = src.allocateBuffers(memory, count);
		ASSERT_GE(n, 1);
		if (out)
			*out = c;
	}

	/* Poll and dequeue one frame, bounded by \a timeoutMs. */
	static bool nextFrame(CameraSource &src, CompletedFrame &f, int timeoutMs = 10000)
	{
		auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
		while (std::chrono::steady_clock::now() < deadline) {
			int ret = src.dequeueFrame(f);
			if (ret == 0)
				return true;
			if (ret != -EAGAIN)
				return false;
			pollfd p{ src.pollFd(), POLLIN, 0 };
			::poll(&p, 1, 200);
		}
		return false;
	}

	/* A frame from vivid is never one flat value (it draws colour bars and text). */
	static bool looksLikePicture(const uint8_t *data, size_t size)
	{
		std::set<uint8_t> seen;
		for (size_t i = 0; i < size && seen.size() < 8; i += 97)
			seen.insert(data[i]);
		return seen.size() >= 8;
	}

	std::optional<std::string> node_;
};

/* ---- enumeration ------------------------------------------------------- */

struct CtlSize {
	std::vector<double> fps;
};

/*
 * Parse `v4l2-ctl --list-formats-ext`:
 *	[0]: 'YUYV' (YUYV 4:2:2)
 *		Size: Discrete 640x480
 *			Interval: Discrete 0.033s (30.000 fps)
 */
std::map<std::string, std::map<std::pair<uint32_t, uint32_t>, CtlSize>> parseV4l2Ctl(const std::string &text)
{
	/* Plain string scanning: std::regex trips GCC 12 warnings under sanitizers. */
	std::map<std::string, std::map<std::pair<uint32_t, uint32_t>, CtlSize>> out;
	std::string fmt;
	std::pair<uint32_t, uint32_t> size{ 0, 0 };
	std::istringstream in(text);
	std::string line;
	while (std::getline(in, line)) {
		size_t b = line.find("]: '");
		unsigned w, h;
		if (b != std::string::npos) {
			size_t e = line.find('\'', b + 4);
			if (e == std::string::npos)
				continue;
			fmt = line.substr(b + 4, e - b - 4); /* 'AR15' or 'AR15-BE' */
			out[fmt];
		} else if (std::sscanf(line.c_str(), " Size: Discrete %ux%u", &w, &h) == 2) {
			size = { w, h };
			out[fmt][size];
		} else if (line.find("Interval: Discrete") != std::string::npos) {
			size_t p = line.find('(');
			if (p != std::string::npos)
				out[fmt][size].fps.push_back(std::strtod(line.c_str() + p + 1, nullptr));
		}
	}
	return out;
}

} /* namespace */

TEST_F(Vivid, EnumerationEqualsWhatV4l2CtlReports)
{
	REQUIRE_VIVID();
	if (!haveProgram("v4l2-ctl"))
		GTEST_SKIP() << "v4l2-ctl not installed (v4l-utils)";
	auto expected = parseV4l2Ctl(run("v4l2-ctl -d " + *node_ + " --list-formats-ext 2>&1"));
	ASSERT_FALSE(expected.empty());

	V4L2VideoDevice dev;
	ASSERT_EQ(dev.open(*node_), 0);
	std::map<std::string, std::map<std::pair<uint32_t, uint32_t>, CtlSize>> got;
	for (const FormatDescription &f : dev.enumerateFormats()) {
		auto &sizes = got[fourccToString(f.fourcc)];
		for (const Size &s : f.sizes.discrete) {
			auto &entry = sizes[{ s.width, s.height }];
			FrameIntervalEnum iv = dev.enumerateFrameIntervals(f.fourcc, s.width, s.height);
			for (const Fraction &fr : iv.discrete)
				entry.fps.push_back(static_cast<double>(fr.denominator) / fr.numerator);
		}
	}

	ASSERT_EQ(got.size(), expected.size());
	for (const auto &[fmt, sizes] : expected) {
		ASSERT_TRUE(got.count(fmt)) << fmt;
		ASSERT_EQ(got[fmt].size(), sizes.size()) << fmt;
		for (const auto &[size, ctl] : sizes) {
			const CtlSize &mine = got[fmt][size];
			ASSERT_EQ(mine.fps.size(), ctl.fps.size()) << fmt << " " << size.first << "x" << size.second;
			for (size_t i = 0; i < ctl.fps.size(); i++)
				EXPECT_NEAR(mine.fps[i], ctl.fps[i], 0.001);
		}
	}
	std::printf("[          ] %zu formats match v4l2-ctl --list-formats-ext\n", got.size());
}

TEST_F(Vivid, FlatListIsBoundedAndHasIntervals)
{
	REQUIRE_VIVID();
	V4L2CameraSource src;
	ASSERT_EQ(src.open(*node_), 0);
	auto flat = src.formats();
	ASSERT_FALSE(flat.empty());
	EXPECT_LE(flat.size(), SamplingLimits{}.maxEntries * 2) << "native + emulated";
	auto yuyv = std::find_if(flat.begin(), flat.end(), [](const FormatEntry &e) {
		return e.fourcc == V4L2_PIX_FMT_YUYV && e.width == 640 && e.height == 480;
	});
	ASSERT_NE(yuyv, flat.end());
	EXPECT_FALSE(yuyv->intervals.empty());
}

/* ---- streaming in each memory tier ------------------------------------- */

TEST_F(Vivid, StreamsWithMmap)
{
	REQUIRE_VIVID();
	V4L2CameraSource src;
	StreamConfig c;
	setUpSource(src, MemoryType::MmapExport, 4, &c);
	V4L2BufferQueue &q = src.device().queue();
	for (unsigned i = 0; i < q.count(); i++) {
		ASSERT_EQ(q.mapBuffer(i), 0);
		ASSERT_EQ(src.queueBuffer(i), 0);
	}
	ASSERT_EQ(src.start(), 0);
	uint32_t lastSeq = 0;
	uint64_t lastTs = 0;
	for (int n = 0; n < 10; n++) {
		CompletedFrame f;
		ASSERT_TRUE(nextFrame(src, f)) << "frame " << n;
		EXPECT_EQ(f.bytesUsed, c.layout.size);
		if (n) {
			EXPECT_GT(f.sequence, lastSeq);
			EXPECT_GT(f.timestampNs, lastTs);
		}
		lastSeq = f.sequence;
		lastTs = f.timestampNs;
		EXPECT_TRUE(looksLikePicture(q.planeData(f.index, 0), f.bytesUsed));
		ASSERT_EQ(src.queueBuffer(f.index), 0);
	}
	EXPECT_EQ(src.stop(), 0);
}

TEST_F(Vivid, StreamsWithUserPtrIntoCallerOwnedPages)
{
	REQUIRE_VIVID();
	V4L2CameraSource src;
	StreamConfig c;
	setUpSource(src, MemoryType::UserPtr, 4, &c);
	std::vector<AnonymousPages> pages;
	for (unsigned i = 0; i < src.device().queue().count(); i++) {
		pages.emplace_back((c.layout.size + 4095) / 4096 * 4096);
		std::memset(pages.back().data(), 0xee, pages.back().size());
		ASSERT_EQ(src.queueBuffer(i, { pages.back().data(), -1, pages.back().size() }), 0);
	}
	ASSERT_EQ(src.start(), 0);
	for (int n = 0; n < 10; n++) {
		CompletedFrame f;
		ASSERT_TRUE(nextFrame(src, f)) << "frame " << n;
		ASSERT_LT(f.index, pages.size());
		EXPECT_EQ(f.bytesUsed, c.layout.size);
		EXPECT_TRUE(looksLikePicture(pages[f.index].data(), f.bytesUsed))
			<< "vivid wrote straight into our pages";
		ASSERT_EQ(src.queueBuffer(f.index, { pages[f.index].data(), -1, pages[f.index].size() }), 0);
	}
	src.stop();
}

/*
 * DMABUF import.  Exporter: the same vivid node's own MMAP buffers, exported
 * with EXPBUF, then freed on the queue (the dma-bufs keep the memory) and
 * imported back as DMABUF.  vivid is the only V4L2 exporter in the VM and
 * /dev/udmabuf is not guaranteed, so this is the exporter that always works;
 * it exercises the real import path (attach, map, DMA into foreign memory).
 */
TEST_F(Vivid, StreamsWithDmaBufImport)
{
	REQUIRE_VIVID();
	std::vector<UniqueFD> dmabufs;
	size_t length = 0;
	{
		V4L2CameraSource exporter;
		setUpSource(exporter, MemoryType::MmapExport, 4);
		for (unsigned i = 0; i < exporter.device().queue().count(); i++) {
			ExportedBuffer e;
			ASSERT_EQ(exporter.exportBuffer(i, e), 0);
			length = e.length;
			dmabufs.push_back(std::move(e.fd));
		}
	} /* exporter closed: only the dma-buf fds hold the memory now */

	V4L2CameraSource src;
	StreamConfig c;
	setUpSource(src, MemoryType::DmaBufImport, static_cast<unsigned>(dmabufs.size()), &c);
	unsigned count = src.device().queue().count();
	ASSERT_LE(count, dmabufs.size());
	for (unsigned i = 0; i < count; i++)
		ASSERT_EQ(src.queueBuffer(i, { nullptr, dmabufs[i].get(), length }), 0);
	ASSERT_EQ(src.start(), 0);
	for (int n = 0; n < 8; n++) {
		CompletedFrame f;
		ASSERT_TRUE(nextFrame(src, f)) << "frame " << n;
		EXPECT_EQ(f.bytesUsed, c.layout.size);
		void *p = ::mmap(nullptr, length, PROT_READ, MAP_SHARED, dmabufs[f.index].get(), 0);
		ASSERT_NE(p, MAP_FAILED);
		EXPECT_TRUE(looksLikePicture(static_cast<uint8_t *>(p), f.bytesUsed));
		::munmap(p, length);
		ASSERT_EQ(src.queueBuffer(f.index, { nullptr, dmabufs[f.index].get(), length }), 0);
	}
	src.stop();
}

TEST_F(Vivid, ExpbufFdsAreMappableAndShowTheFrame)
{
	REQUIRE_VIVID();
	V4L2CameraSource src;
	StreamConfig c;
	setUpSource(src, MemoryType::MmapExport, 2, &c);
	V4L2BufferQueue &q = src.device().queue();
	std::vector<ExportedBuffer> exp(q.count());
	for (unsigned i = 0; i < q.count(); i++) {
		ASSERT_EQ(src.exportBuffer(i, exp[i]), 0);
		EXPECT_TRUE(::fcntl(exp[i].fd.get(), F_GETFD) & FD_CLOEXEC);
		ASSERT_EQ(q.mapBuffer(i), 0);
		ASSERT_EQ(src.queueBuffer(i), 0);
	}
	ASSERT_EQ(src.start(), 0);
	CompletedFrame f;
	ASSERT_TRUE(nextFrame(src, f));
	void *p = ::mmap(nullptr, exp[f.index].length, PROT_READ, MAP_SHARED, exp[f.index].fd.get(), 0);
	ASSERT_NE(p, MAP_FAILED);
	EXPECT_TRUE(looksLikePicture(static_cast<uint8_t *>(p), f.bytesUsed));
	EXPECT_EQ(std::memcmp(p, q.planeData(f.index, 0), f.bytesUsed), 0)
		<< "the exported fd is the same memory as the queue's buffer";
	::munmap(p, exp[f.index].length);
	src.stop();
}

/* ---- controls ------------------------------------------------------------ */

TEST_F(Vivid, ControlsRoundTripInCameraifTerms)
{
	REQUIRE_VIVID();
	V4L2CameraSource src;
	ASSERT_EQ(src.open(*node_), 0);
	auto ctrls = src.controls();
	ASSERT_EQ(ctrls.size(), 4u) << "vivid has brightness, contrast, saturation and hue";
	for (const CameraControlInfo &c : ctrls) {
		int64_t original = 0;
		ASSERT_EQ(src.getControl(c.type, original), 0);
		int64_t want = c.minimum + (c.maximum - c.minimum) / 3;
		int64_t v = want;
		ASSERT_EQ(src.setControl(c.type, v), 0) << cameraControlName(c.type);
		int64_t got = 0;
		ASSERT_EQ(src.getControl(c.type, got), 0);
		EXPECT_EQ(got, v) << cameraControlName(c.type);
		EXPECT_EQ(got, clampControlValue(c, want));
		src.setControl(c.type, original);
	}
}

TEST_F(Vivid, ControlChangedByAnotherOpenerArrivesAsEvent)
{
	REQUIRE_VIVID();
	V4L2CameraSource src;
	ASSERT_EQ(src.open(*node_), 0);
	V4L2Device other;
	ASSERT_EQ(other.open(*node_), 0);
	int64_t original = 0;
	ASSERT_EQ(other.getControl(V4L2_CID_BRIGHTNESS, original), 0);
	int64_t v = original == 100 ? 101 : 100;
	ASSERT_EQ(other.setControl(V4L2_CID_BRIGHTNESS, v), 0);

	pollfd p{ src.pollFd(), POLLPRI, 0 };
	ASSERT_EQ(::poll(&p, 1, 2000), 1) << "POLLPRI signals the event";
	SourceEvent ev;
	ASSERT_EQ(src.dequeueEvent(ev), 0);
	EXPECT_EQ(ev.type, SourceEvent::Type::ControlChanged);
	EXPECT_EQ(ev.control, XENCAMERA_CTRL_BRIGHTNESS);
	EXPECT_EQ(ev.value, v);
	other.setControl(V4L2_CID_BRIGHTNESS, original);
}

/* ---- format change ------------------------------------------------------- */

TEST_F(Vivid, FormatChangeMidSessionRestartsTheStream)
{
	REQUIRE_VIVID();
	V4L2CameraSource src;
	StreamConfig c;
	setUpSource(src, MemoryType::MmapExport, 3, &c);
	for (unsigned i = 0; i < src.device().queue().count(); i++)
		ASSERT_EQ(src.queueBuffer(i), 0);
	ASSERT_EQ(src.start(), 0);
	CompletedFrame f;
	ASSERT_TRUE(nextFrame(src, f));
	EXPECT_EQ(f.bytesUsed, 640u * 480u * 2);

	ASSERT_EQ(src.stop(), 0);
	ASSERT_EQ(src.releaseBuffers(), 0);
	StreamConfig n;
	n.fourcc = V4L2_PIX_FMT_RGB24;
	n.width = 320;
	n.height = 180;
	ASSERT_EQ(src.configure(n), 0);
	ASSERT_EQ(n.fourcc, V4L2_PIX_FMT_RGB24);
	ASSERT_EQ(n.width, 320u);
	int count = src.allocateBuffers(MemoryType::MmapExport, 3);
	ASSERT_GE(count, 1);
	for (int i = 0; i < count; i++)
		ASSERT_EQ(src.queueBuffer(i), 0);
	ASSERT_EQ(src.start(), 0);
	ASSERT_TRUE(nextFrame(src, f));
	EXPECT_EQ(f.bytesUsed, 320u * 180u * 3);
	src.stop();
}

TEST_F(Vivid, FrameIntervalCanBeChosen)
{
	REQUIRE_VIVID();
	V4L2CameraSource src;
	ASSERT_EQ(src.open(*node_), 0);
	auto flat = src.formats();
	auto e = std::find_if(flat.begin(), flat.end(), [](const FormatEntry &x) {
		return x.fourcc == V4L2_PIX_FMT_YUYV && x.width == 640 && x.height == 480 && !x.emulated;
	});
	ASSERT_NE(e, flat.end());
	ASSERT_FALSE(e->intervals.empty());
	StreamConfig c;
	c.fourcc = e->fourcc;
	c.width = e->width;
	c.height = e->height;
	c.interval = e->intervals.back();
	ASSERT_EQ(src.configure(c), 0);
	EXPECT_EQ(c.interval, e->intervals.back());
	Fraction got;
	ASSERT_EQ(src.device().getFrameInterval(got), 0);
	EXPECT_EQ(got, e->intervals.back());
}

/* ---- libv4l2 emulation ----------------------------------------------------- */

TEST_F(Vivid, EmulatedFormatIsCopiedAndCounted)
{
	REQUIRE_VIVID();
	V4L2CameraSource src;
	ASSERT_EQ(src.open(*node_), 0);
	auto flat = src.formats();
	auto e = std::find_if(flat.begin(), flat.end(), [](const FormatEntry &x) { return x.emulated; });
	if (e == flat.end())
		GTEST_SKIP() << "libv4l2 adds no format to vivid (vivid has them all natively)"
#if !XMB_HAVE_LIBV4L2
			     << ", and this build has no libv4l2"
#endif
			;
	StreamConfig c;
	c.fourcc = e->fourcc;
	c.width = e->width;
	c.height = e->height;
	ASSERT_EQ(src.configure(c), 0);
	EXPECT_EQ(src.supportedMemory(), static_cast<uint32_t>(MemoryType::UserPtr));
	EXPECT_GT(src.emulatedCopyBytesPerFrame(), 0u);
	int count = src.allocateBuffers(MemoryType::UserPtr, 2);
	ASSERT_GE(count, 1);
	std::vector<AnonymousPages> pages;
	for (int i = 0; i < count; i++) {
		pages.emplace_back(c.layout.size);
		ASSERT_EQ(src.queueBuffer(i, { pages.back().data(), -1, pages.back().size() }), 0);
	}
	ASSERT_EQ(src.start(), 0);
	CompletedFrame f;
	ASSERT_TRUE(nextFrame(src, f));
	EXPECT_GT(src.emulatedCopyBytesTotal(), 0u);
	EXPECT_TRUE(looksLikePicture(pages[f.index].data(), f.bytesUsed));
	src.stop();
}

/* ---- v4l2-compliance --------------------------------------------------- */

TEST_F(Vivid, V4l2ComplianceSummaryIsLogged)
{
	REQUIRE_VIVID();
	if (!haveProgram("v4l2-compliance"))
		GTEST_SKIP() << "v4l2-compliance not installed (v4l-utils)";
	int status = 0;
	std::string out = run("timeout 600 v4l2-compliance -d " + *node_ + " -s 2>&1", &status);
	std::istringstream in(out);
	std::string line, summary;
	std::vector<std::string> failures;
	while (std::getline(in, line)) {
		if (line.rfind("Total for ", 0) == 0)
			summary = line;
		if (line.find("FAIL") != std::string::npos || line.find("fail:") != std::string::npos)
			failures.push_back(line);
	}
	/* Logged, not asserted: vivid and the Debian v4l-utils disagree on a few. */
	std::printf("[ COMPLIANCE ] %s (exit %d)\n", summary.empty() ? "no summary line" : summary.c_str(),
		    status);
	for (const std::string &l : failures)
		std::printf("[ COMPLIANCE ] %s\n", l.c_str());
	EXPECT_FALSE(summary.empty()) << out.substr(0, 2000);
}

/* ---- real encoders ------------------------------------------------------- */

TEST(HostEncoder, EncodesTestPatternFramesAndDrains)
{
	auto encoders = findM2MEncoders();
	if (encoders.empty())
		GTEST_SKIP() << "no V4L2 M2M encoder on this host (Debian's kernel has no vicodec; "
				"the encoder logic is covered by test_v4l2_m2m_encoder)";
	V4L2M2MEncoder enc;
	ASSERT_EQ(enc.open(encoders[0].path), 0);
	auto raw = enc.rawFormats();
	auto coded = enc.codedFormats();
	ASSERT_FALSE(raw.empty());
	ASSERT_FALSE(coded.empty());
	uint32_t rawFourcc = std::find(raw.begin(), raw.end(), V4L2_PIX_FMT_NV12) != raw.end()
				     ? V4L2_PIX_FMT_NV12 : raw[0];
	EncoderConfig c{ rawFourcc, 640, 480, coded[0], 0, { 1, 30 } };
	ASSERT_EQ(enc.configure(c), 0);
	ASSERT_EQ(enc.allocateBuffers(4, V4L2Memory::Mmap, 4), 0);
	ASSERT_EQ(enc.start(), 0);
	for (unsigned i = 0; i < 4; i++) {
		ASSERT_EQ(enc.output().mapBuffer(i), 0);
		FrameLayout l = enc.rawFormat().frameLayout();
		test_pattern::render(l, i, enc.output().planeData(i, 0), enc.output().planeLength(i, 0));
		V4L2QueueArgs a;
		a.planes[0].bytesUsed = enc.rawFormat().planes[0].sizeImage;
		a.timestampNs = (i + 1) * 1000000ull;
		ASSERT_EQ(enc.queueRaw(i, a), 0);
	}
	ASSERT_EQ(enc.drain(), 0);
	bool last = false;
	int frames = 0;
	auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
	while (!last && std::chrono::steady_clock::now() < deadline) {
		pollfd p{ enc.fd(), POLLIN, 0 };
		::poll(&p, 1, 200);
		EncodedFrame f;
		int ret = enc.dequeueCoded(f);
		if (ret == -EPIPE)
			break;
		if (ret == 0) {
			frames += f.bytesUsed > 0;
			last = f.last;
			if (!last)
				enc.requeueCoded(f.index);
		}
	}
	EXPECT_TRUE(last || enc.state() == V4L2M2MEncoder::State::Drained);
	EXPECT_GE(frames, 1);
}

/*
 * Exit 77 (meson's "skipped") when nothing ran because there is no device,
 * so a local `meson test` says SKIP rather than a misleading OK.
 */
int main(int argc, char **argv)
{
	::testing::InitGoogleTest(&argc, argv);
	int ret = RUN_ALL_TESTS();
	const ::testing::UnitTest *u = ::testing::UnitTest::GetInstance();
	if (ret == 0 && u->successful_test_count() == 0 && u->skipped_test_count() > 0)
		return 77;
	return ret;
}
