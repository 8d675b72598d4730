/* SPDX-License-Identifier: MIT */
#pragma once

#include <cstdint>
#include <ctime>

namespace xmb {

/**
 * CLOCK_MONOTONIC in nanoseconds: the clock V4L2 stamps frames with, and
 * what every per-frame cost measurement of the bridge uses.
 */
inline uint64_t monotonicNs()
{
	timespec ts{};
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

} /* namespace xmb */
