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
#include <map>
#include <span>
#include <string>
#include <string_view>

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

/**
 * A guest-written XenStore directory from fuzz input: one "relative/path=value"
 * per line (a line without '=' is a key with an empty value), at most 512 lines.
 */
inline std::map<std::string, std::string> parseLines(std::string_view text)
{
	std::map<std::string, std::string> kv;
	size_t lines = 0;
	while (!text.empty() && lines++ < 512) {
		size_t nl = text.find('\n');
		std::string_view line = text.substr(0, nl);
		text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
		size_t eq = line.find('=');
		if (eq == std::string_view::npos)
			kv[std::string(line)] = "";
		else
			kv[std::string(line.substr(0, eq))] = std::string(line.substr(eq + 1));
	}
	return kv;
}

} /* namespace xmb::fuzz */
