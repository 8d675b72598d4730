/* SPDX-License-Identifier: MIT */
/* The xmb-camera-guest logic: arguments, listing, capture against the fake backend. */
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <unistd.h>

#include "bridge/frontend/capture_app.h"
#include "bridge/image/png_writer.h"
#include "frontend_fixture.h"

using namespace xmb;
using namespace xmb::frontend;
using namespace xmb::frontend::test;

namespace {

Result<CaptureOptions> parse(std::vector<const char *> args)
{
	args.insert(args.begin(), "xmb-camera-guest");
	return parseCaptureArgs(static_cast<int>(args.size()), args.data());
}

std::string tempDir()
{
	char tmpl[] = "/tmp/xmb-capture-test-XXXXXX";
	char *d = mkdtemp(tmpl);
	return d ? d : "/tmp";
}

} /* namespace */

TEST(CaptureArgs, ParsesEveryOption)
{
	auto o = parse({ "--device", "2", "--format", "NV12", "--size", "640x480", "--rate=30/1",
			 "--buffers", "6", "--frames", "10", "--save-raw", "/tmp/a", "--save-png",
			 "/tmp/b", "--every", "3", "--set-control", "brightness=-5",
			 "--set-control", "3=0x10", "--check-pattern", "--quiet" });
	ASSERT_TRUE(o) << o.error().message;
	EXPECT_EQ(o->devid, 2u);
	EXPECT_EQ(o->fourcc, uint32_t(V4L2_PIX_FMT_NV12));
	EXPECT_EQ(o->width, 640u);
	EXPECT_EQ(o->height, 480u);
	EXPECT_EQ(o->rate, (proto::Fraction{ 30, 1 }));
	EXPECT_EQ(o->buffers, 6u);
	EXPECT_EQ(o->frames, 10u);
	EXPECT_EQ(o->every, 3u);
	EXPECT_EQ(o->saveRawDir, "/tmp/a");
	EXPECT_EQ(o->savePngDir, "/tmp/b");
	ASSERT_EQ(o->controls.size(), 2u);
	EXPECT_EQ(o->controls[0], (std::pair<uint8_t, int64_t>{ XENCAMERA_CTRL_BRIGHTNESS, -5 }));
	EXPECT_EQ(o->controls[1], (std::pair<uint8_t, int64_t>{ 3, 16 }));
	EXPECT_TRUE(o->checkPattern);
	EXPECT_TRUE(o->quiet);
}

TEST(CaptureArgs, UsageErrorsNameTheOption)
{
	struct Case {
		std::vector<const char *> args;
		const char *mention;
	} cases[] = {
		{ { "--bogus" }, "--bogus" },
		{ { "--size", "640" }, "--size" },
		{ { "--rate", "30/0" }, "--rate" },
		{ { "--buffers", "0" }, "--buffers" },
		{ { "--buffers", "300" }, "--buffers" },
		{ { "--frames" }, "--frames" },
		{ { "--set-control", "zoom=3" }, "zoom" },
		{ { "--set-control", "hue=abc" }, "abc" },
		{ { "--list=1" }, "--list" },
	};
	for (const Case &c : cases) {
		auto o = parse(c.args);
		ASSERT_FALSE(o) << c.args[0];
		EXPECT_NE(o.error().message.find(c.mention), std::string::npos) << o.error().message;
	}
	auto h = parse({ "--help" });
	ASSERT_TRUE(h);
	EXPECT_TRUE(h->help);
	EXPECT_NE(captureUsage("x").find("--check-pattern"), std::string::npos);
}

TEST_F(FrontendTest, ListShowsTheDevice)
{
	startBackend();
	std::ostringstream out, err;
	EXPECT_EQ(listDevices(*guest, out, err), kExitOk) << err.str();
	EXPECT_NE(out.str().find("device 0: fake-camera-0"), std::string::npos) << out.str();
	EXPECT_NE(out.str().find("format NV12"), std::string::npos) << out.str();
	EXPECT_NE(out.str().find("64x48 @ 30/1,15/1"), std::string::npos) << out.str();
}

class CaptureRun : public FrontendTest, public ::testing::WithParamInterface<bool>
{
};

TEST_P(CaptureRun, ChecksPatternAndSavesFrames)
{
	FakeBackendOptions fo;
	fo.beAlloc = GetParam();
	startBackend(fo);
	backend->dropEvery = 4;
	std::string dir = tempDir();
	auto o = parse({ "--frames", "9", "--check-pattern", "--save-png", "", "--every", "4" });
	ASSERT_FALSE(o); /* empty directory */
	std::string png = dir + "/png", raw = dir + "/raw";
	o = parse({ "--frames", "9", "--check-pattern", "--every", "4", "--quiet",
		    "--set-control", "contrast=60" });
	ASSERT_TRUE(o);
	o->savePngDir = png;
	o->saveRawDir = raw;
	std::ostringstream out, err;
	int rc = runCapture(*guest, *o, out, err);
	EXPECT_EQ(rc, kExitOk) << out.str() << err.str();
	/*
	 * The backend drops every 4th frame: at least 2 gaps in 9 frames.  A
	 * loaded machine (ASan, a parallel build) may make the library skip a
	 * superseded frame too, which is one more drop, never fewer.
	 */
	unsigned frames = 0, drops = 0;
	auto at = out.str().find("summary: ok frames ");
	ASSERT_NE(at, std::string::npos) << out.str();
	ASSERT_EQ(std::sscanf(out.str().c_str() + at, "summary: ok frames %u drops %u", &frames, &drops), 2);
	EXPECT_EQ(frames, 9u) << out.str();
	EXPECT_GE(drops, 2u) << out.str();
	EXPECT_NE(out.str().find("mismatches 0"), std::string::npos) << out.str();
	/* Frames 1, 5, 9 saved. */
	size_t pngs = 0, raws = 0;
	for (auto &e : std::filesystem::directory_iterator(png)) {
		auto img = image::readPng(e.path());
		ASSERT_TRUE(img) << img.error().message;
		EXPECT_EQ(img->width, 64u);
		EXPECT_EQ(img->height, 48u);
		pngs++;
	}
	for (auto &e : std::filesystem::directory_iterator(raw)) {
		EXPECT_EQ(std::filesystem::file_size(e.path()), 64u * 48 * 3 / 2);
		raws++;
	}
	EXPECT_EQ(pngs, 3u);
	EXPECT_EQ(raws, 3u);
	EXPECT_EQ(hv->grantEntries(1), 0u);
	std::filesystem::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Alloc, CaptureRun, ::testing::Values(false, true),
			 [](const auto &p) { return p.param ? "BackendAlloc" : "FrontendAlloc"; });

TEST_F(FrontendTest, CaptureFailsCleanlyOnBadFormat)
{
	startBackend();
	auto o = parse({ "--format", "MJPG", "--size", "64x48", "--frames", "1" });
	ASSERT_TRUE(o);
	std::ostringstream out, err;
	EXPECT_EQ(runCapture(*guest, *o, out, err), kExitFailure);
	EXPECT_NE(err.str().find("CONFIG_SET(MJPG 64x48)"), std::string::npos) << err.str();
	EXPECT_EQ(hv->grantEntries(1), 0u);
}
