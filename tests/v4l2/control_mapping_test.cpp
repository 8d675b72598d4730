/* SPDX-License-Identifier: MIT */
#include <gtest/gtest.h>

#include <cstdint>

#include <xen/io/cameraif.h>

#include "v4l2/control_mapping.h"

using namespace xmb;

namespace {

V4L2ControlInfo ctrl(uint32_t id, uint32_t type, int64_t min, int64_t max, uint64_t step,
		     int64_t def, uint32_t flags = 0)
{
	V4L2ControlInfo i;
	i.id = id;
	i.type = type;
	i.minimum = min;
	i.maximum = max;
	i.step = step;
	i.defaultValue = def;
	i.flags = flags;
	return i;
}

} /* namespace */

TEST(ControlMapping, FourCameraifControlsMapToV4L2UserControls)
{
	EXPECT_EQ(v4l2ControlForCamera(XENCAMERA_CTRL_BRIGHTNESS), V4L2_CID_BRIGHTNESS);
	EXPECT_EQ(v4l2ControlForCamera(XENCAMERA_CTRL_CONTRAST), V4L2_CID_CONTRAST);
	EXPECT_EQ(v4l2ControlForCamera(XENCAMERA_CTRL_SATURATION), V4L2_CID_SATURATION);
	EXPECT_EQ(v4l2ControlForCamera(XENCAMERA_CTRL_HUE), V4L2_CID_HUE);
	EXPECT_EQ(v4l2ControlForCamera(XENCAMERA_MAX_CTRL), 0u);
	EXPECT_EQ(cameraControlForV4L2(V4L2_CID_HUE), XENCAMERA_CTRL_HUE);
	EXPECT_FALSE(cameraControlForV4L2(V4L2_CID_GAIN));
}

TEST(ControlMapping, NamesAreTheXenstoreStrings)
{
	EXPECT_STREQ(cameraControlName(XENCAMERA_CTRL_BRIGHTNESS), XENCAMERA_CTRL_BRIGHTNESS_STR);
	EXPECT_STREQ(cameraControlName(XENCAMERA_CTRL_HUE), "hue");
	EXPECT_EQ(cameraControlFromName("saturation"), XENCAMERA_CTRL_SATURATION);
	EXPECT_FALSE(cameraControlFromName("gain"));
	EXPECT_EQ(cameraControlName(42), nullptr);
}

TEST(ControlMapping, IntegerControlKeepsRangeStepAndDefault)
{
	auto c = toCameraControl(ctrl(V4L2_CID_CONTRAST, V4L2_CTRL_TYPE_INTEGER, -10, 300, 5, 100));
	ASSERT_TRUE(c);
	EXPECT_EQ(*c, (CameraControlInfo{ XENCAMERA_CTRL_CONTRAST, 0, -10, 300, 5, 100 }));
}

TEST(ControlMapping, FlagsTranslate)
{
	auto c = toCameraControl(ctrl(V4L2_CID_HUE, V4L2_CTRL_TYPE_INTEGER, 0, 1, 1, 0,
				      V4L2_CTRL_FLAG_READ_ONLY | V4L2_CTRL_FLAG_VOLATILE));
	ASSERT_TRUE(c);
	EXPECT_EQ(c->flags, uint32_t{ XENCAMERA_CTRL_FLG_RO | XENCAMERA_CTRL_FLG_VOLATILE });
	c = toCameraControl(ctrl(V4L2_CID_HUE, V4L2_CTRL_TYPE_INTEGER, 0, 1, 1, 0,
				 V4L2_CTRL_FLAG_WRITE_ONLY));
	EXPECT_EQ(c->flags, uint32_t{ XENCAMERA_CTRL_FLG_WO });
}

TEST(ControlMapping, DisabledAndUnmappedControlsAreHidden)
{
	EXPECT_FALSE(toCameraControl(ctrl(V4L2_CID_BRIGHTNESS, V4L2_CTRL_TYPE_INTEGER, 0, 1, 1, 0,
					  V4L2_CTRL_FLAG_DISABLED)));
	EXPECT_FALSE(toCameraControl(ctrl(V4L2_CID_GAIN, V4L2_CTRL_TYPE_INTEGER, 0, 1, 1, 0)));
	EXPECT_FALSE(toCameraControl(ctrl(V4L2_CID_BRIGHTNESS, V4L2_CTRL_TYPE_STRING, 0, 1, 1, 0)));
}

TEST(ControlMapping, BooleanMenuAndZeroStepNormalise)
{
	auto b = toCameraControl(ctrl(V4L2_CID_SATURATION, V4L2_CTRL_TYPE_BOOLEAN, 0, 1, 0, 1));
	EXPECT_EQ(b->step, 1);
	EXPECT_EQ(b->maximum, 1);
	auto m = toCameraControl(ctrl(V4L2_CID_SATURATION, V4L2_CTRL_TYPE_MENU, 0, 3, 0, 2));
	EXPECT_EQ(m->step, 1);
	EXPECT_EQ(m->maximum, 3);
	auto z = toCameraControl(ctrl(V4L2_CID_BRIGHTNESS, V4L2_CTRL_TYPE_INTEGER, 0, 9, 0, 0));
	EXPECT_EQ(z->step, 1);
}

TEST(ControlMapping, ListIsInCameraifOrderAndSkipsOthers)
{
	std::vector<V4L2ControlInfo> v4l2 = {
		ctrl(V4L2_CID_HUE, V4L2_CTRL_TYPE_INTEGER, -180, 180, 1, 0),
		ctrl(V4L2_CID_GAIN, V4L2_CTRL_TYPE_INTEGER, 0, 10, 1, 0),
		ctrl(V4L2_CID_BRIGHTNESS, V4L2_CTRL_TYPE_INTEGER, 0, 255, 1, 128),
	};
	auto out = toCameraControls(v4l2);
	ASSERT_EQ(out.size(), 2u);
	EXPECT_EQ(out[0].type, XENCAMERA_CTRL_BRIGHTNESS);
	EXPECT_EQ(out[1].type, XENCAMERA_CTRL_HUE);
}

TEST(ControlMapping, ClampRoundsOntoStepGridInsideRange)
{
	CameraControlInfo c{ XENCAMERA_CTRL_BRIGHTNESS, 0, 10, 100, 10, 50 };
	EXPECT_EQ(clampControlValue(c, -5), 10);
	EXPECT_EQ(clampControlValue(c, 1000), 100);
	EXPECT_EQ(clampControlValue(c, 34), 30);
	EXPECT_EQ(clampControlValue(c, 35), 40);
	CameraControlInfo odd{ XENCAMERA_CTRL_BRIGHTNESS, 0, 0, 95, 10, 0 };
	EXPECT_EQ(clampControlValue(odd, 95), 90) << "never past max";
	CameraControlInfo wide{ XENCAMERA_CTRL_HUE, 0, INT64_MIN, INT64_MAX, 3, 0 };
	EXPECT_EQ(clampControlValue(wide, INT64_MAX), INT64_MAX) << "on the grid, no overflow";
	EXPECT_EQ(clampControlValue(wide, INT64_MIN + 4), INT64_MIN + 3);
}
