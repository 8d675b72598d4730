/* SPDX-License-Identifier: MIT */
/**
 * \file device_io.cpp
 * \brief libc implementation of the DeviceIO seam, and its RAII owners
 */
#include "v4l2/device_io.h"

#include <cerrno>

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

namespace xmb {

namespace {

/** \brief Plain libc: what every production device uses. */
class SystemDeviceIO final : public DeviceIO
{
public:
	int open(const char *path, int flags) override
	{
		/* O_CLOEXEC always: the service forks helpers (v4l2-ctl, ...). */
		int fd = ::open(path, flags | O_CLOEXEC);
		return fd < 0 ? -errno : fd;
	}

	int close(int fd) override
	{
		/* Never retry close(): on Linux the fd is gone even on EINTR. */
		return ::close(fd) < 0 ? -errno : 0;
	}

	int ioctl(int fd, unsigned long request, void *arg) override
	{
		int ret = ::ioctl(fd, request, arg);
		return ret < 0 ? -errno : ret;
	}

	int mmap(int fd, size_t length, int prot, off_t offset, void **addr) override
	{
		void *p = ::mmap(nullptr, length, prot, MAP_SHARED, fd, offset);
		if (p == MAP_FAILED)
			return -errno;
		*addr = p;
		return 0;
	}

	int munmap(void *addr, size_t length) override
	{
		return ::munmap(addr, length) < 0 ? -errno : 0;
	}
};

} /* namespace */

/**
 * \brief The libc DeviceIO, shared by all real devices
 */
DeviceIO &DeviceIO::system()
{
	static SystemDeviceIO io;
	return io;
}

/**
 * \brief Close the descriptor through the DeviceIO that opened it
 */
void DeviceFD::reset()
{
	if (fd_ >= 0 && io_)
		io_->close(fd_);
	fd_ = -1;
}

int MappedRegion::map(DeviceIO &io, int fd, size_t length, int prot, off_t offset,
		      MappedRegion &out)
{
	out.reset();
	void *addr = nullptr;
	int ret = io.mmap(fd, length, prot, offset, &addr);
	if (ret < 0)
		return ret;
	out = MappedRegion(&io, addr, length);
	return 0;
}

/**
 * \brief Unmap through the DeviceIO that mapped the region
 */
void MappedRegion::reset()
{
	if (addr_ && io_)
		io_->munmap(addr_, length_);
	addr_ = nullptr;
	length_ = 0;
}

} /* namespace xmb */
