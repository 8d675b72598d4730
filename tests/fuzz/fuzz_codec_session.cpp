/* SPDX-License-Identifier: MIT */
/*
 * A whole vcodec session under a hostile guest: the real CodecService on
 * the loopback platform, an encoder the fuzz input drives (it finishes
 * frames, emits bitstreams of any size, drains, fails, in any order), and a
 * guest the input drives too: arbitrary requests (OPEN, when asked, with a
 * valid small configuration; BUF_CREATE pointing at a real gref directory
 * the guest shares, so the mapping code runs), notifications, frontend
 * state changes, ring-index corruption, event-page tampering, guest death.
 * Each step runs the service's loop for a bounded number of turns.
 *
 * Invariants: no crash or sanitizer report; the loop always returns; every
 * frame handed to the encoder is released exactly once; once the service
 * stops, Dom0 maps none of the guest's pages.
 */
#include <cstring>
#include <deque>
#include <memory>
#include <vector>

#include "bridge/platform/loopback/loopback_xen.h"
#include "bridge/service/event_loop.h"
#include "bridge/vcodec/codec_service.h"
#include "fuzz_input.h"
#include "protocol/gref_directory.h"
#include "protocol/vcodec.h"
#include "protocol/vcodec_schema.h"

using namespace xmb;

namespace {

constexpr xen::DomId kGuest = 1;
constexpr uint32_t kYU12 = 0x32315559;

class ScriptedEncoder;

/* What the fuzz input makes the encoder do; shared by every encoder the session opens. */
struct EncoderScript {
	fuzz::Input *in = nullptr;
	uint64_t live = 0; /* frames handed to an encoder and not released yet */
	std::vector<ScriptedEncoder *> encoders; /* alive now, newest last */
};

class ScriptedEncoder final : public vcodec::Encoder
{
public:
	ScriptedEncoder(const vcodec::EncodeParams &p, vcodec::EncoderSink sink, EncoderScript &script)
		: sink_(std::move(sink)), script_(script), importing_(p.importRawDmaBufs)
	{
		const uint32_t luma = p.width * p.height;
		layout_.size = luma * 3 / 2;
		layout_.numPlanes = 3;
		layout_.offset[1] = luma;
		layout_.offset[2] = luma + luma / 4;
		layout_.stride[0] = p.width;
		layout_.stride[1] = layout_.stride[2] = p.width / 2;
		script_.encoders.push_back(this);
	}
	~ScriptedEncoder() override
	{
		stop();
		std::erase(script_.encoders, this);
	}

	std::string description() const override { return "scripted"; }
	const vcodec::RawLayout &layout() const override { return layout_; }

	Status encode(const uint8_t *data, uint64_t seq, uint64_t, bool forceKey,
		      std::function<void()> release) override
	{
		/* Read the guest's frame the way an encoder does (ASan sees an unmapped page). */
		volatile uint8_t sum = data[0] ^ data[layout_.size - 1];
		(void)sum;
		script_.live++;
		frames_.push_back({ seq, forceKey, std::move(release) });
		return {};
	}
	/* input-dmabuf (an Arm Dom0): the script decides whether the "driver" can read them. */
	bool importsRawDmaBufs() const override { return importing_; }
	Status encodeDmaBuf(unsigned, int fd, uint64_t seq, uint64_t, bool forceKey,
			    std::function<void()> release) override
	{
		if (!importing_)
			return Error{ -ENOTSUP, "not importing" };
		if (!imported_ && (script_.in->u8() & 3) == 0) {
			importing_ = false; /* refused: the frame is not taken, release not called */
			return Error{ -ENOTSUP, "scripted refusal" };
		}
		FUZZ_CHECK(fd >= 0);
		imported_ = true;
		script_.live++;
		frames_.push_back({ seq, forceKey, std::move(release) });
		return {};
	}
	bool stopImportingRawDmaBufs() override
	{
		if (imported_)
			return !importing_;
		importing_ = false;
		return true;
	}
	Status setBitrate(uint32_t) override { return {}; }
	Status drain() override
	{
		draining_ = true;
		return {};
	}
	void stop() override
	{
		while (!frames_.empty())
			finish(false);
		draining_ = false;
	}
	Status restart() override
	{
		draining_ = false;
		return {};
	}

