/* SPDX-License-Identifier: MIT */
/* vcodec wire protocol: decode, hostile requests, event page, XenStore schema, fuzz seeds. */
#include <cstring>
#include <random>
#include <vector>

#include <gtest/gtest.h>

extern "C" {
#include <xen/errno.h>
}

#include "protocol/vcodec.h"
#include "protocol/vcodec_schema.h"

using namespace xmb::proto;

namespace {

xenvcodec_req openReq()
{
	xenvcodec_req r = makeCodecRequest(7, XENVCODEC_OP_OPEN);
	auto &c = r.req.config;
	c.codec = XENVCODEC_CODEC_VP8;
	c.raw_fourcc = 0x32315559;
	c.width = 640;
	c.height = 480;
	c.frame_rate_numer = 30;
	c.frame_rate_denom = 1;
	c.bitrate = 1000000;
	c.rc_mode = XENVCODEC_RC_VBR;
	return r;
}

} /* namespace */

TEST(VcodecDecode, OpenValid)
{
	auto r = decodeCodecRequest(openReq());
	ASSERT_TRUE(r) << r.error().message;
	EXPECT_EQ(r->id, 7);
	auto &o = std::get<CodecRequest::Open>(r->body);
	EXPECT_EQ(o.width, 640u);
	EXPECT_EQ(o.codec, unsigned(XENVCODEC_CODEC_VP8));
}

TEST(VcodecDecode, UnknownOpIsEnosys)
{
	for (unsigned op : { 0x0au, 0x42u, 0xffu }) {
		auto r = decodeCodecRequest(makeCodecRequest(1, uint8_t(op)));
		ASSERT_FALSE(r);
		EXPECT_EQ(r.error().code, -XEN_ENOSYS) << op;
	}
}

TEST(VcodecDecode, HostileOpen)
{
	auto bad = [](auto mutate) {
		xenvcodec_req r = openReq();
		mutate(r);
		auto d = decodeCodecRequest(r);
		return !d && d.error().code == -XEN_EINVAL;
	};
	EXPECT_TRUE(bad([](xenvcodec_req &r) { r.req.config.width = 0; }));
	EXPECT_TRUE(bad([](xenvcodec_req &r) { r.req.config.width = 8194; }));
	EXPECT_TRUE(bad([](xenvcodec_req &r) { r.req.config.height = 481; }));
	EXPECT_TRUE(bad([](xenvcodec_req &r) { r.req.config.width = 0xffffffff; }));
	EXPECT_TRUE(bad([](xenvcodec_req &r) { r.req.config.codec = 0; }));
	EXPECT_TRUE(bad([](xenvcodec_req &r) { r.req.config.codec = 99; }));
	EXPECT_TRUE(bad([](xenvcodec_req &r) { r.req.config.frame_rate_denom = 0; }));
	EXPECT_TRUE(bad([](xenvcodec_req &r) { r.req.config.frame_rate_numer = 0; }));
	/* 1 fps, but terms that an int cannot hold (cast to int they are negative) */
	EXPECT_TRUE(bad([](xenvcodec_req &r) {
		r.req.config.frame_rate_numer = 0xffffffffu;
		r.req.config.frame_rate_denom = 0xffffffffu;
	}));
	EXPECT_FALSE(bad([](xenvcodec_req &r) {
		r.req.config.frame_rate_numer = 30000;
		r.req.config.frame_rate_denom = 1001;
	}));
	EXPECT_TRUE(bad([](xenvcodec_req &r) { r.req.config.rc_mode = 3; }));
	EXPECT_TRUE(bad([](xenvcodec_req &r) { r.req.config.bitrate = 0; }));
	EXPECT_TRUE(bad([](xenvcodec_req &r) { r.req.config.reserved[19] = 1; }));
	EXPECT_TRUE(bad([](xenvcodec_req &r) { r.reserved[0] = 1; }));
	EXPECT_TRUE(bad([](xenvcodec_req &r) {
		r.req.config.rc_mode = XENVCODEC_RC_CQP;
		r.req.config.qp = 200;
	}));
}

