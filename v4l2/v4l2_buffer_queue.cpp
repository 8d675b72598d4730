/* SPDX-License-Identifier: MIT */
/**
 * \file v4l2_buffer_queue.cpp
 * \brief REQBUFS/CREATE_BUFS, QUERYBUF, mmap, EXPBUF, QBUF/DQBUF, STREAMON/OFF
 */
#include "v4l2/v4l2_buffer_queue.h"

#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <sys/mman.h>

#include "protocol/base/log.h"
#include "v4l2/v4l2_device.h"

namespace xmb {

XMB_LOG_DEFINE_CATEGORY(logQueue, "v4l2");

namespace {

const char *typeName(uint32_t type)
{
	switch (type) {
	case V4L2_BUF_TYPE_VIDEO_CAPTURE:
	case V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE:
		return "capture";
	case V4L2_BUF_TYPE_VIDEO_OUTPUT:
	case V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE:
		return "output";
	default:
		return "queue";
	}
}

} /* namespace */

/** \brief "mmap", "userptr" or "dmabuf", for logs */
const char *toString(V4L2Memory memory)
{
	switch (memory) {
	case V4L2Memory::Mmap:
		return "mmap";
	case V4L2Memory::UserPtr:
		return "userptr";
	case V4L2Memory::DmaBuf:
		return "dmabuf";
	}
	return "?";
}

/**
 * \brief A queue of type \a bufType on \a device (which must outlive it)
 */
V4L2BufferQueue::V4L2BufferQueue(V4L2Device &device, uint32_t bufType)
	: device_(device), type_(bufType)
{
}

V4L2BufferQueue::~V4L2BufferQueue()
{
	if (device_.isOpen()) {
		if (streaming_)
			streamOff();
		releaseBuffers();
	}
}

/**
 * \brief The queue's V4L2_BUF_CAP_* flags
 *
 * REQBUFS with count 0 frees nothing when no buffers exist and reports the
 * capabilities on kernels >= 4.20; older kernels leave them 0, which reads
 * as "unknown" and supportsMemory() then tries the memory type itself.
 */
int V4L2BufferQueue::queryCapabilities(uint32_t &caps)
{
	if (!capabilitiesKnown_ && buffers_.empty()) {
		v4l2_requestbuffers req{};
		req.type = type_;
		req.memory = V4L2_MEMORY_MMAP;
		req.count = 0;
		int ret = device_.ioctl(VIDIOC_REQBUFS, &req);
		if (ret < 0)
			return ret;
		capabilities_ = req.capabilities;
		capabilitiesKnown_ = true;
	}
	caps = capabilities_;
	return 0;
}

/**
 * \brief Whether the queue takes buffers of \a memory type
 */
bool V4L2BufferQueue::supportsMemory(V4L2Memory memory)
{
	uint32_t caps = 0;
	if (queryCapabilities(caps) == 0 && caps) {
		switch (memory) {
		case V4L2Memory::Mmap:
			return caps & V4L2_BUF_CAP_SUPPORTS_MMAP;
		case V4L2Memory::UserPtr:
			return caps & V4L2_BUF_CAP_SUPPORTS_USERPTR;
		case V4L2Memory::DmaBuf:
			return caps & V4L2_BUF_CAP_SUPPORTS_DMABUF;
		}
	}
	if (!buffers_.empty())
		return memory == memory_;
	/* Old kernel: ask with a zero-count REQBUFS of that memory type. */
	v4l2_requestbuffers req{};
	req.type = type_;
	req.memory = static_cast<uint32_t>(memory);
	return device_.ioctl(VIDIOC_REQBUFS, &req) == 0;
}

int V4L2BufferQueue::queryBuffer(unsigned index, Buffer &buffer)
{
	v4l2_plane planes[VIDEO_MAX_PLANES] = {};
	v4l2_buffer buf{};
	buf.type = type_;
	buf.memory = static_cast<uint32_t>(memory_);
	buf.index = index;
	if (isMultiplanar()) {
		buf.m.planes = planes;
		buf.length = VIDEO_MAX_PLANES;
	}
	int ret = device_.ioctl(VIDIOC_QUERYBUF, &buf);
	if (ret < 0) {
		XMB_LOG(logQueue, Error, "%s: VIDIOC_QUERYBUF %s %u failed: %s", device_.path().c_str(),
			typeName(type_), index, strerror(-ret));
		return ret;
	}
	if (isMultiplanar()) {
		if (buf.length < 1 || buf.length > VIDEO_MAX_PLANES)
			return -EIO;
		buffer.numPlanes = buf.length;
		for (unsigned p = 0; p < buf.length; p++) {
			buffer.planes[p].length = planes[p].length;
			buffer.planes[p].memOffset = planes[p].m.mem_offset;
		}
	} else {
		buffer.numPlanes = 1;
		buffer.planes[0].length = buf.length;
		buffer.planes[0].memOffset = buf.m.offset;
	}
	/* A buffer that came back queued (never on a fresh REQBUFS) stays so. */
	buffer.queued = buf.flags & V4L2_BUF_FLAG_QUEUED;
	return 0;
}

/**
 * \brief Allocate \a count buffers of \a memory type (VIDIOC_REQBUFS)
 *
 * Frees existing buffers first.  The driver may grant a different count.
 *
 * \return the number of buffers allocated, or -errno
 */
int V4L2BufferQueue::requestBuffers(unsigned count, V4L2Memory memory)
{
	int ret = releaseBuffers();
	if (ret < 0)
		return ret;
	if (count == 0)
		return 0;

	v4l2_requestbuffers req{};
	req.type = type_;
	req.memory = static_cast<uint32_t>(memory);
	req.count = count;
	ret = device_.ioctl(VIDIOC_REQBUFS, &req);
	if (ret < 0) {
		XMB_LOG(logQueue, Error, "%s: VIDIOC_REQBUFS %u %s %s buffers failed: %s",
			device_.path().c_str(), count, toString(memory), typeName(type_), strerror(-ret));
		return ret;
	}
	memory_ = memory;
	capabilities_ = req.capabilities;
	capabilitiesKnown_ = true;

	std::vector<Buffer> buffers(req.count);
	for (unsigned i = 0; i < req.count; i++) {
		ret = queryBuffer(i, buffers[i]);
		if (ret < 0) {
			/* Give the driver its buffers back: nothing half-made survives. */
			v4l2_requestbuffers undo{};
			undo.type = type_;
			undo.memory = static_cast<uint32_t>(memory);
			device_.ioctl(VIDIOC_REQBUFS, &undo);
			return ret;
		}
	}
	buffers_ = std::move(buffers);
	XMB_LOG(logQueue, Debug, "%s: %u %s %s buffers (asked %u)", device_.path().c_str(), req.count,
		toString(memory), typeName(type_), count);
	return static_cast<int>(req.count);
}

/**
 * \brief Add \a count buffers sized for \a format (VIDIOC_CREATE_BUFS)
 *
 * Lets buffers for a larger format be added without freeing the ones in
 * flight.  Existing buffers must be of the same memory type.
 *
 * \return the number of buffers added, or -errno
 */
int V4L2BufferQueue::createBuffers(unsigned count, V4L2Memory memory, const V4L2Format &format)
{
	if (!buffers_.empty() && memory != memory_)
		return -EINVAL;

	v4l2_create_buffers create{};
	create.count = count;
	create.memory = static_cast<uint32_t>(memory);
	toV4L2(format, type_, create.format);
	int ret = device_.ioctl(VIDIOC_CREATE_BUFS, &create);
	if (ret < 0) {
		XMB_LOG(logQueue, Error, "%s: VIDIOC_CREATE_BUFS %u %s failed: %s", device_.path().c_str(),
			count, toString(memory), strerror(-ret));
		return ret;
	}
	memory_ = memory;
	if (create.capabilities) {
		capabilities_ = create.capabilities;
		capabilitiesKnown_ = true;
	}
	/* The new buffers are [create.index, create.index + create.count). */
	if (create.index != buffers_.size())
		return -EIO;
	for (unsigned i = 0; i < create.count; i++) {
		Buffer b;
		ret = queryBuffer(create.index + i, b);
		if (ret < 0)
			return ret;
		buffers_.push_back(std::move(b));
	}
	return static_cast<int>(create.count);
}

/**
 * \brief Unmap and free all buffers (VIDIOC_REQBUFS 0)
 *
 * dma-bufs the caller exported stay valid: the kernel keeps the memory
 * until the last fd is closed.
 */
int V4L2BufferQueue::releaseBuffers()
{
	if (buffers_.empty())
		return 0;
	if (streaming_)
		streamOff();
	buffers_.clear(); /* unmaps */

	v4l2_requestbuffers req{};
	req.type = type_;
	req.memory = static_cast<uint32_t>(memory_);
	req.count = 0;
	int ret = device_.ioctl(VIDIOC_REQBUFS, &req);
	if (ret < 0)
		XMB_LOG(logQueue, Warn, "%s: freeing %s buffers failed: %s", device_.path().c_str(),
			typeName(type_), strerror(-ret));
	return ret;
}

unsigned V4L2BufferQueue::numPlanes(unsigned index) const
{
	return index < buffers_.size() ? buffers_[index].numPlanes : 0;
}

uint32_t V4L2BufferQueue::planeLength(unsigned index, unsigned plane) const
{
	if (index >= buffers_.size() || plane >= buffers_[index].numPlanes)
		return 0;
	return buffers_[index].planes[plane].length;
}

bool V4L2BufferQueue::isQueued(unsigned index) const
{
	return index < buffers_.size() && buffers_[index].queued;
}

unsigned V4L2BufferQueue::queuedCount() const
{
	unsigned n = 0;
	for (const Buffer &b : buffers_)
		n += b.queued;
	return n;
}

/**
 * \brief Map every plane of MMAP buffer \a index into this process
 * \return 0 or -errno
 */
int V4L2BufferQueue::mapBuffer(unsigned index)
{
	if (index >= buffers_.size() || memory_ != V4L2Memory::Mmap)
		return -EINVAL;
	Buffer &b = buffers_[index];
	for (unsigned p = 0; p < b.numPlanes; p++) {
		if (b.planes[p].mapping.isValid())
			continue;
		int ret = MappedRegion::map(device_.io(), device_.fd(), b.planes[p].length,
					    PROT_READ | PROT_WRITE, b.planes[p].memOffset,
					    b.planes[p].mapping);
		if (ret < 0) {
			XMB_LOG(logQueue, Error, "%s: mmap of buffer %u plane %u failed: %s",
				device_.path().c_str(), index, p, strerror(-ret));
			return ret;
		}
	}
	return 0;
}

/**
 * \brief CPU address of a mapped plane, or nullptr if not mapped
 */
unsigned char *V4L2BufferQueue::planeData(unsigned index, unsigned plane) const
{
	if (index >= buffers_.size() || plane >= buffers_[index].numPlanes)
		return nullptr;
	return buffers_[index].planes[plane].mapping.bytes();
}

/**
 * \brief Export a plane of MMAP buffer \a index as a dma-buf (VIDIOC_EXPBUF)
 *
 * The fd is O_CLOEXEC and read-write; the caller owns it.  The memory
 * outlives the queue's buffers for as long as the fd (or a mapping or an
 * importer) holds it.
 *
 * \return 0 or -errno
 */
int V4L2BufferQueue::exportBuffer(unsigned index, unsigned plane, UniqueFD &fd)
{
	if (index >= buffers_.size() || plane >= buffers_[index].numPlanes ||
	    memory_ != V4L2Memory::Mmap)
		return -EINVAL;
	v4l2_exportbuffer exp{};
	exp.type = type_;
	exp.index = index;
	exp.plane = plane;
	exp.flags = O_CLOEXEC | O_RDWR;
	int ret = device_.ioctl(VIDIOC_EXPBUF, &exp);
	if (ret < 0) {
		XMB_LOG(logQueue, Error, "%s: VIDIOC_EXPBUF buffer %u plane %u failed: %s",
			device_.path().c_str(), index, plane, strerror(-ret));
		return ret;
	}
	fd = UniqueFD(exp.fd);
	return 0;
}

void V4L2BufferQueue::prepare(v4l2_buffer &buf, v4l2_plane *planes, unsigned index) const
{
	buf = {};
	buf.type = type_;
	buf.memory = static_cast<uint32_t>(memory_);
	buf.index = index;
	if (isMultiplanar()) {
		buf.m.planes = planes;
		buf.length = index < buffers_.size() ? buffers_[index].numPlanes : VIDEO_MAX_PLANES;
	}
}

/**
 * \brief Queue buffer \a index (VIDIOC_QBUF)
 *
 * For UserPtr and DmaBuf queues \a args carries the caller's memory for
 * each plane: the driver DMAs straight into it, nothing is copied.  OUTPUT
 * queues also take bytesUsed and a timestamp.
 *
 * \return 0 or -errno
 */
int V4L2BufferQueue::queueBuffer(unsigned index, const V4L2QueueArgs &args)
{
	return submit(index, args, VIDIOC_QBUF);
}

/**
 * \brief Hand buffer \a index's memory to the driver without queueing it
 * (VIDIOC_PREPARE_BUF)
 *
 * The driver validates and maps it now (for DMABUF: attaches and maps the
 * dma-buf), so a driver that cannot use such memory says so before any
 * frame depends on it; a later QBUF of the index with the same memory
 * finds it prepared.  Failures are the caller's to report.
 *
 * \return 0 or -errno
 */
int V4L2BufferQueue::prepareBuffer(unsigned index, const V4L2QueueArgs &args)
{
	return submit(index, args, VIDIOC_PREPARE_BUF);
}

int V4L2BufferQueue::submit(unsigned index, const V4L2QueueArgs &args, unsigned long request)
{
	if (index >= buffers_.size())
		return -EINVAL;
	Buffer &b = buffers_[index];
	if (b.queued)
		return -EBUSY;

	v4l2_plane planes[VIDEO_MAX_PLANES] = {};
	v4l2_buffer buf;
	prepare(buf, planes, index);
	buf.flags = args.flags;
	buf.timestamp.tv_sec = static_cast<time_t>(args.timestampNs / 1000000000ull);
	buf.timestamp.tv_usec = static_cast<suseconds_t>((args.timestampNs % 1000000000ull) / 1000);
	if (isOutput())
		buf.field = V4L2_FIELD_NONE;

	for (unsigned p = 0; p < b.numPlanes; p++) {
		const V4L2PlaneMemory &m = args.planes[p];
		if (memory_ == V4L2Memory::UserPtr && (!m.userptr || m.length < b.planes[p].length) &&
		    !isOutput()) {
			/* A short user buffer would let the device write past it. */
			XMB_LOG(logQueue, Error, "%s: userptr buffer %u plane %u is %u bytes, need %u",
				device_.path().c_str(), index, p, m.length, b.planes[p].length);
			return -EINVAL;
		}
		if (memory_ == V4L2Memory::DmaBuf && m.fd < 0)
			return -EBADF;
		if (isMultiplanar()) {
			v4l2_plane &pl = planes[p];
			if (memory_ == V4L2Memory::UserPtr) {
				pl.m.userptr = reinterpret_cast<unsigned long>(m.userptr);
				pl.length = m.length;
			} else if (memory_ == V4L2Memory::DmaBuf) {
				pl.m.fd = m.fd;
				pl.length = m.length;
			}
			pl.bytesused = m.bytesUsed;
			pl.data_offset = m.dataOffset;
		} else {
			if (memory_ == V4L2Memory::UserPtr) {
				buf.m.userptr = reinterpret_cast<unsigned long>(m.userptr);
				buf.length = m.length;
			} else if (memory_ == V4L2Memory::DmaBuf) {
				buf.m.fd = m.fd;
				buf.length = m.length;
			}
			buf.bytesused = m.bytesUsed;
		}
	}

	int ret = device_.ioctl(request, &buf);
	if (request == VIDIOC_PREPARE_BUF)
		return ret;
	if (ret < 0) {
		XMB_LOG(logQueue, Error, "%s: VIDIOC_QBUF %s %u failed: %s", device_.path().c_str(),
			typeName(type_), index, strerror(-ret));
		return ret;
	}
	b.queued = true;
	return 0;
}

/**
 * \brief Dequeue one completed buffer (VIDIOC_DQBUF), without blocking
 *
 * \return 0, -EAGAIN when none is ready, -EPIPE on a CAPTURE queue after
 * the buffer flagged LAST (drained), or another -errno
 */
int V4L2BufferQueue::dequeueBuffer(V4L2DequeuedBuffer &out)
{
	v4l2_plane planes[VIDEO_MAX_PLANES] = {};
	v4l2_buffer buf;
	prepare(buf, planes, 0);
	if (isMultiplanar())
		buf.length = VIDEO_MAX_PLANES;

	int ret = device_.ioctl(VIDIOC_DQBUF, &buf);
	if (ret < 0) {
		if (ret != -EAGAIN && ret != -EPIPE)
			XMB_LOG(logQueue, Error, "%s: VIDIOC_DQBUF %s failed: %s", device_.path().c_str(),
				typeName(type_), strerror(-ret));
		return ret;
	}
	if (buf.index >= buffers_.size()) {
		XMB_LOG(logQueue, Error, "%s: driver returned unknown buffer %u", device_.path().c_str(),
			buf.index);
		return -EIO;
	}
	buffers_[buf.index].queued = false;

	out = {};
	out.index = buf.index;
	out.flags = buf.flags;
	out.sequence = buf.sequence;
	out.field = buf.field;
	out.timestampNs = static_cast<uint64_t>(buf.timestamp.tv_sec) * 1000000000ull +
			  static_cast<uint64_t>(buf.timestamp.tv_usec) * 1000ull;
	if (isMultiplanar()) {
		out.numPlanes = std::min<unsigned>(buf.length, VIDEO_MAX_PLANES);
		for (unsigned p = 0; p < out.numPlanes; p++) {
			out.bytesUsed[p] = planes[p].bytesused;
			out.dataOffset[p] = planes[p].data_offset;
		}
	} else {
		out.numPlanes = 1;
		out.bytesUsed[0] = buf.bytesused;
	}
	return 0;
}

/**
 * \brief Start streaming (VIDIOC_STREAMON)
 */
int V4L2BufferQueue::streamOn()
{
	if (streaming_)
		return 0;
	uint32_t type = type_;
	int ret = device_.ioctl(VIDIOC_STREAMON, &type);
	if (ret < 0) {
		XMB_LOG(logQueue, Error, "%s: VIDIOC_STREAMON %s failed: %s", device_.path().c_str(),
			typeName(type_), strerror(-ret));
		return ret;
	}
	streaming_ = true;
	return 0;
}

/**
 * \brief Stop streaming (VIDIOC_STREAMOFF); every buffer returns to us
 */
int V4L2BufferQueue::streamOff()
{
	uint32_t type = type_;
	int ret = device_.ioctl(VIDIOC_STREAMOFF, &type);
	if (ret < 0 && streaming_)
		XMB_LOG(logQueue, Warn, "%s: VIDIOC_STREAMOFF %s failed: %s", device_.path().c_str(),
			typeName(type_), strerror(-ret));
	streaming_ = false;
	/* STREAMOFF returns all buffers, queued or done, to the application. */
	for (Buffer &b : buffers_)
		b.queued = false;
	return ret < 0 ? ret : 0;
}

} /* namespace xmb */
