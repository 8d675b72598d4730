/* SPDX-License-Identifier: MIT */
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "protocol/base/unique_fd.h"
#include "v4l2/control_mapping.h"
#include "v4l2/media_types.h"

namespace xmb {

/**
 * \brief Where a source's frames are written: the three memory tiers.
 *
 * The service picks one per stream at run time from what the source
 * supports (CameraSource::supportedMemory()), best first:
 *  - UserPtr: the caller hands a pointer+length per buffer (e.g. guest
 *    grant pages mapped into Dom0) and the source writes frames straight
 *    into it.
 *  - DmaBufImport: the caller hands a dma-buf fd per buffer (e.g. gntdev's
 *    export of guest pages) and the source writes into it.
 *  - MmapExport: the source allocates its buffers and exports each as an
 *    fd (a dma-buf where the kernel allows) for the caller to grant.
 * None of these copies frame data; see docs/media-memory.md.
 */
enum class MemoryType : uint32_t {
	UserPtr = 1u << 0,
	DmaBufImport = 1u << 1,
	MmapExport = 1u << 2,
};

using MemoryTypes = uint32_t; /**< OR of MemoryType bits */

constexpr MemoryTypes operator|(MemoryType a, MemoryType b)
{
	return static_cast<uint32_t>(a) | static_cast<uint32_t>(b);
}
constexpr bool hasMemoryType(MemoryTypes set, MemoryType t)
{
	return set & static_cast<uint32_t>(t);
}
const char *toString(MemoryType t);

/** \brief The caller's memory for one buffer at queue time. */
struct CallerBuffer {
	void *data = nullptr; /**< UserPtr: start of the memory */
	int dmabufFd = -1;    /**< DmaBufImport: not owned, must stay open while queued */
	size_t length = 0;    /**< bytes available */
	/**
	 * Keeps the memory valid while a copy of this is held (guest pages
	 * mapped in Dom0): whoever may still touch the memory after handing
	 * the buffer back (a GStreamer element holding it) keeps a copy.
	 */
	std::shared_ptr<void> owner;
};

/** \brief A buffer exported by a MmapExport source. */
struct ExportedBuffer {
	UniqueFD fd;
	size_t length = 0;
	bool isDmaBuf = false; /**< false: a memfd (no udmabuf here), mmap-able only */
};

/** \brief What to stream; configure() adjusts it to what the source does. */
struct StreamConfig {
	uint32_t fourcc = 0;
	uint32_t width = 0;
	uint32_t height = 0;
	Fraction interval{ 1, 30 }; /**< frame interval (1/30 = 30 fps) */
	/**
	 * in: the device format to produce \a fourcc from (a multi-buffer
	 * twin, FormatEntry::deviceFourcc), 0 to let the source choose (its
	 * own \a fourcc if it has it); out: the one it uses, 0 for \a fourcc
	 */
	uint32_t deviceFourcc = 0;
	FrameLayout layout;	    /**< out: the buffer layout to report to the guest */
	Colorimetry colorimetry;    /**< out: what the source produces (0s: it did not say) */
};

/** \brief A frame the source finished. */
struct CompletedFrame {
	unsigned index = 0;	  /**< buffer index */
	uint32_t bytesUsed = 0;	  /**< payload bytes */
	uint32_t sequence = 0;	  /**< frame counter; a gap means frames were dropped */
	uint64_t timestampNs = 0; /**< CLOCK_MONOTONIC capture time */
	bool error = false;	  /**< data may be corrupt (driver said so) */
};

/** \brief Something other than a frame that the service must act on. */
struct SourceEvent {
	enum class Type {
		ControlChanged, /**< control \a control now has \a value */
		SourceChanged,	/**< input format changed: stop, reconfigure, restart */
		Error,		/**< the device failed or vanished: stop using it */
	} type = Type::Error;
	uint8_t control = 0;
	int64_t value = 0;
};

/**
 * \brief A camera the service can serve to guests.
 *
 * Built for a single-threaded epoll loop: pollFd() is added to the loop
 * with pollEvents(); when it fires the service calls dequeueFrame() and
 * dequeueEvent() until each returns -EAGAIN.  No call blocks.
 *
 * Life cycle: configure() -> allocateBuffers() -> queueBuffer() each ->
 * start() -> (dequeueFrame(), queueBuffer() again) ... -> stop() ->
 * releaseBuffers().  A format change mid-session is that cycle again:
 * stop(), releaseBuffers(), configure(), allocateBuffers(), queue, start().
 *
 * All int-returning methods return 0 (or a count) on success, -errno on
 * failure: -EINVAL bad argument, -EBUSY wrong state, -ENOTSUP memory type
 * or feature not supported, -EAGAIN nothing ready.
 */
class CameraSource
{
public:
	virtual ~CameraSource() = default;

	/** Stable id, published as the guest's unique-id. */
	[[nodiscard]] virtual std::string id() const = 0;
	/** Human-readable name for logs. */
	[[nodiscard]] virtual std::string description() const = 0;

	/** Flat list for formats/<FOURCC>/<W>x<H>/frame-rates. */
	virtual std::vector<FormatEntry> formats() = 0;
	/** The memory tiers this source can do for the configured format. */
	[[nodiscard]] virtual MemoryTypes supportedMemory() const = 0;

	virtual int tryConfigure(StreamConfig &config) = 0;
	virtual int configure(StreamConfig &config) = 0;
	virtual int setFrameInterval(Fraction &interval) = 0;

	/** \return the buffer count granted (may differ from \a count) */
	virtual int allocateBuffers(MemoryType memory, unsigned count) = 0;
	virtual int exportBuffer(unsigned index, ExportedBuffer &out) = 0;
	/** \a memory is ignored for MmapExport buffers. */
	virtual int queueBuffer(unsigned index, const CallerBuffer &memory = {}) = 0;
	virtual int releaseBuffers() = 0;

	virtual int start() = 0;
	/** Stops and returns every buffer to the caller (none completes). */
	virtual int stop() = 0;

	[[nodiscard]] virtual int pollFd() const = 0;
	/** epoll events to wait for on pollFd(). */
	[[nodiscard]] virtual uint32_t pollEvents() const;
	virtual int dequeueFrame(CompletedFrame &frame) = 0;
	virtual int dequeueEvent(SourceEvent &event);

	virtual std::vector<CameraControlInfo> controls() = 0;
	virtual int getControl(uint8_t type, int64_t &value) = 0;
	/** \a value becomes what the source applied (clamped, rounded). */
	virtual int setControl(uint8_t type, int64_t &value) = 0;

	/**
	 * Bytes copied per frame to emulate the configured format (libv4l2
	 * conversion), 0 when frames reach the buffer without a copy.
	 */
	[[nodiscard]] virtual uint64_t emulatedCopyBytesPerFrame() const { return 0; }
	/** Total of such bytes since configure(). */
	[[nodiscard]] virtual uint64_t emulatedCopyBytesTotal() const { return 0; }
};

} /* namespace xmb */
