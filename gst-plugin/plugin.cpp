/* SPDX-License-Identifier: MIT */
/*
 * The xmb GStreamer plugin: the xen-media-bridge camera service and guest
 * library as elements (docs/gstreamer.md).
 */
#include <gst/gst.h>

#include "gstxmbcamerasink.h"
#include "gstxmbcamerasrc.h"
#include "gstxmbencoder.h"
#include "gstxmbguestsink.h"
#include "xmb_config.h"
#if XMB_HAVE_VCODEC_BACKEND
#include "gstxmbguestsrc.h"
#endif
#include "xmb_config.h"

static gboolean plugin_init(GstPlugin *plugin)
{
	gboolean ok = FALSE;
	ok |= GST_ELEMENT_REGISTER(xmbcamerasink, plugin);
	ok |= GST_ELEMENT_REGISTER(xmbcamerasrc, plugin);
	ok |= GST_ELEMENT_REGISTER(xmbencoder, plugin);
	ok |= GST_ELEMENT_REGISTER(xmbguestsink, plugin);
#if XMB_HAVE_VCODEC_BACKEND
	ok |= GST_ELEMENT_REGISTER(xmbguestsrc, plugin);
#endif
	return ok;
}

#define PACKAGE "xen-media-bridge"
GST_PLUGIN_DEFINE(GST_VERSION_MAJOR, GST_VERSION_MINOR, xmb,
		  "Xen para-virtual camera: Dom0 pipelines served to guests, Dom0 cameras in guest "
		  "pipelines (zero copy)",
		  plugin_init, XMB_VERSION, "MIT/X11", "xen-media-bridge",
		  "https://github.com/xen-media-bridge")
