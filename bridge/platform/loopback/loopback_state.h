/* SPDX-License-Identifier: MIT */
#pragma once

/* Internal state of the loopback hypervisor; one mutex guards all of it. */

#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <vector>

#include "protocol/base/unique_fd.h"
#include "bridge/platform/loopback/loopback_xen.h"

namespace xmb::xen::loopback {

/* ---- grants ---- */
struct Backing {
	UniqueFD memfd;
	size_t pages = 0;
};

struct GrantEntry {
	DomId grantee = 0;
	bool readonly = false;
	std::shared_ptr<Backing> mem;
	size_t page = 0;
	unsigned mapCount = 0;
	bool endPending = false; /* ended while mapped: freed at the last unmap */
};

struct MappingRecord {
	DomId mapper = 0;
	size_t pages = 0;
	std::vector<std::pair<DomId, Gref>> grants;
};

struct ShareRecord {
	DomId owner = 0;
	std::vector<Gref> refs;
	size_t pages = 0;
};

/* ---- event channels ---- */
struct PortState {
	enum class Kind { Unbound, Interdomain } kind = Kind::Unbound;
	DomId remoteDom = 0;
	Port remotePort = 0;
	uint64_t handle = 0;
	std::shared_ptr<UniqueFD> wakeFd; /* write end of the owning handle's pipe */
	bool masked = false;
	bool pending = false;
};

/* ---- XenStore ---- */
struct Node {
	std::string value;
	std::vector<XsPerm> perms;
	std::map<std::string, Node> children;
};

struct Watch {
	std::string path;  /* absolute, or @special */
	std::string token;
	bool relative = false;
};

struct Connection {
	DomId dom = 0;
	UniqueFD wakeRead;
	UniqueFD wakeWrite;
	std::vector<Watch> watches;
	std::deque<WatchEvent> queue;
};

struct Transaction {
	DomId dom = 0;
	Node root;
	uint64_t generation = 0;
	std::vector<std::string> changed;
};

struct Domain {
	DomId id = 0;
	std::string name;
	bool alive = true;
	std::map<Gref, GrantEntry> grants;
	std::set<Gref> freeRefs;
	Gref nextRef = 8; /* Xen reserves the first refs (console, xenstore) */
	size_t maxGrants = 16384;
	std::map<Port, PortState> ports;
	Port nextPort = 1;
};

class Hypervisor final : public LoopbackXen, public std::enable_shared_from_this<Hypervisor>
{
public:
	Hypervisor();

	Status createDomain(DomId id, const std::string &name) override;
	Status destroyDomain(DomId id) override;
	Status removeDomainDirectory(DomId id) override;
	void keepDirectoryOnDestroy(bool keep) override { keepDirectory_ = keep; }
	void removeDirectoryLocked(DomId id);
	bool keepDirectory_ = false;
	Result<std::unique_ptr<Platform>> open(DomId id) override;
	size_t grantEntries(DomId granter) const override;
	size_t mappedGrants(DomId granter) const override;
	void setGrantTableSize(DomId dom, size_t entries) override;
	void emulatePvForeignMaps(bool on) override
	{
		std::lock_guard<std::mutex> l(lock);
		pvForeignMaps = on;
	}
	void emulateGntdevDmabuf(bool on) override
	{
		std::lock_guard<std::mutex> l(lock);
		gntdevDmabuf = on;
	}
	void emulateDmabufExport(bool on) override
	{
		std::lock_guard<std::mutex> l(lock);
		dmabufExport = on;
	}

	/* Everything below is used by the per-domain backends, under lock. */
	mutable std::mutex lock;
	std::map<DomId, Domain> domains;
	std::map<void *, MappingRecord> mappings;
	std::map<void *, ShareRecord> shares;

	uint64_t nextHandle = 1;
	bool pvForeignMaps = false;
	bool gntdevDmabuf = false;
	bool dmabufExport = false; /* exp_from_refs, as on Arm (needs gntdevDmabuf) */
	/* dma-buf imports (imp_to_refs), by handle. */
	std::map<uint64_t, ShareRecord> imports;

	Node root;
	uint64_t generation = 1;
	std::set<Connection *> connections;
	std::map<uint32_t, Transaction> transactions;
	uint32_t nextTx = 1;

	Domain *aliveDomain(DomId id);
	void freeGrant(Domain &d, Gref ref);
	void closePort(Domain &d, Port port);
	/* XenStore internals (lock held). */
	void fireWatches(const std::string &path, const Node *before, bool removed);
	void fireSpecial(const std::string &special);
	static XsPerm::Access access(const Node &n, DomId dom);
	static Node *find(Node &root, const std::string &abs);
	Status xsWrite(Node &root, DomId dom, const std::string &abs, const std::string *value,
		       std::vector<std::string> &changed);
};

/* Factories for a domain's backends (defined in their own files). */
std::shared_ptr<GrantBackend> makeGrantBackend(std::shared_ptr<Hypervisor> hv, DomId self);
Result<std::shared_ptr<EventChannelBackend>> makeEventBackend(std::shared_ptr<Hypervisor> hv,
							       DomId self);
Result<std::unique_ptr<XenStore>> makeXenStore(std::shared_ptr<Hypervisor> hv, DomId self);

} /* namespace xmb::xen::loopback */
