/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The back-to-front event page shared by cameraif and vcodec: a header
 * { in_cons, in_prod, reserved } followed by a ring of fixed-size events
 * indexed modulo the ring length (63 for both: not a power of two).
 *
 * One implementation for both protocols; each names its page layout.
 */

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>

#include "protocol/shared_memory.h"

namespace xmb::proto {

/**
 * \brief Layout of one protocol's event page.
 * \tparam Header the page header (has in_cons and in_prod)
 * \tparam Event  one event
 * \tparam PageSize bytes of the page
 */
template<typename Header, typename Event, size_t PageSize>
struct EventPageLayout {
	using Evt = Event;
	static constexpr size_t kPageSize = PageSize;
	static constexpr size_t kOffset = sizeof(Header);
	static constexpr uint32_t kLength = (PageSize - sizeof(Header)) / sizeof(Event);

	static Header *header(uint8_t *page) { return reinterpret_cast<Header *>(page); }
	static uint8_t *slot(uint8_t *page, uint32_t idx)
	{
		return page + kOffset + size_t(idx % kLength) * sizeof(Event);
	}
};

/**
 * \brief Backend producer of an event page (in_prod is ours, in_cons the guest's).
 *
 * in_prod is kept privately and only ever written to the page, so a guest
 * scribbling on it cannot make us overwrite unread events.  in_cons is
 * read once per put() and checked: a guest that does not consume, or that
 * claims to have consumed more than was produced, makes put() fail.
 */
template<typename Layout>
class EventWriter
{
public:
	EventWriter() = default;
	/** Adopt the guest's consumer position; our producer index starts there. */
	explicit EventWriter(void *page) : page_(static_cast<uint8_t *>(page))
	{
		auto *hdr = Layout::header(page_);
		prod_ = loadIndex(&hdr->in_cons);
		storeIndex(&hdr->in_prod, prod_);
	}

	enum class Put { Ok, Full, Invalid };

	Put put(const typename Layout::Evt &evt)
	{
		auto *hdr = Layout::header(page_);
		uint32_t cons = loadIndex(&hdr->in_cons);
		uint32_t used = prod_ - cons;
		if (used > Layout::kLength)
			return Put::Invalid; /* consumed events never produced */
		if (used == Layout::kLength)
			return Put::Full;
		/*
		 * Slots are idx % 63, which jumps where idx wraps at 2^32
		 * (2^32 % 63 == 4): 0xfffffffc..0xffffffff and 0..3 share slots
		 * 0..3.  Wait for the guest rather than overwrite such an unread
		 * event.
		 */
		constexpr uint32_t kWrapSkew = (uint64_t{ 1 } << 32) % Layout::kLength;
		if (kWrapSkew && prod_ < kWrapSkew && used >= kWrapSkew)
			return Put::Full;
		copyIn(Layout::slot(page_, prod_), evt);
		prod_++;
		storeIndex(&hdr->in_prod, prod_);
		return Put::Ok;
	}

	[[nodiscard]] uint32_t produced() const { return prod_; }
	[[nodiscard]] explicit operator bool() const { return page_ != nullptr; }

private:
	uint8_t *page_ = nullptr;
	uint32_t prod_ = 0;
};

/** \brief Frontend consumer of an event page. */
template<typename Layout>
class EventReader
{
public:
	EventReader() = default;
	/** Zero the page and adopt it (the frontend allocates it). */
	explicit EventReader(void *page) : page_(static_cast<uint8_t *>(page))
	{
		std::memset(page_, 0, Layout::kPageSize);
	}

	/** Next event, copied out, or nullopt.  Sets \a overflow if in_prod is impossible. */
	std::optional<typename Layout::Evt> next(bool &overflow)
	{
		auto *hdr = Layout::header(page_);
		uint32_t prod = loadIndex(&hdr->in_prod);
		overflow = prod - cons_ > Layout::kLength;
		if (overflow || prod == cons_)
			return std::nullopt;
		auto evt = copyOut<typename Layout::Evt>(Layout::slot(page_, cons_));
		cons_++;
		storeIndex(&hdr->in_cons, cons_);
		return evt;
	}

private:
	uint8_t *page_ = nullptr;
	uint32_t cons_ = 0;
};

} /* namespace xmb::proto */
