/* SPDX-License-Identifier: MIT */
#include "bridge/service/source_factory.h"

#include <cerrno>
#include <cstring>

#include "v4l2/test_pattern_camera.h"
#include "xmb_config.h"
#if XMB_HAVE_LIBCAMERA
#include "v4l2/libcamera_source.h"
#endif
#include "v4l2/v4l2_camera_source.h"
#include "v4l2/v4l2_video_device.h"

namespace xmb::service {

Result<std::unique_ptr<CameraSource>> openSource(const CameraEntry &camera)
{
	const std::string &s = camera.source;
	std::string where = "camera '" + camera.name + "' (source " + s + "): ";

	if (s == "test-pattern") {
		TestPatternOptions o;
		o.id = "test-pattern-" + camera.name;
		return std::unique_ptr<CameraSource>(std::make_unique<TestPatternCamera>(o));
	}

	std::string path;
	if (s.rfind("v4l2:", 0) == 0) {
		path = s.substr(5);
	} else if (s.rfind("v4l2-card:", 0) == 0 || s.rfind("v4l2-driver:", 0) == 0) {
		V4L2NodeMatch m;
		if (s[5] == 'c')
			m.card = s.substr(10);
		else
			m.driver = s.substr(12);
		m.requiredCaps = 0;
		auto node = findV4L2Node(m);
		if (!node)
			return Error{ -ENODEV, where + "no matching V4L2 capture device in /dev" };
		path = node->path;
	} else if (s.rfind("libcamera:", 0) == 0) {
#if XMB_HAVE_LIBCAMERA
		auto src = std::make_unique<LibcameraSource>();
		int ret = src->open(s.substr(10));
		if (ret < 0)
			return Error{ ret, where + "libcamera camera '" + s.substr(10) + "': " +
						   std::strerror(-ret) };
		return std::unique_ptr<CameraSource>(std::move(src));
#else
		return Error{ -ENOTSUP, where + "this build has no libcamera (meson -Dlibcamera=enabled)" };
#endif
	} else {
		return Error{ -EINVAL, where + "unknown source kind (test-pattern, v4l2:, v4l2-card:, "
					       "v4l2-driver:, libcamera:)" };
	}

	auto src = std::make_unique<V4L2CameraSource>();
	int ret = src->open(path);
	if (ret < 0)
		return Error{ ret, where + path + ": " + std::strerror(-ret) };
	return std::unique_ptr<CameraSource>(std::move(src));
}

} /* namespace xmb::service */
