/* SPDX-License-Identifier: MIT */
#include "bridge/service/status_socket.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "protocol/base/log.h"

namespace xmb::service {

XMB_LOG_DEFINE_CATEGORY(logStatus, "status");

namespace {

constexpr uint32_t kIn = 0x001, kOut = 0x004; /* EPOLLIN, EPOLLOUT */

Result<sockaddr_un> socketAddress(const std::string &path)
{
	sockaddr_un addr{};
	addr.sun_family = AF_UNIX;
	if (path.empty() || path.size() >= sizeof(addr.sun_path))
		return Error{ -ENAMETOOLONG, "status socket " + path + ": path empty or too long" };
	std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
	return addr;
}

/* Someone accepts connections at \a addr (a live daemon), as opposed to a socket file left behind. */
bool listening(const sockaddr_un &addr)
{
	UniqueFD fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
	return fd.isValid() && ::connect(fd.get(), reinterpret_cast<const sockaddr *>(&addr), sizeof(addr)) == 0;
}

} /* namespace */

/**
 * \brief JSON string literal of \a s
 *
 * Quotes, backslashes and control characters are escaped; other bytes are
 * passed through (labels and camera names are the configuration's ASCII).
 */
std::string jsonString(const std::string &s)
{
	std::string o = "\"";
	for (unsigned char c : s) {
		if (c == '"' || c == '\\') {
			o += '\\';
			o += char(c);
		} else if (c < 0x20) {
			char buf[8];
			std::snprintf(buf, sizeof(buf), "\\u%04x", c);
			o += buf;
		} else {
			o += char(c);
		}
	}
	return o + "\"";
}

StatusSocket::StatusSocket(EventLoop &loop, Provider provider) : loop_(loop), provider_(std::move(provider)) {}

StatusSocket::~StatusSocket()
{
	for (auto &[fd, c] : clients_) {
		loop_.removeFd(fd);
		loop_.cancelTimer(c->timer);
	}
	if (listen_.isValid()) {
		loop_.removeFd(listen_.get());
		::unlink(path_.c_str());
	}
}

/**
 * \brief Listen at \a path
 *
 * The directory is created with mode 0700 if missing; a socket file left by
 * a daemon that died is replaced (a live daemon answering there is not:
 * the error says so).
 */
Status StatusSocket::listen(const std::string &path)
{
	auto addr = socketAddress(path);
	if (!addr)
		return addr.error();
	std::error_code ec;
	const auto dir = std::filesystem::path(path).parent_path();
	if (!dir.empty() && !std::filesystem::exists(dir, ec)) {
		std::filesystem::create_directories(dir, ec);
		if (ec)
			return Error{ -ec.value(), "status socket directory " + dir.string() + ": " + ec.message() };
		::chmod(dir.c_str(), 0700);
	}
	if (listening(*addr))
		return Error{ -EADDRINUSE, "status socket " + path + ": another daemon answers there" };
	::unlink(path.c_str());

	UniqueFD fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
	if (!fd.isValid())
		return Error{ -errno, std::string("status socket: ") + std::strerror(errno) };
	const mode_t old = ::umask(0077); /* 0600 from the start: no window where others may connect */
	int r = ::bind(fd.get(), reinterpret_cast<const sockaddr *>(&*addr), sizeof(*addr));
	const int bindErrno = errno;
	::umask(old);
	if (r < 0)
		return Error{ -bindErrno, "status socket " + path + ": bind: " + std::strerror(bindErrno) };
	if (::listen(fd.get(), int(kMaxClients)) < 0)
		return Error{ -errno, "status socket " + path + ": listen: " + std::strerror(errno) };
	Status s = loop_.addFd(fd.get(), [this](uint32_t) { accept(); });
	if (!s)
		return s;
	listen_ = std::move(fd);
	path_ = path;
	XMB_LOG(logStatus, Info, "status at %s (xmb-*-service --status)", path.c_str());
	return {};
}

void StatusSocket::accept()
{
	for (;;) {
		UniqueFD fd(::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
		if (!fd.isValid())
			return; /* EAGAIN, or the peer went away before we took it */
		ucred cred{};
		socklen_t len = sizeof(cred);
		if (!anyUid_ && (::getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || cred.uid != 0))
			continue; /* root only: closed unanswered */
		if (clients_.size() >= kMaxClients)
			continue; /* bounded: a client that never sends costs a slot for kClientTimeout at most */
		const int raw = fd.get();
		auto c = std::make_unique<Client>();
		c->fd = std::move(fd);
		c->timer = loop_.addTimer(kClientTimeout, [alive = std::weak_ptr<int>(alive_), this, raw] {
			if (!alive.expired())
				drop(raw);
		});
		if (!loop_.addFd(raw, [this, raw](uint32_t) { readable(raw); }, kIn)) {
			loop_.cancelTimer(c->timer);
			continue;
		}
		clients_[raw] = std::move(c);
	}
}

void StatusSocket::readable(int fd)
{
	auto it = clients_.find(fd);
	if (it == clients_.end() || it->second->answered)
		return;
	Client &c = *it->second;
	char req[16];
	ssize_t n = ::read(fd, req, sizeof(req));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		drop(fd);
		return;
	}
	c.answered = true;
	c.out = provider_(req[0] == 'j');
	/* Switch the watch to writability; the callback must not remove itself. */
	loop_.defer([alive = std::weak_ptr<int>(alive_), this, fd] {
		if (alive.expired() || !clients_.count(fd))
			return;
		loop_.removeFd(fd);
		if (!loop_.addFd(fd, [this, fd](uint32_t) { writable(fd); }, kOut))
			drop(fd);
	});
}

void StatusSocket::writable(int fd)
{
	auto it = clients_.find(fd);
	if (it == clients_.end())
		return;
	Client &c = *it->second;
	while (c.sent < c.out.size()) {
		ssize_t n = ::send(fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return; /* the rest when the peer reads */
		if (n <= 0)
			break;
		c.sent += size_t(n);
	}
	drop(fd);
}

/* Forget a client after the current callback (its own watch may be running). */
void StatusSocket::drop(int fd)
{
	auto it = clients_.find(fd);
	if (it == clients_.end())
		return;
	loop_.cancelTimer(it->second->timer);
	loop_.defer([alive = std::weak_ptr<int>(alive_), this, fd] {
		if (alive.expired())
			return;
		auto i = clients_.find(fd);
		if (i == clients_.end())
			return;
		loop_.removeFd(fd);
		clients_.erase(i); /* closes the fd */
	});
}

/**
 * \brief Ask the daemon listening at \a path for its status
 *
 * Blocking, bounded by 5 s; the error names the socket and, for the usual
 * causes, what to check (not running, not root).
 */
Result<std::string> queryStatus(const std::string &path, bool json)
{
	auto addr = socketAddress(path);
	if (!addr)
		return addr.error();
	UniqueFD fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
	if (!fd.isValid())
		return Error{ -errno, std::string("socket: ") + std::strerror(errno) };
	if (::connect(fd.get(), reinterpret_cast<const sockaddr *>(&*addr), sizeof(*addr)) < 0) {
		int e = errno;
		return Error{ -e, path + ": " + std::strerror(e) +
					  (e == ENOENT || e == ECONNREFUSED ? " (is the daemon running?)"
					   : e == EACCES		    ? " (root only)"
									    : "") };
	}
	const char req = json ? 'j' : 't';
	if (::send(fd.get(), &req, 1, MSG_NOSIGNAL) != 1)
		return Error{ -errno, path + ": send: " + std::strerror(errno) };
	std::string out;
	char buf[4096];
	for (;;) {
		pollfd p{ fd.get(), POLLIN, 0 };
		if (::poll(&p, 1, 5000) <= 0)
			return Error{ -ETIMEDOUT, path + ": no answer within 5 s" };
		ssize_t n = ::read(fd.get(), buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return Error{ -errno, path + ": read: " + std::strerror(errno) };
		if (n == 0)
			break;
		out.append(buf, size_t(n));
	}
	if (out.empty())
		return Error{ -EPERM, path + ": closed without an answer (root only)" };
	return out;
}

/**
 * \brief What `xmb-camera-service --status` and `xmb-codec-service --status` do
 * \return 0 with the answer on stdout, 1 with the reason on stderr
 */
int printStatus(const char *program, const std::string &path, bool json)
{
	auto answer = queryStatus(path, json);
	if (!answer) {
		std::fprintf(stderr, "%s: --status: %s\n", program, answer.error().message.c_str());
		return 1;
	}
	std::fputs(answer->c_str(), stdout);
	return 0;
}

std::string streamStatusText(const std::string &format, uint64_t fpsMilli, std::optional<uint64_t> p50Us,
			     std::optional<uint64_t> p99Us)
{
	std::string out;
	char buf[96];
	if (!format.empty())
		out += " format " + format;
	if (fpsMilli) {
		std::snprintf(buf, sizeof(buf), " rate %.2f fps", double(fpsMilli) / 1000);
		out += buf;
	}
	if (p50Us && p99Us) {
		std::snprintf(buf, sizeof(buf), " latency-us p50 %llu p99 %llu",
			      static_cast<unsigned long long>(*p50Us), static_cast<unsigned long long>(*p99Us));
		out += buf;
	}
	return out;
}

std::string streamStatusJson(const std::string &format, uint64_t fpsMilli, std::optional<uint64_t> p50Us,
			     std::optional<uint64_t> p99Us)
{
	auto number = [](std::optional<uint64_t> v) { return v ? std::to_string(*v) : std::string("null"); };
	return "\"format\": " + jsonString(format) + ", \"fps\": " + std::to_string(fpsMilli / 1000) + "." +
	       std::to_string(1000 + fpsMilli % 1000).substr(1) + ", \"latency_p50_us\": " + number(p50Us) +
	       ", \"latency_p99_us\": " + number(p99Us);
}

} /* namespace xmb::service */
