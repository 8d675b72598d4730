/* SPDX-License-Identifier: MIT */
#pragma once

#include <functional>
#include <memory>

#include "bridge/service/service_config.h"
#include "v4l2/camera_source.h"

namespace xmb::service {

using SourceFactory = std::function<Result<std::unique_ptr<CameraSource>>(const CameraEntry &)>;

/**
 * Open a camera from its "source" key: test-pattern, v4l2:<path>,
 * v4l2-card:<card substring> or v4l2-driver:<driver>, libcamera:<id>.
 * Errors name the camera and the device.
 */
Result<std::unique_ptr<CameraSource>> openSource(const CameraEntry &camera);

} /* namespace xmb::service */
