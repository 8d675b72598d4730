/* SPDX-License-Identifier: MIT */
#include "bridge/platform/real/xen_logger.h"

#include <cstdio>

extern "C" {
#include <xentoollog.h>
}

#include "protocol/base/log.h"

namespace xmb::xen {

XMB_LOG_DEFINE_CATEGORY(logXenLib, "xenlib");

namespace {

void vmessage(xentoollog_logger *, xentoollog_level, int errnoval, const char *context,
	      const char *format, va_list al)
{
	if (!logXenLib.enabled(LogLevel::Debug))
		return;
	char buf[512];
	std::vsnprintf(buf, sizeof(buf), format, al);
	XMB_LOG(logXenLib, Debug, "%s: %s (errno %d)", context ? context : "xen", buf, errnoval);
}

void progress(xentoollog_logger *, const char *, const char *, int, unsigned long, unsigned long) {}
void destroy(xentoollog_logger *) {}

xentoollog_logger theLogger = { vmessage, progress, destroy };

} /* namespace */

xentoollog_logger *quietXenLogger()
{
	return &theLogger;
}

} /* namespace xmb::xen */
