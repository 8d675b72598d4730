/* SPDX-License-Identifier: MIT */
/* Loopback event channels: wake the peer's fd, mask until unmask, latch. */
#include <cerrno>
#include <vector>

#include "loopback_fixture.h"

using namespace xmb::xen;
using namespace xmb::xen::test;

class LoopbackEvents : public LoopbackTest
{
protected:
	void SetUp() override
	{
		LoopbackTest::SetUp();
		auto g = guest->events->allocUnbound(0);
		ASSERT_TRUE(g) << g.error().message;
		auto d = dom0->events->bindInterdomain(1, g->port());
		ASSERT_TRUE(d) << d.error().message;
		guestPort = std::move(*g);
		dom0Port = std::move(*d);
	}

	EventPort guestPort;
	EventPort dom0Port;
};

TEST_F(LoopbackEvents, NotifyWakesThePeersFdWithItsPort)
{
	EXPECT_FALSE(readable(dom0->events->fd()));
	ASSERT_TRUE(guestPort.notify());
	ASSERT_TRUE(readable(dom0->events->fd(), 1000));
	auto p = dom0->events->pending();
	ASSERT_TRUE(p);
	ASSERT_TRUE(p->has_value());
	EXPECT_EQ(**p, dom0Port.port());
}

TEST_F(LoopbackEvents, WorksInBothDirections)
{
	ASSERT_TRUE(dom0Port.notify());
	ASSERT_TRUE(readable(guest->events->fd(), 1000));
	auto p = guest->events->pending();
	ASSERT_TRUE(p && p->has_value());
	EXPECT_EQ(**p, guestPort.port());
}

TEST_F(LoopbackEvents, DeliveredPortStaysMaskedAndLatchesUntilUnmask)
{
	ASSERT_TRUE(guestPort.notify());
	auto p = dom0->events->pending();
	ASSERT_TRUE(p && p->has_value());

	/* Three more events while masked: nothing is delivered... */
	for (int i = 0; i < 3; i++)
		ASSERT_TRUE(guestPort.notify());
	EXPECT_FALSE(readable(dom0->events->fd()));

	/* ...and exactly one is, at unmask. */
	ASSERT_TRUE(dom0Port.unmask());
	ASSERT_TRUE(readable(dom0->events->fd(), 1000));
	auto q = dom0->events->pending();
	ASSERT_TRUE(q && q->has_value());
	auto none = dom0->events->pending();
	ASSERT_TRUE(none);
	EXPECT_FALSE(none->has_value());
}

TEST_F(LoopbackEvents, UnmaskWithoutPendingDeliversNothing)
{
	ASSERT_TRUE(guestPort.notify());
	ASSERT_TRUE(dom0->events->pending());
	ASSERT_TRUE(dom0Port.unmask());
	EXPECT_FALSE(readable(dom0->events->fd()));
}

/*
 * The service serves the ports of one wake-up from one read and goes back
 * to epoll: ports that do not fit must keep the fd readable, none lost.
 */
TEST_F(LoopbackEvents, PendingBatchReturnsSeveralPortsAndLeavesTheRestReadable)
{
	std::vector<EventPort> dom0Ports, guestPorts;
	for (int i = 0; i < 3; i++) {
		auto g = guest->events->allocUnbound(0);
		ASSERT_TRUE(g);
		auto d = dom0->events->bindInterdomain(1, g->port());
		ASSERT_TRUE(d);
		guestPorts.push_back(std::move(*g));
		dom0Ports.push_back(std::move(*d));
	}
	for (auto &g : guestPorts)
		ASSERT_TRUE(g.notify());

	Port got[2];
	auto n = dom0->events->pendingBatch(got);
	ASSERT_TRUE(n) << n.error().message;
	ASSERT_EQ(*n, 2u) << "one read returns what fits";
	EXPECT_EQ(got[0], dom0Ports[0].port());
	EXPECT_EQ(got[1], dom0Ports[1].port());
	ASSERT_TRUE(readable(dom0->events->fd())) << "the third is still queued";
	n = dom0->events->pendingBatch(got);
	ASSERT_TRUE(n);
	ASSERT_EQ(*n, 1u);
	EXPECT_EQ(got[0], dom0Ports[2].port());
	n = dom0->events->pendingBatch(got);
	ASSERT_TRUE(n);
	EXPECT_EQ(*n, 0u) << "empty: 0, not an error";
}

TEST_F(LoopbackEvents, BindRequiresAPortOfferedToUs)
{
	ASSERT_TRUE(hv->createDomain(2, "other"));
	auto other = hv->open(2);
	ASSERT_TRUE(other);
	auto offered = guest->events->allocUnbound(0); /* offered to Dom0, not dom2 */
	ASSERT_TRUE(offered);
	auto bad = (*other)->events->bindInterdomain(1, offered->port());
	ASSERT_FALSE(bad);
	EXPECT_EQ(bad.error().code, -EINVAL);
	/* An already bound port cannot be bound again. */
	auto twice = dom0->events->bindInterdomain(1, guestPort.port());
	ASSERT_FALSE(twice);
	EXPECT_EQ(twice.error().code, -EINVAL);
}

TEST_F(LoopbackEvents, PeerClosingLeavesOurPortUnboundAndSilent)
{
	guestPort.reset();
	EXPECT_TRUE(dom0Port.notify()) << "Xen drops sends on an unbound port";
	EXPECT_FALSE(readable(guest->events->fd()));
}

TEST_F(LoopbackEvents, DestroyedDomainClosesItsChannels)
{
	ASSERT_TRUE(hv->destroyDomain(1));
	EXPECT_TRUE(dom0Port.notify());
	/* Binding anew to the dead domain fails. */
	auto again = dom0->events->bindInterdomain(1, guestPort.port());
	ASSERT_FALSE(again);
	EXPECT_EQ(again.error().code, -ESRCH);
}
