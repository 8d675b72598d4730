/* SPDX-License-Identifier: MIT */
#pragma once

#include <cstddef>
#include <utility>

#include <sys/types.h>

namespace xmb {

/**
 * \brief The seam between the media code and the kernel.
 *
 * Every V4L2 call goes through one of these methods, so tests can replace
 * the kernel with a fake device (tests/v4l2/fake_v4l2_device.h) and libv4l2
 * can be slotted in for format emulation.  All methods report failure as
 * -errno; none retries EINTR (V4L2Device::ioctl() does).
 */
class DeviceIO
{
public:
	virtual ~DeviceIO() = default;

	/** \return a file descriptor, or -errno */
	virtual int open(const char *path, int flags) = 0;
	/** \return 0 or -errno */
	virtual int close(int fd) = 0;
	/** \return the ioctl's non-negative result, or -errno */
	virtual int ioctl(int fd, unsigned long request, void *arg) = 0;
	/** Map \a length bytes of \a fd; \return 0 and *addr, or -errno */
	virtual int mmap(int fd, size_t length, int prot, off_t offset, void **addr) = 0;
	/** \return 0 or -errno */
	virtual int munmap(void *addr, size_t length) = 0;

	/** The process-wide libc implementation. */
	static DeviceIO &system();
};

/**
 * \brief Move-only owner of a descriptor opened through a DeviceIO.
 *
 * Unlike UniqueFD it closes through the DeviceIO that opened it: libv4l2
 * keeps per-fd state that only v4l2_close() frees, and the test fake keeps
 * its device state per fd.
 */
class DeviceFD
{
public:
	DeviceFD() = default;
	DeviceFD(DeviceIO *io, int fd) : io_(io), fd_(fd) {}
	~DeviceFD() { reset(); }

	DeviceFD(DeviceFD &&other) noexcept
		: io_(other.io_), fd_(std::exchange(other.fd_, -1)) {}
	DeviceFD &operator=(DeviceFD &&other) noexcept
	{
		if (this != &other) {
			reset();
			io_ = other.io_;
			fd_ = std::exchange(other.fd_, -1);
		}
		return *this;
	}
	DeviceFD(const DeviceFD &) = delete;
	DeviceFD &operator=(const DeviceFD &) = delete;

	[[nodiscard]] int get() const { return fd_; }
	[[nodiscard]] bool isValid() const { return fd_ >= 0; }
	[[nodiscard]] DeviceIO *io() const { return io_; }
	void reset();

private:
	DeviceIO *io_ = nullptr;
	int fd_ = -1;
};

/**
 * \brief Move-only owner of one memory mapping made through a DeviceIO.
 */
class MappedRegion
{
public:
	MappedRegion() = default;
	MappedRegion(DeviceIO *io, void *addr, size_t length)
		: io_(io), addr_(addr), length_(length) {}
	~MappedRegion() { reset(); }

	MappedRegion(MappedRegion &&other) noexcept
		: io_(other.io_), addr_(std::exchange(other.addr_, nullptr)),
		  length_(std::exchange(other.length_, 0)) {}
	MappedRegion &operator=(MappedRegion &&other) noexcept
	{
		if (this != &other) {
			reset();
			io_ = other.io_;
			addr_ = std::exchange(other.addr_, nullptr);
			length_ = std::exchange(other.length_, 0);
		}
		return *this;
	}
	MappedRegion(const MappedRegion &) = delete;
	MappedRegion &operator=(const MappedRegion &) = delete;

	/**
	 * Map \a length bytes of \a fd at \a offset through \a io.
	 * \return 0 or -errno; on failure \a out is left empty
	 */
	static int map(DeviceIO &io, int fd, size_t length, int prot, off_t offset,
		       MappedRegion &out);

	[[nodiscard]] void *data() const { return addr_; }
	[[nodiscard]] unsigned char *bytes() const { return static_cast<unsigned char *>(addr_); }
	[[nodiscard]] size_t size() const { return length_; }
	[[nodiscard]] bool isValid() const { return addr_ != nullptr; }
	void reset();

private:
	DeviceIO *io_ = nullptr;
	void *addr_ = nullptr;
	size_t length_ = 0;
};

} /* namespace xmb */
