/* SPDX-License-Identifier: MIT */
#include "bridge/platform/real/real_platform.h"

namespace xmb::xen {

bool haveRealPlatform()
{
	return true;
}

/**
 * \brief Open grants, event channels and XenStore of the domain we run in.
 *
 * Fails with an error naming the first device that is missing, so that
 * "not running on Xen" reads as such and not as a crash later.
 */
Result<std::unique_ptr<Platform>> openRealPlatform()
{
	auto store = openRealXenStore();
	if (!store)
		return store.error();
	auto self = (*store)->selfDomid();
	if (!self)
		return self.error();
	auto grants = openRealGrants();
	if (!grants)
		return grants.error();
	auto events = openRealEventChannels();
	if (!events)
		return events.error();

	auto p = std::make_unique<Platform>();
	p->self = *self;
	p->grants = GrantTable::create(std::move(*grants));
	p->events = std::make_unique<EventChannels>(std::move(*events));
	p->store = std::move(*store);
	p->kind = "xen";
	return p;
}

} /* namespace xmb::xen */
