/* SPDX-License-Identifier: MIT */
/*
 * Fuzz the vcodec protocol (docs/vcodec.md), everything a guest writes:
 *  - mode 0: request packets (64 octets each) through decodeCodecRequest,
 *    whose invariants proto::fuzzCodecRequests checks (every error is a
 *    negative Xen errno with a message, unknown ops are ENOSYS, decoded
 *    values are within bounds, responses fully initialised);
 *  - mode 1: the vcodec XenStore directory ("path=value" lines) through
 *    parseVcodecConfig / parseVcodecTransport; whatever parses must
 *    round-trip through the formatters.
 *
 * Input: [mode u8] then the payload.
 */

#include <map>
#include <string>
#include <string_view>

#include "fuzz_input.h"
#include "protocol/vcodec.h"
#include "protocol/vcodec_schema.h"

namespace xmb::proto {
namespace {

using KV = std::map<std::string, std::string>;

using fuzz::parseLines;

void fuzzSchema(const KV &kv)
{
	auto cfg = parseVcodecConfig(mapView(kv));
	if (!cfg.ok()) {
		FUZZ_CHECK(cfg.error().code < 0 && !cfg.error().message.empty());
	} else {
		for (const auto &c : cfg->codecs) {
			FUZZ_CHECK(c.codec >= 1 && c.codec <= XENVCODEC_CODEC_MAX);
			FUZZ_CHECK(!c.rawFormats.empty());
		}
		FUZZ_CHECK(cfg->maxBuffers <= XENVCODEC_MAX_BUFFERS);
		KV formatted = formatVcodecConfig(*cfg);
		auto again = parseVcodecConfig(mapView(formatted));
		FUZZ_CHECK(again.ok());
		FUZZ_CHECK(again.value() == cfg.value());
	}
	auto t = parseVcodecTransport(mapView(kv), { XENVCODEC_PROTOCOL_VERSION });
	if (!t.ok()) {
		FUZZ_CHECK(t.error().code < 0 && !t.error().message.empty());
		return;
	}
	auto again = parseVcodecTransport(mapView(formatVcodecTransport(*t)), { XENVCODEC_PROTOCOL_VERSION });
	FUZZ_CHECK(again.ok() && again.value() == t.value());
}

} /* namespace */
} /* namespace xmb::proto */

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	using namespace xmb::proto;
	if (!size)
		return 0;
	const uint8_t mode = data[0] & 1;
	data++;
	size--;
	if (mode == 0)
		return fuzzCodecRequests(data, size);
	fuzzSchema(parseLines(std::string_view(reinterpret_cast<const char *>(data), size)));
	return 0;
}
