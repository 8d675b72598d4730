/* SPDX-License-Identifier: MIT */
/*
 * Loopback XenStore: one tree in the hypervisor object, one Connection per
 * XenStore handle.  Permission, watch and transaction rules follow the C
 * xenstored (see loopback_xen.h).
 */
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

#include "bridge/platform/loopback/loopback_state.h"

namespace xmb::xen::loopback {

namespace {

constexpr size_t kMaxPathLen = 3072;

bool validPath(const std::string &p)
{
	if (p.empty() || p.size() > kMaxPathLen)
		return false;
	if (p[0] == '@')
		return p == "@introduceDomain" || p == "@releaseDomain";
	if (p.back() == '/' && p != "/")
		return false;
	if (p.find("//") != std::string::npos)
		return false;
	return std::all_of(p.begin(), p.end(), [](char c) {
		return std::isalnum(static_cast<unsigned char>(c)) || c == '/' || c == '-' ||
		       c == '_' || c == '@';
	});
}

std::vector<std::string> components(const std::string &abs)
{
	std::vector<std::string> out;
	size_t i = 1;
	while (i < abs.size()) {
		size_t j = abs.find('/', i);
		if (j == std::string::npos)
			j = abs.size();
		out.push_back(abs.substr(i, j - i));
		i = j + 1;
	}
	return out;
}

bool isUnder(const std::string &path, const std::string &dir)
{
	if (dir == "/")
		return true;
	return path == dir || (path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 &&
			       path[dir.size()] == '/');
}

class LoopbackXenStore final : public XenStore
{
public:
	LoopbackXenStore(std::shared_ptr<Hypervisor> hv, DomId self, UniqueFD rd, UniqueFD wr)
		: hv_(std::move(hv)), self_(self)
	{
		conn_.dom = self;
		conn_.wakeRead = std::move(rd);
		conn_.wakeWrite = std::move(wr);
		std::lock_guard<std::mutex> l(hv_->lock);
		hv_->connections.insert(&conn_);
	}

	~LoopbackXenStore() override
	{
		std::lock_guard<std::mutex> l(hv_->lock);
		hv_->connections.erase(&conn_);
		for (auto it = hv_->transactions.begin(); it != hv_->transactions.end();) {
			if (owned_.count(it->first))
				it = hv_->transactions.erase(it);
			else
				++it;
		}
	}

	Result<std::string> read(TxId tx, const std::string &path) override
	{
		std::lock_guard<std::mutex> l(hv_->lock);
		auto n = lookup(tx, path, XsPerm::Read, "read");
		if (!n)
			return n.error();
		return (*n)->value;
	}

	Status write(TxId tx, const std::string &path, const std::string &value) override
	{
		return modify(tx, path, &value, "write");
	}

	Status mkdir(TxId tx, const std::string &path) override
	{
		return modify(tx, path, nullptr, "mkdir");
	}

	Status rm(TxId tx, const std::string &path) override
	{
		std::lock_guard<std::mutex> l(hv_->lock);
		auto abs = absolute(path);
		if (!abs)
			return abs.error();
		if (*abs == "/")
			return Error{ -EINVAL, "xenstore rm /: refused" };
		Node *root = rootFor(tx);
		if (!root)
			return Error{ -ENOENT, "xenstore rm: no transaction " + std::to_string(tx) };
		auto comps = components(*abs);
		Node *parent = root;
		for (size_t i = 0; i + 1 < comps.size(); i++) {
			auto it = parent->children.find(comps[i]);
			if (it == parent->children.end())
				return Error{ -ENOENT, "xenstore rm " + path + ": no such node" };
			parent = &it->second;
		}
		auto it = parent->children.find(comps.back());
		if (it == parent->children.end())
			return Error{ -ENOENT, "xenstore rm " + path + ": no such node" };
		if (!(Hypervisor::access(it->second, self_) & XsPerm::Write))
			return Error{ -EACCES, "xenstore rm " + path + ": permission denied" };
		Node before = std::move(it->second);
		parent->children.erase(it);
		if (tx == kNoTx) {
			hv_->generation++;
			hv_->fireWatches(*abs, &before, true);
		} else {
			hv_->transactions[tx].changed.push_back(*abs);
		}
		return {};
	}

