/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The vcamera XenStore schema (cameraif.h, "XenBus nodes"): parse with strict
 * validation, and format.
 *
 * The frontend directory is writable by the guest, so everything read from
 * it is hostile: numbers are plain decimal within their type's range, lists
 * and trees are bounded, and every error names the key and the value.
 * Parsing works on an abstract read/list view so it stays pure and fuzzable.
 */

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/result.h"

namespace xmb::proto {

/* Bounds on what a frontend directory may describe. */
constexpr size_t kMaxFormats = 32;
constexpr size_t kMaxResolutionsPerFormat = 64;
constexpr size_t kMaxFrameRates = 32;
constexpr size_t kMaxUniqueIdLen = 128;
constexpr size_t kMaxValueLen = 4096;

/** A read-only view of one XenStore directory (paths relative to it). */
struct XsView {
	std::function<std::optional<std::string>(const std::string &)> read;
	std::function<std::optional<std::vector<std::string>>(const std::string &)> list;
};

/** Build an XsView over an in-memory map of relative path -> value. */
XsView mapView(const std::map<std::string, std::string> &kv);

struct Fraction {
	uint32_t num = 0;
	uint32_t den = 1;
	bool operator==(const Fraction &) const = default;
};

struct Resolution {
	uint32_t width = 0;
	uint32_t height = 0;
	std::vector<Fraction> frameRates;
	bool operator==(const Resolution &) const = default;
};

struct FormatCaps {
	uint32_t fourcc = 0;
	std::vector<Resolution> resolutions;
	bool operator==(const FormatCaps &) const = default;
};

/** What the toolstack writes into the frontend directory for one camera. */
struct VcameraConfig {
	bool beAlloc = false;
	std::string uniqueId;
	uint8_t maxBuffers = 0;
	std::vector<uint8_t> controls; /* XENCAMERA_CTRL_* types */
	std::vector<FormatCaps> formats;
	bool operator==(const VcameraConfig &) const = default;
};

/** What the frontend publishes before going Initialised. */
struct VcameraTransport {
	std::string version;
	uint32_t reqRingRef = 0;
	uint32_t reqEventChannel = 0;
	uint32_t evtRingRef = 0;
	uint32_t evtEventChannel = 0;
	/** True when the frontend wrote no "version" (Linux's driver): protocol 1. */
	bool versionImplied = false;
	bool operator==(const VcameraTransport &) const = default;
};

/* ---- scalar parsers (exposed for tests and for other schemas, e.g. vcodec) ---- */
Result<uint64_t> parseUnsigned(std::string_view key, std::string_view value, uint64_t max);
Result<int> parseXenbusState(std::string_view key, std::string_view value);
Result<uint32_t> parseFourccLabel(std::string_view key, std::string_view label);
std::string formatFourccLabel(uint32_t fourcc);
Result<std::pair<uint32_t, uint32_t>> parseResolution(std::string_view key, std::string_view value);
Result<std::vector<Fraction>> parseFrameRates(std::string_view key, std::string_view value);
std::string formatFrameRates(const std::vector<Fraction> &rates);
Result<std::vector<uint8_t>> parseControls(std::string_view key, std::string_view value);
std::string formatControls(const std::vector<uint8_t> &controls);

/** Parse the configuration part of a vcamera frontend directory. */
Result<VcameraConfig> parseVcameraConfig(const XsView &dir);
/** Key/value pairs (relative paths) for a configuration. */
std::map<std::string, std::string> formatVcameraConfig(const VcameraConfig &config);

/** Parse the frontend's transport keys; \a supportedVersions from the backend's "versions". */
Result<VcameraTransport> parseVcameraTransport(const XsView &dir,
					       const std::vector<std::string> &supportedVersions);
std::map<std::string, std::string> formatVcameraTransport(const VcameraTransport &t);

/** XenStore paths of one vcamera device (toolstack layout, as libxl for vdispl). */
struct VcameraPaths {
	std::string frontend; /* /local/domain/<fe>/device/vcamera/<dev> */
	std::string backend;  /* /local/domain/<be>/backend/vcamera/<fe>/<dev> */
};
VcameraPaths vcameraPaths(uint32_t backendDomid, uint32_t frontendDomid, uint32_t devid,
			  std::string_view type = "vcamera");

} /* namespace xmb::proto */
