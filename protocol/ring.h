/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Single-fetch access to Xen shared rings (<xen/io/ring.h> layout).
 *
 * The peer owns the shared page and may change any byte of it at any time.
 * BackRing therefore reads req_prod once per poll, refuses a producer that
 * claims more requests than the ring holds, copies each request out before
 * the caller looks at it, and writes responses from fully initialised
 * private copies.  FrontRing is the guest-side twin, with the same care for
 * responses (a frontend does not trust a backend more than it must).
 */

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "protocol/shared_memory.h"

namespace xmb::proto {

/** Number of entries of a shared ring laid out as \a Sring in \a bytes of memory. */
template<typename Sring>
constexpr uint32_t ringSize(size_t bytes)
{
	size_t n = (bytes - offsetof(Sring, ring)) / sizeof(Sring{}.ring[0]);
	uint32_t p = 1;
	while (p * 2 <= n)
		p *= 2;
	return n ? p : 0;
}

enum class RingPoll {
	Empty,    /**< nothing new */
	Work,     /**< at least one request to take() */
	Overflow, /**< the producer index is impossible: protocol violation */
};

/**
 * \brief Backend end of a request/response ring.
 *
 * The frontend initialises the shared ring (SHARED_RING_INIT) before it
 * publishes the ring ref; the backend only adopts it.
 */
template<typename Sring, typename Req, typename Resp>
class BackRing
{
public:
	BackRing() = default;
	BackRing(void *page, size_t bytes)
		: sring_(static_cast<Sring *>(page)), size_(ringSize<Sring>(bytes))
	{
		/* Start where the frontend is: a reconnecting frontend re-inits its ring. */
		reqCons_ = rspProdPvt_ = loadIndex(&sring_->rsp_prod);
	}

	[[nodiscard]] uint32_t size() const { return size_; }

	/**
	 * Snapshot req_prod (one read) and check it.  After Work, take() may be
	 * called pending() times.
	 */
	RingPoll poll()
	{
		uint32_t prod = loadIndex(&sring_->req_prod);
		uint32_t avail = prod - reqCons_;
		/* More unconsumed requests than slots, or than free response slots. */
		if (avail > size_ || (reqCons_ - rspProdPvt_) + avail > size_)
			return RingPoll::Overflow;
		reqProd_ = prod;
		return avail ? RingPoll::Work : RingPoll::Empty;
	}

	[[nodiscard]] uint32_t pending() const { return reqProd_ - reqCons_; }

	/** Copy the next request out of the ring. Only after poll() said Work. */
	Req take()
	{
		const void *slot = &sring_->ring[reqCons_ & (size_ - 1)].req;
		reqCons_++;
		return copyOut<Req>(slot);
	}

	/** Put a response; \a resp must be fully initialised (zero its padding). */
	void respond(const Resp &resp)
	{
		copyIn(&sring_->ring[rspProdPvt_ & (size_ - 1)].rsp, resp);
		rspProdPvt_++;
	}

	/** Publish queued responses; true if the frontend asked to be notified. */
	bool pushResponses()
	{
		uint32_t old = loadIndex(&sring_->rsp_prod);
		uint32_t now = rspProdPvt_;
		storeIndex(&sring_->rsp_prod, now);
		fullBarrier();
		uint32_t event = loadIndex(&sring_->rsp_event);
		return static_cast<uint32_t>(now - event) < static_cast<uint32_t>(now - old);
	}

	/**
	 * RING_FINAL_CHECK_FOR_REQUESTS: ask for a notification on the next
	 * request, then look once more so none slips between check and sleep.
	 */
	RingPoll finalCheck()
	{
		RingPoll p = poll();
		if (p != RingPoll::Empty)
			return p;
		storeIndex(&sring_->req_event, reqCons_ + 1);
		fullBarrier();
		return poll();
	}

private:
	Sring *sring_ = nullptr;
	uint32_t size_ = 0;
	uint32_t reqCons_ = 0;
	uint32_t reqProd_ = 0;
	uint32_t rspProdPvt_ = 0;
};

/** \brief Frontend end of a request/response ring (guest side). */
template<typename Sring, typename Req, typename Resp>
class FrontRing
{
public:
	FrontRing() = default;
	/** Initialise the shared ring in \a page (SHARED_RING_INIT) and adopt it. */
	FrontRing(void *page, size_t bytes)
		: sring_(static_cast<Sring *>(page)), size_(ringSize<Sring>(bytes))
	{
		std::memset(page, 0, bytes);
		storeIndex(&sring_->req_event, 1);
		storeIndex(&sring_->rsp_event, 1);
	}

	[[nodiscard]] uint32_t size() const { return size_; }
	[[nodiscard]] bool full() const { return reqProdPvt_ - rspCons_ >= size_; }

	/** Queue a request (fully initialised by the caller); false if full. */
	bool push(const Req &req)
	{
		if (full())
			return false;
		copyIn(&sring_->ring[reqProdPvt_ & (size_ - 1)].req, req);
		reqProdPvt_++;
		return true;
	}

	/** Publish requests; true if the backend asked to be notified. */
	bool pushRequests()
	{
		uint32_t old = loadIndex(&sring_->req_prod);
		uint32_t now = reqProdPvt_;
		storeIndex(&sring_->req_prod, now);
		fullBarrier();
		uint32_t event = loadIndex(&sring_->req_event);
		return static_cast<uint32_t>(now - event) < static_cast<uint32_t>(now - old);
	}

	/** Snapshot rsp_prod; Overflow if the backend claims responses never requested. */
	RingPoll poll()
	{
		uint32_t prod = loadIndex(&sring_->rsp_prod);
		if (prod - rspCons_ > reqProdPvt_ - rspCons_)
			return RingPoll::Overflow;
		rspProd_ = prod;
		return prod != rspCons_ ? RingPoll::Work : RingPoll::Empty;
	}

	[[nodiscard]] uint32_t pending() const { return rspProd_ - rspCons_; }

	Resp take()
	{
		const void *slot = &sring_->ring[rspCons_ & (size_ - 1)].rsp;
		rspCons_++;
		return copyOut<Resp>(slot);
	}

	RingPoll finalCheck()
	{
		RingPoll p = poll();
		if (p != RingPoll::Empty)
			return p;
		storeIndex(&sring_->rsp_event, rspCons_ + 1);
		fullBarrier();
		return poll();
	}

private:
	Sring *sring_ = nullptr;
	uint32_t size_ = 0;
	uint32_t reqProdPvt_ = 0;
	uint32_t rspCons_ = 0;
	uint32_t rspProd_ = 0;
};

} /* namespace xmb::proto */