	Result<std::vector<std::string>> list(TxId tx, const std::string &path) override
	{
		std::lock_guard<std::mutex> l(hv_->lock);
		auto n = lookup(tx, path, XsPerm::Read, "directory");
		if (!n)
			return n.error();
		std::vector<std::string> out;
		for (const auto &[name, child] : (*n)->children)
			out.push_back(name);
		return out;
	}

	Result<std::vector<XsPerm>> getPermissions(TxId tx, const std::string &path) override
	{
		std::lock_guard<std::mutex> l(hv_->lock);
		auto n = lookup(tx, path, XsPerm::Read, "get-perms");
		if (!n)
			return n.error();
		return (*n)->perms;
	}

	Status setPermissions(TxId tx, const std::string &path,
			      const std::vector<XsPerm> &perms) override
	{
		std::lock_guard<std::mutex> l(hv_->lock);
		if (perms.empty())
			return Error{ -EINVAL, "xenstore set-perms " + path + ": empty list" };
		auto abs = absolute(path);
		if (!abs)
			return abs.error();
		Node *root = rootFor(tx);
		Node *n = root ? Hypervisor::find(*root, *abs) : nullptr;
		if (!n)
			return Error{ -ENOENT, "xenstore set-perms " + path + ": no such node" };
		/* Only the owner (or Dom0) may change permissions, and only Dom0 may give a node away. */
		if (self_ != kDom0 && n->perms[0].dom != self_)
			return Error{ -EACCES, "xenstore set-perms " + path + ": not the owner" };
		if (self_ != kDom0 && perms[0].dom != self_)
			return Error{ -EPERM, "xenstore set-perms " + path + ": cannot change owner" };
		Node before = *n;
		n->perms = perms;
		if (tx == kNoTx) {
			hv_->generation++;
			hv_->fireWatches(*abs, &before, false);
		} else {
			hv_->transactions[tx].changed.push_back(*abs);
		}
		return {};
	}

	Result<TxId> transactionStart() override
	{
		std::lock_guard<std::mutex> l(hv_->lock);
		TxId id = hv_->nextTx++;
		hv_->transactions[id] = Transaction{ self_, hv_->root, hv_->generation, {} };
		owned_.insert(id);
		return id;
	}

	Status transactionEnd(TxId tx, bool abort) override
	{
		std::lock_guard<std::mutex> l(hv_->lock);
		auto it = hv_->transactions.find(tx);
		if (it == hv_->transactions.end() || !owned_.count(tx))
			return Error{ -ENOENT, "xenstore: no transaction " + std::to_string(tx) };
		Transaction t = std::move(it->second);
		hv_->transactions.erase(it);
		owned_.erase(tx);
		if (abort)
			return {};
		if (t.changed.empty())
			return {};
		if (t.generation != hv_->generation)
			return Error{ -EAGAIN, "xenstore transaction conflict" };
		Node old = std::move(hv_->root);
		hv_->root = std::move(t.root);
		hv_->generation++;
		for (const auto &p : t.changed) {
			Node *now = Hypervisor::find(hv_->root, p);
			const Node *was = Hypervisor::find(old, p);
			hv_->fireWatches(p, was, now == nullptr);
		}
		return {};
	}

	Status watch(const std::string &path, const std::string &token) override
	{
		std::lock_guard<std::mutex> l(hv_->lock);
		Watch w;
		w.token = token;
		if (!path.empty() && path[0] == '@') {
			if (!validPath(path))
				return Error{ -EINVAL, "xenstore watch " + path + ": unknown special path" };
			w.path = path;
		} else {
			auto abs = absolute(path);
			if (!abs)
				return abs.error();
			w.path = *abs;
			w.relative = path[0] != '/';
		}
		for (const auto &e : conn_.watches)
			if (e.path == w.path && e.token == token)
				return Error{ -EEXIST, "xenstore watch " + path + ": already watched" };
		conn_.watches.push_back(w);
		/* xenstored fires every new watch once, with its own path. */
		queue({ path, token });
		return {};
	}