	/* One scripted action: finish a frame (with a bitstream of any size), drain, fail. */
	void step()
	{
		switch (script_.in->u8() % 4) {
		case 0:
		case 1:
			if (!frames_.empty())
				finish(true);
			break;
		case 2:
			if (draining_ && frames_.empty()) {
				draining_ = false;
				sink_.drained();
			}
			break;
		case 3:
			if ((script_.in->u8() & 7) == 0)
				sink_.error("scripted failure");
			break;
		}
	}

private:
	struct Frame {
		uint64_t seq;
		bool key;
		std::function<void()> release;
	};

	void finish(bool emit)
	{
		Frame f = std::move(frames_.front());
		frames_.pop_front();
		f.release();
		script_.live--;
		if (!emit)
			return;
		static uint8_t bits[1 << 20];
		vcodec::Bitstream b;
		b.data = bits;
		b.size = script_.in->u32() % sizeof(bits); /* may exceed the OUTPUT buffer */
		b.key = f.key;
		b.seq = f.seq;
		sink_.bitstream(std::move(b));
	}

	vcodec::EncoderSink sink_;
	EncoderScript &script_;
	vcodec::RawLayout layout_;
	std::deque<Frame> frames_;
	bool draining_ = false;
	bool importing_ = false;
	bool imported_ = false;
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
	auto hv = xen::LoopbackXen::create();
	/* One input in two: Dom0 as on Arm, where the guest's frames may reach the encoder as dma-bufs. */
	const bool arm = in.u8() & 1;
	hv->emulateGntdevDmabuf(arm);
	hv->emulateDmabufExport(arm);
	FUZZ_CHECK(hv->createDomain(kGuest, "g"));
	auto dom0 = hv->open(0);
	FUZZ_CHECK(dom0);

	EncoderScript script{ &in };
	vcodec::EncoderFactory factory = [&](const vcodec::EncodeParams &p, const proto::CodecCaps &,
					     vcodec::EncoderSink sink) -> Result<std::unique_ptr<vcodec::Encoder>> {
		auto e = std::make_unique<ScriptedEncoder>(p, std::move(sink), script);
		return std::unique_ptr<vcodec::Encoder>(std::move(e));
	};
	proto::CodecCaps vp8;
	vp8.codec = XENVCODEC_CODEC_VP8;
	vp8.rawFormats = { kYU12 };
	vp8.rcModes = { XENVCODEC_RC_VBR, XENVCODEC_RC_CQP };
	vcodec::CodecGuest guest;
	guest.name = "g";
	guest.domid = kGuest;
	guest.maxBuffers = 4;
	guest.maxPages = 64;
	guest.maxWidth = guest.maxHeight = 64;

	service::EventLoop loop;
	auto svc = std::make_unique<vcodec::CodecService>(**dom0, loop, std::vector{ vp8 }, factory);
	vcodec::CodecServiceConfig cfg{ { guest } };
	cfg.importGuestFrames = true;
	FUZZ_CHECK(svc->start(cfg));
	pump(loop, 2);

	auto gp = hv->open(kGuest);
	FUZZ_CHECK(gp);
	std::unique_ptr<xen::Platform> g = std::move(*gp);
	const std::string feDir = "/local/domain/1/device/vcodec/0";
	auto ringShare = g->grants->share(0, 1, true);
	auto evtShare = g->grants->share(0, 1, true);
	auto reqPort = g->events->allocUnbound(0);
	auto evtPort = g->events->allocUnbound(0);
	FUZZ_CHECK(ringShare && evtShare && reqPort && evtPort);
	proto::CodecFrontRing front(ringShare->data(), xen::kPageSize);
	/* A buffer the guest can point BUF_CREATE at: 16 data pages behind one directory page. */
	auto dir = g->grants->share(0, 1, true);
	auto pages = g->grants->share(0, 16, true);
	FUZZ_CHECK(dir && pages);
	uint8_t *dirPage = dir->data();
	FUZZ_CHECK(proto::writeGrefDirectory(std::span(&dirPage, 1), dir->refs(), pages->refs()));

