/* SPDX-License-Identifier: MIT */
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include <linux/videodev2.h>

#include "protocol/base/unique_fd.h"
#include "v4l2/device_io.h"
#include "v4l2/v4l2_format.h"

namespace xmb {

class V4L2Device;

enum class V4L2Memory : uint32_t {
	Mmap = V4L2_MEMORY_MMAP,       /**< driver allocates; may be mapped and exported */
	UserPtr = V4L2_MEMORY_USERPTR, /**< caller's pages, e.g. mapped guest grants */
	DmaBuf = V4L2_MEMORY_DMABUF,   /**< caller's dma-buf fds */
};

const char *toString(V4L2Memory memory);

/** \brief Caller memory for one plane at QBUF time (UserPtr / DmaBuf). */
struct V4L2PlaneMemory {
	void *userptr = nullptr; /**< UserPtr: start of the caller's memory */
	int fd = -1;		 /**< DmaBuf: not owned; the driver takes its own reference */
	uint32_t length = 0;	 /**< bytes of caller memory (0 for a dma-buf: its size) */
	uint32_t bytesUsed = 0;	 /**< OUTPUT queues: payload */
	uint32_t dataOffset = 0; /**< OUTPUT multi-planar: payload start */
};

/** \brief Arguments of one QBUF. */
struct V4L2QueueArgs {
	std::array<V4L2PlaneMemory, VIDEO_MAX_PLANES> planes{};
	uint32_t flags = 0;	  /**< extra V4L2_BUF_FLAG_* */
	uint64_t timestampNs = 0; /**< OUTPUT queues: copied to the CAPTURE buffer by codecs */
};

/** \brief What DQBUF returned. */
struct V4L2DequeuedBuffer {
	unsigned index = 0;
	uint32_t flags = 0;
	uint32_t sequence = 0;
	uint32_t field = 0;
	uint64_t timestampNs = 0;
	unsigned numPlanes = 0;
	std::array<uint32_t, VIDEO_MAX_PLANES> bytesUsed{};
	std::array<uint32_t, VIDEO_MAX_PLANES> dataOffset{};

	[[nodiscard]] bool isLast() const { return flags & V4L2_BUF_FLAG_LAST; }
	[[nodiscard]] bool isError() const { return flags & V4L2_BUF_FLAG_ERROR; }
	[[nodiscard]] bool isKeyFrame() const { return flags & V4L2_BUF_FLAG_KEYFRAME; }
};

/**
 * \brief One V4L2 buffer queue (a capture device's, or one side of an M2M
 * device): allocation, mapping, export, QBUF/DQBUF and streaming.
 *
 * The queue owns every mapping it makes; exported dma-buf fds belong to the
 * caller.  Destroying it stops streaming and frees the buffers, so no error
 * path of a user can leave a buffer allocated in the driver.
 */
class V4L2BufferQueue
{
public:
	V4L2BufferQueue(V4L2Device &device, uint32_t bufType);
	~V4L2BufferQueue();
	V4L2BufferQueue(const V4L2BufferQueue &) = delete;
	V4L2BufferQueue &operator=(const V4L2BufferQueue &) = delete;

	[[nodiscard]] uint32_t type() const { return type_; }
	[[nodiscard]] bool isMultiplanar() const { return isMultiplanarType(type_); }
	[[nodiscard]] bool isOutput() const { return isOutputType(type_); }

	int queryCapabilities(uint32_t &caps);
	bool supportsMemory(V4L2Memory memory);

	int requestBuffers(unsigned count, V4L2Memory memory);
	int createBuffers(unsigned count, V4L2Memory memory, const V4L2Format &format);
	int releaseBuffers();

	[[nodiscard]] unsigned count() const { return static_cast<unsigned>(buffers_.size()); }
	[[nodiscard]] V4L2Memory memory() const { return memory_; }
	[[nodiscard]] unsigned numPlanes(unsigned index) const;
	[[nodiscard]] uint32_t planeLength(unsigned index, unsigned plane) const;
	[[nodiscard]] bool isQueued(unsigned index) const;
	[[nodiscard]] unsigned queuedCount() const;

	int mapBuffer(unsigned index);
	[[nodiscard]] unsigned char *planeData(unsigned index, unsigned plane) const;
	int exportBuffer(unsigned index, unsigned plane, UniqueFD &fd);

	int queueBuffer(unsigned index, const V4L2QueueArgs &args = {});
	int prepareBuffer(unsigned index, const V4L2QueueArgs &args);
	int dequeueBuffer(V4L2DequeuedBuffer &out);

	int streamOn();
	int streamOff();
	[[nodiscard]] bool isStreaming() const { return streaming_; }

private:
	int submit(unsigned index, const V4L2QueueArgs &args, unsigned long request);
	struct Plane {
		uint32_t length = 0;
		uint32_t memOffset = 0;
		MappedRegion mapping;
	};
	struct Buffer {
		unsigned numPlanes = 0;
		std::array<Plane, VIDEO_MAX_PLANES> planes;
		bool queued = false;
	};

	int queryBuffer(unsigned index, Buffer &buffer);
	void prepare(v4l2_buffer &buf, v4l2_plane *planes, unsigned index) const;

	V4L2Device &device_;
	uint32_t type_;
	V4L2Memory memory_ = V4L2Memory::Mmap;
	uint32_t capabilities_ = 0;
	bool capabilitiesKnown_ = false;
	std::vector<Buffer> buffers_;
	bool streaming_ = false;
};

} /* namespace xmb */
