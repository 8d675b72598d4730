/* SPDX-License-Identifier: MIT */
#include "bridge/service/service_config.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "protocol/xenstore_schema.h"
#include "v4l2/pixel_format.h"

namespace xmb::service {

namespace {

std::string trim(std::string_view s)
{
	size_t a = s.find_first_not_of(" \t\r");
	if (a == std::string_view::npos)
		return {};
	size_t b = s.find_last_not_of(" \t\r");
	return std::string(s.substr(a, b - a + 1));
}

std::vector<std::string> list(const std::string &v)
{
	std::vector<std::string> out;
	std::stringstream ss(v);
	std::string item;
	while (std::getline(ss, item, ','))
		if (!trim(item).empty())
			out.push_back(trim(item));
	return out;
}

std::optional<bool> boolean(const std::string &v)
{
	if (v == "yes" || v == "true" || v == "1" || v == "on")
		return true;
	if (v == "no" || v == "false" || v == "0" || v == "off")
		return false;
	return std::nullopt;
}

} /* namespace */

const CameraEntry *ServiceConfig::camera(const std::string &name) const
{
	for (const auto &c : cameras)
		if (c.name == name)
			return &c;
	return nullptr;
}

Result<ServiceConfig> parseServiceConfig(std::string_view text, const std::string &file)
{
	ServiceConfig cfg;
	enum { None, Camera, Guest } section = None;
	std::istringstream in{ std::string(text) };
	std::string raw;
	int lineNo = 0;
	auto err = [&](const std::string &what) {
		return Error{ -EINVAL, file + ":" + std::to_string(lineNo) + ": " + what };
	};

	while (std::getline(in, raw)) {
		lineNo++;
		std::string line = trim(raw.substr(0, raw.find('#')));
		if (line.empty())
			continue;
		if (line.front() == '[') {
			if (line.back() != ']')
				return err("unterminated section header '" + line + "'");
			std::istringstream hs(line.substr(1, line.size() - 2));
			std::string kind, name, extra;
			hs >> kind >> name >> extra;
			if (name.empty() || !extra.empty())
				return err("section header must be [camera NAME] or [guest NAME]");
			if (kind == "camera") {
				if (cfg.camera(name))
					return err("camera '" + name + "' defined twice");
				CameraEntry c;
				c.name = name;
				c.line = lineNo;
				cfg.cameras.push_back(std::move(c));
				section = Camera;
			} else if (kind == "guest") {
				GuestEntry g;
				g.name = name;
				g.line = lineNo;
				cfg.guests.push_back(g);
				section = Guest;
			} else {
				return err("unknown section kind '" + kind + "' (camera or guest)");
			}
			continue;
		}
		size_t eq = line.find('=');
		if (eq == std::string::npos)
			return err("expected 'key = value', got '" + line + "'");
		std::string key = trim(line.substr(0, eq));
		std::string value = trim(line.substr(eq + 1));
		auto bad = [&](const std::string &why) {
			return err("key '" + key + "': '" + value + "': " + why);
		};
		if (section == None)
			return err("key '" + key + "' outside a [camera] or [guest] section");

		if (section == Camera) {
			CameraEntry &c = cfg.cameras.back();
			if (key == "source") {
				c.source = value;
			} else if (key == "copy") {
				if (value != "auto" && value != "force")
					return bad("expected auto or force");
				c.forceCopy = value == "force";
			} else if (key == "foreign-userptr") {
				if (value == "auto") {
					c.foreignUserPtr.reset();
				} else {
					auto b = boolean(value);
					if (!b)
						return bad("expected auto, yes or no");
					c.foreignUserPtr = *b;
				}
			} else if (key == "share-device-buffers") {
				auto b = boolean(value);
				if (!b)
					return bad("expected yes or no");
				c.shareDeviceBuffers = *b;
			} else if (key == "formats") {
				for (const auto &f : list(value)) {
					/* "NV12M": V4L2's name for the fourcc 'NM12' */
					if (uint32_t m = multiBufferFourccByName(f)) {
						c.formats.push_back(m);
						continue;
					}
					auto fourcc = proto::parseFourccLabel(key, f);
					if (!fourcc)
						return bad(fourcc.error().message);
					c.formats.push_back(*fourcc);
				}
			} else if (key == "unique-id") {
				/* Toolstack-created vcamera devices naming this id are served by this camera. */
				if (value.empty() || value.size() > proto::kMaxUniqueIdLen ||
				    std::any_of(value.begin(), value.end(),
						[](char ch) { return ch < 0x21 || ch > 0x7e; }))
					return bad("1 to 128 printable characters without spaces");
				c.uniqueId = value;
			} else if (key == "toolstack-max-buffers") {
				auto v = proto::parseUnsigned(key, value, 32);
				if (!v || *v == 0)
					return bad("expected 1..32");
				c.toolstackMaxBuffers = static_cast<uint8_t>(*v);
			} else {
				return err("unknown key '" + key + "' in [camera " + c.name + "]");
			}
			continue;
		}

		GuestEntry &g = cfg.guests.back();
		if (key == "domain") {
			auto id = proto::parseUnsigned(key, value, 0x7fef);
			if (id)
				g.domid = static_cast<xen::DomId>(*id);
			else if (!value.empty() && std::isalpha(static_cast<unsigned char>(value[0])))
				g.domainName = value;
			else
				return bad("expected a domain name or a domid (0..32751)");
		} else if (key == "device") {
			auto v = proto::parseUnsigned(key, value, 255);
			if (!v)
				return bad("expected 0..255");
			g.device = static_cast<unsigned>(*v);
		} else if (key == "camera") {
			g.camera = value;
		} else if (key == "max-buffers") {
			auto v = proto::parseUnsigned(key, value, 32);
			if (!v || !*v)
				return bad("expected 1..32");
			g.maxBuffers = static_cast<uint8_t>(*v);
		} else if (key == "be-alloc") {
			auto b = boolean(value);
			if (!b)
				return bad("expected yes or no");
			g.beAlloc = *b;
		} else if (key == "max-pages") {
			auto v = proto::parseUnsigned(key, value, 1u << 22);
			if (!v || !*v)
				return bad("expected 1..4194304");
			g.maxPages = *v;
		} else if (key == "controls") {
			auto c = proto::parseControls(key, value == "none" ? "" : value);
			if (!c)
				return bad(c.error().message);
			g.controls = *c;
		} else if (key == "unique-id") {
			if (value.empty() || value.size() > proto::kMaxUniqueIdLen ||
			    std::any_of(value.begin(), value.end(), [](char ch) { return ch < 0x21 || ch > 0x7e; }))
				return bad("1 to 128 printable characters without spaces");
			g.uniqueId = value;
		} else {
			return err("unknown key '" + key + "' in [guest " + g.name + "]");
		}
	}

	/* Cross-checks, each naming the section's line. */
	std::set<std::pair<std::string, unsigned>> seen;
	for (const auto &c : cfg.cameras)
		if (c.source.empty())
			return Error{ -EINVAL, file + ":" + std::to_string(c.line) + ": [camera " + c.name +
						       "]: key 'source' missing" };
	for (const auto &g : cfg.guests) {
		std::string where = file + ":" + std::to_string(g.line) + ": [guest " + g.name + "]: ";
		if (!g.domid && g.domainName.empty())
			return Error{ -EINVAL, where + "key 'domain' missing" };
		if (g.camera.empty())
			return Error{ -EINVAL, where + "key 'camera' missing" };
		if (!cfg.camera(g.camera))
			return Error{ -EINVAL, where + "key 'camera': no [camera " + g.camera + "] section" };
		std::string dom = g.domid ? std::to_string(*g.domid) : g.domainName;
		if (!seen.insert({ dom, g.device }).second)
			return Error{ -EINVAL, where + "device " + std::to_string(g.device) +
						       " of domain " + dom + " configured twice" };
	}
	return cfg;
}

Result<ServiceConfig> loadServiceConfig(const std::string &path)
{
	std::ifstream f(path);
	if (!f)
		return Error{ -errno, path + ": " + std::strerror(errno) };
	std::stringstream ss;
	ss << f.rdbuf();
	return parseServiceConfig(ss.str(), path);
}

} /* namespace xmb::service */
