/* SPDX-License-Identifier: MIT */
/*
 * Fuzz the request path: the input is a shared ring page written by a
 * hostile frontend plus a script of what the peer does between our steps
 * (move req_prod, scribble on slots and on our indices).  The backend side
 * polls, takes, decodes every request and answers it, as the session does.
 *
 * Input:  [hdr] [ncmd x (op u8, arg u32)] [page image, zero-padded to 4 KiB]
 *   hdr bit 7: frontend mode (FrontRing against a hostile backend)
 *   hdr bits 0-5: number of script commands
 */

#include <cstring>
#include <algorithm>
#include <deque>
#include <vector>

extern "C" {
#include <xen/errno.h>
}

#include "fuzz_input.h"
#include "protocol/cameraif.h"
#include "protocol/ring.h"

namespace xmb::proto {
namespace {

using fuzz::Input;

constexpr uint32_t kSlots = 32;

alignas(4096) uint8_t gPage[kXenPageSize];

xen_cameraif_sring *sring()
{
	return reinterpret_cast<xen_cameraif_sring *>(gPage);
}

struct Cmd {
	uint8_t op;
	uint32_t arg;
};

/* What decodeCameraRequest must say about \a raw, checked against what it said. */
void checkDecode(const xencamera_req &raw, const Result<CameraRequest> &d)
{
	FUZZ_CHECK(!cameraOpName(raw.operation).empty());
	/* Reserved bytes are ignored (Linux's frontend leaves stale ones): the
	 * same request with them zeroed decodes to the same outcome. */
	xencamera_req clean = raw;
	std::memset(clean.reserved, 0, sizeof(clean.reserved));
	if (clean.operation == XENCAMERA_OP_BUF_CREATE)
		std::memset(clean.req.buf_create.reserved, 0, sizeof(clean.req.buf_create.reserved));
	auto dc = decodeCameraRequest(clean);
	FUZZ_CHECK(dc.ok() == d.ok());
	if (!d.ok())
		FUZZ_CHECK(dc.error().code == d.error().code);
	else
		FUZZ_CHECK(dc.value().body.index() == d.value().body.index());
	if (raw.operation > XENCAMERA_OP_STREAM_STOP) {
		FUZZ_CHECK(!d.ok() && d.error().code == -XEN_ENOSYS);
		return;
	}
	if (!d.ok()) {
		FUZZ_CHECK(d.error().code == -XEN_EINVAL);
		FUZZ_CHECK(!d.error().message.empty());
		return;
	}
	const CameraRequest &r = d.value();
	FUZZ_CHECK(r.id == raw.id && r.op == raw.operation);
	switch (raw.operation) {
	case XENCAMERA_OP_CONFIG_SET:
	case XENCAMERA_OP_CONFIG_VALIDATE: {
		const auto &c = std::get<CameraRequest::Config>(r.body);
		FUZZ_CHECK(c.width >= 1 && c.width <= kMaxWidth);
		FUZZ_CHECK(c.height >= 1 && c.height <= kMaxHeight);
		FUZZ_CHECK(c.fourcc == raw.req.config.pixel_format);
		break;
	}
	case XENCAMERA_OP_FRAME_RATE_SET: {
		const auto &f = std::get<CameraRequest::FrameRate>(r.body);
		/* Carried as sent; a zero term means "keep the rate" to the backend. */
		FUZZ_CHECK(f.num == raw.req.frame_rate.frame_rate_numer);
		FUZZ_CHECK(f.den == raw.req.frame_rate.frame_rate_denom);
		break;
	}
	case XENCAMERA_OP_BUF_REQUEST:
		FUZZ_CHECK(std::get<CameraRequest::BufRequest>(r.body).numBufs ==
			   raw.req.buf_request.num_bufs);
		break;
	case XENCAMERA_OP_BUF_CREATE: {
		const auto &b = std::get<CameraRequest::BufCreate>(r.body);
		FUZZ_CHECK(b.grefDirectory != 0);
		FUZZ_CHECK(b.grefDirectory == raw.req.buf_create.gref_directory);
		break;
	}
	case XENCAMERA_OP_CTRL_ENUM:
		FUZZ_CHECK(std::get<CameraRequest::Index>(r.body).index < XENCAMERA_MAX_CTRL);
		break;
	case XENCAMERA_OP_BUF_DESTROY:
	case XENCAMERA_OP_BUF_QUEUE:
	case XENCAMERA_OP_BUF_DEQUEUE:
		(void)std::get<CameraRequest::Index>(r.body);
		break;
	case XENCAMERA_OP_CTRL_SET:
		FUZZ_CHECK(std::get<CameraRequest::CtrlSet>(r.body).type < XENCAMERA_MAX_CTRL);
		FUZZ_CHECK(cameraCtrlName(std::get<CameraRequest::CtrlSet>(r.body).type));
		break;
	case XENCAMERA_OP_CTRL_GET:
		FUZZ_CHECK(std::get<CameraRequest::CtrlGet>(r.body).type < XENCAMERA_MAX_CTRL);
		break;
	default:
		FUZZ_CHECK(std::holds_alternative<CameraRequest::None>(r.body));
		break;
	}
}

/* The backend, modelled: what it took, what it still owes, where its indices are. */
class Backend
{
public:
	Backend() : start_(sring()->rsp_prod), back_(gPage, kXenPageSize)
	{
		FUZZ_CHECK(back_.size() == kSlots);
	}

