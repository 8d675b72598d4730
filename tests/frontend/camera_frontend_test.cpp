/* SPDX-License-Identifier: MIT */
/* CameraFrontend against a hand-driven backend on the loopback hypervisor. */
#include <set>
#include <atomic>
#include <thread>

extern "C" {
#include <xen/errno.h>
#include <xen/io/xenbus.h>
}

#include "frontend_fixture.h"
#include "v4l2/test_pattern.h"

using namespace xmb;
using namespace xmb::frontend;
using namespace xmb::frontend::test;
using namespace std::chrono_literals;

namespace {

std::string read(xen::Platform &p, const std::string &path)
{
	auto r = p.store->read(path);
	return r ? *r : "<" + r.error().message + ">";
}

} /* namespace */

TEST_F(FrontendTest, DiscoverParsesTheToolstackLayout)
{
	startBackend();
	auto devs = CameraFrontend::discover(*guest);
	ASSERT_TRUE(devs) << devs.error().message;
	ASSERT_EQ(devs->size(), 1u);
	const DeviceInfo &d = devs->front();
	EXPECT_EQ(d.devid, 0u);
	EXPECT_EQ(d.backendId, 0);
	EXPECT_EQ(d.backendPath, "/local/domain/0/backend/vcamera/1/0");
	EXPECT_EQ(d.backendState, XenbusStateInitWait);
	EXPECT_EQ(d.config.uniqueId, "fake-camera-0");
	EXPECT_EQ(d.config.maxBuffers, 4);
	ASSERT_EQ(d.config.formats.size(), 2u);
}

TEST_F(FrontendTest, DiscoverWithoutDevicesIsEmpty)
{
	hv = xen::LoopbackXen::create();
	ASSERT_TRUE(hv->createDomain(1, "guest"));
	auto p1 = hv->open(1);
	ASSERT_TRUE(p1);
	auto devs = CameraFrontend::discover(**p1);
	ASSERT_TRUE(devs) << devs.error().message;
	EXPECT_TRUE(devs->empty());
}

TEST_F(FrontendTest, HandshakePublishesTransportAndConnects)
{
	startBackend();
	connect();
	const std::string fe0 = "/local/domain/1/device/vcamera/0";
	EXPECT_EQ(read(*dom0, fe0 + "/state"), "4");
	EXPECT_EQ(read(*dom0, fe0 + "/version"), "1");
	EXPECT_NE(read(*dom0, fe0 + "/req-ring-ref"), "");
	EXPECT_NE(read(*dom0, fe0 + "/evt-event-channel"), "");
	EXPECT_EQ(read(*dom0, backend->paths.backend + "/state"), "4");
	EXPECT_EQ(backend->connects, 1);
	EXPECT_TRUE(fe->connected());

	fe->disconnect();
	EXPECT_EQ(read(*dom0, fe0 + "/state"), "6");
	EXPECT_EQ(backend->closes, 1);
	EXPECT_FALSE(fe->connected());
	/* Everything the guest granted is released. */
	EXPECT_EQ(hv->grantEntries(1), 0u);
}

/* The reference backend (camera_be) and libxl write no "versions": that is protocol 1. */
TEST_F(FrontendTest, BackendWithoutVersionsNodeSpeaksProtocolOne)
{
	FakeBackendOptions o;
	o.writeVersions = false;
	startBackend(o);
	ASSERT_FALSE(dom0->store->read(backend->paths.backend + "/versions"));
	connect();
	EXPECT_TRUE(fe->connected());
	/* Strict in what we send: our frontend still names its version. */
	EXPECT_EQ(read(*dom0, "/local/domain/1/device/vcamera/0/version"), "1");
	auto c = fe->configGet();
	ASSERT_TRUE(c) << c.error().message;
}

