/* SPDX-License-Identifier: MIT */
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>

namespace xmb::service {

/**
 * \brief The last frames delivered to one guest: rate and latency for --status
 *
 * A fixed window (no allocation per frame, bounded memory per guest): when
 * each frame's event was sent, and how long after its capture.  Latency is
 * capture (the camera's CLOCK_MONOTONIC timestamp) to the event written on
 * the guest's page: Dom0's share of the path; the guest's wake-up is not in it.
 */
class DeliveryWindow
{
public:
	static constexpr size_t kFrames = 128;

	/** A frame's event went out at \a sentNs; \a captureNs 0 = the source gave no time. */
	void record(uint64_t sentNs, uint64_t captureNs)
	{
		Sample &s = samples_[next_];
		s.sentNs = sentNs;
		if (!captureNs)
			s.latencyNs = kNoLatency;
		else if (captureNs > sentNs)
			/* vivid stamps the frame's nominal time, which can be just ahead of now. */
			s.latencyNs = captureNs - sentNs < kMaxAheadNs ? 0 : kNoLatency;
		else
			/* Older than 10 s: a stamp from another clock (copied, wall-clock), not a latency. */
			s.latencyNs = sentNs - captureNs < kMaxLatencyNs ? sentNs - captureNs : kNoLatency;
		next_ = (next_ + 1) % kFrames;
		count_ = std::min(count_ + 1, kFrames);
	}

	/** Frames per second over the window, in thousandths; 0 until two frames. */
	[[nodiscard]] uint64_t fpsMilli(uint64_t nowNs) const
	{
		if (count_ < 2)
			return 0;
		const uint64_t newest = samples_[(next_ + kFrames - 1) % kFrames].sentNs;
		const uint64_t oldest = samples_[(next_ + kFrames - count_) % kFrames].sentNs;
		/* A stream that stopped is not still at its old rate. */
		if (nowNs > newest && nowNs - newest > kStaleNs)
			return 0;
		if (newest <= oldest)
			return 0;
		return (count_ - 1) * 1000000000000ull / (newest - oldest);
	}

	/** Latency percentile \a p (0-100) in microseconds over the window; none without samples. */
	[[nodiscard]] std::optional<uint64_t> latencyUs(unsigned p) const
	{
		std::array<uint64_t, kFrames> v{};
		size_t n = 0;
		for (size_t i = 0; i < count_; i++)
			if (samples_[i].latencyNs != kNoLatency)
				v[n++] = samples_[i].latencyNs;
		if (!n)
			return std::nullopt;
		const size_t k = std::min(n - 1, (n * std::min(p, 100u) + 99) / 100 - (p ? 1 : 0));
		std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.begin() + static_cast<std::ptrdiff_t>(n));
		return v[k] / 1000;
	}

private:
	static constexpr uint64_t kNoLatency = UINT64_MAX;
	static constexpr uint64_t kMaxLatencyNs = 10'000'000'000ull;
	static constexpr uint64_t kMaxAheadNs = 1'000'000'000ull;
	static constexpr uint64_t kStaleNs = 2'000'000'000ull;
	struct Sample {
		uint64_t sentNs = 0;
		uint64_t latencyNs = kNoLatency;
	};
	std::array<Sample, kFrames> samples_{};
	size_t next_ = 0;
	size_t count_ = 0;
};

} /* namespace xmb::service */
