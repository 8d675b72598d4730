/* SPDX-License-Identifier: MIT */
#pragma once

#include <gst/base/gstpushsrc.h>

G_BEGIN_DECLS

#define GST_TYPE_XMB_GUEST_SRC (gst_xmb_guest_src_get_type())
G_DECLARE_FINAL_TYPE(GstXmbGuestSrc, gst_xmb_guest_src, GST, XMB_GUEST_SRC, GstPushSrc)

GST_ELEMENT_REGISTER_DECLARE(xmbguestsrc);

G_END_DECLS