TEST(VcodecDecode, HostileBuffers)
{
	xenvcodec_req r = makeCodecRequest(1, XENVCODEC_OP_BUF_CREATE);
	r.req.buf_create.type = XENVCODEC_BUF_INPUT;
	r.req.buf_create.index = 3;
	r.req.buf_create.size = 4096;
	r.req.buf_create.gref_directory = 9;
	ASSERT_TRUE(decodeCodecRequest(r));
	auto mut = r;
	mut.req.buf_create.index = XENVCODEC_MAX_BUFFERS;
	EXPECT_FALSE(decodeCodecRequest(mut));
	mut = r;
	mut.req.buf_create.type = 2;
	EXPECT_FALSE(decodeCodecRequest(mut));
	mut = r;
	mut.req.buf_create.gref_directory = 0;
	EXPECT_FALSE(decodeCodecRequest(mut));
	mut = r;
	mut.req.buf_create.size = 0;
	EXPECT_FALSE(decodeCodecRequest(mut));
	mut = r;
	mut.req.buf_create.type = XENVCODEC_BUF_OUTPUT;
	mut.req.buf_create.plane_offset[1] = 100;
	EXPECT_FALSE(decodeCodecRequest(mut));

	xenvcodec_req q = makeCodecRequest(2, XENVCODEC_OP_QUEUE_RAW);
	q.req.queue_raw.index = 1;
	q.req.queue_raw.flags = XENVCODEC_FRAME_FLAG_KEY;
	q.req.queue_raw.timestamp = ~0ull;
	auto d = decodeCodecRequest(q);
	ASSERT_TRUE(d);
	EXPECT_EQ(std::get<CodecRequest::QueueRaw>(d->body).timestamp, ~0ull);
	q.req.queue_raw.flags = 0x80;
	EXPECT_FALSE(decodeCodecRequest(q));
	q.req.queue_raw.flags = 0;
	q.req.queue_raw.index = 200;
	EXPECT_FALSE(decodeCodecRequest(q));

	xenvcodec_req o = makeCodecRequest(3, XENVCODEC_OP_QUEUE_OUT);
	o.req.buf_index.type = XENVCODEC_BUF_INPUT;
	EXPECT_FALSE(decodeCodecRequest(o)); /* QUEUE_OUT is for OUTPUT buffers */
	o.req.buf_index.type = XENVCODEC_BUF_OUTPUT;
	EXPECT_TRUE(decodeCodecRequest(o));

	xenvcodec_req b = makeCodecRequest(4, XENVCODEC_OP_SET_BITRATE);
	EXPECT_FALSE(decodeCodecRequest(b)); /* 0 bit/s */
	b.req.bitrate.bitrate = 500000;
	EXPECT_TRUE(decodeCodecRequest(b));

	xenvcodec_req k = makeCodecRequest(5, XENVCODEC_OP_FORCE_KEY);
	EXPECT_TRUE(decodeCodecRequest(k));
	k.req.reserved[55] = 1;
	EXPECT_FALSE(decodeCodecRequest(k));
}

TEST(VcodecWire, ResponsesAndEventsFullyInitialised)
{
	auto resp = makeCodecResponse(9, XENVCODEC_OP_DRAIN, -XEN_EBUSY);
	EXPECT_EQ(resp.reserved, 0);
	for (uint8_t b : resp.resp.reserved)
		EXPECT_EQ(b, 0);
	auto e = makeBitstreamEvent(1, 2, 1234, true, 99, 5);
	EXPECT_EQ(e.type, XENVCODEC_EVT_BITSTREAM_READY);
	EXPECT_EQ(e.evt.bitstream.flags, XENVCODEC_BS_FLAG_KEY);
	for (uint8_t b : e.evt.bitstream.reserved2)
		EXPECT_EQ(b, 0);
}

TEST(VcodecEventPage, ProducerConsumerAndHostileIndices)
{
	alignas(4096) static uint8_t page[4096];
	CodecEventReader reader(page);
	CodecEventWriter writer(page);
	for (unsigned i = 0; i < XENVCODEC_IN_RING_LEN; i++)
		ASSERT_EQ(writer.put(makeInputDoneEvent(uint16_t(i), 0, i)), CodecEventWriter::Put::Ok);
	EXPECT_EQ(writer.put(makeDrainedEvent(0)), CodecEventWriter::Put::Full);
	bool overflow = false;
	for (unsigned i = 0; i < XENVCODEC_IN_RING_LEN; i++) {
		auto e = reader.next(overflow);
		ASSERT_TRUE(e);
		EXPECT_EQ(e->evt.input_done.timestamp, i);
	}
	EXPECT_FALSE(reader.next(overflow));
	/* A guest claiming to have consumed events never produced. */
	auto *hdr = reinterpret_cast<xenvcodec_event_page *>(page);
	hdr->in_cons += 1000;
	EXPECT_EQ(writer.put(makeDrainedEvent(0)), CodecEventWriter::Put::Invalid);
	/* A backend claiming impossible in_prod. */
	hdr->in_prod = 0x12345678;
	EXPECT_FALSE(reader.next(overflow));
	EXPECT_TRUE(overflow);
}

