/* SPDX-License-Identifier: MIT */
/**
 * \file control_mapping.cpp
 * \brief Mapping V4L2 controls to the cameraif control set
 *
 * cameraif knows four controls (brightness, contrast, saturation, hue),
 * all 64-bit integers with min/max/step/default and three flags.  V4L2's
 * user-class controls of the same names map one to one; everything else a
 * device has stays invisible to guests.
 */
#include "v4l2/control_mapping.h"

#include <cstdint>

#include <xen/io/cameraif.h>

namespace xmb {

namespace {

struct Mapping {
	uint8_t type;
	uint32_t v4l2Id;
	const char *name;
};

constexpr Mapping kMappings[] = {
	{ XENCAMERA_CTRL_BRIGHTNESS, V4L2_CID_BRIGHTNESS, XENCAMERA_CTRL_BRIGHTNESS_STR },
	{ XENCAMERA_CTRL_CONTRAST, V4L2_CID_CONTRAST, XENCAMERA_CTRL_CONTRAST_STR },
	{ XENCAMERA_CTRL_SATURATION, V4L2_CID_SATURATION, XENCAMERA_CTRL_SATURATION_STR },
	{ XENCAMERA_CTRL_HUE, V4L2_CID_HUE, XENCAMERA_CTRL_HUE_STR },
};

} /* namespace */

uint32_t v4l2ControlForCamera(uint8_t type)
{
	for (const Mapping &m : kMappings)
		if (m.type == type)
			return m.v4l2Id;
	return 0;
}

std::optional<uint8_t> cameraControlForV4L2(uint32_t id)
{
	for (const Mapping &m : kMappings)
		if (m.v4l2Id == id)
			return m.type;
	return std::nullopt;
}

const char *cameraControlName(uint8_t type)
{
	for (const Mapping &m : kMappings)
		if (m.type == type)
			return m.name;
	return nullptr;
}

std::optional<uint8_t> cameraControlFromName(std::string_view name)
{
	for (const Mapping &m : kMappings)
		if (name == m.name)
			return m.type;
	return std::nullopt;
}

/**
 * \brief The cameraif view of a V4L2 control
 *
 * nullopt when the control is not one of the four, is disabled, or has a
 * type without an integer value.  A menu maps to its index range with step
 * 1; a boolean to 0..1.
 */
std::optional<CameraControlInfo> toCameraControl(const V4L2ControlInfo &info)
{
	std::optional<uint8_t> type = cameraControlForV4L2(info.id);
	if (!type || (info.flags & V4L2_CTRL_FLAG_DISABLED))
		return std::nullopt;

	CameraControlInfo c;
	c.type = *type;
	c.minimum = info.minimum;
	c.maximum = info.maximum;
	c.defaultValue = info.defaultValue;
	switch (info.type) {
	case V4L2_CTRL_TYPE_INTEGER:
	case V4L2_CTRL_TYPE_INTEGER64:
		/* step 0 is a driver bug; 1 is what it means. */
		c.step = info.step ? static_cast<int64_t>(info.step) : 1;
		break;
	case V4L2_CTRL_TYPE_BOOLEAN:
		c.minimum = 0;
		c.maximum = 1;
		c.step = 1;
		break;
	case V4L2_CTRL_TYPE_MENU:
	case V4L2_CTRL_TYPE_INTEGER_MENU:
		c.step = 1;
		break;
	default:
		return std::nullopt;
	}
	if (info.flags & V4L2_CTRL_FLAG_READ_ONLY)
		c.flags |= XENCAMERA_CTRL_FLG_RO;
	if (info.flags & V4L2_CTRL_FLAG_WRITE_ONLY)
		c.flags |= XENCAMERA_CTRL_FLG_WO;
	if (info.flags & V4L2_CTRL_FLAG_VOLATILE)
		c.flags |= XENCAMERA_CTRL_FLG_VOLATILE;
	return c;
}

/**
 * \brief The mappable subset of \a controls, in cameraif type order
 */
std::vector<CameraControlInfo> toCameraControls(const std::vector<V4L2ControlInfo> &controls)
{
	std::vector<CameraControlInfo> out;
	for (const Mapping &m : kMappings)
		for (const V4L2ControlInfo &info : controls)
			if (info.id == m.v4l2Id)
				if (auto c = toCameraControl(info)) {
					out.push_back(*c);
					break;
				}
	return out;
}

/**
 * \brief Clamp a guest-supplied value before it reaches a driver
 */
int64_t clampControlValue(const CameraControlInfo &info, int64_t value)
{
	if (value < info.minimum)
		value = info.minimum;
	if (value > info.maximum)
		value = info.maximum;
	if (info.step > 1) {
		/* Round to the nearest step, then back inside the range. */
		__int128 off = static_cast<__int128>(value) - info.minimum;
		off = (off + info.step / 2) / info.step * info.step;
		__int128 v = info.minimum + off;
		if (v > info.maximum)
			v -= info.step;
		value = static_cast<int64_t>(v);
	}
	return value;
}

} /* namespace xmb */
