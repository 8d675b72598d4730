/* SPDX-License-Identifier: MIT */
#include "xmb_common.h"

#include <cerrno>
#include <mutex>

#include <linux/videodev2.h>

namespace xmb::gst {

GType platformEnumType()
{
	static GType type = 0;
	static const GEnumValue values[] = {
		{ XMB_PLATFORM_XEN, "Real Xen (libxengnttab, libxenevtchn, libxenstore)", "xen" },
		{ XMB_PLATFORM_LOOPBACK,
		  "In-process loopback hypervisor shared by every xmb element of this process "
		  "(tests and demos only)",
		  "loopback" },
		{ 0, nullptr, nullptr },
	};
	if (g_once_init_enter(&type)) {
		GType t = g_enum_register_static("GstXmbPlatform", values);
		g_once_init_leave(&type, t);
	}
	return type;
}

namespace {

struct FormatMap {
	GstVideoFormat gst;
	uint32_t fourcc;
};

constexpr FormatMap kFormats[] = {
	{ GST_VIDEO_FORMAT_NV12, V4L2_PIX_FMT_NV12 },
	{ GST_VIDEO_FORMAT_NV21, V4L2_PIX_FMT_NV21 },
	{ GST_VIDEO_FORMAT_I420, V4L2_PIX_FMT_YUV420 },
	{ GST_VIDEO_FORMAT_YV12, V4L2_PIX_FMT_YVU420 },
	{ GST_VIDEO_FORMAT_YUY2, V4L2_PIX_FMT_YUYV },
	{ GST_VIDEO_FORMAT_UYVY, V4L2_PIX_FMT_UYVY },
	{ GST_VIDEO_FORMAT_RGB, V4L2_PIX_FMT_RGB24 },
	{ GST_VIDEO_FORMAT_BGR, V4L2_PIX_FMT_BGR24 },
	{ GST_VIDEO_FORMAT_BGRx, V4L2_PIX_FMT_XBGR32 }, /* bytes B,G,R,X */
	{ GST_VIDEO_FORMAT_xRGB, V4L2_PIX_FMT_XRGB32 }, /* bytes X,R,G,B */
	{ GST_VIDEO_FORMAT_RGBx, V4L2_PIX_FMT_RGBX32 }, /* bytes R,G,B,X */
	{ GST_VIDEO_FORMAT_BGRA, V4L2_PIX_FMT_ABGR32 }, /* bytes B,G,R,A */
	{ GST_VIDEO_FORMAT_RGBA, V4L2_PIX_FMT_RGBA32 }, /* bytes R,G,B,A */
	{ GST_VIDEO_FORMAT_GRAY8, V4L2_PIX_FMT_GREY },
};

std::mutex gLoopbackLock;

} /* namespace */

uint32_t fourccFromVideoFormat(GstVideoFormat format)
{
	for (const auto &f : kFormats)
		if (f.gst == format)
			return f.fourcc;
	return 0;
}

void installPlatformProperties(GObjectClass *klass, guint platformId, guint domidId, bool dom0Side)
{
	const auto rw = static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
						 GST_PARAM_MUTABLE_READY);
	g_object_class_install_property(
		klass, platformId,
		g_param_spec_enum("platform", "Platform",
				  "Xen platform: real Xen, or the in-process loopback hypervisor "
				  "(tests and demos: Dom0 and guest elements in one process)",
				  platformEnumType(), XMB_PLATFORM_XEN, rw));
	if (dom0Side)
		g_object_class_install_property(
			klass, domidId,
			g_param_spec_uint("loopback-guest-domid", "Loopback guest domid",
					  "platform=loopback: start this guest domain (named guest<ID>) and "
					  "serve it when no guest is set",
					  0, 0x7fef, 0, rw));
	else
		g_object_class_install_property(
			klass, domidId,
			g_param_spec_uint("loopback-domid", "Loopback domid",
					  "platform=loopback: the guest domain this element runs in (started "
					  "if it does not run yet)",
					  0, 0x7fef, 0, rw));
}

GstVideoFormat videoFormatFromFourcc(uint32_t fourcc)
{
	for (const auto &f : kFormats)
		if (f.fourcc == fourcc)
			return f.gst;
	return GST_VIDEO_FORMAT_UNKNOWN;
}

FrameLayout layoutFromVideoInfo(const GstVideoInfo &info, uint32_t fourcc)
{
	FrameLayout l;
	l.fourcc = fourcc;
	l.width = GST_VIDEO_INFO_WIDTH(&info);
	l.height = GST_VIDEO_INFO_HEIGHT(&info);
	l.size = static_cast<uint32_t>(GST_VIDEO_INFO_SIZE(&info));
	l.numPlanes = GST_VIDEO_INFO_N_PLANES(&info);
	for (unsigned p = 0; p < l.numPlanes && p < l.planes.size(); p++) {
		size_t begin = GST_VIDEO_INFO_PLANE_OFFSET(&info, p);
		size_t end = p + 1 < l.numPlanes ? GST_VIDEO_INFO_PLANE_OFFSET(&info, p + 1)
						 : GST_VIDEO_INFO_SIZE(&info);
		l.planes[p].offset = static_cast<uint32_t>(begin);
		l.planes[p].stride = static_cast<uint32_t>(GST_VIDEO_INFO_PLANE_STRIDE(&info, p));
		l.planes[p].size = static_cast<uint32_t>(end - begin);
	}
	return l;
}

std::shared_ptr<xen::LoopbackXen> loopbackHypervisor()
{
	/* Never destroyed: elements may outlive static destruction order. */
	static auto *hv = new std::shared_ptr<xen::LoopbackXen>(xen::LoopbackXen::create());
	return *hv;
}

Status ensureLoopbackDomain(xen::DomId id)
{
	std::lock_guard<std::mutex> l(gLoopbackLock);
	Status s = loopbackHypervisor()->createDomain(id, "guest" + std::to_string(id));
	if (!s && s.error().code == -EEXIST)
		return {};
	return s;
}

Result<std::unique_ptr<xen::Platform>> openPlatform(int kind, xen::DomId loopbackDomid)
{
	if (kind == XMB_PLATFORM_LOOPBACK) {
		if (loopbackDomid != 0) {
			if (Status s = ensureLoopbackDomain(loopbackDomid); !s)
				return s.error();
		}
		return loopbackHypervisor()->open(loopbackDomid);
	}
	if (!xen::haveRealPlatform())
		return Error{ -ENOTSUP, "this build has no real Xen platform (libxen* were not "
					"found at configure time)" };
	return xen::openRealPlatform();
}

} /* namespace xmb::gst */