TEST_F(FrontendTest, ReconnectsAfterDisconnect)
{
	startBackend();
	connect();
	fe->disconnect();
	Status s = fe->connect(0, 2000ms);
	ASSERT_TRUE(s) << s.error().message;
	EXPECT_EQ(backend->connects, 2);
	auto c = fe->configGet();
	ASSERT_TRUE(c) << c.error().message;
}

/* A guest may boot before the Dom0 service creates its device: connect waits for it. */
TEST_F(FrontendTest, ConnectWaitsForTheDeviceToBeCreated)
{
	hv = xen::LoopbackXen::create();
	ASSERT_TRUE(hv->createDomain(1, "guest"));
	auto p0 = hv->open(0), p1 = hv->open(1);
	ASSERT_TRUE(p0 && p1);
	dom0 = std::move(*p0);
	guest = std::move(*p1);
	fe = makeFrontend();
	std::thread late([&] {
		std::this_thread::sleep_for(300ms);
		backend = std::make_unique<FakeBackend>(*dom0, FakeBackendOptions{});
		backend->publish();
		backend->start();
	});
	Status s = fe->connect(0, 3000ms);
	late.join();
	ASSERT_TRUE(s) << s.error().message;
	EXPECT_TRUE(fe->connected());
}

TEST_F(FrontendTest, ConnectWithoutADeviceFailsAtTheDeadline)
{
	ASSERT_NO_FATAL_FAILURE(guestWithoutDevice());
	auto t0 = std::chrono::steady_clock::now();
	Status s = fe->connect(0, 200ms);
	ASSERT_FALSE(s);
	EXPECT_EQ(s.error().code, -ENOENT) << s.error().message;
	EXPECT_GE(std::chrono::steady_clock::now() - t0, 200ms);
}

/*
 * GstBaseSrc/GstBaseSink call unlock() then unlock_stop() as soon as they
 * hold a lock the waiting thread let go of: the wait must still end, even
 * though the interrupt was cleared before it saw the wake-up.
 */
TEST_F(FrontendTest, InterruptClearedBeforeTheWaiterWokeStillEndsTheWait)
{
	ASSERT_NO_FATAL_FAILURE(guestWithoutDevice());
	std::atomic<bool> waiting{ false };
	Status s;
	auto t0 = std::chrono::steady_clock::now();
	std::thread waiter([&] {
		waiting = true;
		s = fe->connect(0, 10s); /* no device: it waits */
	});
	while (!waiting)
		std::this_thread::sleep_for(1ms);
	std::this_thread::sleep_for(200ms);
	fe->interrupt();
	fe->clearInterrupt();
	waiter.join();
	EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s) << "the wait slept on to its deadline";
	ASSERT_FALSE(s);
	EXPECT_EQ(s.error().code, -EINTR) << s.error().message;
	/* Cleared: the next wait runs (to its deadline here: still no device). */
	Status again = fe->connect(0, 200ms);
	ASSERT_FALSE(again);
	EXPECT_EQ(again.error().code, -ENOENT) << again.error().message;
}

TEST_F(FrontendTest, ConnectTimesOutWithoutBackend)
{
	startBackend();
	backend->stop(); /* nobody answers Initialised */
	fe = makeFrontend();
	Status s = fe->connect(0, 200ms);
	ASSERT_FALSE(s);
	EXPECT_EQ(s.error().code, -ETIMEDOUT);
	EXPECT_NE(s.error().message.find("Connected"), std::string::npos) << s.error().message;
	/* Nothing left granted after the failed attempt. */
	EXPECT_EQ(hv->grantEntries(1), 0u);
}

