/* SPDX-License-Identifier: MIT */
#include "bridge/service/ring_server.h"

namespace xmb::service {

/* The category of every protocol's ring (RingServer is a template). */
XMB_LOG_DEFINE_SHARED_CATEGORY(logRing, "ring");

} /* namespace xmb::service */
