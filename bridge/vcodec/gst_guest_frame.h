/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A guest's raw frame as GStreamer memory, without a copy: what the
 * GStreamer encoders (GstEncoder) and a Dom0 pipeline (xmbguestsrc) read.
 * Include only where GStreamer is (it pulls in its headers).
 */

#include <gst/gst.h>
#include <gst/video/video.h>

#include "bridge/vcodec/encoder.h"

namespace xmb::vcodec {

/**
 * A read-only GstBuffer over the \a layout.size bytes at \a data (guest
 * pages mapped in Dom0), with a GstVideoMeta giving \a layout's plane
 * offsets and strides for \a format at \a width x \a height.  \a notify
 * (\a user) runs when the last reference goes: that is where the frame is
 * given back to the guest.
 */
inline GstBuffer *wrapGuestFrame(const uint8_t *data, const RawLayout &layout, GstVideoFormat format,
				 uint32_t width, uint32_t height, gpointer user, GDestroyNotify notify)
{
	/* Read-only: GStreamer must neither write nor copy-on-write the guest's pages. */
	GstBuffer *buf = gst_buffer_new_wrapped_full(GST_MEMORY_FLAG_READONLY, const_cast<uint8_t *>(data),
						     layout.size, 0, layout.size, user, notify);
	gsize offsets[GST_VIDEO_MAX_PLANES] = {};
	gint strides[GST_VIDEO_MAX_PLANES] = {};
	unsigned planes = layout.numPlanes < GST_VIDEO_MAX_PLANES ? layout.numPlanes : GST_VIDEO_MAX_PLANES;
	for (unsigned p = 0; p < planes; p++) {
		offsets[p] = layout.offset[p];
		strides[p] = static_cast<gint>(layout.stride[p]);
	}
	gst_buffer_add_video_meta_full(buf, GST_VIDEO_FRAME_FLAG_NONE, format, width, height, planes, offsets,
				       strides);
	return buf;
}

} /* namespace xmb::vcodec */