TEST_F(FrontendTest, ConfigAndControlRequests)
{
	startBackend();
	connect();
	auto c = fe->configSet(V4L2_PIX_FMT_YUYV, 32, 16);
	ASSERT_TRUE(c) << c.error().message;
	EXPECT_EQ(c->fourcc, uint32_t(V4L2_PIX_FMT_YUYV));
	EXPECT_EQ(c->width, 32u);
	EXPECT_EQ(c->height, 16u);

	auto bad = fe->configValidate(0x31313131, 32, 16);
	ASSERT_FALSE(bad);
	EXPECT_EQ(bad.error().code, -XEN_EINVAL);
	EXPECT_NE(bad.error().message.find("CONFIG_VALIDATE"), std::string::npos)
		<< bad.error().message;

	ASSERT_TRUE(fe->frameRateSet(15, 1));
	auto g = fe->configGet();
	ASSERT_TRUE(g);
	EXPECT_EQ(g->frameRate, (proto::Fraction{ 15, 1 }));

	auto l = fe->getLayout();
	ASSERT_TRUE(l) << l.error().message;
	EXPECT_EQ(l->numPlanes, 1);
	EXPECT_EQ(l->size, 32u * 16 * 2);
	EXPECT_EQ(l->planeStride[0], 64u);

	auto ctrls = fe->ctrlEnumAll();
	ASSERT_TRUE(ctrls) << ctrls.error().message;
	ASSERT_EQ(ctrls->size(), 2u);
	EXPECT_EQ((*ctrls)[1].type, XENCAMERA_CTRL_CONTRAST);
	EXPECT_EQ((*ctrls)[0].min, -100);

	ASSERT_TRUE(fe->ctrlSet(XENCAMERA_CTRL_BRIGHTNESS, -7));
	auto v = fe->ctrlGet(XENCAMERA_CTRL_BRIGHTNESS);
	ASSERT_TRUE(v);
	EXPECT_EQ(*v, -7);
	Status s = fe->ctrlSet(XENCAMERA_CTRL_BRIGHTNESS, 1000);
	ASSERT_FALSE(s);
	EXPECT_EQ(s.error().code, -XEN_EINVAL);
	EXPECT_NE(s.error().message.find("CTRL_SET(brightness=1000)"), std::string::npos);

	auto st = fe->stats();
	EXPECT_GE(st.requests, 9u);
	EXPECT_GT(st.avgRequestMs, 0.0);
}

/* A backend without be-alloc support answers BUF_CREATE and writes no refs. */
TEST_F(FrontendTest, EmptyBeAllocDirectoryIsReportedNotMapped)
{
	FakeBackendOptions o;
	o.beAlloc = true;
	startBackend(o);
	backend->emptyBeAllocDirectory = true;
	connect();
	ASSERT_TRUE(fe->configSet(V4L2_PIX_FMT_NV12, 64, 48));
	auto n = fe->allocateBuffers(2);
	ASSERT_FALSE(n);
	EXPECT_NE(n.error().message.find("does not allocate buffers"), std::string::npos)
		<< n.error().message;
	EXPECT_EQ(hv->mappedGrants(0), 0u) << "no page of the backend mapped";
}

class StreamingTest : public FrontendTest, public ::testing::WithParamInterface<bool>
{
};

TEST_P(StreamingTest, FramesArrivePixelExactAndBuffersAreReleased)
{
	FakeBackendOptions o;
	o.beAlloc = GetParam();
	startBackend(o);
	connect();
	ASSERT_TRUE(fe->configSet(V4L2_PIX_FMT_NV12, 64, 48));
	auto n = fe->allocateBuffers(3);
	ASSERT_TRUE(n) << n.error().message;
	EXPECT_EQ(*n, 3);
	EXPECT_EQ(backend->buffersCreated, 3);
	ASSERT_TRUE(fe->queueAll());
	ASSERT_TRUE(fe->streamStart());

	for (int i = 0; i < 20; i++) {
		auto f = fe->waitFrame(2000ms);
		ASSERT_TRUE(f) << f.error().message;
		auto data = fe->bufferData(f->index);
		ASSERT_GE(data.size(), f->usedSize);
		auto mm = test_pattern::firstMismatch(V4L2_PIX_FMT_NV12, 64, 48, f->seq, data.data(),
						      f->usedSize);
		EXPECT_FALSE(mm) << "frame " << f->seq << " differs at byte " << *mm;
		ASSERT_TRUE(fe->bufQueue(f->index));
	}
	auto st = fe->stats();
	EXPECT_GE(st.frames, 20u); /* one more may arrive during the last BUF_QUEUE */
	EXPECT_EQ(st.drops, 0u);
	EXPECT_EQ(st.protocolErrors, 0u);

	ASSERT_TRUE(fe->streamStop());
	fe->disconnect();
	EXPECT_EQ(backend->buffersDestroyed, 3);
	EXPECT_EQ(hv->grantEntries(1), 0u);          /* guest granted nothing anymore */
	EXPECT_EQ(hv->mappedGrants(1), 0u);          /* Dom0 maps nothing of the guest */
	if (o.beAlloc) {
		EXPECT_EQ(hv->mappedGrants(0), 0u); /* guest maps nothing of Dom0 */
	}
}

