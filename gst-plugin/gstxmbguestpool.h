/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The buffer pool xmbcamerasink proposes upstream: each buffer wraps a
 * guest buffer the camera service queued (see frame_exchange.h), so
 * upstream writes frames straight into guest-visible pages.  When no guest
 * buffer is queued within about a frame interval it hands out a scratch
 * system-memory buffer instead (counted; the sink copies or drops it), so
 * upstream never blocks for ever.
 */

#include <memory>

#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_XMB_GUEST_POOL (gst_xmb_guest_pool_get_type())
G_DECLARE_FINAL_TYPE(GstXmbGuestPool, gst_xmb_guest_pool, GST, XMB_GUEST_POOL, GstBufferPool)

G_END_DECLS

namespace xmb::gst {
class FrameExchange;
}

GstBufferPool *gst_xmb_guest_pool_new(GstElement *owner, std::shared_ptr<xmb::gst::FrameExchange> exchange);
