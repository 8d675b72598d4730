/* SPDX-License-Identifier: MIT */
#include "bridge/service/event_loop.h"

#include <cerrno>
#include <cstring>
#include <exception>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "protocol/base/log.h"

namespace xmb::service {

XMB_LOG_DEFINE_CATEGORY(logLoop, "loop");

using Clock = std::chrono::steady_clock;

struct EventLoop::Timer {
	Clock::time_point due;
	std::chrono::milliseconds period;
	bool repeat;
	std::function<void()> cb;
};

EventLoop::EventLoop()
	: epoll_(::epoll_create1(EPOLL_CLOEXEC)),
	  timerFd_(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK)),
	  wakeFd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK))
{
	if (!epoll_ || !timerFd_ || !wakeFd_) {
		XMB_LOG(logLoop, Error, "epoll/timerfd: %s", std::strerror(errno));
		return;
	}
	epoll_event ev{};
	ev.events = EPOLLIN;
	ev.data.fd = timerFd_.get();
	::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, timerFd_.get(), &ev);
	ev.data.fd = wakeFd_.get();
	::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, wakeFd_.get(), &ev);
}

EventLoop::~EventLoop() = default;

Status EventLoop::addFd(int fd, Callback cb, uint32_t events)
{
	epoll_event ev{};
	ev.events = events;
	ev.data.fd = fd;
	int op = fds_.count(fd) ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
	if (::epoll_ctl(epoll_.get(), op, fd, &ev) < 0)
		return Error{ -errno, "epoll add fd " + std::to_string(fd) + ": " + std::strerror(errno) };
	fds_[fd] = std::make_shared<Callback>(std::move(cb));
	return {};
}

void EventLoop::removeFd(int fd)
{
	if (fds_.erase(fd))
		::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
}

EventLoop::TimerId EventLoop::addTimer(std::chrono::milliseconds delay, std::function<void()> cb,
				       bool repeat)
{
	TimerId id = nextTimer_++;
	timers_[id] = std::make_shared<Timer>(Timer{ Clock::now() + delay, delay, repeat, std::move(cb) });
	armTimerFd();
	return id;
}

void EventLoop::cancelTimer(TimerId id)
{
	timers_.erase(id);
	armTimerFd();
}

void EventLoop::defer(std::function<void()> fn)
{
	{
		std::lock_guard<std::mutex> l(deferLock_);
		deferred_.push_back(std::move(fn));
	}
	uint64_t one = 1;
	(void)!::write(wakeFd_.get(), &one, sizeof(one));
}

void EventLoop::armTimerFd()
{
	itimerspec its{};
	if (!timers_.empty()) {
		auto next = Clock::time_point::max();
		for (const auto &[id, t] : timers_)
			next = std::min(next, t->due);
		auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(next - Clock::now()).count();
		if (ns < 1000)
			ns = 1000;
		its.it_value.tv_sec = ns / 1000000000;
		its.it_value.tv_nsec = ns % 1000000000;
	}
	::timerfd_settime(timerFd_.get(), 0, &its, nullptr);
}

void EventLoop::fireTimers()
{
	uint64_t expirations;
	(void)!::read(timerFd_.get(), &expirations, sizeof(expirations));
	auto now = Clock::now();
	std::vector<std::pair<TimerId, std::shared_ptr<Timer>>> due;
	for (const auto &[id, t] : timers_)
		if (t->due <= now)
			due.emplace_back(id, t);
	for (auto &[id, t] : due) {
		if (t->repeat)
			t->due = now + t->period;
		else
			timers_.erase(id);
		try {
			t->cb();
		} catch (const std::exception &e) {
			XMB_LOG(logLoop, Error, "timer callback threw: %s", e.what());
		} catch (...) {
			XMB_LOG(logLoop, Error, "timer callback threw");
		}
	}
	armTimerFd();
}

/**
 * \brief Wait for and dispatch one batch of events.
 *
 * Callbacks are held by shared_ptr while they run, so a callback may remove
 * its own fd (or another's) safely; a removed fd's pending events in the
 * same batch are skipped.
 */
int EventLoop::dispatch(int timeoutMs)
{
	{
		std::lock_guard<std::mutex> l(deferLock_);
		if (!deferred_.empty())
			timeoutMs = 0;
	}
	epoll_event evs[32];
	int n = ::epoll_wait(epoll_.get(), evs, 32, timeoutMs);
	if (n < 0 && errno != EINTR)
		return -errno;
	for (int i = 0; i < n; i++) {
		int fd = evs[i].data.fd;
		if (fd == timerFd_.get()) {
			fireTimers();
			continue;
		}
		if (fd == wakeFd_.get()) {
			uint64_t v;
			(void)!::read(wakeFd_.get(), &v, sizeof(v));
			continue;
		}
		auto it = fds_.find(fd);
		if (it == fds_.end())
			continue;
		std::shared_ptr<Callback> cb = it->second;
		/*
		 * A callback that throws keeps its fd: one fd (the event-channel
		 * device, XenStore) serves every guest, and dropping it would cut
		 * them all off for one failure.  Logged, at a bounded rate.
		 */
		try {
			(*cb)(evs[i].events);
		} catch (const std::exception &e) {
			if (throwLog_.allow())
				XMB_LOG(logLoop, Error, "fd %d callback threw: %s", fd, e.what());
		} catch (...) {
			if (throwLog_.allow())
				XMB_LOG(logLoop, Error, "fd %d callback threw", fd);
		}
	}
	/*
	 * One pass over the work deferred before this point.  Work deferred
	 * while it runs (a guest's ring that still has requests re-queues its
	 * session) waits for the next dispatch, which polls every fd first
	 * (timeout 0 while work is pending): no guest can keep us from
	 * epoll_wait, and with it from other guests, timers and XenStore.
	 */
	std::vector<std::function<void()>> work;
	{
		std::lock_guard<std::mutex> l(deferLock_);
		work.swap(deferred_);
	}
	for (auto &fn : work) {
		try {
			fn();
		} catch (const std::exception &e) {
			XMB_LOG(logLoop, Error, "deferred work threw: %s", e.what());
		}
	}
	return n < 0 ? 0 : n;
}

int EventLoop::run()
{
	exit_ = false;
	while (!exit_) {
		int ret = dispatch(-1);
		if (ret < 0) {
			XMB_LOG(logLoop, Error, "epoll_wait: %s", std::strerror(-ret));
			return ret;
		}
	}
	return exitCode_;
}

void EventLoop::exit(int code)
{
	exit_ = true;
	exitCode_ = code;
}

} /* namespace xmb::service */
