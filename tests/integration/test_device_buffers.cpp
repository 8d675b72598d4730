/* SPDX-License-Identifier: MIT */
/*
 * Tier "device buffers granted (dma-buf)": be-alloc guests get the
 * camera's own buffers through gntdev's dma-buf import (imp_to_refs), on
 * the loopback platform emulating a Dom0 kernel that has it.
 */
#include <cstring>

#include <gmock/gmock.h>

#include "bridge/service/device_pool.h"
#include "bridge/service/source_factory.h"
#include "service_fixture.h"
#include "../common/forwarding_source.h"
#include "v4l2/test_pattern.h"
#include "v4l2/test_pattern_camera.h"

using namespace xmb;
using namespace xmb::test;
using frontend::CameraFrontend;
using namespace std::chrono_literals;

namespace {

constexpr uint32_t kNV12 = 0x3231564e;
constexpr uint32_t kW = 320, kH = 240;
constexpr uint64_t kFrame = kW * kH * 3 / 2;

std::string guests(int n, bool share)
{
	std::string s = "[camera a]\nsource = test-pattern\n";
	if (share)
		s += "share-device-buffers = yes\n";
	for (int i = 1; i <= n; i++)
		s += "[guest g" + std::to_string(i) + "]\ndomain = " + std::to_string(i) +
		     "\ncamera = a\nbe-alloc = yes\n";
	return s;
}

/* Frames pixel-exact against the pattern; \return the seq_nums seen. */
std::vector<uint32_t> check(CameraFrontend &fe, int n)
{
	std::vector<uint32_t> seqs;
	for (int i = 0; i < n; i++) {
		auto f = fe.waitFrame(5s);
		EXPECT_TRUE(f) << (f ? "" : f.error().message);
		if (!f)
			break;
		auto data = fe.bufferData(f->index);
		auto counter = test_pattern::readCounter(kNV12, kW, kH, data.data(), f->usedSize);
		EXPECT_TRUE(counter.has_value()) << "frame " << f->seq << " has no readable counter";
		if (counter) {
			auto bad = test_pattern::firstMismatch(kNV12, kW, kH, *counter, data.data(), f->usedSize);
			EXPECT_FALSE(bad.has_value()) << "frame " << f->seq << " differs at byte " << *bad;
		}
		seqs.push_back(f->seq);
		EXPECT_TRUE(fe.bufQueue(f->index));
	}
	return seqs;
}

void start(CameraFrontend &fe)
{
	ASSERT_TRUE(fe.connect(0, 5s));
	ASSERT_TRUE(fe.configSet(kNV12, kW, kH));
	auto n = fe.allocateBuffers(4);
	ASSERT_TRUE(n) << n.error().message;
	ASSERT_TRUE(fe.queueAll());
	Status s = fe.streamStart();
	ASSERT_TRUE(s) << s.error().message;
}

const service::DeviceReport *find(const std::vector<service::DeviceReport> &r, int dom)
{
	for (const auto &d : r)
		if (d.label.find("dom" + std::to_string(dom) + " ") != std::string::npos)
			return &d;
	return nullptr;
}

class DeviceBuffers : public ServiceTest
{
protected:
	void startWith(const std::string &cfg, std::vector<xen::DomId> doms, bool gntdevDmabuf = true)
	{
		gntdevDmabuf_ = gntdevDmabuf;
		hvSetup = [this](xen::LoopbackXen &h) { h.emulateGntdevDmabuf(gntdevDmabuf_); };
		startService(cfg, std::move(doms));
	}
	bool gntdevDmabuf_ = true;
};

} /* namespace */

TEST_F(DeviceBuffers, BeAllocGuestGetsTheCamerasOwnBuffersWithoutCopies)
{
	startWith(guests(1, false), { 1 });
	CameraFrontend one(*guest[1]);
	start(one);
	check(one, 10);
	auto all = report();
	auto r = find(all, 1);
	ASSERT_NE(r, nullptr);
	EXPECT_THAT(r->tier, ::testing::HasSubstr("device buffers granted (dma-buf)"));
	EXPECT_EQ(r->stats.bytesCopied, 0u) << "the camera wrote the memory the guest maps";
	EXPECT_GE(r->stats.grantedPages, 4 * ((kFrame + 4095) / 4096));
	EXPECT_GT(hv->grantEntries(0), 0u) << "Dom0 grants the camera's buffers";
}

TEST_F(DeviceBuffers, WithoutGntdevDmabufBeAllocGuestsGetDom0Pages)
{
	/* Debian's x86 kernel: the probe says no; the guest streams all the same. */
	startWith(guests(1, false), { 1 }, false);
	CameraFrontend one(*guest[1]);
	start(one);
	check(one, 6);
	auto all = report();
	auto r = find(all, 1);
	ASSERT_NE(r, nullptr);
	EXPECT_THAT(r->tier, ::testing::HasSubstr("be-alloc: Dom0 pages granted"));
	EXPECT_EQ(r->stats.bytesCopied, 0u);
}

