/* SPDX-License-Identifier: MIT */
/* XenStore on real Xen through libxenstore (linked dynamically: see meson.build). */
#include "bridge/platform/real/real_platform.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>

extern "C" {
#include <xenstore.h>
}

namespace xmb::xen {

namespace {

Error xsError(const char *what, const std::string &path)
{
	int e = errno ? errno : EIO;
	return { -e, std::string("xenstore ") + what + " " + path + ": " + std::strerror(e) };
}

class RealXenStore final : public XenStore
{
public:
	explicit RealXenStore(xs_handle *h) : h_(h) {}
	/* Owns the handle: one close, so never copied. */
	RealXenStore(const RealXenStore &) = delete;
	RealXenStore &operator=(const RealXenStore &) = delete;
	~RealXenStore() override { xs_close(h_); }

	Result<std::string> read(TxId tx, const std::string &path) override
	{
		unsigned int len = 0;
		void *v = xs_read(h_, tx, path.c_str(), &len);
		if (!v)
			return xsError("read", path);
		std::string s(static_cast<char *>(v), len);
		std::free(v);
		return s;
	}

	Status write(TxId tx, const std::string &path, const std::string &value) override
	{
		if (!xs_write(h_, tx, path.c_str(), value.data(), value.size()))
			return xsError("write", path);
		return {};
	}

	Status mkdir(TxId tx, const std::string &path) override
	{
		if (!xs_mkdir(h_, tx, path.c_str()))
			return xsError("mkdir", path);
		return {};
	}

	Status rm(TxId tx, const std::string &path) override
	{
		if (!xs_rm(h_, tx, path.c_str()))
			return xsError("rm", path);
		return {};
	}

	Result<std::vector<std::string>> list(TxId tx, const std::string &path) override
	{
		unsigned int n = 0;
		char **d = xs_directory(h_, tx, path.c_str(), &n);
		if (!d)
			return xsError("directory", path);
		std::vector<std::string> out(d, d + n);
		std::free(d);
		return out;
	}

	Result<std::vector<XsPerm>> getPermissions(TxId tx, const std::string &path) override
	{
		unsigned int n = 0;
		xs_permissions *p = xs_get_permissions(h_, tx, path.c_str(), &n);
		if (!p)
			return xsError("get-perms", path);
		std::vector<XsPerm> out;
		for (unsigned i = 0; i < n; i++)
			out.push_back({ static_cast<DomId>(p[i].id),
					static_cast<XsPerm::Access>(p[i].perms & 3) });
		std::free(p);
		return out;
	}

	Status setPermissions(TxId tx, const std::string &path,
			      const std::vector<XsPerm> &perms) override
	{
		std::vector<xs_permissions> p;
		for (const auto &e : perms)
			p.push_back({ e.dom, static_cast<unsigned>(e.access) });
		if (!xs_set_permissions(h_, tx, path.c_str(), p.data(), p.size()))
			return xsError("set-perms", path);
		return {};
	}

	Result<TxId> transactionStart() override
	{
		xs_transaction_t t = xs_transaction_start(h_);
		if (t == XBT_NULL)
			return xsError("transaction start", "");
		return static_cast<TxId>(t);
	}

	Status transactionEnd(TxId tx, bool abort) override
	{
		if (!xs_transaction_end(h_, tx, abort))
			return xsError("transaction end", "");
		return {};
	}

	Status watch(const std::string &path, const std::string &token) override
	{
		if (!xs_watch(h_, path.c_str(), token.c_str()))
			return xsError("watch", path);
		return {};
	}

	Status unwatch(const std::string &path, const std::string &token) override
	{
		if (!xs_unwatch(h_, path.c_str(), token.c_str()))
			return xsError("unwatch", path);
		return {};
	}

	int fd() const override { return xs_fileno(h_); }

	std::optional<WatchEvent> readWatch() override
	{
		char **w = xs_check_watch(h_);
		if (!w)
			return std::nullopt;
		WatchEvent ev{ w[XS_WATCH_PATH], w[XS_WATCH_TOKEN] };
		std::free(w);
		return ev;
	}

	Result<bool> domainIntroduced(DomId dom) override
	{
		errno = 0;
		bool in = xs_is_domain_introduced(h_, dom);
		if (!in && errno && errno != ENOENT)
			return Error{ -errno, "xs_is_domain_introduced(" + std::to_string(dom) + ")" };
		return in;
	}

	Result<DomId> selfDomid() override
	{
		/* A relative path is relative to our own /local/domain/<id>. */
		auto v = read(kNoTx, "domid");
		if (!v)
			return v.error();
		char *end = nullptr;
		unsigned long id = std::strtoul(v->c_str(), &end, 10);
		if (v->empty() || *end || id > 0x7fef)
			return Error{ -EINVAL, "xenstore domid: '" + *v + "' is not a domain id" };
		return static_cast<DomId>(id);
	}

private:
	xs_handle *h_;
};

} /* namespace */

Result<std::unique_ptr<XenStore>> openRealXenStore()
{
	/* XS_UNWATCH_FILTER: no stale events for a watch after unwatch returns. */
	xs_handle *h = xs_open(XS_UNWATCH_FILTER);
	if (!h)
		return Error{ -errno, std::string("xenstore: ") + std::strerror(errno) +
					      " (is xenstored running and /dev/xen/xenbus present?)" };
	return std::unique_ptr<XenStore>(std::make_unique<RealXenStore>(h));
}

} /* namespace xmb::xen */
