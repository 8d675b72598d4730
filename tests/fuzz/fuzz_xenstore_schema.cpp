/* SPDX-License-Identifier: MIT */
/*
 * Fuzz the vcamera XenStore schema.  The input is a guest-written directory,
 * one "relative/path=value" per line (a line without '=' is a key with an
 * empty value).  Whatever parses must round-trip: format(parse(x)) parses
 * to the same value and formats to the same keys; and every scalar parser
 * must be canonical (a value it accepts is exactly what its formatter
 * writes), so two parsers can never disagree on a value.
 */

#include <map>
#include <string>
#include <string_view>

#include "fuzz_input.h"
#include "protocol/cameraif.h"
#include "protocol/xenstore_schema.h"

namespace xmb::proto {
namespace {

using KV = std::map<std::string, std::string>;


using fuzz::parseLines;

void checkConfigInvariants(const VcameraConfig &c)
{
	FUZZ_CHECK(c.maxBuffers >= 1);
	FUZZ_CHECK(!c.uniqueId.empty() && c.uniqueId.size() <= kMaxUniqueIdLen);
	for (char ch : c.uniqueId)
		FUZZ_CHECK(ch >= 0x20 && ch <= 0x7e); /* spaces: libcamera ids */
	for (size_t i = 0; i < c.controls.size(); i++) {
		FUZZ_CHECK(c.controls[i] < XENCAMERA_MAX_CTRL);
		for (size_t j = 0; j < i; j++)
			FUZZ_CHECK(c.controls[i] != c.controls[j]);
	}
	FUZZ_CHECK(!c.formats.empty() && c.formats.size() <= kMaxFormats);
	for (const auto &f : c.formats) {
		FUZZ_CHECK(!f.resolutions.empty() && f.resolutions.size() <= kMaxResolutionsPerFormat);
		for (const auto &r : f.resolutions) {
			FUZZ_CHECK(r.width >= 1 && r.width <= kMaxWidth);
			FUZZ_CHECK(r.height >= 1 && r.height <= kMaxHeight);
			FUZZ_CHECK(!r.frameRates.empty() && r.frameRates.size() <= kMaxFrameRates);
			for (const auto &fr : r.frameRates)
				FUZZ_CHECK(fr.num && fr.den);
		}
	}
}

void fuzzConfig(const KV &kv)
{
	auto cfg = parseVcameraConfig(mapView(kv));
	if (!cfg.ok()) {
		FUZZ_CHECK(cfg.error().code < 0 && !cfg.error().message.empty());
		return;
	}
	checkConfigInvariants(*cfg);
	KV formatted = formatVcameraConfig(*cfg);
	auto again = parseVcameraConfig(mapView(formatted));
	FUZZ_CHECK(again.ok());
	FUZZ_CHECK(again.value() == cfg.value());
	FUZZ_CHECK(formatVcameraConfig(again.value()) == formatted);
}

void fuzzTransport(const KV &kv)
{
	const std::vector<std::string> versions = { "1", "2" };
	auto t = parseVcameraTransport(mapView(kv), versions);
	if (!t.ok()) {
		FUZZ_CHECK(t.error().code < 0 && !t.error().message.empty());
		return;
	}
	FUZZ_CHECK(t->version == "1" || t->version == "2");
	FUZZ_CHECK(t->reqRingRef && t->reqEventChannel && t->evtRingRef && t->evtEventChannel);
	KV formatted = formatVcameraTransport(*t);
	auto again = parseVcameraTransport(mapView(formatted), versions);
	FUZZ_CHECK(again.ok());
	/* A missing "version" means 1 (Linux's frontend); we always write it back. */
	FUZZ_CHECK(t->versionImplied == !kv.count("version"));
	FUZZ_CHECK(!t->versionImplied || t->version == "1");
	FUZZ_CHECK(!again->versionImplied);
	auto expect = t.value();
	expect.versionImplied = false;
	FUZZ_CHECK(again.value() == expect);
}

template<typename T>
void checkError(const Result<T> &r)
{
	/* Every error names the key first: "k: '<value>': why". */
	FUZZ_CHECK(r.error().message.rfind("k: ", 0) == 0);
}

void fuzzScalars(std::string_view v)
{
	if (auto n = parseUnsigned("k", v, UINT64_MAX); n.ok())
		FUZZ_CHECK(std::to_string(n.value()) == v);
	else
		checkError(n);
	if (auto s = parseXenbusState("k", v); s.ok())
		FUZZ_CHECK(s.value() >= 0 && s.value() <= 8 && std::to_string(s.value()) == v);
	if (auto f = parseFourccLabel("k", v); f.ok())
		FUZZ_CHECK(formatFourccLabel(f.value()) == v);
	else
		checkError(f);
	if (auto r = parseResolution("k", v); r.ok())
		FUZZ_CHECK(std::to_string(r->first) + "x" + std::to_string(r->second) == v);
	else
		checkError(r);
	if (auto fr = parseFrameRates("k", v); fr.ok())
		FUZZ_CHECK(formatFrameRates(fr.value()) == v);
	else
		checkError(fr);
	if (auto c = parseControls("k", v); c.ok())
		FUZZ_CHECK(formatControls(c.value()) == v);
	else
		checkError(c);
}

} /* namespace */
} /* namespace xmb::proto */

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	using namespace xmb::proto;
	std::string_view text(reinterpret_cast<const char *>(data), size);
	KV kv = parseLines(text);
	fuzzConfig(kv);
	fuzzTransport(kv);
	size_t n = 0;
	for (const auto &[key, value] : kv) {
		if (n++ >= 16)
			break;
		fuzzScalars(value);
		fuzzScalars(key);
	}
	return 0;
}
