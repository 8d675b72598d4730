/* SPDX-License-Identifier: MIT */
#include <cerrno>

#include "bridge/platform/loopback/loopback_state.h"

namespace xmb::xen {

std::shared_ptr<LoopbackXen> LoopbackXen::create()
{
	return std::make_shared<loopback::Hypervisor>();
}

namespace loopback {

/*
 * The tree starts as xenstored's does after xen-init-dom0: "/" and "/local"
 * owned by Dom0 and closed to others, /local/domain/0 for Dom0.
 */
Hypervisor::Hypervisor()
{
	root.perms = { { kDom0, XsPerm::None } };
	Domain d0;
	d0.id = kDom0;
	d0.name = "Domain-0";
	domains[kDom0] = std::move(d0);
	std::vector<std::string> changed;
	std::string name = "Domain-0";
	std::string zero = "0";
	(void)xsWrite(root, kDom0, "/local/domain/0/name", &name, changed);
	(void)xsWrite(root, kDom0, "/local/domain/0/domid", &zero, changed);
}

Domain *Hypervisor::aliveDomain(DomId id)
{
	auto it = domains.find(id);
	if (it == domains.end() || !it->second.alive)
		return nullptr;
	return &it->second;
}

void Hypervisor::freeGrant(Domain &d, Gref ref)
{
	d.grants.erase(ref);
	d.freeRefs.insert(ref);
}

void Hypervisor::closePort(Domain &d, Port port)
{
	auto it = d.ports.find(port);
	if (it == d.ports.end())
		return;
	if (it->second.kind == PortState::Kind::Interdomain) {
		auto peer = domains.find(it->second.remoteDom);
		if (peer != domains.end()) {
			auto p = peer->second.ports.find(it->second.remotePort);
			if (p != peer->second.ports.end()) {
				/* The peer's end falls back to unbound, as in Xen's evtchn_close. */
				p->second.kind = PortState::Kind::Unbound;
				p->second.remoteDom = d.id;
				p->second.remotePort = 0;
			}
		}
	}
	d.ports.erase(it);
}

Status Hypervisor::createDomain(DomId id, const std::string &name)
{
	std::lock_guard<std::mutex> l(lock);
	if (id == kDom0 || id >= 0x7ff0)
		return Error{ -EINVAL, "loopback: invalid domid " + std::to_string(id) };
	auto it = domains.find(id);
	if (it != domains.end() && it->second.alive)
		return Error{ -EEXIST, "loopback: dom" + std::to_string(id) + " exists" };
	Domain d;
	d.id = id;
	d.name = name.empty() ? "dom" + std::to_string(id) : name;
	domains[id] = std::move(d);

	/* What the toolstack does: the domain's own directory, owned by it. */
	std::string dir = XenStore::domainPath(id);
	std::vector<std::string> changed;
	std::string idStr = std::to_string(id);
	std::string nm = domains[id].name;
	(void)xsWrite(root, kDom0, dir + "/domid", &idStr, changed);
	(void)xsWrite(root, kDom0, dir + "/name", &nm, changed);
	Node *n = find(root, dir);
	std::function<void(Node &)> own = [&](Node &node) {
		node.perms = { { id, XsPerm::None } };
		for (auto &[k, c] : node.children)
			own(c);
	};
	own(*n);
	/* device/ and data/ exist for the guest to write in. */
	(void)xsWrite(root, kDom0, dir + "/device", nullptr, changed);
	(void)xsWrite(root, kDom0, dir + "/data", nullptr, changed);
	own(*n);
	generation++;
	for (const auto &p : changed)
		fireWatches(p, nullptr, false);
	fireSpecial("@introduceDomain");
	return {};
}

Status Hypervisor::destroyDomain(DomId id)
{
	std::lock_guard<std::mutex> l(lock);
	Domain *d = aliveDomain(id);
	if (!d || id == kDom0)
		return Error{ -ESRCH, "loopback: no running dom" + std::to_string(id) };
	d->alive = false;
	std::vector<Port> ports;
	for (auto &[p, st] : d->ports)
		ports.push_back(p);
	for (Port p : ports)
		closePort(*d, p);

	/*
	 * Xen's order: @releaseDomain fires when the hypervisor has destroyed
	 * the domain; its XenStore directory is the toolstack's to remove, a
	 * little later (removeDomainDirectory).  Backends that take "directory
	 * still there" for "alive" at @releaseDomain are caught by this.
	 */
	fireSpecial("@releaseDomain");
	if (!keepDirectory_)
		removeDirectoryLocked(id);
	return {};
}

void Hypervisor::removeDirectoryLocked(DomId id)
{
	Node *local = find(root, "/local/domain");
	if (!local)
		return;
	auto it = local->children.find(std::to_string(id));
	if (it == local->children.end())
		return;
	Node before = std::move(it->second);
	local->children.erase(it);
	generation++;
	fireWatches(XenStore::domainPath(id), &before, true);
}

Status Hypervisor::removeDomainDirectory(DomId id)
{
	std::lock_guard<std::mutex> l(lock);
	if (aliveDomain(id))
		return Error{ -EBUSY, "loopback: dom" + std::to_string(id) + " is running" };
	removeDirectoryLocked(id);
	return {};
}

Result<std::unique_ptr<Platform>> Hypervisor::open(DomId id)
{
	{
		std::lock_guard<std::mutex> l(lock);
		if (!aliveDomain(id))
			return Error{ -ESRCH, "loopback: no running dom" + std::to_string(id) };
	}
	auto self = shared_from_this();
	auto events = makeEventBackend(self, id);
	if (!events)
		return events.error();
	auto store = makeXenStore(self, id);
	if (!store)
		return store.error();
	auto p = std::make_unique<Platform>();
	p->self = id;
	p->grants = GrantTable::create(makeGrantBackend(self, id));
	p->events = std::make_unique<EventChannels>(std::move(*events));
	p->store = std::move(*store);
	p->kind = "loopback";
	return p;
}

size_t Hypervisor::grantEntries(DomId granter) const
{
	std::lock_guard<std::mutex> l(lock);
	auto it = domains.find(granter);
	return it == domains.end() ? 0 : it->second.grants.size();
}

size_t Hypervisor::mappedGrants(DomId granter) const
{
	std::lock_guard<std::mutex> l(lock);
	auto it = domains.find(granter);
	if (it == domains.end())
		return 0;
	size_t n = 0;
	for (const auto &[ref, g] : it->second.grants)
		n += g.mapCount ? 1 : 0;
	return n;
}

void Hypervisor::setGrantTableSize(DomId dom, size_t entries)
{
	std::lock_guard<std::mutex> l(lock);
	auto it = domains.find(dom);
	if (it != domains.end())
		it->second.maxGrants = entries;
}

} /* namespace loopback */
} /* namespace xmb::xen */
