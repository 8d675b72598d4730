/* SPDX-License-Identifier: MIT */
#include "protocol/xenstore_schema.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <set>

extern "C" {
#include <xen/grant_table.h>
#include <xen/io/cameraif.h>
#include <xen/io/xenbus.h>
}

#include "protocol/cameraif.h"

namespace xmb::proto {

namespace {

/* Printable, quoted and shortened: values come from a guest. */
std::string quote(std::string_view v)
{
	std::string out = "'";
	for (char c : v.substr(0, 64)) {
		if (c >= 0x20 && c < 0x7f && c != '\'') {
			out += c;
		} else {
			char buf[8];
			std::snprintf(buf, sizeof(buf), "\\x%02x", static_cast<unsigned char>(c));
			out += buf;
		}
	}
	if (v.size() > 64)
		out += "...";
	return out + "'";
}

Error bad(std::string_view key, std::string_view value, std::string_view why)
{
	return { -EINVAL, std::string(key) + ": " + quote(value) + ": " + std::string(why) };
}

Error missing(std::string_view key)
{
	return { -ENOENT, std::string(key) + ": missing" };
}

std::vector<std::string_view> split(std::string_view s, char sep)
{
	std::vector<std::string_view> out;
	size_t start = 0;
	while (true) {
		size_t pos = s.find(sep, start);
		out.push_back(s.substr(start, pos - start));
		if (pos == std::string_view::npos)
			break;
		start = pos + 1;
	}
	return out;
}

std::string join(const std::string &dir, const std::string &name)
{
	return dir.empty() ? name : dir + "/" + name;
}

} /* namespace */

XsView mapView(const std::map<std::string, std::string> &kv)
{
	XsView v;
	v.read = [&kv](const std::string &path) -> std::optional<std::string> {
		auto it = kv.find(path);
		if (it == kv.end())
			return std::nullopt;
		return it->second;
	};
	v.list = [&kv](const std::string &path) -> std::optional<std::vector<std::string>> {
		std::string prefix = path.empty() ? "" : path + "/";
		std::set<std::string> children;
		for (auto it = kv.lower_bound(prefix); it != kv.end(); ++it) {
			if (it->first.compare(0, prefix.size(), prefix))
				break;
			std::string rest = it->first.substr(prefix.size());
			children.insert(rest.substr(0, rest.find('/')));
		}
		if (children.empty())
			return std::nullopt;
		return std::vector<std::string>(children.begin(), children.end());
	};
	return v;
}

/**
 * \brief Parse a plain decimal unsigned number no larger than \a max.
 *
 * XenStore numbers are decimal strings; we refuse signs, spaces, hex,
 * leading zeros (other than "0" itself) and anything trailing, because
 * lenient parsing is how two parsers come to disagree.
 */
Result<uint64_t> parseUnsigned(std::string_view key, std::string_view value, uint64_t max)
{
	if (value.empty())
		return bad(key, value, "empty, expected a decimal number");
	if (value.size() > 1 && value[0] == '0')
		return bad(key, value, "leading zero");
	uint64_t v = 0;
	auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
	if (ec == std::errc::result_out_of_range)
		return bad(key, value, "out of range");
	if (ec != std::errc() || ptr != value.data() + value.size())
		return bad(key, value, "not a decimal number");
	if (v > max)
		return bad(key, value, "larger than " + std::to_string(max));
	return v;
}

Result<int> parseXenbusState(std::string_view key, std::string_view value)
{
	auto v = parseUnsigned(key, value, XenbusStateReconfigured);
	if (!v)
		return v.error();
	return static_cast<int>(*v);
}

/**
 * \brief Parse a FOURCC label as cameraif writes it in XenStore.
 *
 * 1 to 4 characters in [0x21, 0x7e] (trailing spaces trimmed, so shorter
 * labels stand for space padding) without the characters XenStore paths
 * forbid, optionally followed by "-BE" (big-endian variant: bit 31).
 */
Result<uint32_t> parseFourccLabel(std::string_view key, std::string_view label)
{
	std::string_view code = label;
	bool bigEndian = false;
	if (code.size() > 3 && code.substr(code.size() - 3) == XENCAMERA_FOURCC_BIGENDIAN_STR) {
		bigEndian = true;
		code.remove_suffix(3);
	}
	if (code.empty() || code.size() > 4)
		return bad(key, label, "FOURCC label must have 1 to 4 characters");
	uint32_t fourcc = 0;
	for (size_t i = 0; i < 4; i++) {
		char c = i < code.size() ? code[i] : ' ';
		if (i < code.size() && (c <= 0x20 || c >= 0x7f ||
					std::string_view("/\\<>:\"|?*").find(c) != std::string_view::npos))
			return bad(key, label, "character not allowed in a FOURCC label");
		fourcc |= static_cast<uint32_t>(static_cast<uint8_t>(c)) << (8 * i);
	}
	if (bigEndian)
		fourcc |= 1u << 31;
	return fourcc;
}

std::string formatFourccLabel(uint32_t fourcc)
{
	std::string s;
	for (int i = 0; i < 4; i++) {
		char c = static_cast<char>((fourcc >> (8 * i)) & (i == 3 ? 0x7f : 0xff));
		s += c;
	}
	while (!s.empty() && s.back() == ' ')
		s.pop_back();
	if (fourcc & (1u << 31))
		s += XENCAMERA_FOURCC_BIGENDIAN_STR;
	return s;
}

Result<std::pair<uint32_t, uint32_t>> parseResolution(std::string_view key, std::string_view value)
{
	auto parts = split(value, 'x');
	if (parts.size() != 2)
		return bad(key, value, "expected <width>x<height>");
	auto w = parseUnsigned(key, parts[0], kMaxWidth);
	if (!w)
		return bad(key, value, "bad width (1.." + std::to_string(kMaxWidth) + ")");
	auto h = parseUnsigned(key, parts[1], kMaxHeight);
	if (!h)
		return bad(key, value, "bad height (1.." + std::to_string(kMaxHeight) + ")");
	if (!*w || !*h)
		return bad(key, value, "zero width or height");
	return std::pair<uint32_t, uint32_t>(static_cast<uint32_t>(*w), static_cast<uint32_t>(*h));
}

Result<std::vector<Fraction>> parseFrameRates(std::string_view key, std::string_view value)
{
	if (value.empty())
		return bad(key, value, "empty frame-rate list");
	auto items = split(value, ',');
	if (items.size() > kMaxFrameRates)
		return bad(key, value, "more than " + std::to_string(kMaxFrameRates) + " frame rates");
	std::vector<Fraction> rates;
	for (auto item : items) {
		auto nd = split(item, '/');
		if (nd.size() != 2)
			return bad(key, value, "frame rate " + quote(item) + " is not <num>/<den>");
		auto n = parseUnsigned(key, nd[0], UINT32_MAX);
		auto d = parseUnsigned(key, nd[1], UINT32_MAX);
		if (!n || !d)
			return bad(key, value, "frame rate " + quote(item) + " is not <num>/<den>");
		if (!*n || !*d)
			return bad(key, value, "frame rate " + quote(item) + " has a zero term");
		Fraction f{ static_cast<uint32_t>(*n), static_cast<uint32_t>(*d) };
		if (std::find(rates.begin(), rates.end(), f) != rates.end())
			return bad(key, value, "frame rate " + quote(item) + " listed twice");
		rates.push_back(f);
	}
	return rates;
}

std::string formatFrameRates(const std::vector<Fraction> &rates)
{
	std::string s;
	for (const auto &r : rates) {
		if (!s.empty())
			s += XENCAMERA_LIST_SEPARATOR;
		s += std::to_string(r.num) + XENCAMERA_FRACTION_SEPARATOR + std::to_string(r.den);
	}
	return s;
}

Result<std::vector<uint8_t>> parseControls(std::string_view key, std::string_view value)
{
	std::vector<uint8_t> ctrls;
	if (value.empty())
		return ctrls; /* a camera without controls */
	for (auto name : split(value, ',')) {
		auto type = cameraCtrlFromName(name);
		if (!type)
			return bad(key, value, "unknown control " + quote(name));
		if (std::find(ctrls.begin(), ctrls.end(), *type) != ctrls.end())
			return bad(key, value, "control " + quote(name) + " listed twice");
		ctrls.push_back(*type);
	}
	return ctrls;
}

std::string formatControls(const std::vector<uint8_t> &controls)
{
	std::string s;
	for (uint8_t c : controls) {
		const char *name = cameraCtrlName(c);
		if (!name)
			continue;
		if (!s.empty())
			s += XENCAMERA_LIST_SEPARATOR;
		s += name;
	}
	return s;
}

namespace {

Result<std::string> readKey(const XsView &dir, const std::string &key, bool required = true)
{
	auto v = dir.read(key);
	if (!v)
		return required ? missing(key) : Error{ -ENOENT, key };
	if (v->size() > kMaxValueLen)
		return bad(key, *v, "longer than " + std::to_string(kMaxValueLen) + " bytes");
	return *v;
}

} /* namespace */

Result<VcameraConfig> parseVcameraConfig(const XsView &dir)
{
	VcameraConfig cfg;

	/* be-alloc is optional; only "0" and "1" are meaningful. */
	if (auto v = dir.read(XENCAMERA_FIELD_BE_ALLOC)) {
		if (*v != "0" && *v != "1")
			return bad(XENCAMERA_FIELD_BE_ALLOC, *v, "expected \"0\" or \"1\"");
		cfg.beAlloc = *v == "1";
	}

	auto uid = readKey(dir, XENCAMERA_FIELD_UNIQUE_ID);
	if (!uid)
		return uid.error();
	if (uid->empty() || uid->size() > kMaxUniqueIdLen)
		return bad(XENCAMERA_FIELD_UNIQUE_ID, *uid,
			   "must have 1 to " + std::to_string(kMaxUniqueIdLen) + " characters");
	/*
	 * Printable ASCII, spaces included: libcamera names cameras
	 * "platform/vimc.0 Sensor B" (found serving vimc to a DomU).
	 */
	for (char c : *uid)
		if (c < 0x20 || c > 0x7e)
			return bad(XENCAMERA_FIELD_UNIQUE_ID, *uid, "non-printable character");
	cfg.uniqueId = *uid;

	auto mb = readKey(dir, XENCAMERA_FIELD_MAX_BUFFERS);
	if (!mb)
		return mb.error();
	auto maxBufs = parseUnsigned(XENCAMERA_FIELD_MAX_BUFFERS, *mb, UINT8_MAX);
	if (!maxBufs)
		return maxBufs.error();
	if (!*maxBufs)
		return bad(XENCAMERA_FIELD_MAX_BUFFERS, *mb, "must be at least 1");
	cfg.maxBuffers = static_cast<uint8_t>(*maxBufs);

	if (auto c = dir.read(XENCAMERA_FIELD_CONTROLS)) {
		auto ctrls = parseControls(XENCAMERA_FIELD_CONTROLS, *c);
		if (!ctrls)
			return ctrls.error();
		cfg.controls = std::move(*ctrls);
	}

	auto fourccs = dir.list(XENCAMERA_FIELD_FORMATS);
	if (!fourccs || fourccs->empty())
		return missing(XENCAMERA_FIELD_FORMATS);
	if (fourccs->size() > kMaxFormats)
		return Error{ -E2BIG, std::string(XENCAMERA_FIELD_FORMATS) + ": more than " +
					      std::to_string(kMaxFormats) + " formats" };
	for (const auto &label : *fourccs) {
		std::string fdir = join(XENCAMERA_FIELD_FORMATS, label);
		auto fourcc = parseFourccLabel(fdir, label);
		if (!fourcc)
			return fourcc.error();
		FormatCaps fmt{ *fourcc, {} };
		auto sizes = dir.list(fdir);
		if (!sizes || sizes->empty())
			return Error{ -ENOENT, fdir + ": no resolutions" };
		if (sizes->size() > kMaxResolutionsPerFormat)
			return Error{ -E2BIG, fdir + ": more than " +
						      std::to_string(kMaxResolutionsPerFormat) +
						      " resolutions" };
		for (const auto &size : *sizes) {
			std::string rdir = join(fdir, size);
			auto wh = parseResolution(rdir, size);
			if (!wh)
				return wh.error();
			std::string rkey = join(rdir, XENCAMERA_FIELD_FRAME_RATES);
			auto ratesStr = readKey(dir, rkey);
			if (!ratesStr)
				return ratesStr.error();
			auto rates = parseFrameRates(rkey, *ratesStr);
			if (!rates)
				return rates.error();
			fmt.resolutions.push_back({ wh->first, wh->second, std::move(*rates) });
		}
		cfg.formats.push_back(std::move(fmt));
	}
	return cfg;
}

std::map<std::string, std::string> formatVcameraConfig(const VcameraConfig &config)
{
	std::map<std::string, std::string> kv;
	kv[XENCAMERA_FIELD_BE_ALLOC] = config.beAlloc ? "1" : "0";
	kv[XENCAMERA_FIELD_UNIQUE_ID] = config.uniqueId;
	kv[XENCAMERA_FIELD_MAX_BUFFERS] = std::to_string(config.maxBuffers);
	kv[XENCAMERA_FIELD_CONTROLS] = formatControls(config.controls);
	for (const auto &fmt : config.formats) {
		std::string fdir = join(XENCAMERA_FIELD_FORMATS, formatFourccLabel(fmt.fourcc));
		for (const auto &res : fmt.resolutions) {
			std::string rdir = join(fdir, std::to_string(res.width) + "x" +
							      std::to_string(res.height));
			kv[join(rdir, XENCAMERA_FIELD_FRAME_RATES)] = formatFrameRates(res.frameRates);
		}
	}
	return kv;
}

Result<VcameraTransport> parseVcameraTransport(const XsView &dir,
					       const std::vector<std::string> &supportedVersions)
{
	VcameraTransport t;
	/*
	 * Linux's xen-camera-front never writes "version": a frontend that
	 * names no version speaks protocol 1 (the only one there is).  Liberal
	 * on input; our own frontend still writes it.
	 */
	auto version = readKey(dir, XENCAMERA_FIELD_FE_VERSION, false);
	if (!version && version.error().code == -ENOENT) {
		t.version = XENCAMERA_PROTOCOL_VERSION;
		t.versionImplied = true;
		version = t.version;
	}
	if (!version)
		return version.error();
	if (std::find(supportedVersions.begin(), supportedVersions.end(), *version) ==
	    supportedVersions.end())
		return bad(XENCAMERA_FIELD_FE_VERSION, *version, "protocol version not supported");
	t.version = *version;

	struct Field { const char *key; uint32_t *out; bool nonzero; };
	const Field fields[] = {
		{ XENCAMERA_FIELD_REQ_RING_REF, &t.reqRingRef, true },
		{ XENCAMERA_FIELD_REQ_CHANNEL, &t.reqEventChannel, true },
		{ XENCAMERA_FIELD_EVT_RING_REF, &t.evtRingRef, true },
		{ XENCAMERA_FIELD_EVT_CHANNEL, &t.evtEventChannel, true },
	};
	for (const auto &f : fields) {
		auto s = readKey(dir, f.key);
		if (!s)
			return s.error();
		auto v = parseUnsigned(f.key, *s, UINT32_MAX);
		if (!v)
			return v.error();
		if (f.nonzero && !*v)
			return bad(f.key, *s, "0 is not a valid grant ref or port");
		*f.out = static_cast<uint32_t>(*v);
	}
	return t;
}

std::map<std::string, std::string> formatVcameraTransport(const VcameraTransport &t)
{
	return {
		{ XENCAMERA_FIELD_FE_VERSION, t.version },
		{ XENCAMERA_FIELD_REQ_RING_REF, std::to_string(t.reqRingRef) },
		{ XENCAMERA_FIELD_REQ_CHANNEL, std::to_string(t.reqEventChannel) },
		{ XENCAMERA_FIELD_EVT_RING_REF, std::to_string(t.evtRingRef) },
		{ XENCAMERA_FIELD_EVT_CHANNEL, std::to_string(t.evtEventChannel) },
	};
}

VcameraPaths vcameraPaths(uint32_t backendDomid, uint32_t frontendDomid, uint32_t devid,
			  std::string_view type)
{
	std::string t(type);
	return {
		"/local/domain/" + std::to_string(frontendDomid) + "/device/" + t + "/" +
			std::to_string(devid),
		"/local/domain/" + std::to_string(backendDomid) + "/backend/" + t + "/" +
			std::to_string(frontendDomid) + "/" + std::to_string(devid),
	};
}

} /* namespace xmb::proto */