INSTANTIATE_TEST_SUITE_P(Alloc, StreamingTest, ::testing::Values(false, true),
			 [](const auto &p) { return p.param ? "BackendAlloc" : "FrontendAlloc"; });

/*
 * A buffer given back while streaming rides with the next BUF_DEQUEUE: one
 * notification, one backend wake-up for both (issue 15: wake-ups per frame).
 */
TEST_F(FrontendTest, GivenBackBuffersGoOutWithTheNextDequeue)
{
	FakeBackendOptions o;
	o.frameIntervalMs = 15;
	startBackend(o);
	connect();
	ASSERT_TRUE(fe->configSet(V4L2_PIX_FMT_NV12, 64, 48));
	ASSERT_TRUE(fe->allocateBuffers(4));
	ASSERT_TRUE(fe->queueAll());
	ASSERT_TRUE(fe->streamStart());
	for (int i = 0; i < 30; i++) {
		auto f = fe->waitFrame(2000ms);
		ASSERT_TRUE(f) << f.error().message;
		auto data = fe->bufferData(f->index);
		EXPECT_FALSE(test_pattern::firstMismatch(V4L2_PIX_FMT_NV12, 64, 48, f->seq, data.data(), f->usedSize));
		ASSERT_TRUE(fe->bufQueue(f->index));
	}
	EXPECT_GE(backend->queueDequeueBatches, 20) << "BUF_QUEUE and BUF_DEQUEUE sent together";
	EXPECT_EQ(fe->stats().protocolErrors, 0u);
	EXPECT_EQ(fe->stats().drops, 0u) << "the backend was never left without a buffer";
	ASSERT_TRUE(fe->streamStop());
	fe->disconnect();
	EXPECT_EQ(backend->buffersDestroyed, 4);
}

TEST_F(FrontendTest, WithTwoBuffersAGivenBackBufferGoesAtOnce)
{
	FakeBackendOptions o;
	o.frameIntervalMs = 15;
	startBackend(o);
	connect();
	ASSERT_TRUE(fe->allocateBuffers(2));
	ASSERT_TRUE(fe->queueAll());
	ASSERT_TRUE(fe->streamStart());
	for (int i = 0; i < 10; i++) {
		auto f = fe->waitFrame(2000ms);
		ASSERT_TRUE(f) << "frame " << i << ": " << f.error().message;
		/* Holding it back would leave the backend one buffer short: a stall or drops. */
		ASSERT_TRUE(fe->bufQueue(f->index));
	}
	EXPECT_EQ(backend->queueDequeueBatches, 0);
	EXPECT_EQ(fe->stats().drops, 0u);
}

TEST_F(FrontendTest, SeqGapsCountAsDrops)
{
	startBackend();
	backend->dropEvery = 5;
	connect();
	ASSERT_TRUE(fe->allocateBuffers(2));
	ASSERT_TRUE(fe->queueAll());
	ASSERT_TRUE(fe->streamStart());
	for (int i = 0; i < 16; i++) {
		auto f = fe->waitFrame(2000ms);
		ASSERT_TRUE(f) << f.error().message;
		ASSERT_TRUE(fe->bufQueue(f->index));
	}
	EXPECT_EQ(fe->stats().drops, 3u); /* after frames 5, 10, 15 */
}

