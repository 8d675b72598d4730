/* SPDX-License-Identifier: MIT */
/*
 * The camera service's configuration file: what an operator writes, and
 * errors that name the file, the line and the key.
 */
#include <gmock/gmock.h>

#include "bridge/service/service_config.h"

using namespace xmb::service;
using ::testing::HasSubstr;

namespace {

std::string errorOf(const std::string &text)
{
	auto c = parseServiceConfig(text, "cams.conf");
	return c ? std::string("parsed") : c.error().message;
}

} /* namespace */

TEST(ServiceConfig, MultiBufferFormatsAreNamedAsV4L2NamesThemOrByFourcc)
{
	auto c = parseServiceConfig("[camera a]\nsource = test-pattern\nformats = NV12M, NM21, YUV420M, YUYV\n",
				    "cams.conf");
	ASSERT_TRUE(c) << c.error().message;
	EXPECT_THAT(c->cameras[0].formats,
		    ::testing::ElementsAre(0x32314d4eu /* NM12 */, 0x31324d4eu /* NM21 */,
					   0x32314d59u /* YM12 */, 0x56595559u /* YUYV */));
	EXPECT_THAT(errorOf("[camera a]\nsource = test-pattern\nformats = NV99M\n"), HasSubstr("NV99M"));
}

TEST(ServiceConfig, ParsesCamerasAndGuests)
{
	auto c = parseServiceConfig(R"(
# a comment
[camera front]
source = v4l2:/dev/video0
formats = NV12, YUYV
foreign-userptr = yes
share-device-buffers = yes
[camera back]
source = test-pattern
copy = force
[guest kitchen]
domain = guest1
device = 1
camera = front
max-buffers = 8
be-alloc = yes
max-pages = 1024
unique-id = front-cam
)",
				    "cams.conf");
	ASSERT_TRUE(c) << c.error().message;
	ASSERT_EQ(c->cameras.size(), 2u);
	EXPECT_EQ(c->cameras[0].source, "v4l2:/dev/video0");
	EXPECT_EQ(c->cameras[0].formats.size(), 2u);
	EXPECT_EQ(c->cameras[0].foreignUserPtr, std::optional<bool>(true));
	EXPECT_FALSE(c->cameras[1].foreignUserPtr.has_value()) << "default: ask the platform";
	EXPECT_TRUE(c->cameras[1].forceCopy);
	EXPECT_TRUE(c->cameras[0].shareDeviceBuffers);
	EXPECT_FALSE(c->cameras[1].shareDeviceBuffers) << "default: guests do not share buffers";
	ASSERT_EQ(c->guests.size(), 1u);
	const GuestEntry &g = c->guests[0];
	EXPECT_EQ(g.domainName, "guest1");
	EXPECT_EQ(g.device, 1u);
	EXPECT_EQ(g.maxBuffers, 8);
	EXPECT_TRUE(g.beAlloc);
	EXPECT_EQ(g.maxPages, 1024u);
	EXPECT_EQ(g.uniqueId, "front-cam");
}

TEST(ServiceConfig, BadValuesNameFileLineAndKey)
{
	EXPECT_THAT(errorOf("[camera a]\nsource = test-pattern\nforeign-userptr = maybe\n"),
		    HasSubstr("cams.conf:3: key 'foreign-userptr': 'maybe': expected auto, yes or no"));
	EXPECT_THAT(errorOf("[camera a]\nsource = test-pattern\nshare-device-buffers = all\n"),
		    HasSubstr("cams.conf:3: key 'share-device-buffers': 'all': expected yes or no"));
	EXPECT_THAT(errorOf("[camera a]\nsource = test-pattern\n[guest g]\ndomain = 1\ncamera = a\n"
			    "max-buffers = 33\n"),
		    HasSubstr("cams.conf:6: key 'max-buffers': '33'"));
	EXPECT_THAT(errorOf("[camera a]\ncopy = sometimes\n"), HasSubstr("cams.conf:2: key 'copy'"));
	EXPECT_THAT(errorOf("source = x\n"), HasSubstr("cams.conf:1: key 'source' outside"));
	EXPECT_THAT(errorOf("[camera a]\nsource = x\ncolour = red\n"),
		    HasSubstr("cams.conf:3: unknown key 'colour' in [camera a]"));
}

TEST(ServiceConfig, MissingAndDanglingReferencesNameTheSection)
{
	EXPECT_THAT(errorOf("[camera a]\n"), HasSubstr("cams.conf:1: [camera a]: key 'source' missing"));
	EXPECT_THAT(errorOf("[camera a]\nsource = x\n[guest g]\ndomain = 1\ncamera = b\n"),
		    HasSubstr("cams.conf:3: [guest g]: key 'camera': no [camera b] section"));
	EXPECT_THAT(errorOf("[camera a]\nsource = x\n[guest g]\ndomain = 1\ncamera = a\n"
			    "[guest h]\ndomain = 1\ncamera = a\n"),
		    HasSubstr("device 0 of domain 1 configured twice"));
}

TEST(ServiceConfig, MissingFileNamesIt)
{
	auto c = loadServiceConfig("/nonexistent/cams.conf");
	ASSERT_FALSE(c);
	EXPECT_THAT(c.error().message, HasSubstr("/nonexistent/cams.conf"));
}
