/* SPDX-License-Identifier: MIT */
#include "log.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <mutex>
#include <string>

namespace xmb {

namespace {

int parseLevel(std::string_view s)
{
	if (s == "debug")
		return 0;
	if (s == "info")
		return 1;
	if (s == "warn" || s == "warning")
		return 2;
	if (s == "error")
		return 3;
	if (s == "none")
		return 4;
	return -1;
}

/* Threshold for \a name from XMB_LOG ("cat:level,*:level"); info if unset. */
int thresholdFor(const char *name)
{
	const char *env = std::getenv("XMB_LOG");
	int level = 1;
	if (!env)
		return level;
	std::string_view spec(env);
	while (!spec.empty()) {
		size_t comma = spec.find(',');
		std::string_view item = spec.substr(0, comma);
		spec = comma == std::string_view::npos ? std::string_view{} : spec.substr(comma + 1);
		size_t colon = item.find(':');
		if (colon == std::string_view::npos) {
			int l = parseLevel(item);
			if (l >= 0)
				level = l;
			continue;
		}
		std::string_view cat = item.substr(0, colon);
		int l = parseLevel(item.substr(colon + 1));
		if (l < 0)
			continue;
		if (cat == "*" || cat == name)
			level = l;
	}
	return level;
}

std::mutex logMutex;

} /* namespace */

LogCategory::LogCategory(const char *name) : name_(name) {}

bool LogCategory::enabled(LogLevel level) const
{
	int t = threshold_.load(std::memory_order_relaxed);
	if (t < 0) {
		t = thresholdFor(name_);
		threshold_.store(t, std::memory_order_relaxed);
	}
	return static_cast<int>(level) >= t;
}

void logMessageV(const LogCategory &cat, LogLevel level, const char *fmt, va_list ap)
{
	static const char *const names[] = { "DEBUG", "INFO", "WARN", "ERROR" };
	char buf[1024];
	std::vsnprintf(buf, sizeof(buf), fmt, ap);

	timespec ts{};
	clock_gettime(CLOCK_MONOTONIC, &ts);

	std::lock_guard<std::mutex> lock(logMutex);
	std::fprintf(stderr, "[%5ld.%06ld] %s %s: %s\n", static_cast<long>(ts.tv_sec),
		     ts.tv_nsec / 1000, names[static_cast<int>(level)], cat.name(), buf);
}

void logMessage(const LogCategory &cat, LogLevel level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	logMessageV(cat, level, fmt, ap);
	va_end(ap);
}

bool RateLimit::allow()
{
	auto now = std::chrono::steady_clock::now();
	double elapsed = std::chrono::duration<double>(now - last_).count();
	last_ = now;
	tokens_ = std::min<double>(burst_, tokens_ + elapsed * perSecond_);
	if (tokens_ >= 1.0) {
		tokens_ -= 1.0;
		return true;
	}
	suppressed_++;
	return false;
}

} /* namespace xmb */
