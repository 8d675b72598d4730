/* SPDX-License-Identifier: MIT */
#pragma once

#include <gst/base/gstbasesink.h>

G_BEGIN_DECLS

#define GST_TYPE_XMB_GUEST_SINK (gst_xmb_guest_sink_get_type())
G_DECLARE_FINAL_TYPE(GstXmbGuestSink, gst_xmb_guest_sink, GST, XMB_GUEST_SINK, GstBaseSink)

GST_ELEMENT_REGISTER_DECLARE(xmbguestsink);

G_END_DECLS
