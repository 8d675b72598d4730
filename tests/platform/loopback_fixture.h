/* SPDX-License-Identifier: MIT */
#pragma once

#include <gtest/gtest.h>
#include <poll.h>

#include "bridge/platform/loopback/loopback_xen.h"

namespace xmb::xen::test {

using ::xmb::Status;
using ::xmb::Result;

/** Dom0 and one guest (dom1) on a fresh loopback hypervisor. */
class LoopbackTest : public ::testing::Test
{
protected:
	void SetUp() override
	{
		hv = LoopbackXen::create();
		ASSERT_TRUE(hv->createDomain(1, "guest"));
		auto p0 = hv->open(0);
		auto p1 = hv->open(1);
		ASSERT_TRUE(p0);
		ASSERT_TRUE(p1);
		dom0 = std::move(*p0);
		guest = std::move(*p1);
	}

	static bool readable(int fd, int timeoutMs = 0)
	{
		pollfd p{ fd, POLLIN, 0 };
		return ::poll(&p, 1, timeoutMs) == 1;
	}

	std::shared_ptr<LoopbackXen> hv;
	std::unique_ptr<Platform> dom0;
	std::unique_ptr<Platform> guest;
};

} /* namespace xmb::xen::test */
