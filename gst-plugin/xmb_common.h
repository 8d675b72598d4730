/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What the xmb elements share: the GstVideoFormat <-> cameraif FOURCC
 * table, the frame layout a GstVideoInfo describes, and the platform
 * choice (real Xen, or one process-wide loopback hypervisor so that a
 * single process can host "Dom0" and guest pipelines for tests and demos).
 */

#include <cstdint>
#include <memory>

#include <gst/gst.h>
#include <gst/video/video.h>

#include "bridge/platform/loopback/loopback_xen.h"
#include "bridge/platform/platform.h"
#include "protocol/result.h"
#include "v4l2/media_types.h"

namespace xmb::gst {

enum PlatformKind {
	XMB_PLATFORM_XEN = 0,
	XMB_PLATFORM_LOOPBACK = 1,
};

/** GEnum "GstXmbPlatform": xen | loopback. */
GType platformEnumType();

/**
 * Install the properties every xmb element has for its platform: "platform"
 * (xen | loopback) as \a platformId, and as \a domidId either
 * "loopback-domid" (guest elements: the loopback domain they run in) or,
 * with \a dom0Side, "loopback-guest-domid" (Dom0 elements: the loopback
 * guest to start and serve).  READY-mutable, like the rest.
 */
void installPlatformProperties(GObjectClass *klass, guint platformId, guint domidId, bool dom0Side);

/** V4L2/cameraif FOURCC of \a format, 0 if the bridge has none. */
uint32_t fourccFromVideoFormat(GstVideoFormat format);
/** Inverse; GST_VIDEO_FORMAT_UNKNOWN if not mapped. */
GstVideoFormat videoFormatFromFourcc(uint32_t fourcc);
/** The GStreamer names of proto::kVcodecRawFormats, for the raw vcodec elements' pad templates. */
#define XMB_VCODEC_RAW_FORMATS "{ I420, NV12, YUY2 }"
/** "{ NV12, NV21, ... }" for pad templates. */
#define XMB_VIDEO_FORMATS "{ NV12, NV21, I420, YV12, YUY2, UYVY, RGB, BGR, BGRx, xRGB, RGBx, BGRA, RGBA, GRAY8 }"

/**
 * The single-buffer layout of \a info as cameraif describes it: planes at
 * GStreamer's offsets with GStreamer's strides, one after the other.
 */
FrameLayout layoutFromVideoInfo(const GstVideoInfo &info, uint32_t fourcc);

/** The process-wide loopback hypervisor the xmb elements share (created on first use). */
std::shared_ptr<xen::LoopbackXen> loopbackHypervisor();
/** Start loopback domain \a id (named "guest<id>") unless it runs already. */
Status ensureLoopbackDomain(xen::DomId id);

/** The real platform, or loopback domain \a loopbackDomid's (0 = Dom0). */
Result<std::unique_ptr<xen::Platform>> openPlatform(int kind, xen::DomId loopbackDomid);

} /* namespace xmb::gst */
