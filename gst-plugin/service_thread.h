/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A Dom0 service that a GStreamer element runs in its own process
 * (xmbcamerasink, xmbguestsrc, xmbencoder with platform=loopback): one
 * event loop dispatched on a private thread, started and stopped with the
 * element, and a way to run code on that thread (the services are
 * single-threaded) and wait for it.
 */

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "bridge/service/event_loop.h"

namespace xmb::gst {

class ServiceThread
{
public:
	ServiceThread() = default;
	~ServiceThread() { stop(); }
	ServiceThread(const ServiceThread &) = delete;
	ServiceThread &operator=(const ServiceThread &) = delete;

	/** The loop the service is built on (created here; epoll/eventfd may fail: valid()). */
	[[nodiscard]] service::EventLoop &loop() { return *loop_; }
	[[nodiscard]] bool valid() const { return loop_->valid(); }

	/**
	 * Run the loop on the private thread until stop().  It sleeps in
	 * epoll until there is work: no periodic wake-up when idle.
	 */
	void start()
	{
		if (thread_.joinable())
			return;
		thread_ = std::thread([loop = loop_.get()] { (void)loop->run(); });
	}
	/** Stop the loop (woken through its own queue) and join; the service is then the caller's. */
	void stop()
	{
		if (!thread_.joinable())
			return;
		loop_->defer([loop = loop_.get()] { loop->exit(0); });
		thread_.join();
	}
	[[nodiscard]] bool running() const { return thread_.joinable(); }

	/**
	 * Run \a fn on the service thread and wait for it (up to \a timeout).
	 * \a fn must capture by value what it uses: on a timeout it may still
	 * run later.  Returns false on a timeout or when not running.
	 */
	bool call(std::function<void()> fn, std::chrono::milliseconds timeout = std::chrono::seconds(2))
	{
		if (!running())
			return false;
		struct Done {
			std::mutex m;
			std::condition_variable cv;
			bool done = false;
		};
		auto d = std::make_shared<Done>();
		loop_->defer([d, fn = std::move(fn)] {
			fn();
			std::lock_guard<std::mutex> l(d->m);
			d->done = true;
			d->cv.notify_all();
		});
		std::unique_lock<std::mutex> l(d->m);
		return d->cv.wait_for(l, timeout, [&] { return d->done; });
	}

private:
	std::unique_ptr<service::EventLoop> loop_ = std::make_unique<service::EventLoop>();
	std::thread thread_;
};

} /* namespace xmb::gst */