TEST_F(DeviceBuffers, GuestsThatShareGetTheSameBuffersAndNoCopies)
{
	startWith(guests(3, true), { 1, 2, 3 });
	CameraFrontend fe1(*guest[1]), fe2(*guest[2]), fe3(*guest[3]);
	start(fe1);
	start(fe2);
	start(fe3);
	/* Round-robin: each holds at most its share, so all three keep up. */
	for (int i = 0; i < 8; i++) {
		check(fe1, 1);
		check(fe2, 1);
		check(fe3, 1);
	}
	auto all = report();
	for (int d = 1; d <= 3; d++) {
		auto r = find(all, d);
		ASSERT_NE(r, nullptr);
		EXPECT_EQ(r->stats.bytesCopied, 0u) << "dom" << d;
		EXPECT_THAT(r->tier, ::testing::HasSubstr("device buffers granted"));
	}
	/* One buffer, three grants: guest 2 sees in its buffer what guest 1 sees in its own. */
	EXPECT_EQ(std::memcmp(fe1.bufferData(0).data(), fe2.bufferData(0).data(), kFrame), 0);
}

TEST_F(DeviceBuffers, ADeadSharerIsReleasedAndTheOthersKeepStreaming)
{
	startWith(guests(3, true), { 1, 2, 3 });
	auto fe1 = std::make_unique<CameraFrontend>(*guest[1]);
	CameraFrontend fe2(*guest[2]), fe3(*guest[3]);
	start(*fe1);
	start(fe2);
	start(fe3);
	check(*fe1, 2);
	check(fe2, 2);
	check(fe3, 2);
	const size_t grantsBefore = hv->grantEntries(0);
	/* Guest 1 dies holding a frame; Xen unmaps its mappings with it. */
	(void)fe1->waitFrame(2s);
	ASSERT_TRUE(hv->destroyDomain(1));
	fe1.reset();
	guest.erase(1);
	ASSERT_TRUE(waitFor([&] { return hv->grantEntries(0) < grantsBefore; }, 2s))
		<< "the dead guest's imports are released within 2 s";
	auto s2 = check(fe2, 30);
	check(fe3, 30);
	ASSERT_EQ(s2.size(), 30u);
	/* The two that stay lose (almost) nothing. */
	uint64_t lost = 0;
	for (size_t i = 1; i < s2.size(); i++)
		lost += s2[i] - s2[i - 1] - 1;
	EXPECT_LE(lost, 1u) << "frames lost by a guest that keeps up";
	auto all = report();
	EXPECT_EQ(find(all, 2)->stats.bytesCopied, 0u);
}

TEST_F(DeviceBuffers, AGuestHoldingBuffersLosesFramesButStallsNoOne)
{
	startWith(guests(2, true), { 1, 2 });
	CameraFrontend slow(*guest[1]), fast(*guest[2]);
	start(slow);
	start(fast);
	/* slow takes frames and never gives a buffer back. */
	std::vector<uint32_t> fastSeqs = check(fast, 30);
	ASSERT_EQ(fastSeqs.size(), 30u) << "the other guest keeps streaming";
	(void)slow.processEvents();
	unsigned held = 0;
	while (slow.takeFrame())
		held++;
	EXPECT_LE(held, 1u) << "a guest may hold at most its share of the camera's buffers (3 / 2)";
	auto all = report();
	auto r = find(all, 1);
	EXPECT_GT(r->stats.drops, 10u) << "the guest that holds buffers misses frames";
}

/*
 * Sharing off: each be-alloc guest has its own device buffers, granted
 * writable.  With two streaming, the camera fills Dom0's own buffers and
 * *both* get copies: neither guest's memory is ever the source of the
 * other's frames (writability of imports: LoopbackGrants tests).
 */
TEST_F(DeviceBuffers, GuestsThatDoNotShareGetCopiesFromDom0Memory)
{
	startWith(guests(2, false), { 1, 2 });
	CameraFrontend one(*guest[1]), two(*guest[2]);
	start(one);
	check(one, 3);
	start(two);
	for (int i = 0; i < 10; i++) {
		check(one, 1);
		check(two, 1);
	}
	auto all = report();
	auto r1 = find(all, 1), r2 = find(all, 2);
	ASSERT_TRUE(r1 && r2);
	EXPECT_GT(r1->stats.bytesCopied, 0u) << "the first guest's buffers are not the camera's source";
	EXPECT_GT(r2->stats.bytesCopied, 0u);
	EXPECT_EQ(r2->stats.bytesCopied % kFrame, 0u);
	EXPECT_THAT(r2->tier, ::testing::HasSubstr("copy"));
	/* Alone again, the first guest is back on its device buffers. */
	ASSERT_TRUE(two.streamStop());
	check(one, 6);
	uint64_t before = 0;
	{
		auto now = report();
		before = find(now, 1)->stats.bytesCopied;
	}
	check(one, 4);
	auto after = report();
	EXPECT_EQ(find(after, 1)->stats.bytesCopied, before);
	EXPECT_THAT(find(after, 1)->tier, ::testing::HasSubstr("device buffers granted"));
}

