/* SPDX-License-Identifier: MIT */
/*
 * xmb-camera-guest: capture from a para-virtual camera inside a Xen guest.
 * See --help; the work is in bridge/frontend/capture_app.cpp.
 */
#include <atomic>
#include <csignal>
#include <cstring>
#include <iostream>

#include "bridge/frontend/capture_app.h"
#include "bridge/platform/platform.h"

namespace {

std::atomic<bool> gStop{ false };

void onSignal(int)
{
	gStop = true;
}

} /* namespace */

int main(int argc, char **argv)
{
	using namespace xmb::frontend;

	auto opts = parseCaptureArgs(argc, argv);
	if (!opts) {
		std::cerr << argv[0] << ": " << opts.error().message << "\n"
			  << "Try '" << argv[0] << " --help'.\n";
		return kExitUsage;
	}
	if (opts->help) {
		std::cout << captureUsage(argv[0]);
		return kExitOk;
	}

	/* No SA_RESTART: the frontend's poll() returns EINTR and we stop cleanly. */
	struct sigaction sa;
	std::memset(&sa, 0, sizeof(sa));
	sa.sa_handler = onSignal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, nullptr);
	sigaction(SIGTERM, &sa, nullptr);

	if (!xmb::xen::haveRealPlatform()) {
		std::cerr << "error: this build has no Xen support (libxen* missing at configure time)\n";
		return kExitFailure;
	}
	auto platform = xmb::xen::openRealPlatform();
	if (!platform) {
		std::cerr << "error: opening the Xen platform: " << platform.error().message << "\n";
		return kExitFailure;
	}
	if (opts->list)
		return listDevices(**platform, std::cout, std::cerr);
	return runCapture(**platform, *opts, std::cout, std::cerr, &gStop);
}
