/* SPDX-License-Identifier: MIT */
/* The service's event loop: bounded work per turn, back to epoll every turn. */
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <stdexcept>
#include <thread>

#include <sys/eventfd.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "bridge/service/event_loop.h"

using namespace xmb::service;
using namespace std::chrono_literals;

/*
 * A session whose guest keeps its ring full re-defers itself on every
 * turn.  The loop must still return from dispatch() each turn, so timers,
 * XenStore and the other guests' event channels are served in between.
 */
TEST(EventLoop, WorkThatDefersItselfDoesNotKeepTheLoopFromPolling)
{
	EventLoop loop;
	std::atomic<unsigned> runs{ 0 };
	std::function<void()> again = [&] {
		runs++;
		loop.defer(again);
	};
	loop.defer(again);
	std::atomic<bool> fired{ false };
	loop.addTimer(20ms, [&] { fired = true; });

	std::atomic<bool> returned{ false };
	std::atomic<unsigned> turns{ 0 };
	std::thread t([&] {
		auto end = std::chrono::steady_clock::now() + 2s;
		while (!fired && std::chrono::steady_clock::now() < end) {
			loop.dispatch(0);
			turns++;
		}
		returned = true;
	});
	auto deadline = std::chrono::steady_clock::now() + 5s;
	while (!returned && std::chrono::steady_clock::now() < deadline)
		std::this_thread::sleep_for(10ms);
	if (!returned) {
		ADD_FAILURE() << "dispatch() never returned: self-deferring work starves the loop";
		std::_Exit(1); /* the loop thread cannot be stopped */
	}
	t.join();
	EXPECT_TRUE(fired) << "the timer fired while the work kept deferring itself";
	EXPECT_GT(turns.load(), 1u);
	EXPECT_LE(runs.load(), turns.load() + 1) << "one run of the work per turn";
}

TEST(EventLoop, DeferredWorkRunsOnTheNextTurnWithoutWaiting)
{
	EventLoop loop;
	int ran = 0;
	loop.defer([&] { ran++; });
	loop.dispatch(1000); /* must not sleep: work is pending */
	EXPECT_EQ(ran, 1);
}

/* One fd (the event-channel device) serves every guest: a throw must not drop it. */
TEST(EventLoop, CallbackThatThrowsKeepsItsFd)
{
	EventLoop loop;
	int efd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ASSERT_GE(efd, 0);
	int calls = 0;
	ASSERT_TRUE(loop.addFd(efd, [&](uint32_t) {
		uint64_t v;
		(void)!::read(efd, &v, sizeof(v));
		if (++calls == 1)
			throw std::runtime_error("one guest's bad request");
	}));
	for (int i = 0; i < 2; i++) {
		uint64_t one = 1;
		ASSERT_EQ(::write(efd, &one, sizeof(one)), 8);
		loop.dispatch(1000);
	}
	EXPECT_EQ(calls, 2) << "the fd is still watched after its callback threw";
	loop.removeFd(efd);
	::close(efd);
}
