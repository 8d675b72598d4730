/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The guest half of the cross-domain platform tests.
 *
 * It runs in a PV DomU on real Xen (xmb-xen-peer) or in a thread on a
 * loopback domain, with the same code, so each test checks the loopback
 * platform against the real one.  Dom0 drives it through XenStore:
 *
 *   data/xmbtest/{refs,ro-ref,other-ref,port,ready}  published at start
 *   data/xmbtest/cmd   "<seq> <verb> [args]"          written by Dom0
 *   data/xmbtest/reply "<seq> ok [value]" | "<seq> err <code> <message>"
 */

#include <atomic>

#include "bridge/platform/platform.h"

namespace xmb::xen::test {

constexpr int kPeerDataPages = 4;
constexpr uint8_t kPeerPattern = 0x10; /* page i is filled with kPeerPattern + i */
constexpr uint8_t kPeerRoPattern = 0x99;
constexpr uint8_t kDom0Pattern = 0xd0;
constexpr uint8_t kPeerWrites = 0xe1;
/* A domain id that exists nowhere: pages granted to it must not map in Dom0. */
constexpr DomId kNobody = 0x7ff0 - 1;

/** Serve Dom0's commands until "exit" or \a stop; returns 0 on a clean exit. */
int runPeer(Platform &p, const std::atomic<bool> *stop = nullptr);

} /* namespace xmb::xen::test */
