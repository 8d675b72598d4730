/* SPDX-License-Identifier: MIT */
#include "unique_fd.h"

#include <fcntl.h>
#include <unistd.h>

namespace xmb {

/**
 * \brief Close the owned descriptor (if any) and take ownership of \a fd.
 *
 * close() is not retried on EINTR: on Linux the descriptor is released even
 * when close() reports EINTR, and retrying could close an unrelated fd.
 */
void UniqueFD::reset(int fd)
{
	int old = std::exchange(fd_, fd);
	if (old >= 0)
		::close(old);
}

UniqueFD UniqueFD::dup() const
{
	if (fd_ < 0)
		return {};
	return UniqueFD(::fcntl(fd_, F_DUPFD_CLOEXEC, 0));
}

} /* namespace xmb */
