/* SPDX-License-Identifier: MIT */
#include "bridge/service/toolstack.h"

#include "protocol/cameraif.h"

#include <cerrno>

extern "C" {
#include <xen/io/xenbus.h>
}

namespace xmb::service {

using xen::XsPerm;

Status attachDevice(xen::XenStore &xs, xen::DomId backend, xen::DomId frontend, unsigned devid,
		    const proto::VcameraConfig &config)
{
	return attachDevice(xs, backend, frontend, devid, proto::formatVcameraConfig(config), "vcamera",
			    XENCAMERA_PROTOCOL_VERSION);
}

Status attachDevice(xen::XenStore &xs, xen::DomId backend, xen::DomId frontend, unsigned devid,
		    const std::map<std::string, std::string> &frontendKeys, const std::string &type,
		    const std::string &versions)
{
	auto paths = proto::vcameraPaths(backend, frontend, devid, type);
	const std::vector<XsPerm> fePerms = { { frontend, XsPerm::None }, { backend, XsPerm::Read } };
	const std::vector<XsPerm> bePerms = { { backend, XsPerm::None }, { frontend, XsPerm::Read } };

	return xen::runTransaction(xs, [&](xen::TxId tx) -> Status {
		/* Start clean: a stale directory from a crashed run must not leak old keys. */
		(void)xs.rm(tx, paths.frontend);
		(void)xs.rm(tx, paths.backend);

		std::map<std::string, std::string> fe = frontendKeys;
		fe["backend"] = paths.backend;
		fe["backend-id"] = std::to_string(backend);
		fe["state"] = std::to_string(XenbusStateInitialising);
		std::map<std::string, std::string> be = {
			{ "frontend", paths.frontend },
			{ "frontend-id", std::to_string(frontend) },
			{ "state", std::to_string(XenbusStateInitialising) },
			{ "online", "1" },
			{ "versions", versions },
		};
		for (const auto &[dir, kv, perms] :
		     { std::tuple{ paths.frontend, &fe, &fePerms }, std::tuple{ paths.backend, &be, &bePerms } }) {
			Status s = xs.mkdir(tx, dir);
			if (!s)
				return s;
			s = xs.setPermissions(tx, dir, *perms);
			if (!s)
				return s;
			for (const auto &[k, v] : *kv) {
				/* Intermediate dirs (formats/...) are created by the write. */
				s = xs.write(tx, dir + "/" + k, v);
				if (!s)
					return s;
			}
			/* Every node gets the same permissions (created ones inherit the parent's). */
			for (const auto &[k, v] : *kv) {
				std::string path = dir;
				size_t pos = 0;
				while (true) {
					size_t slash = k.find('/', pos);
					path = dir + "/" + k.substr(0, slash);
					s = xs.setPermissions(tx, path, *perms);
					if (!s)
						return s;
					if (slash == std::string::npos)
						break;
					pos = slash + 1;
				}
			}
		}
		return {};
	});
}

Status detachDevice(xen::XenStore &xs, xen::DomId backend, xen::DomId frontend, unsigned devid,
		    const std::string &type)
{
	auto paths = proto::vcameraPaths(backend, frontend, devid, type);
	Status a = xs.rm(paths.frontend);
	Status b = xs.rm(paths.backend);
	if (!a && a.error().code != -ENOENT)
		return a;
	if (!b && b.error().code != -ENOENT)
		return b;
	return {};
}

Result<xen::DomId> findDomainByName(xen::XenStore &xs, const std::string &name)
{
	auto doms = xs.list("/local/domain");
	if (!doms)
		return doms.error();
	for (const auto &d : *doms) {
		auto n = xs.read("/local/domain/" + d + "/name");
		if (n && *n == name)
			return static_cast<xen::DomId>(std::stoul(d));
	}
	return Error{ -ENOENT, "no running domain named '" + name + "'" };
}

bool domainGone(xen::XenStore &xs, xen::DomId dom)
{
	if (auto in = xs.domainIntroduced(dom))
		return !*in;
	return !xs.read(xen::XenStore::domainPath(dom) + "/domid");
}

std::optional<xen::DomId> runningDomain(xen::XenStore &xs, std::optional<xen::DomId> domid,
					const std::string &name)
{
	std::optional<xen::DomId> fe = domid;
	if (!fe) {
		auto id = findDomainByName(xs, name);
		if (!id)
			return std::nullopt;
		fe = *id;
	}
	/* Dead but not cleaned up yet by the toolstack counts as not running. */
	if (domainGone(xs, *fe))
		return std::nullopt;
	return fe;
}

} /* namespace xmb::service */
