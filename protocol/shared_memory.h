/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Access to memory that another domain can write at any time.
 *
 * Everything read from a shared page is read exactly once into private
 * memory, then validated (XSA-155: double fetches turned "validated" values
 * into attacker-chosen ones).  These helpers make the single fetch explicit
 * and stop the compiler from re-reading shared memory behind our back.
 */

#include <atomic>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace xmb::proto {

/** Read a ring index once, with acquire ordering (what follows sees what preceded it). */
inline uint32_t loadIndex(const uint32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

/** Publish a ring index with release ordering (the data before it is visible first). */
inline void storeIndex(uint32_t *p, uint32_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}

/** Full barrier, as xen_mb() (the event hold-off protocol needs store->load order). */
inline void fullBarrier()
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

/**
 * Copy a trivially copyable object out of shared memory, once.
 *
 * The compiler barrier after the copy makes the compiler treat the source as
 * changed, so later uses must read the private copy, never the shared one.
 */
template<typename T>
inline T copyOut(const void *shared)
{
	static_assert(std::is_trivially_copyable_v<T>);
	T out;
	std::memcpy(&out, shared, sizeof(T));
	std::atomic_signal_fence(std::memory_order_seq_cst);
	asm volatile("" ::: "memory");
	return out;
}

/** Copy a private, fully initialised object into shared memory. */
template<typename T>
inline void copyIn(void *shared, const T &value)
{
	static_assert(std::is_trivially_copyable_v<T>);
	std::memcpy(shared, &value, sizeof(T));
}

} /* namespace xmb::proto */
