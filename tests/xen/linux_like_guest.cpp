/* SPDX-License-Identifier: MIT */
/*
 * xmb-linux-like-guest: a cameraif frontend that behaves on the wire the way
 * Linux's xen-camera-front does (docs/camera-service.md, "Liberal in what we
 * accept"), for a PV DomU in the real-Xen suite:
 *   no "version" node; stale reserved bytes in every request; the format
 *   read (CONFIG_GET) before it is set; FRAME_RATE_SET 0/0 and 1/0 (S_PARM);
 *   USERPTR-style buffers starting 16 bytes into their first page, with
 *   stale plane_offset[1..3] (or, --be-alloc, the backend's pages mapped
 *   writable); BUF_REQUEST again while buffers exist (CREATE_BUFS);
 *   BUF_DEQUEUE after each FRAME_AVAIL.
 * Every frame is checked pixel-exact against the test pattern.
 *
 *   xmb-linux-like-guest [--be-alloc] [--frames N]   (exit 0: all good)
 */
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <poll.h>

extern "C" {
#include <xen/errno.h>
}

#include "bridge/platform/platform.h"
#include "protocol/gref_directory.h"
#include "tests/integration/raw_frontend.h"
#include "v4l2/test_pattern.h"

using namespace xmb;

namespace {

constexpr uint32_t kYUYV = 0x56595559;
constexpr uint32_t kWidth = 320, kHeight = 240;
constexpr uint32_t kStart = 16; /* glibc's malloc'd USERPTR memory, as seen from the driver */

int fail(const std::string &why)
{
	std::fprintf(stderr, "linux-like-guest: FAIL: %s\n", why.c_str());
	return 1;
}

/* A request as the driver leaves it: the slot's old bytes everywhere it does not write. */
xencamera_req stale(uint8_t op)
{
	xencamera_req r = test::RawFrontend::request(op);
	std::memset(r.reserved, 0xea, sizeof(r.reserved));
	return r;
}

struct Buffer {
	xen::GrantShare dir, data; /* frontend-allocated: our pages */
	xen::GrantMapping mapped;  /* be-alloc: the backend's, mapped writable */
	uint8_t *frame = nullptr;
};

} /* namespace */

