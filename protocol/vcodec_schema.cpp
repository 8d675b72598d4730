/* SPDX-License-Identifier: MIT */
#include "protocol/vcodec_schema.h"

#include <algorithm>
#include <cerrno>

#include "protocol/vcodec.h"

namespace xmb::proto {

namespace {

Error bad(std::string_view key, std::string_view value, const std::string &why)
{
	return Error{ -EINVAL, std::string(key) + ": '" +
				       std::string(value.substr(0, 64)) + (value.size() > 64 ? "...'" : "'") +
				       ": " + why };
}

Result<std::string> readKey(const XsView &dir, const std::string &key)
{
	auto v = dir.read(key);
	if (!v)
		return Error{ -ENOENT, key + ": missing" };
	if (v->size() > kMaxValueLen)
		return bad(key, *v, "longer than " + std::to_string(kMaxValueLen));
	return *v;
}

/* "a,b,c" -> items; empty string or empty item or too many -> error. */
Result<std::vector<std::string>> parseList(const std::string &key, const std::string &value)
{
	std::vector<std::string> out;
	if (value.empty())
		return bad(key, value, "empty list");
	size_t start = 0;
	while (true) {
		size_t end = value.find(',', start);
		std::string item = value.substr(start, end == std::string::npos ? std::string::npos : end - start);
		if (item.empty())
			return bad(key, value, "empty list item");
		if (out.size() >= kMaxCodecListItems)
			return bad(key, value, "more than " + std::to_string(kMaxCodecListItems) + " items");
		if (std::find(out.begin(), out.end(), item) != out.end())
			return bad(key, value, "duplicate item '" + item + "'");
		out.push_back(item);
		if (end == std::string::npos)
			break;
		start = end + 1;
	}
	return out;
}

std::string join(const std::vector<std::string> &items)
{
	std::string s;
	for (const auto &i : items)
		s += (s.empty() ? "" : ",") + i;
	return s;
}

Result<std::vector<std::string>> readList(const XsView &dir, const std::string &key)
{
	auto v = readKey(dir, key);
	if (!v)
		return v.error();
	return parseList(key, *v);
}

} /* namespace */

const CodecCaps *VcodecConfig::find(uint32_t codec) const
{
	for (const auto &c : codecs)
		if (c.codec == codec)
			return &c;
	return nullptr;
}

Result<VcodecConfig> parseVcodecConfig(const XsView &dir)
{
	VcodecConfig c;
	auto names = readList(dir, "codecs");
	if (!names)
		return names.error();
	if (names->size() > kMaxCodecs)
		return Error{ -EINVAL, "codecs: more than " + std::to_string(kMaxCodecs) };
	for (const auto &n : *names) {
		auto id = codecFromName(n);
		if (!id)
			return bad("codecs", n, "unknown codec");
		CodecCaps cc;
		cc.codec = *id;
		const std::string base = "codec/" + n + "/";
		auto raw = readList(dir, base + "raw-formats");
		if (!raw)
			return raw.error();
		for (const auto &f : *raw) {
			auto fc = parseFourccLabel(base + "raw-formats", f);
			if (!fc)
				return fc.error();
			cc.rawFormats.push_back(*fc);
		}
		auto rc = readList(dir, base + "rc-modes");
		if (!rc)
			return rc.error();
		for (const auto &m : *rc) {
			auto mode = rcModeFromName(m);
			if (!mode)
				return bad(base + "rc-modes", m, "unknown rate-control mode");
			cc.rcModes.push_back(*mode);
		}
		auto prof = readList(dir, base + "profiles");
		if (!prof)
			return prof.error();
		for (const auto &p : *prof) {
			if (p.size() > 32 || !std::all_of(p.begin(), p.end(), [](char ch) {
				    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-';
			    }))
				return bad(base + "profiles", p, "profile names are [a-z0-9-]{1,32}");
			cc.profiles.push_back(p);
		}
		auto lv = readList(dir, base + "levels");
		if (!lv)
			return lv.error();
		for (const auto &l : *lv) {
			auto v = parseUnsigned(base + "levels", l, 255);
			if (!v)
				return v.error();
			cc.levels.push_back(static_cast<uint32_t>(*v));
		}
		c.codecs.push_back(std::move(cc));
	}
	for (auto [key, w, h] : { std::tuple{ "min-size", &c.minWidth, &c.minHeight },
				  std::tuple{ "max-size", &c.maxWidth, &c.maxHeight } }) {
		auto v = readKey(dir, key);
		if (!v)
			return v.error();
		auto r = parseResolution(key, *v);
		if (!r)
			return r.error();
		*w = r->first;
		*h = r->second;
	}
	if (c.minWidth > c.maxWidth || c.minHeight > c.maxHeight)
		return Error{ -EINVAL, "min-size larger than max-size" };
	auto mb = readKey(dir, "max-buffers");
	if (!mb)
		return mb.error();
	auto mbv = parseUnsigned("max-buffers", *mb, XENVCODEC_MAX_BUFFERS);
	if (!mbv)
		return mbv.error();
	if (!*mbv)
		return bad("max-buffers", *mb, "0 buffers");
	c.maxBuffers = static_cast<uint8_t>(*mbv);
	auto br = readKey(dir, "max-bitrate");
	if (!br)
		return br.error();
	auto brv = parseUnsigned("max-bitrate", *br, 1000000000u);
	if (!brv)
		return brv.error();
	c.maxBitrate = static_cast<uint32_t>(*brv);
	/* Optional (older backends do not write it): only "0" and "1" mean something. */
	if (auto v = dir.read("be-alloc")) {
		if (*v != "0" && *v != "1")
			return bad("be-alloc", *v, "expected \"0\" or \"1\"");
		c.beAlloc = *v == "1";
	}
	if (auto v = dir.read("input-dmabuf")) {
		if (*v != "0" && *v != "1")
			return bad("input-dmabuf", *v, "expected \"0\" or \"1\"");
		c.inputDmaBuf = *v == "1";
	}
	return c;
}

std::map<std::string, std::string> formatVcodecConfig(const VcodecConfig &c)
{
	std::map<std::string, std::string> kv;
	std::vector<std::string> names;
	for (const auto &cc : c.codecs) {
		std::string n = codecName(cc.codec) ? codecName(cc.codec) : "?";
		names.push_back(n);
		const std::string base = "codec/" + n + "/";
		std::vector<std::string> raw, rc, lv;
		for (uint32_t f : cc.rawFormats)
			raw.push_back(formatFourccLabel(f));
		for (uint8_t m : cc.rcModes)
			rc.push_back(rcModeName(m) ? rcModeName(m) : "?");
		for (uint32_t l : cc.levels)
			lv.push_back(std::to_string(l));
		kv[base + "raw-formats"] = join(raw);
		kv[base + "rc-modes"] = join(rc);
		kv[base + "profiles"] = join(cc.profiles);
		kv[base + "levels"] = join(lv);
	}
	kv["codecs"] = join(names);
	kv["min-size"] = std::to_string(c.minWidth) + "x" + std::to_string(c.minHeight);
	kv["max-size"] = std::to_string(c.maxWidth) + "x" + std::to_string(c.maxHeight);
	kv["max-buffers"] = std::to_string(c.maxBuffers);
	kv["max-bitrate"] = std::to_string(c.maxBitrate);
	if (c.beAlloc)
		kv["be-alloc"] = "1";
	if (c.inputDmaBuf)
		kv["input-dmabuf"] = "1";
	return kv;
}

Result<VcodecTransport> parseVcodecTransport(const XsView &dir,
					     const std::vector<std::string> &supportedVersions)
{
	VcodecTransport t;
	auto version = readKey(dir, "version");
	if (!version)
		return version.error();
	if (std::find(supportedVersions.begin(), supportedVersions.end(), *version) ==
	    supportedVersions.end())
		return bad("version", *version, "protocol version not supported");
	t.version = *version;
	struct Field { const char *key; uint32_t *out; };
	const Field fields[] = {
		{ "req-ring-ref", &t.reqRingRef },
		{ "req-event-channel", &t.reqEventChannel },
		{ "evt-page-ref", &t.evtRingRef },
		{ "evt-event-channel", &t.evtEventChannel },
	};
	for (const auto &f : fields) {
		auto s = readKey(dir, f.key);
		if (!s)
			return s.error();
		auto v = parseUnsigned(f.key, *s, UINT32_MAX);
		if (!v)
			return v.error();
		if (!*v)
			return bad(f.key, *s, "0 is not a valid grant ref or port");
		*f.out = static_cast<uint32_t>(*v);
	}
	return t;
}

std::map<std::string, std::string> formatVcodecTransport(const VcodecTransport &t)
{
	return {
		{ "version", t.version },
		{ "req-ring-ref", std::to_string(t.reqRingRef) },
		{ "req-event-channel", std::to_string(t.reqEventChannel) },
		{ "evt-page-ref", std::to_string(t.evtRingRef) },
		{ "evt-event-channel", std::to_string(t.evtEventChannel) },
	};
}

} /* namespace xmb::proto */
