/* SPDX-License-Identifier: MIT */
#pragma once

#include <cstddef>
#include <cstdint>

#include <dirent.h>
#include <sys/mman.h>
#include <unistd.h>

#include "protocol/base/unique_fd.h"

namespace xmb::testing {

/** Open descriptors of this process: equal before and after = no fd leak. */
inline int countOpenFds()
{
	int n = 0;
	if (DIR *d = ::opendir("/proc/self/fd")) {
		while (::readdir(d))
			n++;
		::closedir(d);
	}
	return n;
}

/** Anonymous pages owned by the test: stands in for mapped guest grants. */
class AnonymousPages
{
public:
	explicit AnonymousPages(size_t size) : size_(size)
	{
		void *p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		data_ = p == MAP_FAILED ? nullptr : static_cast<uint8_t *>(p);
	}
	~AnonymousPages()
	{
		if (data_)
			::munmap(data_, size_);
	}
	AnonymousPages(const AnonymousPages &) = delete;
	AnonymousPages &operator=(const AnonymousPages &) = delete;
	AnonymousPages(AnonymousPages &&o) noexcept : data_(o.data_), size_(o.size_) { o.data_ = nullptr; }

	[[nodiscard]] uint8_t *data() const { return data_; }
	[[nodiscard]] size_t size() const { return size_; }

private:
	uint8_t *data_;
	size_t size_;
};

/** A memfd of \a size bytes: a stand-in dma-buf where no exporter exists. */
inline UniqueFD makeMemfd(size_t size)
{
	UniqueFD fd(::memfd_create("xmb-test", MFD_CLOEXEC));
	if (fd && ::ftruncate(fd.get(), static_cast<off_t>(size)) < 0)
		return UniqueFD();
	return fd;
}

} /* namespace xmb::testing */