/*
 * A camera like a vb2-dma-contig driver without an IOMMU: it advertises
 * USERPTR (V4L2 does) but refuses any scattered memory at QBUF.
 */
class ContiguousOnlySource final : public ForwardingSource
{
public:
	using ForwardingSource::ForwardingSource;
	int allocateBuffers(MemoryType m, unsigned n) override
	{
		userPtr_ = m == MemoryType::UserPtr;
		return inner_->allocateBuffers(m, n);
	}
	int queueBuffer(unsigned i, const CallerBuffer &mem) override
	{
		if (userPtr_)
			return -EINVAL; /* vb2_dc_get_userptr: "contiguous mapping is too small" */
		return inner_->queueBuffer(i, mem);
	}

private:
	bool userPtr_ = false;
};

service::SourceFactory contiguousOnly()
{
	return [](const service::CameraEntry &cam) -> Result<std::unique_ptr<CameraSource>> {
		auto inner = service::openSource(cam);
		if (!inner)
			return inner.error();
		return std::unique_ptr<CameraSource>(std::make_unique<ContiguousOnlySource>(std::move(*inner)));
	};
}

/*
 * A camera that cannot capture into guest pages (dma-contig): on the first
 * refusal the service copies, for frontend-allocated guests and for
 * be-alloc guests without gntdev dma-buf alike; with gntdev dma-buf a
 * be-alloc guest gets the camera's own buffers, zero copy.
 */
TEST_F(DeviceBuffers, ACameraThatRefusesGuestPagesFallsBackToCopies)
{
	sourceFactory = contiguousOnly();
	startWith("[camera a]\nsource = test-pattern\n"
		  "[guest fe]\ndomain = 1\ncamera = a\n"
		  "[guest be]\ndomain = 2\ncamera = a\nbe-alloc = yes\n",
		  { 1, 2 }, false);
	{
		CameraFrontend one(*guest[1]);
		start(one);
		check(one, 6);
		auto all = report();
		auto r = find(all, 1);
		ASSERT_NE(r, nullptr);
		EXPECT_THAT(r->tier, ::testing::HasSubstr("copy"));
		EXPECT_GT(r->stats.bytesCopied, 0u);
	}
	{
		CameraFrontend two(*guest[2]); /* be-alloc, no gntdev dma-buf: Dom0 pages, refused too */
		start(two);
		check(two, 6);
		auto all = report();
		auto r = find(all, 2);
		ASSERT_NE(r, nullptr);
		EXPECT_THAT(r->tier, ::testing::HasSubstr("copy"));
		EXPECT_GT(r->stats.bytesCopied, 0u);
	}
}

TEST_F(DeviceBuffers, ACameraThatRefusesGuestPagesStillGivesItsOwnBuffersZeroCopy)
{
	sourceFactory = contiguousOnly();
	startWith(guests(1, false), { 1 });
	CameraFrontend one(*guest[1]);
	start(one);
	check(one, 6);
	auto all = report();
	auto r = find(all, 1);
	ASSERT_NE(r, nullptr);
	EXPECT_THAT(r->tier, ::testing::HasSubstr("device buffers granted"));
	EXPECT_EQ(r->stats.bytesCopied, 0u);
}

/* The pool's ownership rules on their own. */
TEST(DevicePool, LastGiveBackReturnsTheBufferAndQuotaBoundsEachGuest)
{
	TestPatternOptions o;
	o.exportDmaBuf = false;
	TestPatternCamera cam(o);
	StreamConfig c;
	c.fourcc = kNV12;
	c.width = kW;
	c.height = kH;
	ASSERT_EQ(cam.configure(c), 0);
	auto pool = service::DevicePool::allocate(cam, 4);
	ASSERT_TRUE(pool) << pool.error().message;
	auto &p = **pool;
	ASSERT_EQ(p.size(), 4u);
	EXPECT_EQ(p.idle().size(), 4u);
	auto *a = reinterpret_cast<const service::HubClient *>(0x1);
	auto *b = reinterpret_cast<const service::HubClient *>(0x2);
	unsigned q = p.quota(2);
	EXPECT_EQ(q, 1u) << "two guests hold at most 3 of 4 together";
	EXPECT_TRUE(p.give(0, a, q));
	EXPECT_TRUE(p.give(0, b, q));
	EXPECT_FALSE(p.give(1, a, q)) << "over its share: it misses the frame";
	EXPECT_FALSE(p.giveBack(0, a)) << "b still holds it";
	EXPECT_TRUE(p.giveBack(0, b)) << "the last give-back returns it";
	EXPECT_TRUE(p.give(2, a, q));
	p.forget(a);
	EXPECT_TRUE(p.isIdle(2)) << "a guest that goes away holds nothing";
	EXPECT_EQ(p.held(a), 0u);
	/* The memory outlives the source's allocation (it gave it back). */
	std::memset(p.buffer(3).data, 0x5a, p.buffer(3).length);
	EXPECT_EQ(p.buffer(3).data[p.buffer(3).length - 1], 0x5a);
}
