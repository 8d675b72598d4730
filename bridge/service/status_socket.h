/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A daemon's live status over a Unix socket: a client connects, sends one
 * byte ('j' for JSON, anything else for the text table) and reads the
 * answer to EOF.  Root only: the socket is 0600 in a 0700 directory and a
 * peer whose SO_PEERCRED uid is not 0 is closed unanswered.  Served from the
 * service's EventLoop without blocking it (non-blocking writes, at most
 * kMaxClients connections at once, each ended after kClientTimeout).
 */

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "bridge/service/event_loop.h"
#include "protocol/base/unique_fd.h"
#include "protocol/result.h"

namespace xmb::service {

class StatusSocket
{
public:
	/** The answer for one query: \a json or the text table. Called on the loop thread. */
	using Provider = std::function<std::string(bool json)>;
	static constexpr size_t kMaxClients = 8;
	static constexpr std::chrono::milliseconds kClientTimeout{ 2000 };

	StatusSocket(EventLoop &loop, Provider provider);
	~StatusSocket();
	StatusSocket(const StatusSocket &) = delete;
	StatusSocket &operator=(const StatusSocket &) = delete;

	/** Listen at \a path (its directory is created 0700; a stale socket is replaced). */
	Status listen(const std::string &path);
	/** For tests: let a non-root peer in. */
	void allowAnyUid(bool allow) { anyUid_ = allow; }

private:
	struct Client {
		UniqueFD fd;
		std::string out;
		size_t sent = 0;
		bool answered = false;
		EventLoop::TimerId timer = 0;
	};
	void accept();
	void readable(int fd);
	void writable(int fd);
	void drop(int fd);

	EventLoop &loop_;
	Provider provider_;
	std::string path_;
	UniqueFD listen_;
	bool anyUid_ = false;
	std::map<int, std::unique_ptr<Client>> clients_;
	/* Deferred work and timers hold a weak_ptr: expired once this is gone (as RingServer). */
	std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

/** Client side: ask the daemon at \a path; its answer, or an error naming the socket. */
Result<std::string> queryStatus(const std::string &path, bool json);
/**
 * What both daemons' status says of a stream: " format F rate R fps latency-us p50 A p99 B"
 * (the parts not known left out), and the same as JSON members ("format", "fps",
 * "latency_p50_us", "latency_p99_us"; null where not known).
 */
std::string streamStatusText(const std::string &format, uint64_t fpsMilli, std::optional<uint64_t> p50Us,
			     std::optional<uint64_t> p99Us);
std::string streamStatusJson(const std::string &format, uint64_t fpsMilli, std::optional<uint64_t> p50Us,
			     std::optional<uint64_t> p99Us);
/** `PROGRAM --status`: print the daemon's answer; the exit code (1 with the reason on stderr). */
int printStatus(const char *program, const std::string &path, bool json);

/** JSON string literal of \a s (quotes, backslashes and control characters escaped). */
std::string jsonString(const std::string &s);

} /* namespace xmb::service */
