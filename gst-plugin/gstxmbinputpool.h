/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The guest's vcodec INPUT buffers as a GstBufferPool: each buffer wraps
 * one INPUT buffer's granted pages (Dom0 reads them in place), with Dom0's
 * strides and offsets in a GstVideoMeta.  Shared by the guest elements
 * that feed vcodec (xmbencoder, xmbguestsink): an upstream that allocates
 * from the pool renders straight into memory Dom0 reads.
 */

#include <memory>
#include <string>

#include <gst/gst.h>
#include <gst/video/video.h>

#include "bridge/platform/platform.h"
#include "bridge/vcodec/codec_frontend.h"

namespace xmb::gst {

/*
 * The frontend and its granted pages.  Every pool buffer holds a
 * reference: the pages stay granted (and the device connected) until the
 * last buffer that wraps them is gone, even after the element stopped.
 */
struct VcodecConnection {
	std::unique_ptr<xen::Platform> platform;
	std::unique_ptr<vcodec::CodecFrontend> fe;
	~VcodecConnection()
	{
		fe.reset();
		platform.reset();
	}
};

/**
 * A pool of exactly \a count buffers (INPUT 0..count-1 of \a conn) laid out
 * as \a info (Dom0's layout); configured, left inactive.  nullptr if the
 * configuration is refused.
 */
GstBufferPool *inputPoolNew(std::shared_ptr<VcodecConnection> conn, const GstVideoInfo &info, guint count);

/** \a in (the negotiated format) with the INPUT layout Dom0 chose: its offsets, strides, size. */
GstVideoInfo inputInfoFromLayout(const GstVideoInfo &in, const vcodec::CodecLayout &layout);

/**
 * One copy of \a src (laid out as \a srcInfo) into a free buffer of \a pool
 * (laid out as \a poolInfo), for a frame upstream did not render into the
 * pool; activates the pool if upstream did not.  \return the pool buffer
 * and its INPUT index in \a *index, or nullptr with \a *why set.
 */
GstBuffer *inputPoolCopy(GstBufferPool *pool, const GstVideoInfo &poolInfo, const GstVideoInfo &srcInfo,
			 GstBuffer *src, int *index, std::string *why);

/** The INPUT index of \a buf if it came from \a pool, else -1. */
int inputPoolIndex(GstBufferPool *pool, GstBuffer *buf);

} /* namespace xmb::gst */
