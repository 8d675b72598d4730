/* SPDX-License-Identifier: MIT */
/**
 * \file libv4l2_io.cpp
 * \brief The libv4l2 implementation of the DeviceIO seam
 */
#include "v4l2/libv4l2_io.h"

#include "xmb_config.h"

#if XMB_HAVE_LIBV4L2

#include <cerrno>

#include <fcntl.h>
#include <libv4l2.h>
#include <sys/mman.h>
#include <unistd.h>

namespace xmb {

namespace {

class LibV4L2DeviceIO final : public DeviceIO
{
public:
	int open(const char *path, int flags) override
	{
		/* Open ourselves so O_CLOEXEC is guaranteed, then hand it over. */
		int fd = ::open(path, flags | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		/* No V4L2_DISABLE_CONVERSION: conversion is why we are here. */
		if (v4l2_fd_open(fd, 0) < 0) {
			int err = errno;
			::close(fd);
			return -err;
		}
		return fd;
	}

	int close(int fd) override { return v4l2_close(fd) < 0 ? -errno : 0; }

	int ioctl(int fd, unsigned long request, void *arg) override
	{
		int ret = v4l2_ioctl(fd, request, arg);
		return ret < 0 ? -errno : ret;
	}

	int mmap(int fd, size_t length, int prot, off_t offset, void **addr) override
	{
		void *p = v4l2_mmap(nullptr, length, prot, MAP_SHARED, fd, static_cast<int64_t>(offset));
		if (p == MAP_FAILED)
			return -errno;
		*addr = p;
		return 0;
	}

	int munmap(void *addr, size_t length) override
	{
		return v4l2_munmap(addr, length) < 0 ? -errno : 0;
	}
};

} /* namespace */

DeviceIO *libv4l2DeviceIO()
{
	static LibV4L2DeviceIO io;
	return &io;
}

} /* namespace xmb */

#else

namespace xmb {

DeviceIO *libv4l2DeviceIO()
{
	return nullptr;
}

} /* namespace xmb */

#endif
