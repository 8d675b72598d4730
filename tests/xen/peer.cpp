/* SPDX-License-Identifier: MIT */
#include "peer.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <poll.h>
#include <sstream>

namespace xmb::xen::test {

namespace {

const std::string kDir = "data/xmbtest";

std::string join(const std::vector<Gref> &refs)
{
	std::string s;
	for (Gref r : refs)
		s += (s.empty() ? "" : ",") + std::to_string(r);
	return s;
}

std::vector<Gref> splitRefs(const std::string &s)
{
	std::vector<Gref> out;
	std::stringstream ss(s);
	std::string item;
	while (std::getline(ss, item, ','))
		out.push_back(static_cast<Gref>(std::stoul(item)));
	return out;
}

class Peer
{
public:
	explicit Peer(Platform &p) : p_(p) {}

	int run(const std::atomic<bool> *stop)
	{
		if (!publish())
			return 1;
		if (!p_.store->watch(kDir + "/cmd", "cmd"))
			return 1;
		while (!(stop && stop->load())) {
			pollfd fds[2] = { { p_.store->fd(), POLLIN, 0 }, { p_.events->fd(), POLLIN, 0 } };
			if (::poll(fds, 2, 100) < 0 && errno != EINTR)
				return 1;
			while (auto ev = p_.store->readWatch()) {
				if (ev->token != "cmd")
					continue;
				auto cmd = p_.store->read(kDir + "/cmd");
				if (!cmd || cmd->empty() || *cmd == lastCmd_)
					continue;
				lastCmd_ = *cmd;
				if (!handle(*cmd))
					return exitCode_;
			}
		}
		return 0;
	}

private:
	bool publish()
	{
		auto data = p_.grants->share(kDom0, kPeerDataPages, true);
		auto ro = p_.grants->share(kDom0, 1, false);
		auto other = p_.grants->share(kNobody, 1, true);
		auto port = p_.events->allocUnbound(kDom0);
		if (!data || !ro || !other || !port) {
			std::fprintf(stderr, "peer: cannot set up grants/port\n");
			return false;
		}
		for (int i = 0; i < kPeerDataPages; i++)
			std::memset(data->data() + i * kPageSize, kPeerPattern + i, kPageSize);
		std::memset(ro->data(), kPeerRoPattern, kPageSize);
		data_ = std::move(*data);
		ro_ = std::move(*ro);
		other_ = std::move(*other);
		port_ = std::move(*port);

		Status s = runTransaction(*p_.store, [&](TxId tx) -> Status {
			for (auto [k, v] : { std::pair<std::string, std::string>{ "refs", join(data_.refs()) },
					     { "ro-ref", join(ro_.refs()) },
					     { "other-ref", join(other_.refs()) },
					     { "port", std::to_string(port_.port()) },
					     { "ready", "1" } }) {
				Status w = p_.store->write(tx, kDir + "/" + k, v);
				if (!w)
					return w;
			}
			return {};
		});
		if (!s)
			std::fprintf(stderr, "peer: publish: %s\n", s.error().message.c_str());
		return s.ok();
	}

	void reply(const std::string &seq, const std::string &text)
	{
		(void)p_.store->write(kDir + "/reply", seq + " " + text);
	}

	static std::string err(const Error &e)
	{
		return "err " + std::to_string(e.code) + " " + e.message;
	}

	/* Returns false to stop serving. */
	bool handle(const std::string &cmd)
	{
		std::istringstream in(cmd);
		std::string seq, verb;
		in >> seq >> verb;

		if (verb == "exit") {
			reply(seq, "ok");
			exitCode_ = 0;
			return false;
		}
		if (verb == "map") {
			std::string refs;
			in >> refs;
			auto m = p_.grants->map(kDom0, splitRefs(refs), true);
			if (!m)
				return reply(seq, err(m.error())), true;
			for (size_t i = 0; i < 64; i++)
				if (m->data()[i] != kDom0Pattern)
					return reply(seq, "err -1 dom0 page content differs"), true;
			m->data()[m->size() - kPageSize] = kPeerWrites;
			/* Unmapped before answering: Dom0 ends access as soon as it reads "ok". */
			m->reset();
			reply(seq, "ok");
			return true;
		}
		if (verb == "bind") {
			Port remote = 0;
			in >> remote;
			auto b = p_.events->bindInterdomain(kDom0, remote);
			if (!b)
				return reply(seq, err(b.error())), true;
			bound_ = std::move(*b);
			reply(seq, "ok " + std::to_string(bound_.port()));
			return true;
		}
		if (verb == "wait-event") {
			/* Wait for Dom0's event on the bound port, answer on our own port. */
			int ms = 0;
			in >> ms;
			pollfd pfd{ p_.events->fd(), POLLIN, 0 };
			if (::poll(&pfd, 1, ms) != 1)
				return reply(seq, "err -110 no event"), true;
			auto pend = p_.events->pending();
			if (!pend || !pend->has_value())
				return reply(seq, "err -5 fd readable but no port"), true;
			Port got = **pend;
			(void)(got == bound_.port() ? bound_.unmask() : port_.unmask());
			if (got != bound_.port())
				return reply(seq, "err -22 event on port " + std::to_string(got)), true;
			Status n = port_.notify();
			reply(seq, n ? "ok" : err(n.error()));
			return true;
		}
		if (verb == "write") {
			std::string key, value;
			in >> key >> value;
			Status w = p_.store->write(kDir + "/" + key, value);
			reply(seq, w ? "ok" : err(w.error()));
			return true;
		}
		if (verb == "read") {
			std::string path;
			in >> path;
			auto r = p_.store->read(path);
			reply(seq, r ? "ok " + *r : err(r.error()));
			return true;
		}
		if (verb == "release") {
			/* Drop our grants (Dom0 may still map them: the release is deferred). */
			data_.reset();
			reply(seq, "ok");
			return true;
		}
		reply(seq, "err -38 unknown verb " + verb);
		return true;
	}

	Platform &p_;
	GrantShare data_, ro_, other_;
	EventPort port_, bound_;
	std::string lastCmd_;
	int exitCode_ = 0;
};

} /* namespace */

int runPeer(Platform &p, const std::atomic<bool> *stop)
{
	Peer peer(p);
	return peer.run(stop);
}

} /* namespace xmb::xen::test */
