/* SPDX-License-Identifier: MIT */
/* Built when libxen* were not found at configure time. */
#include <cerrno>

#include "bridge/platform/platform.h"

namespace xmb::xen {

bool haveRealPlatform()
{
	return false;
}

Result<std::unique_ptr<Platform>> openRealPlatform()
{
	return Error{ -ENOSYS, "built without Xen support (meson -Dxen=enabled needs libxen-dev)" };
}

} /* namespace xmb::xen */