TEST_F(FrontendTest, HostileFrameEventsAreRejected)
{
	startBackend();
	connect();
	ASSERT_TRUE(fe->allocateBuffers(2));
	backend->badIndexOnce = true;
	backend->bigUsedOnce = true;
	ASSERT_TRUE(fe->queueAll());
	ASSERT_TRUE(fe->streamStart());
	/* Index 200 is dropped; the oversized one returns its buffer unused. */
	auto f = fe->waitFrame(2000ms);
	ASSERT_TRUE(f) << f.error().message;
	EXPECT_LT(f->index, 2);
	EXPECT_EQ(fe->stats().protocolErrors, 2u);
	EXPECT_TRUE(fe->bufferData(f->index).size() >= f->usedSize);
}

TEST_F(FrontendTest, ControlChangeEventsAreCollected)
{
	startBackend();
	connect();
	backend->injectCtrlChange(XENCAMERA_CTRL_CONTRAST, 42);
	/* Any request gives the event time to arrive; then poll once more. */
	ASSERT_TRUE(fe->configGet());
	std::vector<ControlChange> changes;
	for (int i = 0; i < 100 && changes.empty(); i++) {
		ASSERT_TRUE(fe->processEvents());
		changes = fe->takeControlChanges();
		if (changes.empty())
			std::this_thread::sleep_for(10ms);
	}
	ASSERT_EQ(changes.size(), 1u);
	EXPECT_EQ(changes[0].type, XENCAMERA_CTRL_CONTRAST);
	EXPECT_EQ(changes[0].value, 42);
}

TEST_F(FrontendTest, RequestTimesOutNamingTheOperation)
{
	startBackend();
	connect();
	backend->ignoreRequests = true;
	fe->setTimeout(100ms);
	auto r = fe->getLayout();
	ASSERT_FALSE(r);
	EXPECT_EQ(r.error().code, -ETIMEDOUT);
	EXPECT_NE(r.error().message.find("BUF_GET_LAYOUT"), std::string::npos);
}

TEST_F(FrontendTest, BackendClosingFailsCalls)
{
	startBackend();
	connect();
	backend->ignoreRequests = true;
	std::thread closer([&] {
		std::this_thread::sleep_for(50ms);
		backend->setState(XenbusStateClosed);
	});
	auto r = fe->configGet();
	closer.join();
	ASSERT_FALSE(r);
	EXPECT_EQ(r.error().code, -ENOTCONN);
	EXPECT_NE(r.error().message.find("went Closed"), std::string::npos) << r.error().message;
	ASSERT_TRUE(fe->broken());
	auto again = fe->streamStart();
	ASSERT_FALSE(again);
	EXPECT_EQ(again.error().code, -ENOTCONN);
}

TEST_F(FrontendTest, ResponseRingOverflowBreaksTheConnection)
{
	startBackend();
	connect();
	backend->corruptRspProd = true;
	auto r = fe->configGet();
	ASSERT_FALSE(r);
	EXPECT_EQ(r.error().code, -EPROTO);
	EXPECT_NE(r.error().message.find("overflow"), std::string::npos) << r.error().message;
}

TEST_F(FrontendTest, BufferIndexChecksAreLocal)
{
	startBackend();
	connect();
	EXPECT_EQ(fe->bufQueue(0).error().code, -EINVAL);
	ASSERT_TRUE(fe->getLayout());
	EXPECT_EQ(fe->bufCreate(0).error().code, -EINVAL); /* no BUF_REQUEST yet */
	ASSERT_TRUE(fe->allocateBuffers(2));
	EXPECT_EQ(fe->bufCreate(1).error().code, -EEXIST);
	EXPECT_TRUE(fe->bufferData(5).empty());
	ASSERT_TRUE(fe->freeBuffers());
	EXPECT_EQ(backend->buffersDestroyed, 2);
	EXPECT_EQ(hv->mappedGrants(1), 2u); /* only the ring and the event page remain */
}

