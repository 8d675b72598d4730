/* SPDX-License-Identifier: MIT */
/* xmb-xen-peer: the guest half of the cross-domain platform tests, for a PV DomU. */
#include <cstdio>

#include "peer.h"

int main()
{
	auto p = xmb::xen::openRealPlatform();
	if (!p) {
		std::fprintf(stderr, "xmb-xen-peer: %s\n", p.error().message.c_str());
		return 2;
	}
	std::fprintf(stderr, "xmb-xen-peer: dom%u serving\n", (*p)->self);
	int ret = xmb::xen::test::runPeer(**p);
	std::fprintf(stderr, "xmb-xen-peer: exit %d\n", ret);
	return ret;
}
