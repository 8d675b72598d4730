/* SPDX-License-Identifier: MIT */
#pragma once

#include "v4l2/device_io.h"

namespace xmb {

/**
 * \brief DeviceIO through libv4l2 (v4l2_fd_open, v4l2_ioctl, v4l2_mmap).
 *
 * libv4l2 adds formats the device lacks by converting each frame in
 * software at DQBUF.  That is a copy, so it is only used when a guest asks
 * for such a format, and V4L2CameraSource counts and logs the bytes.
 * Returns nullptr when the build has no libv4l2.
 */
DeviceIO *libv4l2DeviceIO();

} /* namespace xmb */
