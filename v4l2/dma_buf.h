/* SPDX-License-Identifier: MIT */
#pragma once

#include <cstddef>

#include "protocol/base/unique_fd.h"

namespace xmb {

/**
 * Bracket CPU writes to a dma-buf (DMA_BUF_IOCTL_SYNC) so caches are right
 * for the device or guest that reads it next.  Fds that are not dma-bufs
 * (memfd) need no sync: these return 0 for them.
 */
int dmaBufBeginCpuAccess(int fd, bool write);
int dmaBufEndCpuAccess(int fd, bool write);

/** \brief Memory the bridge allocates itself to export. */
struct SharedBuffer {
	UniqueFD memfd;	 /**< always: the backing memory */
	UniqueFD dmabuf; /**< a dma-buf of the same pages, when /dev/udmabuf exists */
	size_t length = 0;
};

/**
 * Allocate \a length bytes (rounded up to pages) as a memfd sealed against
 * resizing, and, if \a wantDmaBuf and /dev/udmabuf is there, wrap the same
 * pages in a dma-buf.  All fds are O_CLOEXEC.
 * \return 0 or -errno
 */
int allocateSharedBuffer(size_t length, const char *name, bool wantDmaBuf, SharedBuffer &out);

} /* namespace xmb */
