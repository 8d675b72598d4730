/* SPDX-License-Identifier: MIT */
#pragma once

#include <cstdint>
#include <optional>

namespace xmb::service {

/** Per-frontend counters, reported in logs, by the demo and the bench. */
struct SessionStats {
	uint64_t frames = 0;	   /**< FRAME_AVAIL events sent */
	uint64_t bytesCopied = 0;  /**< frame bytes Dom0 copied for this guest */
	uint64_t drops = 0;	   /**< frames this guest missed (no buffer / event page full) */
	uint64_t requests = 0;	   /**< ring requests served */
	uint64_t mappedPages = 0;  /**< guest pages mapped now */
	uint64_t grantedPages = 0; /**< Dom0 pages granted to the guest now */
	uint64_t throttledRequests = 0; /**< answered -XEN_EAGAIN: over the guest's budget (CTRL_SET) */
	uint64_t stormDelays = 0;  /**< wakeups put off: the guest notified with nothing to do */
	/* Over the last frames (DeliveryWindow); 0 = not known. */
	uint64_t fpsMilli = 0;	   /**< frames per second delivered, in thousandths */
	std::optional<uint64_t> latencyP50Us; /**< capture to event sent, median */
	std::optional<uint64_t> latencyP99Us; /**< capture to event sent, 99th percentile */
};

} /* namespace xmb::service */
