/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What the endurance tests measure about this process before and after
 * (open fds, RSS), and their size knobs from the environment.
 */

#include <cstddef>
#include <cstdlib>
#include <dirent.h>
#include <fstream>
#include <string>

namespace xmb::test {

/** \a name from the environment as a number, else \a dflt. */
inline unsigned envOr(const char *name, unsigned dflt)
{
	const char *v = std::getenv(name);
	return v && *v ? static_cast<unsigned>(std::strtoul(v, nullptr, 10)) : dflt;
}

/** Entries of /proc/self/fd (the directory's own fd and . and .. included: compare, do not count). */
inline size_t openFds()
{
	size_t n = 0;
	if (DIR *d = ::opendir("/proc/self/fd")) {
		while (::readdir(d))
			n++;
		::closedir(d);
	}
	return n;
}

/** The number after "\a key:" in a /proc status file (\a path), 0 if absent. */
inline unsigned long statusField(const char *path, const std::string &key)
{
	std::ifstream f(path);
	std::string line;
	while (std::getline(f, line))
		if (line.rfind(key + ":", 0) == 0)
			return std::strtoul(line.c_str() + key.size() + 1, nullptr, 10);
	return 0;
}

/** VmRSS in KiB. */
inline size_t rssKiB()
{
	return statusField("/proc/self/status", "VmRSS");
}

} /* namespace xmb::test */
