/* SPDX-License-Identifier: MIT */
#include "bridge/service/device_pool.h"

#include <cerrno>
#include <cstring>
#include <sys/mman.h>
#include <unistd.h>

namespace xmb::service {

/**
 * \brief Allocate the camera's own buffers for granting
 *
 * MMAP + EXPBUF, then REQBUFS(0): vb2 orphans exported buffers rather than
 * freeing them, so the dma-bufs stay valid and the camera imports them
 * again (DmaBufImport) at each stream start.  This works the same for
 * dma-contig drivers (the memory is the driver's own contiguous memory)
 * and vmalloc ones; no foreign page ever reaches the driver.
 */
Result<std::shared_ptr<DevicePool>> DevicePool::allocate(CameraSource &source, unsigned count)
{
	MemoryTypes m = source.supportedMemory();
	if (!hasMemoryType(m, MemoryType::MmapExport) || !hasMemoryType(m, MemoryType::DmaBufImport))
		return Error{ -ENOTSUP, "the source cannot both export and import its buffers" };
	int ret = source.allocateBuffers(MemoryType::MmapExport, count);
	if (ret <= 0)
		return Error{ ret < 0 ? ret : -ENOMEM,
			      std::string("allocate: ") + std::strerror(ret < 0 ? -ret : ENOMEM) };
	std::shared_ptr<DevicePool> pool(new DevicePool);
	pool->isDmaBuf_ = true;
	for (unsigned i = 0; i < static_cast<unsigned>(ret); i++) {
		ExportedBuffer eb;
		int r = source.exportBuffer(i, eb);
		/*
		 * The dma-buf's own size, page-aligned (vb2 allocates whole pages;
		 * QUERYBUF reports sizeimage): gntdev grants exactly that many pages.
		 */
		if (r == 0) {
			off_t end = ::lseek(eb.fd.get(), 0, SEEK_END);
			if (end >= static_cast<off_t>(eb.length))
				eb.length = static_cast<size_t>(end);
		}
		void *p = r < 0 ? MAP_FAILED
				: ::mmap(nullptr, eb.length, PROT_READ | PROT_WRITE, MAP_SHARED, eb.fd.get(), 0);
		if (p == MAP_FAILED) {
			int e = r < 0 ? -r : errno;
			source.releaseBuffers();
			return Error{ -e, "export buffer " + std::to_string(i) + ": " + std::strerror(e) };
		}
		pool->isDmaBuf_ = pool->isDmaBuf_ && eb.isDmaBuf;
		Buffer b;
		b.fd = std::move(eb.fd);
		b.data = static_cast<uint8_t *>(p);
		b.length = eb.length;
		pool->bufs_.push_back(std::move(b));
	}
	source.releaseBuffers(); /* the exported buffers live on */
	return pool;
}

DevicePool::~DevicePool()
{
	for (auto &b : bufs_)
		if (b.data)
			::munmap(b.data, b.length);
}

std::vector<unsigned> DevicePool::idle() const
{
	std::vector<unsigned> v;
	for (unsigned i = 0; i < bufs_.size(); i++)
		if (isIdle(i))
			v.push_back(i);
	return v;
}

unsigned DevicePool::quota(size_t streaming) const
{
	if (streaming == 0 || bufs_.size() < 2)
		return 1;
	return std::max<unsigned>(1, static_cast<unsigned>((bufs_.size() - 1) / streaming));
}

bool DevicePool::give(unsigned i, const HubClient *c, unsigned quota)
{
	if (i >= bufs_.size() || bufs_[i].inCamera)
		return false;
	unsigned &h = held_[c];
	if (h >= quota)
		return false;
	if (bufs_[i].holders.insert(c).second)
		h++;
	return true;
}

bool DevicePool::giveBack(unsigned i, const HubClient *c)
{
	if (i >= bufs_.size())
		return false;
	if (bufs_[i].holders.erase(c)) {
		auto it = held_.find(c);
		if (it != held_.end() && it->second)
			it->second--;
	}
	return isIdle(i);
}

void DevicePool::forget(const HubClient *c)
{
	for (auto &b : bufs_)
		b.holders.erase(c);
	held_.erase(c);
}

unsigned DevicePool::held(const HubClient *c) const
{
	auto it = held_.find(c);
	return it == held_.end() ? 0 : it->second;
}

} /* namespace xmb::service */
