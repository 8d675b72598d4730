/* SPDX-License-Identifier: MIT */
/**
 * \file v4l2_controls.cpp
 * \brief V4L2 control enumeration, menus, get and set
 */
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include "protocol/base/log.h"
#include "v4l2/v4l2_device.h"

namespace xmb {

XMB_LOG_DEFINE_CATEGORY(logV4L2Ctrl, "v4l2");

namespace {

bool isValueControl(uint32_t type)
{
	switch (type) {
	case V4L2_CTRL_TYPE_INTEGER:
	case V4L2_CTRL_TYPE_BOOLEAN:
	case V4L2_CTRL_TYPE_MENU:
	case V4L2_CTRL_TYPE_INTEGER_MENU:
	case V4L2_CTRL_TYPE_BUTTON:
	case V4L2_CTRL_TYPE_INTEGER64:
	case V4L2_CTRL_TYPE_BITMASK:
		return true;
	default:
		return false;
	}
}

void fromExt(const v4l2_query_ext_ctrl &q, V4L2ControlInfo &info)
{
	info.id = q.id;
	info.type = q.type;
	info.name.assign(q.name, strnlen(q.name, sizeof(q.name)));
	info.minimum = q.minimum;
	info.maximum = q.maximum;
	info.step = q.step;
	info.defaultValue = q.default_value;
	info.flags = q.flags;
	info.menu.clear();
}

} /* namespace */

/**
 * \brief Query one control, with its menu entries
 *
 * Uses VIDIOC_QUERY_EXT_CTRL (64-bit ranges) and falls back to
 * VIDIOC_QUERYCTRL for old drivers.  \a id may carry
 * V4L2_CTRL_FLAG_NEXT_CTRL to walk the list.
 *
 * \return 0 or -errno (-EINVAL: no such control / end of list)
 */
int V4L2Device::queryControl(uint32_t id, V4L2ControlInfo &info)
{
	v4l2_query_ext_ctrl q{};
	q.id = id;
	int ret = ioctl(VIDIOC_QUERY_EXT_CTRL, &q);
	if (ret == -ENOTTY) {
		v4l2_queryctrl old{};
		old.id = id;
		ret = ioctl(VIDIOC_QUERYCTRL, &old);
		if (ret < 0)
			return ret;
		q.id = old.id;
		q.type = old.type;
		std::memcpy(q.name, old.name, sizeof(old.name));
		q.minimum = old.minimum;
		q.maximum = old.maximum;
		q.step = static_cast<uint64_t>(old.step);
		q.default_value = old.default_value;
		q.flags = old.flags;
	} else if (ret < 0) {
		return ret;
	}
	fromExt(q, info);
	controlTypes_[info.id] = info.type;

	if (info.type == V4L2_CTRL_TYPE_MENU || info.type == V4L2_CTRL_TYPE_INTEGER_MENU) {
		/* Bounded: a menu's range is the driver's word, not a promise. */
		for (int64_t i = std::max<int64_t>(info.minimum, 0);
		     i <= info.maximum && i < 256; i++) {
			v4l2_querymenu m{};
			m.id = info.id;
			m.index = static_cast<uint32_t>(i);
			/* Holes in a menu are legal: EINVAL just skips the index. */
			if (ioctl(VIDIOC_QUERYMENU, &m) < 0)
				continue;
			std::string label = info.type == V4L2_CTRL_TYPE_MENU
				? std::string(reinterpret_cast<const char *>(m.name),
					      strnlen(reinterpret_cast<const char *>(m.name), sizeof(m.name)))
				: std::to_string(m.value);
			info.menu.emplace_back(static_cast<uint32_t>(m.index), std::move(label));
		}
	}
	return 0;
}

/**
 * \brief Every value control the device has (class headers left out)
 */
std::vector<V4L2ControlInfo> V4L2Device::queryControls()
{
	std::vector<V4L2ControlInfo> out;
	uint32_t id = 0;
	/* The list is finite, but a broken driver could loop: bound it. */
	for (int guard = 0; guard < 4096; guard++) {
		V4L2ControlInfo info;
		int ret = queryControl(id | V4L2_CTRL_FLAG_NEXT_CTRL | V4L2_CTRL_FLAG_NEXT_COMPOUND, info);
		if (ret < 0)
			break;
		if (info.id <= (id & ~(V4L2_CTRL_FLAG_NEXT_CTRL | V4L2_CTRL_FLAG_NEXT_COMPOUND)) && id)
			break;
		id = info.id;
		if (isValueControl(info.type))
			out.push_back(std::move(info));
	}
	return out;
}

int V4L2Device::controlType(uint32_t id, uint32_t &type)
{
	auto it = controlTypes_.find(id);
	if (it != controlTypes_.end()) {
		type = it->second;
		return 0;
	}
	V4L2ControlInfo info;
	int ret = queryControl(id, info);
	if (ret < 0)
		return ret;
	type = info.type;
	return 0;
}

/**
 * \brief Read the current value of control \a id
 * \return 0 or -errno
 */
int V4L2Device::getControl(uint32_t id, int64_t &value)
{
	uint32_t type;
	int ret = controlType(id, type);
	if (ret < 0)
		return ret;

	v4l2_ext_control c{};
	c.id = id;
	v4l2_ext_controls cs{};
	cs.which = V4L2_CTRL_WHICH_CUR_VAL;
	cs.count = 1;
	cs.controls = &c;
	ret = ioctl(VIDIOC_G_EXT_CTRLS, &cs);
	if (ret < 0) {
		XMB_LOG(logV4L2Ctrl, Debug, "%s: get control 0x%08x failed: %s", logName(), id,
			strerror(-ret));
		return ret;
	}
	value = type == V4L2_CTRL_TYPE_INTEGER64 ? c.value64 : c.value;
	return 0;
}

/**
 * \brief Set control \a id; \a value is updated to what the driver applied
 *
 * Drivers clamp and round silently, and the guest must be told the value
 * that took effect, so this returns the value VIDIOC_S_EXT_CTRLS wrote back.
 *
 * \return 0 or -errno (-ERANGE out of range, -EACCES read-only,
 * -EBUSY while the device does not allow it)
 */
int V4L2Device::setControl(uint32_t id, int64_t &value)
{
	uint32_t type;
	int ret = controlType(id, type);
	if (ret < 0)
		return ret;

	v4l2_ext_control c{};
	c.id = id;
	if (type == V4L2_CTRL_TYPE_INTEGER64)
		c.value64 = value;
	else
		c.value = static_cast<int32_t>(value);
	v4l2_ext_controls cs{};
	cs.which = V4L2_CTRL_WHICH_CUR_VAL;
	cs.count = 1;
	cs.controls = &c;
	ret = ioctl(VIDIOC_S_EXT_CTRLS, &cs);
	if (ret < 0) {
		XMB_LOG(logV4L2Ctrl, Warn, "%s: set control 0x%08x to %lld failed: %s", logName(), id,
			static_cast<long long>(value), strerror(-ret));
		return ret;
	}
	value = type == V4L2_CTRL_TYPE_INTEGER64 ? c.value64 : c.value;
	return 0;
}

} /* namespace xmb */