/*
 * The reference backend (EPAM's camera_be) keeps a buffer queued after its
 * FRAME_AVAIL and writes every frame into the head of its queue until the
 * frontend's BUF_DEQUEUE takes it off; it writes no "versions" node and
 * maps the gref directory read-write.  A frontend that reads on FRAME_AVAIL
 * without dequeuing gets every frame in buffer 0 and reads it while it is
 * being written.
 */
struct ReferenceCase {
	bool beAlloc;
	unsigned frameIntervalMs;
};

class ReferenceBackendTest : public FrontendTest, public ::testing::WithParamInterface<ReferenceCase>
{};

TEST_P(ReferenceBackendTest, EveryFrameInEveryBufferInOrderNoneTorn)
{
	FakeBackendOptions o;
	o.referenceQueue = true;
	o.writeVersions = false;
	o.beAlloc = GetParam().beAlloc;
	o.frameIntervalMs = GetParam().frameIntervalMs;
	startBackend(o);
	connect();
	ASSERT_TRUE(fe->configSet(V4L2_PIX_FMT_NV12, 64, 48));
	auto n = fe->allocateBuffers(3);
	ASSERT_TRUE(n) << n.error().message;
	ASSERT_EQ(*n, 3);
	ASSERT_TRUE(fe->queueAll());
	ASSERT_TRUE(fe->streamStart());

	const bool paced = GetParam().frameIntervalMs >= 20;
	std::set<uint8_t> used;
	std::optional<uint32_t> last;
	for (int i = 0; i < 30; i++) {
		auto f = fe->waitFrame(3000ms);
		ASSERT_TRUE(f) << f.error().message;
		used.insert(f->index);
		if (last) {
			EXPECT_GT(f->seq, *last) << "frames out of order";
		}
		last = f->seq;
		auto data = fe->bufferData(f->index);
		ASSERT_GE(data.size(), f->usedSize);
		auto mm = test_pattern::firstMismatch(V4L2_PIX_FMT_NV12, 64, 48, f->seq, data.data(),
						      f->usedSize);
		EXPECT_FALSE(mm) << "frame " << f->seq << " in buffer " << int(f->index)
				 << " is not the frame announced: differs at byte " << *mm;
		if (paced)
			std::this_thread::sleep_for(5ms); /* a consumer doing work */
		ASSERT_TRUE(fe->bufQueue(f->index));
	}
	EXPECT_EQ(used.size(), 3u) << "every buffer carries frames";
	EXPECT_GE(backend->dequeues, 30);
	auto st = fe->stats();
	EXPECT_EQ(st.protocolErrors, 0u);
	if (paced) {
		/* At a camera's pace the dequeue answer comes long before the next frame. */
		EXPECT_EQ(st.drops, 0u);
		EXPECT_EQ(st.superseded, 0u);
	} else {
		/* Faster than the round trip: overwritten frames are counted, never torn.
		 * A frame superseded in a buffer not handed out yet is a gap only later. */
		EXPECT_LE(st.drops, st.superseded);
		EXPECT_LE(st.superseded, st.drops + 3);
	}
	ASSERT_TRUE(fe->streamStop());
	fe->disconnect();
	EXPECT_EQ(hv->grantEntries(1), 0u);
	EXPECT_EQ(hv->mappedGrants(1), 0u);
}

INSTANTIATE_TEST_SUITE_P(Reference, ReferenceBackendTest,
			 ::testing::Values(ReferenceCase{ false, 20 }, ReferenceCase{ true, 20 },
					   ReferenceCase{ false, 1 }),
			 [](const auto &p) {
				 return std::string(p.param.beAlloc ? "BackendAlloc" : "FrontendAlloc") +
					(p.param.frameIntervalMs >= 20 ? "Paced" : "Flooded");
			 });
