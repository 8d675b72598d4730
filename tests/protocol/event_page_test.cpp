/* SPDX-License-Identifier: MIT */
/*
 * The back-to-front event page: EventPageWriter (backend) against a guest
 * that does not consume or scribbles on the indices, EventPageReader
 * (frontend) against a backend that claims impossible indices.
 */

#include <optional>

#include <gtest/gtest.h>

#include "protocol/cameraif.h"
#include "shared_page.h"

namespace xmb::proto {
namespace {

using Put = EventPageWriter::Put;
using test::SharedPage;

constexpr uint32_t kLen = XENCAMERA_IN_RING_LEN;

struct EventPage {
	std::unique_ptr<SharedPage> page = SharedPage::filled(0xAA);
	EventPageReader reader{ page->data() }; /* the frontend zeroes the page */
	EventPageWriter writer{ page->data() };

	xencamera_event_page *hdr() { return page->eventHeader(); }

	/* A frontend starting at \a index (the writer adopts it). */
	static std::unique_ptr<EventPage> startingAt(uint32_t index)
	{
		auto p = std::make_unique<EventPage>();
		p->hdr()->in_cons = index;
		p->hdr()->in_prod = index;
		p->writer = EventPageWriter(p->page->data());
		return p;
	}

	/* Guest side by hand: consume one event the way Linux does (no reader object). */
	xencamera_evt guestConsume()
	{
		uint32_t cons = hdr()->in_cons;
		xencamera_evt e = XENCAMERA_IN_RING_REF(page->data(), cons);
		hdr()->in_cons = cons + 1;
		return e;
	}
};

std::optional<uint32_t> nextSeq(EventPageReader &reader)
{
	bool overflow = true;
	auto evt = reader.next(overflow);
	EXPECT_FALSE(overflow);
	if (!evt)
		return std::nullopt;
	return evt->evt.frame_avail.seq_num;
}

TEST(EventPageGeometry, RingHolds63Events)
{
	EXPECT_EQ(kLen, (4096u - 64u) / 64u);
	EXPECT_EQ(kLen, 63u);
}

TEST(EventPageReader, ZeroesThePage)
{
	auto page = SharedPage::filled(0xAA);
	EventPageReader reader(page->data());
	for (size_t i = 0; i < kXenPageSize; i++)
		ASSERT_EQ(page->bytes[i], 0) << "byte " << i;
}

TEST(EventPageReader, EmptyPageHasNoEvent)
{
	EventPage p;
	bool overflow = true;
	EXPECT_EQ(p.reader.next(overflow), std::nullopt);
	EXPECT_FALSE(overflow);
}

TEST(EventPage, EventsArriveInOrder)
{
	EventPage p;
	for (uint32_t i = 0; i < 10; i++)
		ASSERT_EQ(p.writer.put(makeFrameAvailEvent(0, 0, 100, i)), Put::Ok);
	for (uint32_t i = 0; i < 10; i++)
		EXPECT_EQ(nextSeq(p.reader), i);
	EXPECT_EQ(nextSeq(p.reader), std::nullopt);
}

TEST(EventPage, EventIsCopiedIntoTheSlotWhole)
{
	EventPage p;
	xencamera_evt evt = makeCtrlChangeEvent(5, XENCAMERA_CTRL_HUE, -42);
	ASSERT_EQ(p.writer.put(evt), Put::Ok);
	EXPECT_EQ(0, std::memcmp(&XENCAMERA_IN_RING_REF(p.page->data(), 0), &evt, sizeof(evt)));
	EXPECT_EQ(p.hdr()->in_prod, 1u);
}

TEST(EventPage, ReaderPublishesItsConsumerIndex)
{
	EventPage p;
	ASSERT_EQ(p.writer.put(makeFrameAvailEvent(0, 0, 0, 0)), Put::Ok);
	ASSERT_EQ(p.writer.put(makeFrameAvailEvent(0, 0, 0, 1)), Put::Ok);
	(void)nextSeq(p.reader);
	EXPECT_EQ(p.hdr()->in_cons, 1u);
}

TEST(EventPageWriter, AdoptsTheGuestsConsumerIndex)
{
	auto p = EventPage::startingAt(1000);
	EXPECT_EQ(p->writer.produced(), 1000u);
	ASSERT_EQ(p->writer.put(makeFrameAvailEvent(0, 0, 0, 7)), Put::Ok);
	EXPECT_EQ(p->hdr()->in_prod, 1001u);
	EXPECT_EQ(p->guestConsume().evt.frame_avail.seq_num, 7u);
}

TEST(EventPageWriter, FullWhenTheGuestDoesNotConsume)
{
	EventPage p;
	for (uint32_t i = 0; i < kLen; i++)
		ASSERT_EQ(p.writer.put(makeFrameAvailEvent(0, 0, 0, i)), Put::Ok) << i;
	EXPECT_EQ(p.writer.put(makeFrameAvailEvent(0, 0, 0, 63)), Put::Full);
	EXPECT_EQ(p.writer.produced(), kLen);
	EXPECT_EQ(p.hdr()->in_prod, kLen);
}

TEST(EventPageWriter, FullDoesNotOverwriteTheOldestUnreadEvent)
{
	EventPage p;
	for (uint32_t i = 0; i < kLen; i++)
		ASSERT_EQ(p.writer.put(makeFrameAvailEvent(0, 0, 0, i)), Put::Ok);
	ASSERT_EQ(p.writer.put(makeFrameAvailEvent(0, 0, 0, 999)), Put::Full);
	for (uint32_t i = 0; i < kLen; i++)
		EXPECT_EQ(nextSeq(p.reader), i);
}

TEST(EventPageWriter, RoomAgainOnceTheGuestConsumes)
{
	EventPage p;
	for (uint32_t i = 0; i < kLen; i++)
		ASSERT_EQ(p.writer.put(makeFrameAvailEvent(0, 0, 0, i)), Put::Ok);
	ASSERT_EQ(nextSeq(p.reader), 0u);
	EXPECT_EQ(p.writer.put(makeFrameAvailEvent(0, 0, 0, 63)), Put::Ok);
	EXPECT_EQ(p.writer.put(makeFrameAvailEvent(0, 0, 0, 64)), Put::Full);
}

TEST(EventPageWriter, InvalidWhenTheGuestConsumesBeyondWhatWasProduced)
{
	EventPage p;
	ASSERT_EQ(p.writer.put(makeFrameAvailEvent(0, 0, 0, 0)), Put::Ok);
	p.hdr()->in_cons = 2; /* one more than produced */
	EXPECT_EQ(p.writer.put(makeFrameAvailEvent(0, 0, 0, 1)), Put::Invalid);
	EXPECT_EQ(p.writer.produced(), 1u);
	EXPECT_EQ(p.hdr()->in_prod, 1u);
}

TEST(EventPageWriter, InvalidWhenTheGuestMovesInConsFarAway)
{
	EventPage p;
	p.hdr()->in_cons = 0x80000000u;
	EXPECT_EQ(p.writer.put(makeFrameAvailEvent(0, 0, 0, 0)), Put::Invalid);
}

TEST(EventPageWriter, RecoversWhenTheGuestRestoresAValidInCons)
{
	EventPage p;
	p.hdr()->in_cons = 5;
	ASSERT_EQ(p.writer.put(makeFrameAvailEvent(0, 0, 0, 0)), Put::Invalid);
	p.hdr()->in_cons = 0;
	EXPECT_EQ(p.writer.put(makeFrameAvailEvent(0, 0, 0, 0)), Put::Ok);
}

TEST(EventPageWriter, IgnoresAGuestScribblingOnInProd)
{
	EventPage p;
	ASSERT_EQ(p.writer.put(makeFrameAvailEvent(0, 0, 0, 0)), Put::Ok);
	ASSERT_EQ(p.writer.put(makeFrameAvailEvent(0, 0, 0, 1)), Put::Ok);
	p.hdr()->in_prod = 0; /* would make us overwrite slot 0 if we trusted it */
	ASSERT_EQ(p.writer.put(makeFrameAvailEvent(0, 0, 0, 2)), Put::Ok);
	EXPECT_EQ(p.writer.produced(), 3u);
	EXPECT_EQ(p.hdr()->in_prod, 3u);
	for (uint32_t i = 0; i < 3; i++)
		EXPECT_EQ(p.guestConsume().evt.frame_avail.seq_num, i);
}

TEST(EventPageWriter, ScribbledInProdDoesNotDefeatTheFullCheck)
{
	EventPage p;
	for (uint32_t i = 0; i < kLen; i++)
		ASSERT_EQ(p.writer.put(makeFrameAvailEvent(0, 0, 0, i)), Put::Ok);
	p.hdr()->in_prod = 0;
	EXPECT_EQ(p.writer.put(makeFrameAvailEvent(0, 0, 0, 99)), Put::Full);
}

TEST(EventPageReaderHostile, InProdBeyondTheRingLengthIsOverflow)
{
	EventPage p;
	p.hdr()->in_prod = kLen + 1;
	bool overflow = false;
	EXPECT_EQ(p.reader.next(overflow), std::nullopt);
	EXPECT_TRUE(overflow);
	EXPECT_EQ(p.hdr()->in_cons, 0u) << "nothing consumed";
}

TEST(EventPageReaderHostile, InProdExactlyTheRingLengthIsAccepted)
{
	EventPage p;
	p.hdr()->in_prod = kLen;
	bool overflow = true;
	EXPECT_NE(p.reader.next(overflow), std::nullopt);
	EXPECT_FALSE(overflow);
}

TEST(EventPageReaderHostile, InProdGoingBackwardsIsOverflow)
{
	EventPage p;
	ASSERT_EQ(p.writer.put(makeFrameAvailEvent(0, 0, 0, 0)), Put::Ok);
	ASSERT_EQ(nextSeq(p.reader), 0u);
	p.hdr()->in_prod = 0;
	bool overflow = false;
	EXPECT_EQ(p.reader.next(overflow), std::nullopt);
	EXPECT_TRUE(overflow);
}

TEST(EventPageReaderHostile, TakenEventIsAPrivateCopy)
{
	EventPage p;
	ASSERT_EQ(p.writer.put(makeFrameAvailEvent(1, 2, 3, 4)), Put::Ok);
	bool overflow = false;
	auto evt = p.reader.next(overflow);
	ASSERT_TRUE(evt);
	std::memset(&XENCAMERA_IN_RING_REF(p.page->data(), 0), 0xff, sizeof(xencamera_evt));
	EXPECT_EQ(evt->evt.frame_avail.seq_num, 4u);
	EXPECT_EQ(evt->evt.frame_avail.index, 2);
}

TEST(EventPageWrap, OneByOneAcrossTheIndexWrapArrivesInOrder)
{
	auto p = EventPage::startingAt(0xffffffe0u);
	for (uint32_t i = 0; i < 200; i++) {
		ASSERT_EQ(p->writer.put(makeFrameAvailEvent(0, 0, 0, i)), Put::Ok) << i;
		ASSERT_EQ(p->guestConsume().evt.frame_avail.seq_num, i);
	}
	EXPECT_LT(p->writer.produced(), 0xffffffe0u) << "the test must actually wrap";
}

TEST(EventPageWrap, InvalidCheckWorksAcrossTheIndexWrap)
{
	auto p = EventPage::startingAt(0xfffffffeu);
	ASSERT_EQ(p->writer.put(makeFrameAvailEvent(0, 0, 0, 0)), Put::Ok);
	ASSERT_EQ(p->writer.put(makeFrameAvailEvent(0, 0, 0, 1)), Put::Ok);
	ASSERT_EQ(p->writer.produced(), 0u);
	p->hdr()->in_cons = 1; /* one event more than produced, past the wrap */
	EXPECT_EQ(p->writer.put(makeFrameAvailEvent(0, 0, 0, 2)), Put::Invalid);
	p->hdr()->in_cons = 0xfffffffeu;
	EXPECT_EQ(p->writer.put(makeFrameAvailEvent(0, 0, 0, 2)), Put::Ok);
}

TEST(EventPageWrap, FullCheckWorksPastTheIndexWrap)
{
	auto p = EventPage::startingAt(0xfffffff0u);
	for (uint32_t i = 0; i < 20; i++) {
		ASSERT_EQ(p->writer.put(makeFrameAvailEvent(0, 0, 0, i)), Put::Ok) << i;
		ASSERT_EQ(p->guestConsume().evt.frame_avail.seq_num, i);
	}
	ASSERT_EQ(p->writer.produced(), 4u);
	for (uint32_t i = 0; i < kLen; i++)
		ASSERT_EQ(p->writer.put(makeFrameAvailEvent(0, 0, 0, 100 + i)), Put::Ok) << i;
	EXPECT_EQ(p->writer.put(makeFrameAvailEvent(0, 0, 0, 999)), Put::Full);
	for (uint32_t i = 0; i < kLen; i++)
		EXPECT_EQ(p->guestConsume().evt.frame_avail.seq_num, 100 + i);
}

TEST(EventPageWrap, WriterWaitsRatherThanReuseTheSlotOfAnUnreadEventAtTheWrap)
{
	/* 0xfffffffe % 63 == 2 == 2 % 63: index 2 must wait until 0xfffffffe is read. */
	auto p = EventPage::startingAt(0xfffffffeu);
	for (uint32_t i = 0; i < 4; i++)
		ASSERT_EQ(p->writer.put(makeFrameAvailEvent(0, 0, 0, i)), Put::Ok) << i;
	EXPECT_EQ(p->writer.put(makeFrameAvailEvent(0, 0, 0, 4)), Put::Full);
	ASSERT_EQ(p->guestConsume().evt.frame_avail.seq_num, 0u);
	EXPECT_EQ(p->writer.put(makeFrameAvailEvent(0, 0, 0, 4)), Put::Ok);
	for (uint32_t i = 1; i <= 4; i++)
		EXPECT_EQ(p->guestConsume().evt.frame_avail.seq_num, i);
}

/*
 * idx % 63 is not continuous where idx wraps from 0xffffffff to 0
 * (2^32 mod 63 == 4): indices 0xfffffffc..0xffffffff use slots 0..3, and so
 * do 0..3.  A backlog that spans the wrap must not be overwritten.
 */
TEST(EventPageWrap, BacklogAcrossTheIndexWrapIsNeverOverwritten)
{
	for (uint32_t start = 0xffffffc0u; start != 0x10u; start++) {
		auto p = EventPage::startingAt(start);
		uint32_t put = 0, got = 0;
		/* Fill until Full, drain half, repeat: the backlog straddles the wrap. */
		for (int round = 0; round < 6; round++) {
			while (p->writer.put(makeFrameAvailEvent(0, 0, 0, put)) == Put::Ok)
				put++;
			for (int i = 0; i < 31 && got < put; i++)
				ASSERT_EQ(p->guestConsume().evt.frame_avail.seq_num, got++)
					<< "start " << std::hex << start;
		}
		while (got < put)
			ASSERT_EQ(p->guestConsume().evt.frame_avail.seq_num, got++)
				<< "start " << std::hex << start;
	}
}

TEST(EventPage, ReaderAndWriterKeepInStepPastTheRingLength)
{
	auto page = std::make_unique<SharedPage>();
	EventPageReader reader(page->data());
	EventPageWriter writer(page->data());
	for (uint32_t i = 0; i < 3 * kLen; i++) {
		ASSERT_EQ(writer.put(makeFrameAvailEvent(0, 0, 0, i)), Put::Ok);
		ASSERT_EQ(nextSeq(reader), i);
	}
}

} /* namespace */
} /* namespace xmb::proto */
