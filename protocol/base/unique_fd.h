/* SPDX-License-Identifier: MIT */
#pragma once

#include <utility>

namespace xmb {

/**
 * \brief Move-only owner of a file descriptor.
 *
 * Modelled on libcamera's UniqueFD: the descriptor is closed exactly once,
 * by the destructor or reset(), and never copied.  release() hands ownership
 * back to the caller.
 */
class UniqueFD
{
public:
	UniqueFD() = default;
	explicit UniqueFD(int fd) : fd_(fd) {}
	~UniqueFD() { reset(); }

	UniqueFD(UniqueFD &&other) noexcept : fd_(other.release()) {}
	UniqueFD &operator=(UniqueFD &&other) noexcept
	{
		reset(other.release());
		return *this;
	}
	UniqueFD(const UniqueFD &) = delete;
	UniqueFD &operator=(const UniqueFD &) = delete;

	[[nodiscard]] int get() const { return fd_; }
	[[nodiscard]] bool isValid() const { return fd_ >= 0; }
	explicit operator bool() const { return isValid(); }

	[[nodiscard]] int release() { return std::exchange(fd_, -1); }
	void reset(int fd = -1);

	/** Duplicate with O_CLOEXEC; invalid on failure (errno set). */
	[[nodiscard]] UniqueFD dup() const;

private:
	int fd_ = -1;
};

} /* namespace xmb */