int main(int argc, char **argv)
{
	bool beAlloc = false;
	int frames = 30;
	for (int i = 1; i < argc; i++) {
		if (!std::strcmp(argv[i], "--be-alloc"))
			beAlloc = true;
		else if (!std::strcmp(argv[i], "--frames") && i + 1 < argc)
			frames = std::atoi(argv[++i]);
		else
			return fail(std::string("unknown argument ") + argv[i]);
	}
	auto p = xen::openRealPlatform();
	if (!p)
		return fail(p.error().message);
	xen::Platform &pf = **p;
	test::RawFrontend fe(pf, 0);
	fe.writeVersion = false;
	fe.timeoutMs = 60000; /* TCG */
	if (!fe.connect())
		return fail("connect (no version node written)");
	auto call = [&](xencamera_req r, const char *what) -> std::optional<xencamera_resp> {
		auto resp = fe.call(r, 30000);
		if (!resp)
			std::fprintf(stderr, "linux-like-guest: %s: no answer\n", what);
		return resp;
	};

	auto get = call(stale(XENCAMERA_OP_CONFIG_GET), "CONFIG_GET");
	if (!get || get->status)
		return fail("CONFIG_GET before CONFIG_SET");
	if (!get->resp.config.colorspace)
		return fail("CONFIG_GET reports COLORSPACE_DEFAULT");
	auto set = stale(XENCAMERA_OP_CONFIG_SET);
	set.req.config = { kYUYV, kWidth, kHeight };
	auto cs = call(set, "CONFIG_SET");
	if (!cs || cs->status)
		return fail("CONFIG_SET YUYV 320x240");
	auto fr00 = stale(XENCAMERA_OP_FRAME_RATE_SET);
	auto fr10 = fr00;
	fr10.req.frame_rate.frame_rate_numer = 1;
	for (auto *fr : { &fr00, &fr10 }) {
		auto r = call(*fr, "FRAME_RATE_SET");
		if (!r || r->status)
			return fail("FRAME_RATE_SET with a zero term");
	}
	auto lay = call(stale(XENCAMERA_OP_BUF_GET_LAYOUT), "BUF_GET_LAYOUT");
	if (!lay || lay->status)
		return fail("BUF_GET_LAYOUT");
	const uint32_t size = lay->resp.buf_layout.size;

	std::vector<Buffer> bufs;
	auto create = [&](uint8_t index) -> bool {
		Buffer b;
		const uint32_t start = beAlloc ? 0 : kStart;
		const size_t pages = (start + size + 4095) / 4096;
		auto dir = pf.grants->share(0, 1, true);
		if (!dir)
			return false;
		b.dir = std::move(*dir);
		if (!beAlloc) {
			auto data = pf.grants->share(0, pages, true);
			if (!data)
				return false;
			b.data = std::move(*data);
			uint8_t *dirPage = b.dir.data();
			if (!proto::writeGrefDirectory(std::span(&dirPage, 1), b.dir.refs(), b.data.refs()))
				return false;
		}
		auto bc = stale(XENCAMERA_OP_BUF_CREATE);
		bc.req.buf_create.index = index;
		bc.req.buf_create.plane_offset[0] = start;
		bc.req.buf_create.plane_offset[1] = 153600; /* stale bytes of an earlier response */
		bc.req.buf_create.plane_offset[2] = 0xffffffea;
		bc.req.buf_create.gref_directory = b.dir.refs()[0];
		auto r = call(bc, "BUF_CREATE");
		if (!r || r->status) {
			std::fprintf(stderr, "linux-like-guest: BUF_CREATE %u: %d\n", index, r ? r->status : 0);
			return false;
		}
		if (beAlloc) {
			std::vector<xen::Gref> refs(pages);
			std::memcpy(refs.data(), b.dir.data() + sizeof(xen::Gref), pages * sizeof(xen::Gref));
			auto m = pf.grants->map(0, refs, true); /* writable, as Linux maps them */
			if (!m) {
				std::fprintf(stderr, "linux-like-guest: map be-alloc pages writable: %s\n",
					     m.error().message.c_str());
				return false;
			}
			b.mapped = std::move(*m);
			b.frame = b.mapped.data();
		} else {
			b.frame = b.data.data() + start;
		}
		bufs.push_back(std::move(b));
		return true;
	};
	auto br = stale(XENCAMERA_OP_BUF_REQUEST);
	br.req.buf_request.num_bufs = 2;
	auto got = call(br, "BUF_REQUEST");
	if (!got || got->status || got->resp.buf_request.num_bufs != 2)
		return fail("BUF_REQUEST 2");
	for (uint8_t i = 0; i < 2; i++)
		if (!create(i))
			return fail("BUF_CREATE " + std::to_string(i));
	/* CREATE_BUFS: one more, at the next index; the answer is the number added. */
	br.req.buf_request.num_bufs = 1;
	got = call(br, "BUF_REQUEST (CREATE_BUFS)");
	if (!got || got->status || got->resp.buf_request.num_bufs != 1)
		return fail("BUF_REQUEST while buffers exist must add one");
	if (!create(2))
		return fail("BUF_CREATE 2 (the added buffer)");

	for (uint8_t i = 0; i < bufs.size(); i++) {
		auto q = stale(XENCAMERA_OP_BUF_QUEUE);
		q.req.index.index = i;
		auto r = call(q, "BUF_QUEUE");
		if (!r || r->status)
			return fail("BUF_QUEUE");
	}
	auto ss = call(stale(XENCAMERA_OP_STREAM_START), "STREAM_START");
	if (!ss || ss->status)
		return fail("STREAM_START");

	int seen = 0, bad = 0;
	std::vector<bool> used(bufs.size(), false);
	while (seen < frames) {
		bool overflow = false;
		auto e = fe.events_.next(overflow);
		if (overflow)
			return fail("event page overflow");
		if (!e) {
			pollfd pfd{ pf.events->fd(), POLLIN, 0 };
			if (::poll(&pfd, 1, 30000) != 1)
				return fail("no frame for 30 s after " + std::to_string(seen));
			while (auto port = pf.events->pending()) {
				if (!port->has_value())
					break;
				(void)(**port == fe.req_.port() ? fe.req_.unmask() : fe.evtPort_.unmask());
			}
			continue;
		}
		if (e->type != XENCAMERA_EVT_FRAME_AVAIL)
			continue;
		const auto f = e->evt.frame_avail;
		if (f.index >= bufs.size())
			return fail("FRAME_AVAIL for buffer " + std::to_string(f.index));
		auto dq = stale(XENCAMERA_OP_BUF_DEQUEUE);
		dq.req.index.index = f.index;
		auto dr = call(dq, "BUF_DEQUEUE");
		if (!dr || dr->status)
			return fail("BUF_DEQUEUE after FRAME_AVAIL");
		const uint8_t *frame = bufs[f.index].frame;
		auto counter = test_pattern::readCounter(kYUYV, kWidth, kHeight, frame, f.used_sz);
		if (!counter ||
		    test_pattern::firstMismatch(kYUYV, kWidth, kHeight, *counter, frame, f.used_sz))
			bad++;
		if (!beAlloc)
			for (uint32_t i = 0; i < kStart; i++)
				if (bufs[f.index].data.data()[i])
					return fail("a byte before the buffer's start was written");
		used[f.index] = true;
		seen++;
		auto q = stale(XENCAMERA_OP_BUF_QUEUE);
		q.req.index.index = f.index;
		auto qr = call(q, "BUF_QUEUE");
		if (!qr || qr->status)
			return fail("BUF_QUEUE again");
	}
	auto st = call(stale(XENCAMERA_OP_STREAM_STOP), "STREAM_STOP");
	if (!st || st->status)
		return fail("STREAM_STOP");
	for (uint8_t i = 0; i < bufs.size(); i++) {
		bufs[i].mapped.reset();
		auto d = stale(XENCAMERA_OP_BUF_DESTROY);
		d.req.index.index = i;
		(void)call(d, "BUF_DESTROY");
	}
	int usedCount = 0;
	for (bool u : used)
		usedCount += u;
	std::printf("linux-like-guest: %s: %d frames, %d not pixel-exact, %d of %zu buffers used\n",
		    beAlloc ? "be-alloc" : "frontend-allocated (16 bytes into the first page)", seen, bad,
		    usedCount, bufs.size());
	if (bad)
		return fail(std::to_string(bad) + " frames differ from the test pattern");
	if (usedCount != static_cast<int>(bufs.size()))
		return fail("not every buffer carried frames");
	std::printf("linux-like-guest: PASS\n");
	return 0;
}
