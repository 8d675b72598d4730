/* SPDX-License-Identifier: MIT */
#pragma once

#include <memory>

#include "bridge/platform/platform.h"

namespace xmb::xen {

Result<std::shared_ptr<GrantBackend>> openRealGrants();
Result<std::shared_ptr<EventChannelBackend>> openRealEventChannels();
Result<std::unique_ptr<XenStore>> openRealXenStore();

} /* namespace xmb::xen */
