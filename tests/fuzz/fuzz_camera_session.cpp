/* SPDX-License-Identifier: MIT */
/*
 * A whole camera session under a hostile guest: the real CameraService on
 * the loopback platform, a test-pattern camera, and a guest that the fuzz
 * input drives — arbitrary requests (with, on request, a real gref directory
 * the guest shares so BUF_CREATE reaches the mapping code), notifications,
 * frontend state changes (valid, invalid, flapping), ring-index corruption,
 * event-page tampering, and guest death; with or without gntdev dma-buf
 * (be-alloc buffers then being the camera's own, DevicePool).  Each step runs the service's loop
 * for a bounded number of turns, as production does.
 *
 * Invariants: no crash or sanitizer report; the loop always returns; once
 * the service stops, Dom0 maps none of the guest's pages and the guest's
 * grants held by Dom0 are all released.
 */
#include <chrono>
#include <cstring>
#include <memory>

#include "bridge/platform/loopback/loopback_xen.h"
#include "bridge/service/camera_service.h"
#include "bridge/service/event_loop.h"
#include "bridge/service/service_config.h"
#include "fuzz_input.h"
#include "protocol/cameraif.h"
#include "protocol/gref_directory.h"
#include "protocol/xenstore_schema.h"

using namespace xmb;

namespace {

constexpr xen::DomId kGuest = 1;

const char *kConfig[2] = {
	"[camera a]\nsource = test-pattern\n[guest g]\ndomain = 1\ncamera = a\nmax-buffers = 4\nmax-pages = 96\n",
	"[camera a]\nsource = test-pattern\n[guest g]\ndomain = 1\ncamera = a\nmax-buffers = 4\n"
	"max-pages = 96\nbe-alloc = yes\n",
};

struct Guest {
	std::unique_ptr<xen::Platform> pf;
	xen::GrantShare ring, evt, dir, data;
	xen::EventPort req, ev;
	proto::CameraFrontRing front;
	std::string feDir;
};

void pump(service::EventLoop &loop, unsigned turns)
{
	for (unsigned i = 0; i < turns; i++)
		loop.dispatch(0);
}

} /* namespace */

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz::Input in(data, size);
	setenv("XMB_LOG", "*:error", 0);
	const uint8_t mode = in.u8();
	auto hv = xen::LoopbackXen::create();
	/* Bit 1: a Dom0 kernel with gntdev dma-buf, so be-alloc guests get the camera's own buffers. */
	hv->emulateGntdevDmabuf(mode & 2);
	FUZZ_CHECK(hv->createDomain(kGuest, "g"));
	auto dom0 = hv->open(0);
	FUZZ_CHECK(dom0);
	auto cfg = service::parseServiceConfig(kConfig[mode & 1], "fuzz.conf");
	FUZZ_CHECK(cfg);
	service::EventLoop loop;
	auto svc = std::make_unique<service::CameraService>(**dom0, loop);
	FUZZ_CHECK(svc->start(*cfg));
	pump(loop, 2);

	Guest g;
	auto gp = hv->open(kGuest);
	FUZZ_CHECK(gp);
	g.pf = std::move(*gp);
	g.feDir = "/local/domain/1/device/vcamera/0";
	auto ring = g.pf->grants->share(0, 1, true);
	auto evt = g.pf->grants->share(0, 1, true);
	auto req = g.pf->events->allocUnbound(0);
	auto ev = g.pf->events->allocUnbound(0);
	FUZZ_CHECK(ring && evt && req && ev);
	g.ring = std::move(*ring);
	g.evt = std::move(*evt);
	g.req = std::move(*req);
	g.ev = std::move(*ev);
	g.front = proto::CameraFrontRing(g.ring.data(), proto::kXenPageSize);
	/* A real buffer description the guest can point BUF_CREATE at (64 data pages). */
	auto dir = g.pf->grants->share(0, 1, true);
	auto pages = g.pf->grants->share(0, 64, true);
	FUZZ_CHECK(dir && pages);
	g.dir = std::move(*dir);
	g.data = std::move(*pages);
	uint8_t *dirPage = g.dir.data();
	FUZZ_CHECK(proto::writeGrefDirectory(std::span(&dirPage, 1), g.dir.refs(), g.data.refs()));

	proto::VcameraTransport t{ "1", g.ring.refs()[0], g.req.port(), g.evt.refs()[0], g.ev.port() };
	const bool writeVersion = in.u8() & 1;
	for (const auto &[k, v] : proto::formatVcameraTransport(t))
		if (writeVersion || k != "version")
			(void)g.pf->store->write(g.feDir + "/" + k, v);
	(void)g.pf->store->write(g.feDir + "/state", "3");
	pump(loop, 4);

	uint16_t id = 0;
	bool dead = false;
	for (unsigned step = 0; step < 256 && !in.empty() && !dead; step++) {
		switch (in.u8() % 8) {
		case 0:
		case 1:
		case 2: { /* a request: operation and body from the input */
			xencamera_req r{};
			auto body = in.bytes(sizeof(r));
			std::memcpy(&r, body.data(), body.size());
			r.id = id++;
			r.operation %= 16;
			if (r.operation == XENCAMERA_OP_BUF_CREATE && (r.reserved[0] & 1))
				r.req.buf_create.gref_directory = g.dir.refs()[0];
			if (g.front.push(r))
				g.front.pushRequests();
			(void)g.req.notify();
			break;
		}
		case 3: /* consume responses */
			while (g.front.poll() == proto::RingPoll::Work)
				(void)g.front.take();
			break;
		case 4: { /* frontend state: valid, flapping or garbage */
			static const char *states[] = { "1", "2", "3", "4", "5", "6", "7", "x", "" };
			(void)g.pf->store->write(g.feDir + "/state", states[in.u8() % 9]);
			break;
		}
		case 5: { /* ring index tampering: the shared page is the guest's */
			auto *sring = reinterpret_cast<xen_cameraif_sring *>(g.ring.data());
			sring->req_prod += in.u8();
			(void)g.req.notify();
			break;
		}
		case 6: { /* event page tampering, then notify storms */
			auto *page = reinterpret_cast<xencamera_event_page *>(g.evt.data());
			page->in_cons = in.u32();
			for (unsigned i = in.u8() % 8; i; i--)
				(void)g.ev.notify();
			break;
		}
		case 7:
			if ((in.u8() & 15) == 0) {
				(void)hv->destroyDomain(kGuest);
				dead = true;
			} else {
				(void)g.req.notify();
			}
			break;
		}
		pump(loop, 1 + in.u8() % 3);
	}
	pump(loop, 4);
	svc->stop();
	pump(loop, 1);
	FUZZ_CHECK((*dom0)->grants->mappedPages(kGuest) == 0);
	svc.reset();
	FUZZ_CHECK(hv->mappedGrants(kGuest) == 0);
	return 0;
}
