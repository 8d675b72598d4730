/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Shared bits of the fuzz targets: a reader that turns the fuzzer's bytes
 * into values (zeros once the input runs out, so every input is valid), and
 * FUZZ_CHECK, which traps on a broken invariant in fuzzing and replay builds
 * alike (never compiled out, unlike assert()).
 */

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <span>

#define FUZZ_CHECK(cond)                                                                   \
	do {                                                                               \
		if (!(cond)) {                                                             \
			std::fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__,    \
				     __LINE__, #cond);                                     \
			__builtin_trap();                                                  \
		}                                                                          \
	} while (0)

namespace xmb::fuzz {

class Input
{
public:
	Input(const uint8_t *data, size_t size) : data_(data), size_(size) {}

	[[nodiscard]] size_t remaining() const { return size_ - pos_; }
	[[nodiscard]] bool empty() const { return pos_ == size_; }

	template<typename T>
	T take()
	{
		T v{};
		size_t n = remaining() < sizeof(T) ? remaining() : sizeof(T);
		std::memcpy(&v, data_ + pos_, n);
		pos_ += n;
		return v;
	}
	uint8_t u8() { return take<uint8_t>(); }
	uint16_t u16() { return take<uint16_t>(); }
	uint32_t u32() { return take<uint32_t>(); }
	uint64_t u64() { return take<uint64_t>(); }

	/** Up to \a n bytes (fewer if the input runs out). */
	std::span<const uint8_t> bytes(size_t n)
	{
		if (n > remaining())
			n = remaining();
		std::span<const uint8_t> s(data_ + pos_, n);
		pos_ += n;
		return s;
	}
	std::span<const uint8_t> rest() { return bytes(remaining()); }

private:
	const uint8_t *data_;
	size_t size_;
	size_t pos_ = 0;
};

} /* namespace xmb::fuzz */
