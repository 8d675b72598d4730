/* SPDX-License-Identifier: MIT */
#pragma once

#include <gst/base/gstbasesink.h>

G_BEGIN_DECLS

#define GST_TYPE_XMB_CAMERA_SINK (gst_xmb_camera_sink_get_type())
G_DECLARE_FINAL_TYPE(GstXmbCameraSink, gst_xmb_camera_sink, GST, XMB_CAMERA_SINK, GstBaseSink)

GST_ELEMENT_REGISTER_DECLARE(xmbcamerasink);

G_END_DECLS