	proto::VcodecTransport t{ XENVCODEC_PROTOCOL_VERSION, ringShare->refs()[0], reqPort->port(),
				  evtShare->refs()[0], evtPort->port() };
	for (const auto &[k, v] : proto::formatVcodecTransport(t))
		(void)g->store->write(feDir + "/" + k, v);
	(void)g->store->write(feDir + "/state", "3");
	pump(loop, 4);

	uint16_t id = 0;
	bool dead = false;
	for (unsigned step = 0; step < 256 && !in.empty() && !dead; step++) {
		switch (in.u8() % 9) {
		case 0:
		case 1:
		case 2: { /* a request: operation and body from the input */
			xenvcodec_req r{};
			auto body = in.bytes(sizeof(r));
			std::memcpy(&r, body.data(), body.size());
			r.id = id++;
			/* The operation's top bit asks for a usable OPEN / BUF_CREATE (reserved bytes stay the input's). */
			const bool usable = r.operation & 0x80;
			r.operation = static_cast<uint8_t>((r.operation & 0x7f) % 12);
			if (r.operation == XENVCODEC_OP_OPEN && usable) {
				/* A valid small configuration, so the rest of the session is reachable. */
				auto &c = r.req.config;
				c.codec = XENVCODEC_CODEC_VP8;
				c.raw_fourcc = kYU12;
				c.width = 16 + 16 * (c.width % 4);
				c.height = 16 + 16 * (c.height % 4);
				c.rc_mode = XENVCODEC_RC_VBR;
				c.bitrate = 1000000;
				c.frame_rate_numer = 30;
				c.frame_rate_denom = 1;
			}
			if (r.operation == XENVCODEC_OP_BUF_CREATE && usable)
				r.req.buf_create.gref_directory = dir->refs()[0];
			if (front.push(r))
				front.pushRequests();
			(void)reqPort->notify();
			break;
		}
		case 3: /* consume responses */
			while (front.poll() == proto::RingPoll::Work)
				(void)front.take();
			break;
		case 4: { /* frontend state: valid, flapping or garbage */
			static const char *states[] = { "1", "2", "3", "4", "5", "6", "7", "x", "" };
			(void)g->store->write(feDir + "/state", states[in.u8() % 9]);
			break;
		}
		case 5: { /* ring index tampering: the shared page is the guest's */
			auto *sring = reinterpret_cast<xen_vcodec_sring *>(ringShare->data());
			sring->req_prod += in.u8();
			(void)reqPort->notify();
			break;
		}
		case 6: { /* event page tampering, then notify storms */
			auto *page = reinterpret_cast<xenvcodec_event_page *>(evtShare->data());
			page->in_cons = in.u32();
			for (unsigned i = in.u8() % 8; i; i--)
				(void)evtPort->notify();
			break;
		}
		case 7: /* the encoder does something */
			if (!script.encoders.empty())
				script.encoders.back()->step();
			break;
		case 8:
			if ((in.u8() & 15) == 0) {
				(void)hv->destroyDomain(kGuest);
				dead = true;
			} else {
				(void)reqPort->notify();
			}
			break;
		}
		pump(loop, 1 + in.u8() % 3);
	}
	pump(loop, 4);
	svc->stop();
	pump(loop, 1);
	FUZZ_CHECK(script.live == 0);
	FUZZ_CHECK((*dom0)->grants->mappedPages(kGuest) == 0);
	svc.reset();
	FUZZ_CHECK(hv->mappedGrants(kGuest) == 0);
	return 0;
}
