/* SPDX-License-Identifier: MIT */
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "v4l2/v4l2_device.h"

namespace xmb {

/**
 * \brief A control in cameraif terms: what XENCAMERA_OP_CTRL_ENUM reports
 * (struct xencamera_ctrl_enum_resp without the index).
 */
struct CameraControlInfo {
	uint8_t type = 0;   /**< XENCAMERA_CTRL_BRIGHTNESS ... _HUE */
	uint32_t flags = 0; /**< XENCAMERA_CTRL_FLG_RO / _WO / _VOLATILE */
	int64_t minimum = 0;
	int64_t maximum = 0;
	int64_t step = 1;
	int64_t defaultValue = 0;

	friend bool operator==(const CameraControlInfo &, const CameraControlInfo &) = default;
};

/** V4L2 control id for cameraif control \a type (0 if none). */
uint32_t v4l2ControlForCamera(uint8_t type);
/** cameraif control type of V4L2 control \a id. */
std::optional<uint8_t> cameraControlForV4L2(uint32_t id);
/** The xenstore name ("brightness", ...), nullptr for unknown types. */
const char *cameraControlName(uint8_t type);
std::optional<uint8_t> cameraControlFromName(std::string_view name);

std::optional<CameraControlInfo> toCameraControl(const V4L2ControlInfo &info);
std::vector<CameraControlInfo> toCameraControls(const std::vector<V4L2ControlInfo> &controls);

/** Clamp \a value into [min, max] and onto the step grid from min. */
int64_t clampControlValue(const CameraControlInfo &info, int64_t value);

} /* namespace xmb */
