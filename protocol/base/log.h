/* SPDX-License-Identifier: MIT */
#pragma once

#include <atomic>
#include <chrono>
#include <cstdarg>
#include <string_view>
#include <utility>

namespace xmb {

enum class LogLevel { Debug = 0, Info = 1, Warn = 2, Error = 3 };

/**
 * \brief A named log category, one per component ("platform", "v4l2", ...).
 *
 * The threshold comes from XMB_LOG, e.g. "XMB_LOG=v4l2:debug,*:warn"
 * (default: info).  Messages go to stderr, prefixed with the category.
 */
class LogCategory
{
public:
	explicit LogCategory(const char *name);
	[[nodiscard]] const char *name() const { return name_; }
	[[nodiscard]] bool enabled(LogLevel level) const;

private:
	const char *name_;
	mutable std::atomic<int> threshold_{ -1 };
};

void logMessage(const LogCategory &cat, LogLevel level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void logMessageV(const LogCategory &cat, LogLevel level, const char *fmt, va_list ap);

/**
 * \brief Token bucket for log lines a guest can trigger.
 *
 * A hostile guest must not be able to flood Dom0's log: allow() admits up
 * to \a burst lines, refilled at \a perSecond; suppressed() tells how many
 * were dropped since the last admitted line, so it can be reported.
 */
class RateLimit
{
public:
	RateLimit(unsigned burst = 10, unsigned perSecond = 1)
		: burst_(burst), perSecond_(perSecond), tokens_(burst) {}
	bool allow();
	[[nodiscard]] unsigned takeSuppressed() { return std::exchange(suppressed_, 0); }

private:
	unsigned burst_;
	unsigned perSecond_;
	double tokens_;
	unsigned suppressed_ = 0;
	std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

} /* namespace xmb */

#define XMB_LOG_DEFINE_CATEGORY(var, name) \
	static const ::xmb::LogCategory var(name)
/* A category used by a header (templates): defined once with XMB_LOG_DEFINE_SHARED_CATEGORY. */
#define XMB_LOG_DECLARE_CATEGORY(var) extern const ::xmb::LogCategory var
#define XMB_LOG_DEFINE_SHARED_CATEGORY(var, name) const ::xmb::LogCategory var(name)

#define XMB_LOG(cat, level, ...)                                                  \
	do {                                                                      \
		if ((cat).enabled(::xmb::LogLevel::level))                        \
			::xmb::logMessage((cat), ::xmb::LogLevel::level, __VA_ARGS__); \
	} while (0)
