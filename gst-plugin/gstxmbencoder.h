/* SPDX-License-Identifier: MIT */
#pragma once

#include <gst/video/gstvideoencoder.h>

G_BEGIN_DECLS

#define GST_TYPE_XMB_ENCODER (gst_xmb_encoder_get_type())
G_DECLARE_FINAL_TYPE(GstXmbEncoder, gst_xmb_encoder, GST, XMB_ENCODER, GstVideoEncoder)

GST_ELEMENT_REGISTER_DECLARE(xmbencoder);

G_END_DECLS
