/* SPDX-License-Identifier: MIT */
/*
 * BackRing / FrontRing against hostile peers: the shared page is a real
 * page-aligned buffer laid out as <xen/io/ring.h> says, and the tests write
 * its indices directly, as a malicious or buggy peer could.
 */

#include <array>
#include <cstring>
#include <vector>

#include <gtest/gtest.h>

extern "C" {
#include <xen/errno.h>
}

#include "protocol/cameraif.h"
#include "protocol/ring.h"
#include "shared_page.h"

namespace xmb::proto {
namespace {

using test::makeRequest;
using test::SharedPage;

constexpr uint32_t kSlots = 32;

/* Put a request in the slot for index \a idx, as a frontend would (no index update). */
void writeRequestSlot(SharedPage &page, uint32_t idx, const xencamera_req &req)
{
	std::memcpy(&page.sring()->ring[idx & (kSlots - 1)].req, &req, sizeof(req));
}

/* A frontend that initialised the ring and published \a n requests with ids 0..n-1. */
struct PublishedRing {
	std::unique_ptr<SharedPage> page = std::make_unique<SharedPage>();
	CameraFrontRing front{ page->data(), kXenPageSize };

	explicit PublishedRing(unsigned n = 0) { publish(n); }

	void publish(unsigned n, uint16_t firstId = 0)
	{
		for (unsigned i = 0; i < n; i++)
			EXPECT_TRUE(front.push(makeRequest(static_cast<uint16_t>(firstId + i),
							   XENCAMERA_OP_STREAM_START)));
		(void)front.pushRequests();
	}
	xen_cameraif_sring *sring() { return page->sring(); }
};

/* ---- geometry ---- */

TEST(RingGeometry, CameraRingOnOnePageHas32Slots)
{
	EXPECT_EQ(ringSize<xen_cameraif_sring>(kXenPageSize), 32u);
	EXPECT_EQ(ringSize<xen_cameraif_sring>(kXenPageSize),
		  __CONST_RING_SIZE(xen_cameraif, kXenPageSize));
}

TEST(RingGeometry, BackAndFrontRingReportTheSameSize)
{
	auto page = std::make_unique<SharedPage>();
	CameraFrontRing front(page->data(), kXenPageSize);
	CameraBackRing back(page->data(), kXenPageSize);
	EXPECT_EQ(front.size(), 32u);
	EXPECT_EQ(back.size(), 32u);
}

TEST(RingGeometry, RingSizeRoundsDownToAPowerOfTwo)
{
	/* 64-byte header + 40 entries of 64 bytes: 32 usable. */
	EXPECT_EQ(ringSize<xen_cameraif_sring>(64 + 40 * 64), 32u);
	EXPECT_EQ(ringSize<xen_cameraif_sring>(64 + 64), 1u);
	EXPECT_EQ(ringSize<xen_cameraif_sring>(2 * kXenPageSize), 64u);
}

/* ---- FrontRing initialisation ---- */

TEST(FrontRingInit, ZeroesThePageAndAsksForTheFirstEvents)
{
	auto page = SharedPage::filled(0xAA);
	CameraFrontRing front(page->data(), kXenPageSize);
	EXPECT_EQ(page->sring()->req_prod, 0u);
	EXPECT_EQ(page->sring()->rsp_prod, 0u);
	EXPECT_EQ(page->sring()->req_event, 1u);
	EXPECT_EQ(page->sring()->rsp_event, 1u);
	for (size_t i = offsetof(xen_cameraif_sring, pvt); i < kXenPageSize; i++)
		ASSERT_EQ(page->bytes[i], 0) << "byte " << i;
}

/* ---- BackRing: honest producers ---- */

TEST(BackRing, FreshRingPollsEmpty)
{
	PublishedRing ring;
	CameraBackRing back(ring.page->data(), kXenPageSize);
	EXPECT_EQ(back.poll(), RingPoll::Empty);
	EXPECT_EQ(back.pending(), 0u);
}

TEST(BackRing, PublishedRequestsArriveInOrder)
{
	PublishedRing ring(5);
	CameraBackRing back(ring.page->data(), kXenPageSize);
	ASSERT_EQ(back.poll(), RingPoll::Work);
	ASSERT_EQ(back.pending(), 5u);
	for (uint16_t i = 0; i < 5; i++)
		EXPECT_EQ(back.take().id, i);
	EXPECT_EQ(back.pending(), 0u);
}

TEST(BackRing, AFullRingOf32RequestsIsAccepted)
{
	PublishedRing ring(kSlots);
	CameraBackRing back(ring.page->data(), kXenPageSize);
	ASSERT_EQ(back.poll(), RingPoll::Work);
	EXPECT_EQ(back.pending(), kSlots);
}

TEST(BackRing, AdoptsTheIndicesOfAReconnectingFrontend)
{
	auto page = std::make_unique<SharedPage>();
	page->sring()->req_prod = 1000;
	page->sring()->rsp_prod = 1000;
	CameraBackRing back(page->data(), kXenPageSize);
	EXPECT_EQ(back.poll(), RingPoll::Empty);

	writeRequestSlot(*page, 1000, makeRequest(77, XENCAMERA_OP_CONFIG_GET));
	page->sring()->req_prod = 1001;
	ASSERT_EQ(back.poll(), RingPoll::Work);
	EXPECT_EQ(back.take().id, 77);
}

TEST(BackRing, PendingIsTheSnapshotOfOneReadOfReqProd)
{
	PublishedRing ring(2);
	CameraBackRing back(ring.page->data(), kXenPageSize);
	ASSERT_EQ(back.poll(), RingPoll::Work);
	/* The producer moves req_prod after the poll: the snapshot stands. */
	ring.sring()->req_prod = 0xdeadbeef;
	EXPECT_EQ(back.pending(), 2u);
	EXPECT_EQ(back.take().id, 0);
	EXPECT_EQ(back.take().id, 1);
	EXPECT_EQ(back.pending(), 0u);
}

TEST(BackRing, IndexWrapAroundAt32BitsWorksForAnHonestProducer)
{
	auto page = std::make_unique<SharedPage>();
	const uint32_t start = 0xfffffff0u;
	auto *s = page->sring();
	s->req_prod = s->rsp_prod = start;
	s->req_event = s->rsp_event = start + 1;
	CameraBackRing back(page->data(), kXenPageSize);

	uint32_t prod = start;
	uint16_t nextId = 0;
	uint16_t expectId = 0;
	/* Three rounds take the indices well past 0xffffffff -> 0. */
	for (unsigned round = 0; round < 3; round++) {
		for (unsigned i = 0; i < kSlots; i++)
			writeRequestSlot(*page, prod++, makeRequest(nextId++, XENCAMERA_OP_CONFIG_GET));
		s->req_prod = prod;
		ASSERT_EQ(back.poll(), RingPoll::Work) << "round " << round;
		ASSERT_EQ(back.pending(), kSlots);
		while (back.pending()) {
			xencamera_req req = back.take();
			EXPECT_EQ(req.id, expectId++);
			back.respond(makeCameraResponse(req.id, req.operation, 0));
		}
		(void)back.pushResponses();
		EXPECT_EQ(s->rsp_prod, prod);
	}
	EXPECT_LT(prod, start) << "the test must actually wrap";
}

/* ---- BackRing: hostile producers ---- */

TEST(BackRingHostile, ProducerIndexOneBeyondRingSizeIsOverflow)
{
	PublishedRing ring;
	CameraBackRing back(ring.page->data(), kXenPageSize);
	ring.sring()->req_prod = kSlots + 1;
	EXPECT_EQ(back.poll(), RingPoll::Overflow);
}

TEST(BackRingHostile, ProducerIndexFarBeyondRingSizeIsOverflow)
{
	PublishedRing ring;
	CameraBackRing back(ring.page->data(), kXenPageSize);
	ring.sring()->req_prod = 0x7fffffff;
	EXPECT_EQ(back.poll(), RingPoll::Overflow);
}

TEST(BackRingHostile, ProducerIndexGoingBackwardsIsOverflow)
{
	PublishedRing ring(5);
	CameraBackRing back(ring.page->data(), kXenPageSize);
	ASSERT_EQ(back.poll(), RingPoll::Work);
	while (back.pending())
		(void)back.take();
	ring.sring()->req_prod = 3; /* 3 - 5 wraps to 0xfffffffe unconsumed requests */
	EXPECT_EQ(back.poll(), RingPoll::Overflow);
}

TEST(BackRingHostile, ProducerIndexJustBelowAWrappedConsumerIsOverflow)
{
	auto page = std::make_unique<SharedPage>();
	page->sring()->req_prod = page->sring()->rsp_prod = 2; /* consumer starts at 2 */
	CameraBackRing back(page->data(), kXenPageSize);
	page->sring()->req_prod = 0xffffffffu;
	EXPECT_EQ(back.poll(), RingPoll::Overflow);
}

TEST(BackRingHostile, OverflowConsumesNothingAndAnHonestIndexIsAcceptedAfterwards)
{
	PublishedRing ring(3);
	CameraBackRing back(ring.page->data(), kXenPageSize);
	ring.sring()->req_prod = 1000;
	ASSERT_EQ(back.poll(), RingPoll::Overflow);
	EXPECT_EQ(back.pending(), 0u);
	ring.sring()->req_prod = 3;
	ASSERT_EQ(back.poll(), RingPoll::Work);
	EXPECT_EQ(back.pending(), 3u);
	EXPECT_EQ(back.take().id, 0);
}

TEST(BackRingHostile, UnansweredRequestsCountAgainstTheRingCapacity)
{
	PublishedRing ring(kSlots);
	CameraBackRing back(ring.page->data(), kXenPageSize);
	ASSERT_EQ(back.poll(), RingPoll::Work);
	while (back.pending())
		(void)back.take();
	/* All 32 slots hold requests we have not answered: one more is impossible. */
	ring.sring()->req_prod = kSlots + 1;
	EXPECT_EQ(back.poll(), RingPoll::Overflow);
}

TEST(BackRingHostile, AnsweringFreesSlotsForMoreRequests)
{
	PublishedRing ring(kSlots);
	CameraBackRing back(ring.page->data(), kXenPageSize);
	ASSERT_EQ(back.poll(), RingPoll::Work);
	while (back.pending())
		(void)back.take();
	back.respond(makeCameraResponse(0, XENCAMERA_OP_STREAM_START, 0));
	back.respond(makeCameraResponse(1, XENCAMERA_OP_STREAM_START, 0));
	ring.sring()->req_prod = kSlots + 2;
	EXPECT_EQ(back.poll(), RingPoll::Work);
	EXPECT_EQ(back.pending(), 2u);
	ring.sring()->req_prod = kSlots + 3;
	EXPECT_EQ(back.poll(), RingPoll::Overflow);
}

TEST(BackRingHostile, TakenRequestIsAPrivateCopy)
{
	PublishedRing ring;
	xencamera_req req = makeRequest(9, XENCAMERA_OP_CONFIG_SET);
	req.req.config.width = 640;
	req.req.config.height = 480;
	ASSERT_TRUE(ring.front.push(req));
	(void)ring.front.pushRequests();

	CameraBackRing back(ring.page->data(), kXenPageSize);
	ASSERT_EQ(back.poll(), RingPoll::Work);
	xencamera_req taken = back.take();

	/* The frontend rewrites the slot after we took it. */
	std::memset(&ring.sring()->ring[0].req, 0xff, sizeof(xencamera_req));

	EXPECT_EQ(taken.id, 9);
	EXPECT_EQ(taken.operation, XENCAMERA_OP_CONFIG_SET);
	EXPECT_EQ(taken.req.config.width, 640u);
	EXPECT_EQ(taken.req.config.height, 480u);
	EXPECT_EQ(0, std::memcmp(&taken, &req, sizeof(req)));
}

TEST(BackRingHostile, SlotsAreReadAtIndexModuloRingSizeWhateverTheIndex)
{
	auto page = std::make_unique<SharedPage>();
	page->sring()->req_prod = page->sring()->rsp_prod = 0x12345677u;
	CameraBackRing back(page->data(), kXenPageSize);
	writeRequestSlot(*page, 0x12345677u, makeRequest(5, XENCAMERA_OP_CONFIG_GET));
	page->sring()->req_prod = 0x12345678u;
	ASSERT_EQ(back.poll(), RingPoll::Work);
	EXPECT_EQ(back.take().id, 5);
}

/* ---- BackRing: responses ---- */

TEST(BackRingResponses, EveryByteOfTheSlotIsWrittenAndPaddingIsZero)
{
	PublishedRing ring(1);
	CameraBackRing back(ring.page->data(), kXenPageSize);
	ASSERT_EQ(back.poll(), RingPoll::Work);
	(void)back.take();
	/* What was there before (stale request bytes, guest garbage) must not survive. */
	std::memset(ring.sring()->ring, 0xAA, kSlots * sizeof(ring.sring()->ring[0]));

	back.respond(makeCameraResponse(0x1234, XENCAMERA_OP_BUF_CREATE, -XEN_EINVAL));

	std::array<uint8_t, 64> expected{};
	uint16_t id = 0x1234;
	int32_t status = -XEN_EINVAL;
	std::memcpy(&expected[0], &id, 2);
	expected[2] = XENCAMERA_OP_BUF_CREATE;
	expected[3] = 0; /* reserved */
	std::memcpy(&expected[4], &status, 4);
	const auto *slot = reinterpret_cast<const uint8_t *>(&ring.sring()->ring[0].rsp);
	for (size_t i = 0; i < expected.size(); i++)
		EXPECT_EQ(slot[i], expected[i]) << "response byte " << i;
}

TEST(BackRingResponses, RespondWritesOnlyItsOwnSlot)
{
	PublishedRing ring(1);
	CameraBackRing back(ring.page->data(), kXenPageSize);
	ASSERT_EQ(back.poll(), RingPoll::Work);
	(void)back.take();
	auto *entries = reinterpret_cast<uint8_t *>(ring.sring()->ring);
	std::memset(entries, 0xAA, kSlots * 64);
	back.respond(makeCameraResponse(0, XENCAMERA_OP_STREAM_START, 0));
	for (size_t i = 64; i < kSlots * 64; i++)
		ASSERT_EQ(entries[i], 0xAA) << "byte " << i << " outside slot 0";
}

TEST(BackRingResponses, ResponsesAreInvisibleUntilPushed)
{
	PublishedRing ring(2);
	CameraBackRing back(ring.page->data(), kXenPageSize);
	ASSERT_EQ(back.poll(), RingPoll::Work);
	while (back.pending()) {
		auto req = back.take();
		back.respond(makeCameraResponse(req.id, req.operation, 0));
	}
	EXPECT_EQ(ring.sring()->rsp_prod, 0u);
	(void)back.pushResponses();
	EXPECT_EQ(ring.sring()->rsp_prod, 2u);
}

TEST(BackRingResponses, FrontendReceivesResponsesInOrder)
{
	PublishedRing ring(3);
	CameraBackRing back(ring.page->data(), kXenPageSize);
	ASSERT_EQ(back.poll(), RingPoll::Work);
	while (back.pending()) {
		auto req = back.take();
		back.respond(makeCameraResponse(req.id, req.operation, -req.id));
	}
	(void)back.pushResponses();
	ASSERT_EQ(ring.front.poll(), RingPoll::Work);
	ASSERT_EQ(ring.front.pending(), 3u);
	for (int i = 0; i < 3; i++) {
		auto rsp = ring.front.take();
		EXPECT_EQ(rsp.id, i);
		EXPECT_EQ(rsp.status, -i);
	}
}

/* ---- BackRing: notification hold-off ---- */

/* Respond to \a n fresh requests and push; returns pushResponses()'s answer. */
bool answerAndPush(PublishedRing &ring, CameraBackRing &back, unsigned n)
{
	ring.publish(n);
	EXPECT_EQ(back.poll(), RingPoll::Work);
	while (back.pending()) {
		auto req = back.take();
		back.respond(makeCameraResponse(req.id, req.operation, 0));
	}
	return back.pushResponses();
}

TEST(BackRingNotify, NotifiesWhenRspEventIsAmongTheNewResponses)
{
	PublishedRing ring; /* rsp_event = 1 after SHARED_RING_INIT */
	CameraBackRing back(ring.page->data(), kXenPageSize);
	EXPECT_TRUE(answerAndPush(ring, back, 1));
}

TEST(BackRingNotify, NotifiesWhenRspEventIsTheLastNewResponse)
{
	PublishedRing ring;
	CameraBackRing back(ring.page->data(), kXenPageSize);
	ring.sring()->rsp_event = 3;
	EXPECT_TRUE(answerAndPush(ring, back, 3));
}

TEST(BackRingNotify, DoesNotNotifyWhenRspEventIsBeyondTheNewResponses)
{
	PublishedRing ring;
	CameraBackRing back(ring.page->data(), kXenPageSize);
	ring.sring()->rsp_event = 5;
	EXPECT_FALSE(answerAndPush(ring, back, 2));
}

TEST(BackRingNotify, DoesNotNotifyAgainForAnEventAlreadyPassed)
{
	PublishedRing ring;
	CameraBackRing back(ring.page->data(), kXenPageSize);
	ASSERT_TRUE(answerAndPush(ring, back, 1));
	/* rsp_event still 1: the frontend has not asked again. */
	EXPECT_FALSE(answerAndPush(ring, back, 1));
}

TEST(BackRingNotify, PushWithNothingNewDoesNotNotify)
{
	PublishedRing ring;
	CameraBackRing back(ring.page->data(), kXenPageSize);
	EXPECT_FALSE(back.pushResponses());
}

TEST(BackRingNotify, NotificationLogicWorksAcrossIndexWrap)
{
	auto page = std::make_unique<SharedPage>();
	auto *s = page->sring();
	s->req_prod = s->rsp_prod = 0xfffffffeu;
	s->rsp_event = 1; /* wrapped: the third response from here */
	CameraBackRing back(page->data(), kXenPageSize);
	for (uint32_t i = 0; i < 3; i++)
		writeRequestSlot(*page, 0xfffffffeu + i, makeRequest(static_cast<uint16_t>(i), 0x01));
	s->req_prod = 0xfffffffeu + 3;
	ASSERT_EQ(back.poll(), RingPoll::Work);
	auto req = back.take();
	back.respond(makeCameraResponse(req.id, req.operation, 0));
	req = back.take();
	back.respond(makeCameraResponse(req.id, req.operation, 0));
	EXPECT_FALSE(back.pushResponses()); /* published up to 0: event 1 not reached */
	req = back.take();
	back.respond(makeCameraResponse(req.id, req.operation, 0));
	EXPECT_TRUE(back.pushResponses()); /* published 1 */
}

/* ---- BackRing: final check ---- */

TEST(BackRingFinalCheck, EmptyRingSetsReqEventToTheNextRequest)
{
	PublishedRing ring(3);
	CameraBackRing back(ring.page->data(), kXenPageSize);
	ASSERT_EQ(back.poll(), RingPoll::Work);
	while (back.pending())
		(void)back.take();
	EXPECT_EQ(back.finalCheck(), RingPoll::Empty);
	EXPECT_EQ(ring.sring()->req_event, 4u);
}

TEST(BackRingFinalCheck, FrontendIsToldToNotifyAfterFinalCheck)
{
	PublishedRing ring(3);
	CameraBackRing back(ring.page->data(), kXenPageSize);
	ASSERT_EQ(back.poll(), RingPoll::Work);
	while (back.pending())
		(void)back.take();
	ASSERT_EQ(back.finalCheck(), RingPoll::Empty);
	ASSERT_TRUE(ring.front.push(makeRequest(3, XENCAMERA_OP_STREAM_STOP)));
	EXPECT_TRUE(ring.front.pushRequests());
}

TEST(BackRingFinalCheck, PendingRequestsAreReportedWithoutMovingReqEvent)
{
	PublishedRing ring(2);
	CameraBackRing back(ring.page->data(), kXenPageSize);
	ring.sring()->req_event = 77;
	EXPECT_EQ(back.finalCheck(), RingPoll::Work);
	EXPECT_EQ(back.pending(), 2u);
	EXPECT_EQ(ring.sring()->req_event, 77u);
}

TEST(BackRingFinalCheck, OverflowIsReportedByTheFinalCheck)
{
	PublishedRing ring;
	CameraBackRing back(ring.page->data(), kXenPageSize);
	ring.sring()->req_prod = 500;
	EXPECT_EQ(back.finalCheck(), RingPoll::Overflow);
}

/* ---- FrontRing against a hostile backend ---- */

TEST(FrontRing, RefusesToQueueMoreThanTheRingHolds)
{
	PublishedRing ring(kSlots);
	EXPECT_TRUE(ring.front.full());
	EXPECT_FALSE(ring.front.push(makeRequest(99, XENCAMERA_OP_STREAM_STOP)));
}

TEST(FrontRing, PollIsEmptyWithoutResponses)
{
	PublishedRing ring(2);
	EXPECT_EQ(ring.front.poll(), RingPoll::Empty);
}

TEST(FrontRingHostile, BackendClaimingUnrequestedResponsesIsOverflow)
{
	PublishedRing ring(2);
	ring.sring()->rsp_prod = 3;
	EXPECT_EQ(ring.front.poll(), RingPoll::Overflow);
}

TEST(FrontRingHostile, BackendClaimingResponsesBeforeAnyRequestIsOverflow)
{
	PublishedRing ring;
	ring.sring()->rsp_prod = 1;
	EXPECT_EQ(ring.front.poll(), RingPoll::Overflow);
}

TEST(FrontRingHostile, BackendMovingRspProdBackwardsIsOverflow)
{
	PublishedRing ring(2);
	ring.sring()->rsp_prod = 2;
	ASSERT_EQ(ring.front.poll(), RingPoll::Work);
	(void)ring.front.take();
	(void)ring.front.take();
	ring.sring()->rsp_prod = 1;
	EXPECT_EQ(ring.front.poll(), RingPoll::Overflow);
}

TEST(FrontRingHostile, ResponsesForEveryRequestAreAccepted)
{
	PublishedRing ring(2);
	ring.sring()->rsp_prod = 2;
	ASSERT_EQ(ring.front.poll(), RingPoll::Work);
	EXPECT_EQ(ring.front.pending(), 2u);
}

TEST(FrontRingHostile, TakenResponseIsAPrivateCopy)
{
	PublishedRing ring(1);
	xencamera_resp rsp = makeCameraResponse(0, XENCAMERA_OP_STREAM_START, -XEN_EINVAL);
	std::memcpy(&ring.sring()->ring[0].rsp, &rsp, sizeof(rsp));
	ring.sring()->rsp_prod = 1;
	ASSERT_EQ(ring.front.poll(), RingPoll::Work);
	auto taken = ring.front.take();
	std::memset(&ring.sring()->ring[0].rsp, 0x55, sizeof(rsp));
	EXPECT_EQ(taken.status, -XEN_EINVAL);
	EXPECT_EQ(taken.operation, XENCAMERA_OP_STREAM_START);
}

TEST(FrontRingFinalCheck, EmptyRingSetsRspEventToTheNextResponse)
{
	PublishedRing ring(2);
	ring.sring()->rsp_prod = 1;
	ASSERT_EQ(ring.front.poll(), RingPoll::Work);
	(void)ring.front.take();
	EXPECT_EQ(ring.front.finalCheck(), RingPoll::Empty);
	EXPECT_EQ(ring.sring()->rsp_event, 2u);
}

} /* namespace */
} /* namespace xmb::proto */