	Status unwatch(const std::string &path, const std::string &token) override
	{
		std::lock_guard<std::mutex> l(hv_->lock);
		std::string abs = path;
		if (path.empty() || path[0] != '@') {
			auto a = absolute(path);
			if (!a)
				return a.error();
			abs = *a;
		}
		auto &ws = conn_.watches;
		auto it = std::find_if(ws.begin(), ws.end(), [&](const Watch &w) {
			return w.path == abs && w.token == token;
		});
		if (it == ws.end())
			return Error{ -ENOENT, "xenstore unwatch " + path + ": not watched" };
		ws.erase(it);
		/* XS_UNWATCH_FILTER semantics: drop queued events of that watch. */
		std::erase_if(conn_.queue, [&](const WatchEvent &e) { return e.token == token; });
		return {};
	}

	int fd() const override { return conn_.wakeRead.get(); }

	std::optional<WatchEvent> readWatch() override
	{
		std::lock_guard<std::mutex> l(hv_->lock);
		if (conn_.queue.empty()) {
			drain();
			return std::nullopt;
		}
		WatchEvent ev = std::move(conn_.queue.front());
		conn_.queue.pop_front();
		if (conn_.queue.empty())
			drain();
		return ev;
	}

	Result<DomId> selfDomid() override { return self_; }

	Result<bool> domainIntroduced(DomId dom) override
	{
		std::lock_guard<std::mutex> l(hv_->lock);
		return hv_->aliveDomain(dom) != nullptr;
	}

private:
	void queue(WatchEvent ev)
	{
		if (conn_.queue.empty()) {
			char c = 1;
			(void)!::write(conn_.wakeWrite.get(), &c, 1);
		}
		conn_.queue.push_back(std::move(ev));
	}

	void drain()
	{
		char buf[64];
		while (::read(conn_.wakeRead.get(), buf, sizeof(buf)) > 0) {
		}
	}

	Result<std::string> absolute(const std::string &path) const
	{
		std::string abs = path;
		if (path.empty() || path[0] != '/')
			abs = XenStore::domainPath(self_) + (path.empty() ? "" : "/" + path);
		if (!validPath(abs))
			return Error{ -EINVAL, "xenstore: invalid path '" + path + "'" };
		return abs;
	}

	Node *rootFor(TxId tx)
	{
		if (tx == kNoTx)
			return &hv_->root;
		auto it = hv_->transactions.find(tx);
		if (it == hv_->transactions.end() || !owned_.count(tx))
			return nullptr;
		return &it->second.root;
	}

	Result<Node *> lookup(TxId tx, const std::string &path, XsPerm::Access need, const char *op)
	{
		if (!hv_->aliveDomain(self_))
			return Error{ -EIO, "xenstore: connection of a dead domain" };
		auto abs = absolute(path);
		if (!abs)
			return abs.error();
		Node *root = rootFor(tx);
		if (!root)
			return Error{ -ENOENT, std::string("xenstore ") + op + ": no transaction " +
						       std::to_string(tx) };
		Node *n = Hypervisor::find(*root, *abs);
		if (!n)
			return Error{ -ENOENT, std::string("xenstore ") + op + " " + path + ": no such node" };
		if (!(Hypervisor::access(*n, self_) & need))
			return Error{ -EACCES, std::string("xenstore ") + op + " " + path +
						       ": permission denied" };
		return n;
	}

	Status modify(TxId tx, const std::string &path, const std::string *value, const char *op)
	{
		std::lock_guard<std::mutex> l(hv_->lock);
		if (!hv_->aliveDomain(self_))
			return Error{ -EIO, "xenstore: connection of a dead domain" };
		auto abs = absolute(path);
		if (!abs)
			return abs.error();
		Node *root = rootFor(tx);
		if (!root)
			return Error{ -ENOENT, std::string("xenstore ") + op + ": no transaction " +
						       std::to_string(tx) };
		std::vector<std::string> changed;
		Status s = hv_->xsWrite(*root, self_, *abs, value, changed);
		if (!s)
			return Error{ s.error().code, std::string("xenstore ") + op + " " + path + ": " +
							      s.error().message };
		if (tx == kNoTx) {
			hv_->generation++;
			for (const auto &p : changed)
				hv_->fireWatches(p, nullptr, false);
		} else {
			auto &c = hv_->transactions[tx].changed;
			c.insert(c.end(), changed.begin(), changed.end());
		}
		return {};
	}

