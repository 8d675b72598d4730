/* SPDX-License-Identifier: MIT */
#pragma once

#include <gst/base/gstpushsrc.h>

G_BEGIN_DECLS

#define GST_TYPE_XMB_CAMERA_SRC (gst_xmb_camera_src_get_type())
G_DECLARE_FINAL_TYPE(GstXmbCameraSrc, gst_xmb_camera_src, GST, XMB_CAMERA_SRC, GstPushSrc)

GST_ELEMENT_REGISTER_DECLARE(xmbcamerasrc);

G_END_DECLS
