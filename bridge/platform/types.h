/* SPDX-License-Identifier: MIT */
#pragma once

#include <cstddef>
#include <cstdint>

namespace xmb::xen {

using DomId = uint16_t;
using Gref = uint32_t;
using Port = uint32_t;

constexpr DomId kDom0 = 0;
constexpr size_t kPageSize = 4096;

} /* namespace xmb::xen */
