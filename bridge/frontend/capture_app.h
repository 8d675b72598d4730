/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The xmb-camera-guest application: argument parsing, device listing and
 * the capture loop (save raw/PNG, check the test pattern, stats), kept out
 * of main() so the unit tests can run it against a fake backend.
 */

#include <atomic>
#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <string>
#include <utility>
#include <vector>

#include "bridge/platform/platform.h"
#include "protocol/result.h"
#include "protocol/xenstore_schema.h"

namespace xmb::frontend {

struct CaptureOptions {
	bool help = false;
	bool list = false;
	uint32_t devid = 0;
	uint32_t fourcc = 0;        /* 0: the first advertised */
	uint32_t width = 0;         /* 0: the first advertised for the format */
	uint32_t height = 0;
	proto::Fraction rate{ 0, 0 }; /* den 0: not set (first advertised, if any) */
	unsigned buffers = 4;
	uint64_t frames = 0;        /* 0: until interrupted */
	std::string saveRawDir;
	std::string savePngDir;
	unsigned every = 1;         /* save every K-th frame */
	std::vector<std::pair<uint8_t, int64_t>> controls;
	bool checkPattern = false;
	bool quiet = false;         /* no per-second lines */
	std::chrono::milliseconds timeout{ 5000 };
};

/** Exit codes. */
constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

/** Parse argv (argv[0] is the program name); errors say which option is wrong. */
Result<CaptureOptions> parseCaptureArgs(int argc, const char *const *argv);
std::string captureUsage(const char *argv0);

/** --list: every vcamera device of this domain.  \return an exit code. */
int listDevices(xen::Platform &platform, std::ostream &out, std::ostream &err);

/**
 * Connect, configure, capture opts.frames frames (or until *stop), print
 * per-second lines and a final "summary:" line.  \return an exit code:
 * kExitFailure on any failure, including --check-pattern mismatches.
 */
int runCapture(xen::Platform &platform, const CaptureOptions &opts, std::ostream &out,
	       std::ostream &err, const std::atomic<bool> *stop = nullptr);

} /* namespace xmb::frontend */
