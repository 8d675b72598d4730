/* SPDX-License-Identifier: MIT */
#pragma once

struct xentoollog_logger;

namespace xmb::xen {

/**
 * A libxentoollog logger that routes the Xen libraries' messages into our
 * "xenlib" log category at debug level.  The libraries log every failed map
 * on their own; a guest could otherwise flood Dom0's stderr with them, and
 * we report the failure ourselves, rate-limited, where we know the context.
 */
xentoollog_logger *quietXenLogger();

} /* namespace xmb::xen */