	void take(uint32_t max)
	{
		RingPoll p = back_.poll();
		check(p);
		if (p != RingPoll::Work)
			return;
		while (back_.pending() && max--) {
			xencamera_req raw = back_.take();
			taken_++;
			auto d = decodeCameraRequest(raw);
			checkDecode(raw, d);
			owed_.push_back(makeCameraResponse(raw.id, raw.operation, d.ok() ? 0 : d.error().code));
		}
	}

	void respond(uint32_t max)
	{
		while (!owed_.empty() && max--) {
			back_.respond(owed_.front());
			/* The slot holds exactly the response, all 64 bytes. */
			FUZZ_CHECK(!std::memcmp(&sring()->ring[responded() & (kSlots - 1)].rsp,
						&owed_.front(), sizeof(xencamera_resp)));
			owed_.pop_front();
			responded_++;
		}
	}

	void push()
	{
		(void)back_.pushResponses();
		FUZZ_CHECK(sring()->rsp_prod == responded());
	}

	void finalCheck()
	{
		RingPoll p = back_.finalCheck();
		check(p);
		if (p == RingPoll::Empty)
			FUZZ_CHECK(sring()->req_event == start_ + taken_ + 1);
	}

private:
	uint32_t responded() const { return start_ + responded_; }

	void check(RingPoll p)
	{
		if (p == RingPoll::Work) {
			/* Never more requests in flight than the ring has slots. */
			FUZZ_CHECK(back_.pending() >= 1);
			FUZZ_CHECK(back_.pending() + owed_.size() <= kSlots);
		}
	}

	uint32_t start_;
	CameraBackRing back_;
	std::deque<xencamera_resp> owed_;
	uint32_t taken_ = 0;
	uint32_t responded_ = 0;
};

void scribbleSlot(uint32_t arg)
{
	std::memset(&sring()->ring[arg & (kSlots - 1)], static_cast<int>(arg >> 8), sizeof(xencamera_req));
}

void runBackend(const std::vector<Cmd> &script)
{
	Backend b;
	for (const Cmd &c : script) {
		switch (c.op % 12) {
		case 0: b.take(UINT32_MAX); b.respond(UINT32_MAX); b.push(); break;
		case 1: b.take(c.arg % (kSlots + 1)); break;
		case 2: b.respond(c.arg % (kSlots + 1)); break;
		case 3: b.push(); break;
		case 4: b.finalCheck(); break;
		case 5: sring()->req_prod = c.arg; break;
		case 6: sring()->req_prod += c.arg % 40; break;
		case 7: sring()->rsp_event = c.arg; break;
		case 8: scribbleSlot(c.arg); break;
		case 9: sring()->rsp_prod = c.arg; break; /* the guest scribbles on our index */
		case 10: sring()->req_event = c.arg; break;
		default: b.take(UINT32_MAX); b.respond(c.arg % 5); break;
		}
	}
	/* Then serve whatever is left, as the event loop would. */
	for (int i = 0; i < 3; i++) {
		b.take(UINT32_MAX);
		b.respond(UINT32_MAX);
		b.push();
		b.finalCheck();
	}
}

/* FrontRing against a hostile backend: never more responses than requests. */
void runFrontend(const std::vector<Cmd> &script, std::span<const uint8_t> image)
{
	CameraFrontRing front(gPage, kXenPageSize);
	FUZZ_CHECK(sring()->req_event == 1 && sring()->rsp_event == 1);
	/* The backend owns the page from here: it says whatever it likes. */
	std::memcpy(gPage, image.data(), image.size());
	uint32_t pushed = 0, received = 0;
	auto drain = [&](RingPoll p) {
		if (p != RingPoll::Work)
			return;
		FUZZ_CHECK(front.pending() <= pushed - received);
		while (front.pending()) {
			(void)front.take();
			received++;
		}
	};
	for (const Cmd &c : script) {
		switch (c.op % 8) {
		case 0: {
			xencamera_req r;
			std::memset(&r, 0, sizeof(r));
			r.id = static_cast<uint16_t>(c.arg);
			r.operation = static_cast<uint8_t>(c.arg >> 16);
			bool wasFull = front.full();
			bool ok = front.push(r);
			FUZZ_CHECK(ok == !wasFull);
			FUZZ_CHECK(!ok || !std::memcmp(&sring()->ring[pushed & (kSlots - 1)].req, &r, sizeof(r)));
			pushed += ok;
			FUZZ_CHECK(pushed - received <= kSlots);
			break;
		}
		case 1: (void)front.pushRequests(); FUZZ_CHECK(sring()->req_prod == pushed); break;
		case 2: drain(front.poll()); break;
		case 3: drain(front.finalCheck()); break;
		case 4: sring()->rsp_prod = c.arg; break;
		case 5: sring()->rsp_prod += c.arg % 40; break;
		case 6: scribbleSlot(c.arg); break;
		default: sring()->req_event = c.arg; break;
		}
	}
}

} /* namespace */
} /* namespace xmb::proto */

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	using namespace xmb::proto;
	xmb::fuzz::Input in(data, size);
	uint8_t hdr = in.u8();
	std::vector<Cmd> script(hdr & 0x3f);
	for (auto &c : script) {
		c.op = in.u8();
		c.arg = in.u32();
	}
	auto image = in.bytes(kXenPageSize);
	std::memset(gPage, 0, sizeof(gPage));
	if (hdr & 0x80) {
		runFrontend(script, image);
	} else {
		std::memcpy(gPage, image.data(), image.size());
		runBackend(script);
	}
	return 0;
}
