/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * XenStore access: nodes, permissions, watches and transactions.
 *
 * Transactions are ids (0 = none) so the same calls serve both; use
 * runTransaction() for the retry-on-EAGAIN loop.  Watches are delivered
 * through fd(): when it is readable, call readWatch() until it says none.
 */

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "bridge/platform/types.h"
#include "protocol/result.h"
#include "protocol/xenstore_schema.h"

namespace xmb::xen {

using TxId = uint32_t;
constexpr TxId kNoTx = 0;

/** One entry of a node's permission list (the first is the owner + default). */
struct XsPerm {
	enum Access : uint8_t { None = 0, Read = 1, Write = 2, Both = 3 };
	DomId dom = 0;
	Access access = None;
	bool operator==(const XsPerm &) const = default;
};

struct WatchEvent {
	std::string path;
	std::string token;
};

class XenStore
{
public:
	virtual ~XenStore() = default;

	virtual Result<std::string> read(TxId tx, const std::string &path) = 0;
	virtual Status write(TxId tx, const std::string &path, const std::string &value) = 0;
	virtual Status mkdir(TxId tx, const std::string &path) = 0;
	virtual Status rm(TxId tx, const std::string &path) = 0;
	virtual Result<std::vector<std::string>> list(TxId tx, const std::string &path) = 0;
	virtual Result<std::vector<XsPerm>> getPermissions(TxId tx, const std::string &path) = 0;
	virtual Status setPermissions(TxId tx, const std::string &path,
				      const std::vector<XsPerm> &perms) = 0;

	virtual Result<TxId> transactionStart() = 0;
	/** Commit (or abort); -EAGAIN means a conflict: run it again. */
	virtual Status transactionEnd(TxId tx, bool abort) = 0;

	virtual Status watch(const std::string &path, const std::string &token) = 0;
	virtual Status unwatch(const std::string &path, const std::string &token) = 0;
	[[nodiscard]] virtual int fd() const = 0;
	/** Next fired watch, or nullopt when none is queued (non-blocking). */
	virtual std::optional<WatchEvent> readWatch() = 0;

	/** Our own domain id. */
	virtual Result<DomId> selfDomid() = 0;
	/**
	 * Is domain \a dom still introduced to XenStore (xs_is_domain_introduced)?
	 * False from @releaseDomain on, while the toolstack may not have removed
	 * its directory yet: the one reliable "is it dead" after @releaseDomain.
	 */
	virtual Result<bool> domainIntroduced(DomId dom) = 0;

	/* Conveniences over the primitives. */
	Result<std::string> read(const std::string &path) { return read(kNoTx, path); }
	Status write(const std::string &path, const std::string &v) { return write(kNoTx, path, v); }
	Status mkdir(const std::string &path) { return mkdir(kNoTx, path); }
	Status rm(const std::string &path) { return rm(kNoTx, path); }
	Result<std::vector<std::string>> list(const std::string &path) { return list(kNoTx, path); }
	static std::string domainPath(DomId dom) { return "/local/domain/" + std::to_string(dom); }
};

/**
 * Run \a body in a transaction, retrying on -EAGAIN up to \a attempts
 * times.  The body returns an error to abort.
 */
/** A read-only view of directory \a dir for the protocol parsers (keys relative to it). */
proto::XsView directoryView(XenStore &xs, const std::string &dir);

Status runTransaction(XenStore &xs, const std::function<Status(TxId)> &body, int attempts = 16);

/** Permission list as xenstore-chmod writes it ("n0", "r1"...): for logs and tests. */
std::string formatPerms(const std::vector<XsPerm> &perms);

} /* namespace xmb::xen */
