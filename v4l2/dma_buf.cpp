/* SPDX-License-Identifier: MIT */
/**
 * \file dma_buf.cpp
 * \brief dma-buf CPU access and memfd/udmabuf allocation
 */
#include "v4l2/dma_buf.h"

#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <linux/dma-buf.h>
#include <linux/udmabuf.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "protocol/base/log.h"

namespace xmb {

XMB_LOG_DEFINE_CATEGORY(logDmaBuf, "v4l2");

namespace {

int syncIoctl(int fd, uint64_t flags)
{
	dma_buf_sync sync{};
	sync.flags = flags;
	int ret;
	do {
		ret = ::ioctl(fd, DMA_BUF_IOCTL_SYNC, &sync);
	} while (ret < 0 && (errno == EINTR || errno == EAGAIN));
	if (ret < 0 && (errno == ENOTTY || errno == EINVAL))
		return 0; /* not a dma-buf: nothing to flush */
	return ret < 0 ? -errno : 0;
}

} /* namespace */

int dmaBufBeginCpuAccess(int fd, bool write)
{
	return syncIoctl(fd, DMA_BUF_SYNC_START | (write ? DMA_BUF_SYNC_RW : DMA_BUF_SYNC_READ));
}

int dmaBufEndCpuAccess(int fd, bool write)
{
	return syncIoctl(fd, DMA_BUF_SYNC_END | (write ? DMA_BUF_SYNC_RW : DMA_BUF_SYNC_READ));
}

/**
 * \brief memfd + optional udmabuf allocation, leak-free on every error path
 */
int allocateSharedBuffer(size_t length, const char *name, bool wantDmaBuf, SharedBuffer &out)
{
	out = {};
	const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
	size_t size = (length + page - 1) / page * page;
	if (!size)
		return -EINVAL;

	UniqueFD memfd(::memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING));
	if (!memfd)
		return -errno;
	if (::ftruncate(memfd.get(), static_cast<off_t>(size)) < 0)
		return -errno;
	/* udmabuf requires F_SEAL_SHRINK; growing is refused too, for sanity. */
	if (::fcntl(memfd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) < 0)
		return -errno;

	UniqueFD dmabuf;
	if (wantDmaBuf) {
		UniqueFD dev(::open("/dev/udmabuf", O_RDWR | O_CLOEXEC));
		if (dev) {
			udmabuf_create create{};
			create.memfd = static_cast<uint32_t>(memfd.get());
			create.flags = UDMABUF_FLAGS_CLOEXEC;
			create.offset = 0;
			create.size = size;
			int fd = ::ioctl(dev.get(), UDMABUF_CREATE, &create);
			if (fd >= 0)
				dmabuf = UniqueFD(fd);
			else
				XMB_LOG(logDmaBuf, Debug, "UDMABUF_CREATE failed: %s", strerror(errno));
		}
	}

	out.memfd = std::move(memfd);
	out.dmabuf = std::move(dmabuf);
	out.length = size;
	return 0;
}

} /* namespace xmb */
