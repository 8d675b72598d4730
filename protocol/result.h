/* SPDX-License-Identifier: MIT */
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace xmb {

/**
 * \brief An error: a negative errno-style code and a message for the log.
 *
 * The message names the thing that was wrong ("formats/YUYV/640x480/frame-rates:
 * '30/0': zero denominator"), so the caller can log it as is.
 */
struct Error {
	int code = 0; /* -errno (or -XEN_E*, which has the same values on Linux) */
	std::string message;
};

/** \brief A value or an Error (std::expected is C++23; this is the subset we use). */
template<typename T>
class [[nodiscard]] Result
{
public:
	Result(T value) : v_(std::move(value)) {}
	Result(Error error) : v_(std::move(error)) {}

	[[nodiscard]] bool ok() const { return v_.index() == 0; }
	explicit operator bool() const { return ok(); }

	T &value() & { return std::get<0>(v_); }
	const T &value() const & { return std::get<0>(v_); }
	T &&value() && { return std::get<0>(std::move(v_)); }
	T *operator->() { return &value(); }
	const T *operator->() const { return &value(); }
	T &operator*() & { return value(); }

	[[nodiscard]] const Error &error() const { return std::get<1>(v_); }

private:
	std::variant<T, Error> v_;
};

/** \brief Success or an Error, for operations without a value. */
class [[nodiscard]] Status
{
public:
	Status() = default;
	Status(Error error) : error_(std::move(error)), failed_(true) {}
	static Status success() { return {}; }

	[[nodiscard]] bool ok() const { return !failed_; }
	explicit operator bool() const { return ok(); }
	[[nodiscard]] const Error &error() const { return error_; }

private:
	Error error_;
	bool failed_ = false;
};

} /* namespace xmb */
