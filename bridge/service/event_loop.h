/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * One epoll loop per service: XenStore watch fds, event-channel fds, camera
 * fds and timers all wake the same thread, so no state needs a lock.
 *
 * Callbacks run on the loop thread.  An exception escaping a callback is
 * caught and logged at the loop (it never unwinds into epoll_wait's caller),
 * and the watch that threw is removed.
 */

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "protocol/base/log.h"
#include "protocol/base/unique_fd.h"
#include "protocol/result.h"

namespace xmb::service {

class EventLoop
{
public:
	using Callback = std::function<void(uint32_t events)>;
	using TimerId = uint64_t;

	EventLoop();
	~EventLoop();
	EventLoop(const EventLoop &) = delete;
	EventLoop &operator=(const EventLoop &) = delete;

	[[nodiscard]] bool valid() const { return epoll_.isValid(); }

	/** Call \a cb when \a fd has \a events (EPOLLIN by default). */
	Status addFd(int fd, Callback cb, uint32_t events = 0x001 /* EPOLLIN */);
	void removeFd(int fd);

	/** Call \a cb once after \a delay (or every \a delay if \a repeat). */
	TimerId addTimer(std::chrono::milliseconds delay, std::function<void()> cb, bool repeat = false);
	void cancelTimer(TimerId id);

	/**
	 * Run \a fn at the next iteration (e.g. "tear down after this callback").
	 * Safe from any thread: it wakes the loop.
	 */
	void defer(std::function<void()> fn);

	/** Dispatch once, waiting at most \a timeout (-1: forever). */
	int dispatch(int timeoutMs);
	/** Dispatch until exit() is called. */
	int run();
	void exit(int code = 0);
	[[nodiscard]] bool exiting() const { return exit_; }

private:
	struct Timer;
	void fireTimers();
	void armTimerFd();

	UniqueFD epoll_;
	UniqueFD timerFd_;
	UniqueFD wakeFd_;
	std::mutex deferLock_;
	std::map<int, std::shared_ptr<Callback>> fds_;
	std::map<TimerId, std::shared_ptr<Timer>> timers_;
	std::vector<std::function<void()>> deferred_;
	TimerId nextTimer_ = 1;
	bool exit_ = false;
	RateLimit throwLog_{ 5, 1 };
	int exitCode_ = 0;
};

} /* namespace xmb::service */
