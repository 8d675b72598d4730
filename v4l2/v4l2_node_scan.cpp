/* SPDX-License-Identifier: MIT */
/**
 * \file v4l2_node_scan.cpp
 * \brief Finding V4L2 nodes by driver, card or bus name
 */
#include <algorithm>
#include <cerrno>
#include <cstring>

#include <dirent.h>

#include "protocol/base/log.h"
#include "v4l2/v4l2_video_device.h"

namespace xmb {

XMB_LOG_DEFINE_CATEGORY(logScan, "v4l2");

/**
 * \brief Open and QUERYCAP every \a dir/video* node, in numeric order
 *
 * Nodes that cannot be opened (busy, permissions) are skipped with a debug
 * line: a scan must not fail because of an unrelated device.
 */
std::vector<V4L2NodeInfo> scanV4L2Nodes(DeviceIO &io, const std::string &dir)
{
	std::vector<std::string> paths;
	DIR *d = ::opendir(dir.c_str());
	if (!d)
		return {};
	while (dirent *e = ::readdir(d)) {
		if (std::strncmp(e->d_name, "video", 5) == 0 &&
		    std::all_of(e->d_name + 5, e->d_name + std::strlen(e->d_name),
				[](char c) { return c >= '0' && c <= '9'; }) &&
		    e->d_name[5])
			paths.push_back(dir + "/" + e->d_name);
	}
	::closedir(d);
	std::sort(paths.begin(), paths.end(), [](const std::string &a, const std::string &b) {
		return a.size() != b.size() ? a.size() < b.size() : a < b;
	});

	std::vector<V4L2NodeInfo> nodes;
	for (const std::string &path : paths) {
		V4L2Device dev(io);
		if (dev.open(path) < 0) {
			XMB_LOG(logScan, Debug, "%s: skipped", path.c_str());
			continue;
		}
		nodes.push_back({ path, dev.caps().driver(), dev.caps().card(), dev.caps().busInfo(),
				  dev.caps().deviceCaps() });
	}
	return nodes;
}

/**
 * \brief The first node matching \a match
 */
std::optional<V4L2NodeInfo> findV4L2Node(const V4L2NodeMatch &match, DeviceIO &io,
					 const std::string &dir)
{
	for (V4L2NodeInfo &n : scanV4L2Nodes(io, dir)) {
		if (!match.driver.empty() && n.driver != match.driver)
			continue;
		if (!match.card.empty() && n.card.find(match.card) == std::string::npos)
			continue;
		if (!match.busInfo.empty() && n.busInfo != match.busInfo)
			continue;
		if ((n.deviceCaps & match.requiredCaps) != match.requiredCaps)
			continue;
		return std::move(n);
	}
	return std::nullopt;
}

} /* namespace xmb */
