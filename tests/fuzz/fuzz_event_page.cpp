/* SPDX-License-Identifier: MIT */
/*
 * Fuzz the event page.  Mode 0: EventPageWriter (backend) against a guest
 * that consumes honestly, lazily or not at all, or scribbles on in_cons /
 * in_prod; while the guest stays honest every event it reads must be the
 * next one put, whole.  Mode 1: EventPageReader (frontend) against a backend
 * that writes any in_prod it likes.
 *
 * Input: [mode u8] [start index u32] then ops: [op u8] [arg u32]
 */

#include <deque>

#include "fuzz_input.h"
#include "protocol/cameraif.h"

namespace xmb::proto {
namespace {

using fuzz::Input;
using Put = EventPageWriter::Put;

constexpr uint32_t kLen = XENCAMERA_IN_RING_LEN;

alignas(4096) uint8_t gPage[XENCAMERA_EVENT_PAGE_SIZE];

xencamera_event_page *hdr()
{
	return reinterpret_cast<xencamera_event_page *>(gPage);
}

void runWriter(Input &in)
{
	std::memset(gPage, 0, sizeof(gPage));
	uint32_t start = in.u32();
	hdr()->in_cons = hdr()->in_prod = start;
	EventPageWriter w(gPage);
	FUZZ_CHECK(w.produced() == start);

	std::deque<uint32_t> unread; /* seq numbers put and not yet consumed */
	uint32_t seq = 0;
	bool honest = true;

	auto put = [&] {
		uint32_t before = w.produced();
		uint32_t used = before - hdr()->in_cons;
		Put r = w.put(makeFrameAvailEvent(static_cast<uint16_t>(seq), 0, seq, seq));
		if (r == Put::Ok) {
			FUZZ_CHECK(used < kLen);
			FUZZ_CHECK(w.produced() == before + 1);
			FUZZ_CHECK(hdr()->in_prod == before + 1);
			unread.push_back(seq);
		} else {
			FUZZ_CHECK(w.produced() == before);
			if (r == Put::Invalid)
				FUZZ_CHECK(used > kLen);
			else
				FUZZ_CHECK(used <= kLen && used >= 1);
		}
		if (honest) {
			FUZZ_CHECK(r != Put::Invalid);
			FUZZ_CHECK(unread.size() <= kLen);
		}
		seq++;
	};
	auto consume = [&] {
		uint32_t cons = hdr()->in_cons;
		if (hdr()->in_prod == cons)
			return false;
		xencamera_evt e = XENCAMERA_IN_RING_REF(gPage, cons);
		hdr()->in_cons = cons + 1;
		if (honest) {
			FUZZ_CHECK(!unread.empty());
			FUZZ_CHECK(e.evt.frame_avail.seq_num == unread.front());
			FUZZ_CHECK(e.evt.frame_avail.used_sz == unread.front());
			FUZZ_CHECK(e.type == XENCAMERA_EVT_FRAME_AVAIL);
			unread.pop_front();
		}
		return true;
	};

	while (!in.empty()) {
		uint8_t op = in.u8();
		uint32_t arg = in.u32();
		switch (op % 8) {
		case 0: put(); break;
		case 1: for (uint32_t i = 0; i < arg % 80; i++) put(); break;
		case 2: (void)consume(); break;
		case 3: for (uint32_t i = 0; i < arg % 80 && consume(); i++) {} break;
		case 4: hdr()->in_cons = arg; honest = false; break;
		case 5: hdr()->in_prod = arg; honest = false; break;
		case 6: hdr()->in_cons += arg % 4; honest = false; break;
		default: for (uint32_t i = 0; i < 2 * kLen && consume(); i++) {} break; /* in_prod may be scribbled */
		}
		if (honest)
			FUZZ_CHECK(hdr()->in_prod - hdr()->in_cons == unread.size());
	}
}

void runReader(Input &in)
{
	std::memset(gPage, 0xa5, sizeof(gPage));
	EventPageReader r(gPage);
	FUZZ_CHECK(hdr()->in_cons == 0 && hdr()->in_prod == 0);
	uint32_t cons = 0;
	(void)in.u32();
	while (!in.empty()) {
		uint8_t op = in.u8();
		uint32_t arg = in.u32();
		switch (op % 4) {
		case 0: hdr()->in_prod = arg; break;
		case 1: hdr()->in_prod += arg % 70; break;
		case 2: hdr()->in_cons = arg; break; /* the reader does not trust it either */
		default:
			std::memset(&XENCAMERA_IN_RING_REF(gPage, arg), static_cast<int>(op), sizeof(xencamera_evt));
			break;
		}
		uint32_t prod = hdr()->in_prod;
		bool overflow = false;
		auto evt = r.next(overflow);
		FUZZ_CHECK(overflow == (prod - cons > kLen));
		FUZZ_CHECK(!evt || (!overflow && prod != cons));
		if (evt) {
			cons++;
			FUZZ_CHECK(hdr()->in_cons == cons);
		} else {
			FUZZ_CHECK(overflow || prod == cons);
		}
	}
}

} /* namespace */
} /* namespace xmb::proto */

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	xmb::fuzz::Input in(data, size);
	if (in.u8() & 1)
		xmb::proto::runReader(in);
	else
		xmb::proto::runWriter(in);
	return 0;
}
