/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The daemons' side of systemd's Type=notify (sd_notify(3)): READY=1 once
 * serving, RELOADING=1/READY=1 around a SIGHUP reload, STOPPING=1 on the
 * way out.  Outside systemd (no $NOTIFY_SOCKET) and in builds without
 * libsystemd it does nothing.
 */

#include "xmb_config.h"

#if XMB_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

namespace xmb::cli {

inline void notifySystemd([[maybe_unused]] const char *state)
{
#if XMB_HAVE_SYSTEMD
	(void)sd_notify(0, state);
#endif
}

} /* namespace xmb::cli */