	std::shared_ptr<Hypervisor> hv_;
	DomId self_;
	Connection conn_;
	std::set<TxId> owned_;
};

} /* namespace */

Result<std::unique_ptr<XenStore>> makeXenStore(std::shared_ptr<Hypervisor> hv, DomId self)
{
	int fds[2];
	if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0)
		return Error{ -errno, std::string("loopback xenstore pipe: ") + std::strerror(errno) };
	return std::unique_ptr<XenStore>(
		std::make_unique<LoopbackXenStore>(std::move(hv), self, UniqueFD(fds[0]), UniqueFD(fds[1])));
}

/* ---- tree helpers on the hypervisor ---- */

XsPerm::Access Hypervisor::access(const Node &n, DomId dom)
{
	if (dom == kDom0)
		return XsPerm::Both;
	if (n.perms.empty())
		return XsPerm::None;
	if (n.perms[0].dom == dom)
		return XsPerm::Both;
	for (size_t i = 1; i < n.perms.size(); i++)
		if (n.perms[i].dom == dom)
			return n.perms[i].access;
	return n.perms[0].access;
}

Node *Hypervisor::find(Node &root, const std::string &abs)
{
	Node *n = &root;
	for (const auto &c : components(abs)) {
		auto it = n->children.find(c);
		if (it == n->children.end())
			return nullptr;
		n = &it->second;
	}
	return n;
}

/**
 * Write (value != nullptr) or mkdir: create missing nodes, each inheriting
 * its parent's permissions; an unprivileged creator becomes the owner.
 * Creating needs write access to the nearest existing ancestor.
 */
Status Hypervisor::xsWrite(Node &rootNode, DomId dom, const std::string &abs,
			   const std::string *value, std::vector<std::string> &changed)
{
	Node *n = &rootNode;
	std::string path;
	bool created = false;
	for (const auto &c : components(abs)) {
		path += "/" + c;
		auto it = n->children.find(c);
		if (it == n->children.end()) {
			if (!(access(*n, dom) & XsPerm::Write))
				return Error{ -EACCES, "permission denied" };
			Node child;
			child.perms = n->perms;
			if (dom != kDom0)
				child.perms[0].dom = dom;
			it = n->children.emplace(c, std::move(child)).first;
			created = true;
			changed.push_back(path);
		}
		n = &it->second;
	}
	if (value) {
		if (!created && !(access(*n, dom) & XsPerm::Write))
			return Error{ -EACCES, "permission denied" };
		n->value = *value;
		if (changed.empty() || changed.back() != abs)
			changed.push_back(abs);
	}
	return {};
}

/**
 * Queue watch events for a change at \a path.  A watch fires for changes
 * at or below its path; when a subtree goes, watches inside it fire too.
 * Unprivileged watchers only hear of nodes they may read (\a before is
 * the node as it was, for removals and permission changes).
 */
void Hypervisor::fireWatches(const std::string &path, const Node *before, bool removed)
{
	const Node *now = find(root, path);
	for (Connection *c : connections) {
		bool canRead = c->dom == kDom0;
		if (!canRead) {
			if (now && (access(*now, c->dom) & XsPerm::Read))
				canRead = true;
			if (before && (access(*before, c->dom) & XsPerm::Read))
				canRead = true;
		}
		for (const auto &w : c->watches) {
			if (w.path[0] == '@')
				continue;
			std::string evPath;
			if (isUnder(path, w.path))
				evPath = path;
			else if (removed && isUnder(w.path, path))
				evPath = w.path;
			else
				continue;
			if (!canRead)
				continue;
			if (w.relative) {
				std::string prefix = XenStore::domainPath(c->dom) + "/";
				if (evPath.compare(0, prefix.size(), prefix) == 0)
					evPath = evPath.substr(prefix.size());
			}
			if (c->queue.empty()) {
				char b = 1;
				(void)!::write(c->wakeWrite.get(), &b, 1);
			}
			c->queue.push_back({ evPath, w.token });
		}
	}
}

void Hypervisor::fireSpecial(const std::string &special)
{
	for (Connection *c : connections) {
		for (const auto &w : c->watches) {
			if (w.path != special)
				continue;
			if (c->queue.empty()) {
				char b = 1;
				(void)!::write(c->wakeWrite.get(), &b, 1);
			}
			c->queue.push_back({ special, w.token });
		}
	}
}

} /* namespace xmb::xen::loopback */
