/* SPDX-License-Identifier: MIT */
#include "bridge/platform/xenstore.h"

#include <cerrno>

namespace xmb::xen {

Status runTransaction(XenStore &xs, const std::function<Status(TxId)> &body, int attempts)
{
	for (int i = 0; i < attempts; i++) {
		auto tx = xs.transactionStart();
		if (!tx)
			return tx.error();
		Status s = body(*tx);
		if (!s) {
			(void)xs.transactionEnd(*tx, true);
			return s;
		}
		Status end = xs.transactionEnd(*tx, false);
		if (end || end.error().code != -EAGAIN)
			return end;
	}
	return Error{ -EAGAIN, "XenStore transaction kept conflicting after " +
				       std::to_string(attempts) + " attempts" };
}

std::string formatPerms(const std::vector<XsPerm> &perms)
{
	static const char letters[] = { 'n', 'r', 'w', 'b' };
	std::string s;
	for (const auto &p : perms) {
		if (!s.empty())
			s += ' ';
		s += letters[p.access & 3];
		s += std::to_string(p.dom);
	}
	return s;
}

proto::XsView directoryView(XenStore &xs, const std::string &dir)
{
	proto::XsView view;
	view.read = [&xs, dir](const std::string &k) -> std::optional<std::string> {
		auto v = xs.read(dir + "/" + k);
		return v ? std::optional<std::string>(*v) : std::nullopt;
	};
	view.list = [&xs, dir](const std::string &k) -> std::optional<std::vector<std::string>> {
		auto v = xs.list(dir + "/" + k);
		return v ? std::optional<std::vector<std::string>>(*v) : std::nullopt;
	};
	return view;
}

} /* namespace xmb::xen */