TEST(VcodecSchema, RoundTrip)
{
	VcodecConfig c;
	c.codecs.push_back({ XENVCODEC_CODEC_VP8, { 0x32315559, 0x3231564e }, { 0, 1, 2 }, { "0" }, { 0 } });
	c.codecs.push_back({ XENVCODEC_CODEC_H264, { 0x32315559 }, { 1 }, { "constrained-baseline" }, { 0, 40 } });
	c.minWidth = c.minHeight = 16;
	c.maxWidth = 4096;
	c.maxHeight = 2304;
	c.maxBuffers = 8;
	c.maxBitrate = 50000000;
	auto kv = formatVcodecConfig(c);
	EXPECT_EQ(kv.at("codecs"), "vp8,h264");
	EXPECT_EQ(kv.at("codec/vp8/raw-formats"), "YU12,NV12");
	auto p = parseVcodecConfig(mapView(kv));
	ASSERT_TRUE(p) << p.error().message;
	EXPECT_EQ(*p, c);
	EXPECT_EQ(kv.count("be-alloc"), 0u) << "not written when off: older frontends never see it";
	c.beAlloc = true;
	auto kb = formatVcodecConfig(c);
	EXPECT_EQ(kb.at("be-alloc"), "1");
	auto pb = parseVcodecConfig(mapView(kb));
	ASSERT_TRUE(pb) << pb.error().message;
	EXPECT_TRUE(pb->beAlloc);
	EXPECT_EQ(kv.count("input-dmabuf"), 0u) << "not written when off: frontends keep INPUT read-only";
	EXPECT_FALSE(pb->inputDmaBuf);
	c.inputDmaBuf = true;
	auto kd = formatVcodecConfig(c);
	EXPECT_EQ(kd.at("input-dmabuf"), "1");
	auto pd = parseVcodecConfig(mapView(kd));
	ASSERT_TRUE(pd) << pd.error().message;
	EXPECT_EQ(*pd, c);

	VcodecTransport t{ "1", 10, 11, 12, 13 };
	auto tk = formatVcodecTransport(t);
	auto pt = parseVcodecTransport(mapView(tk), { "1" });
	ASSERT_TRUE(pt) << pt.error().message;
	EXPECT_EQ(*pt, t);
	EXPECT_FALSE(parseVcodecTransport(mapView(tk), { "2" }));
}

TEST(VcodecSchema, HostileValuesNameTheKey)
{
	std::map<std::string, std::string> kv = {
		{ "codecs", "vp8" },	     { "codec/vp8/raw-formats", "YU12" },
		{ "codec/vp8/rc-modes", "vbr" }, { "codec/vp8/profiles", "0" },
		{ "codec/vp8/levels", "0" },     { "min-size", "16x16" },
		{ "max-size", "4096x4096" },     { "max-buffers", "8" },
		{ "max-bitrate", "1000000" },
	};
	ASSERT_TRUE(parseVcodecConfig(mapView(kv)));
	auto expectBad = [&](const std::string &k, const std::string &v, const std::string &inMsg) {
		auto m = kv;
		m[k] = v;
		auto r = parseVcodecConfig(mapView(m));
		ASSERT_FALSE(r) << k << "=" << v;
		EXPECT_NE(r.error().message.find(inMsg), std::string::npos) << r.error().message;
	};
	expectBad("codecs", "vp8,vp8", "duplicate");
	expectBad("codecs", "mpeg2", "unknown codec");
	expectBad("codecs", "", "empty");
	expectBad("codec/vp8/rc-modes", "magic", "rc-modes");
	expectBad("codec/vp8/profiles", "Main Profile", "profiles");
	expectBad("max-buffers", "33", "max-buffers");
	expectBad("max-buffers", "0", "max-buffers");
	expectBad("max-size", "8x8", "min-size");
	expectBad("min-size", "-1x16", "min-size");
	expectBad("be-alloc", "yes", "be-alloc");
	expectBad("input-dmabuf", "true", "input-dmabuf");
	auto m = kv;
	m.erase("codec/vp8/levels");
	EXPECT_FALSE(parseVcodecConfig(mapView(m)));

	std::map<std::string, std::string> t = { { "version", "1" }, { "req-ring-ref", "0" },
						 { "req-event-channel", "5" }, { "evt-page-ref", "6" },
						 { "evt-event-channel", "7" } };
	EXPECT_FALSE(parseVcodecTransport(mapView(t), { "1" }));
	t["req-ring-ref"] = "99999999999";
	EXPECT_FALSE(parseVcodecTransport(mapView(t), { "1" }));
}

/* The fuzz entry point on a few seeds (valid requests, garbage, random bytes). */
TEST(VcodecFuzz, ReplaySeeds)
{
	std::vector<uint8_t> seeds;
	auto add = [&](const xenvcodec_req &r) {
		const auto *p = reinterpret_cast<const uint8_t *>(&r);
		seeds.insert(seeds.end(), p, p + sizeof(r));
	};
	add(openReq());
	for (uint8_t op = 0; op <= XENVCODEC_OP_MAX + 1; op++)
		add(makeCodecRequest(op, op));
	xenvcodec_req all;
	std::memset(&all, 0xff, sizeof(all));
	add(all);
	EXPECT_EQ(fuzzCodecRequests(seeds.data(), seeds.size()), 0);
	std::mt19937 rng(1234);
	std::vector<uint8_t> junk(64 * 4096);
	for (auto &b : junk)
		b = uint8_t(rng());
	EXPECT_EQ(fuzzCodecRequests(junk.data(), junk.size()), 0);
	/* Random bytes with a valid op and zeroed reserved header: reach the body checks. */
	for (size_t off = 0; off < junk.size(); off += 64) {
		junk[off + 2] %= XENVCODEC_OP_MAX + 1;
		std::memset(&junk[off + 3], 0, 5);
	}
	EXPECT_EQ(fuzzCodecRequests(junk.data(), junk.size()), 0);
	EXPECT_EQ(fuzzCodecRequests(nullptr, 0), 0);
	EXPECT_EQ(fuzzCodecRequests(junk.data(), 63), 0);
}
