/* SPDX-License-Identifier: MIT */
/*
 * list-cameras: the para-virtual cameras this guest has, and what each
 * offers — an out-of-tree program built against the installed guest
 * library with pkg-config alone:
 *
 *   c++ -std=gnu++20 list-cameras.cpp $(pkg-config --cflags --libs xmb-guest) -o list-cameras
 *
 * Run in a Xen guest (it reads this domain's XenStore device directory; no
 * connection is made, so it does not disturb a camera in use).
 */

#include <cstdio>

#include <bridge/frontend/camera_frontend.h>

int main()
{
	auto platform = xmb::xen::openRealPlatform();
	if (!platform) {
		std::fprintf(stderr, "list-cameras: %s\n", platform.error().message.c_str());
		return 1;
	}
	auto devices = xmb::frontend::CameraFrontend::discover(**platform);
	if (!devices) {
		std::fprintf(stderr, "list-cameras: %s\n", devices.error().message.c_str());
		return 1;
	}
	if (devices->empty())
		std::printf("no vcamera devices in this domain\n");
	for (const auto &d : *devices) {
		std::printf("vcamera/%u: unique-id '%s', backend dom%u, %s buffers, up to %u\n", d.devid,
			    d.config.uniqueId.c_str(), d.backendId,
			    d.config.beAlloc ? "backend-allocated" : "guest-allocated", d.config.maxBuffers);
		for (const auto &f : d.config.formats) {
			std::printf("  %s:", xmb::proto::formatFourccLabel(f.fourcc).c_str());
			for (const auto &r : f.resolutions)
				std::printf(" %ux%u", r.width, r.height);
			std::printf("\n");
		}
	}
	return 0;
}
