/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The encoder behind a vcodec session: raw frames in (caller memory, read
 * in place), bitstream out.  Implementations: GstEncoder (software, via
 * GStreamer: vp8enc, vp9enc, jpegenc, openh264enc) and, where a device
 * exists, a V4L2 M2M adapter (docs/vcodec.md says what is missing).
 *
 * Threads: encode()/setBitrate()/drain()/stop()/restart() are called on the
 * session's (event loop) thread.  Outputs and releases may be produced on
 * encoder threads: they go to the Sink, which must be thread-safe.
 */

#include <cerrno>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "protocol/base/unique_fd.h"
#include "protocol/result.h"
#include "protocol/vcodec.h"

namespace xmb::vcodec {

/** Configuration of one encoding session (validated against the caps). */
struct EncodeParams {
	uint32_t codec = XENVCODEC_CODEC_VP8;
	uint32_t rawFourcc = 0;
	uint32_t width = 0, height = 0;
	uint32_t rateNum = 30, rateDen = 1;
	uint8_t rcMode = XENVCODEC_RC_VBR;
	uint32_t bitrate = 2000000;
	uint8_t qp = 0;
	uint32_t gop = 0;
	uint8_t profile = 0; /* index into the published profiles */
	uint8_t level = 0;
	/**
	 * Raw frames are in Dom0's own pages (be-alloc: granted to the guest),
	 * not in foreign mappings: a driver may read them as user memory on
	 * any Dom0.
	 */
	bool framesInDom0Memory = false;
	/**
	 * Lend this many raw and as many bitstream buffers of the encoder's own
	 * memory (be-alloc where Dom0 can grant a dma-buf): the guest renders
	 * into them and reads its bitstream from them, see
	 * Encoder::lentRawBuffers(), lentCodedBuffers().  0: the caller
	 * supplies raw memory and takes each bitstream out of a Bitstream.
	 */
	unsigned lendBuffers = 0;
	/**
	 * Raw frames may come as dma-bufs of the guest's own pages (Dom0 can
	 * export foreign refs: Arm), see Encoder::encodeDmaBuf().  An encoder
	 * that can try it sets itself up for it (importsRawDmaBufs()).
	 */
	bool importRawDmaBufs = false;
};

/** One of the encoder's own raw buffers, lent to be granted to a guest. */
struct LentBuffer {
	UniqueFD dmabuf;  /**< a dma-buf of the buffer (EXPBUF), owned by the encoder */
	size_t size = 0;  /**< bytes of that dma-buf: whole pages, at least layout().size */
};

/** Where the raw frame's planes are in an INPUT buffer (backend-chosen). */
struct RawLayout {
	uint32_t size = 0;
	uint8_t numPlanes = 0;
	uint32_t offset[XENVCODEC_MAX_PLANE] = {};
	uint32_t stride[XENVCODEC_MAX_PLANE] = {};
	bool operator==(const RawLayout &) const = default;
};

/** One encoded frame; \a hold keeps \a data valid (e.g. a mapped GstBuffer). */
struct Bitstream {
	const uint8_t *data = nullptr;
	size_t size = 0;
	bool key = false;
	uint64_t seq = 0;
	uint64_t encodeNs = 0; /* time spent inside the encoder element */
	std::shared_ptr<void> hold;
	/**
	 * The lent bitstream buffer it is in (lentCodedBuffers()), -1 if none:
	 * the encoder keeps it until returnLentCoded(lent), \a hold does not.
	 */
	int lent = -1;
};

/** What an encoder reports; called from any thread. */
struct EncoderSink {
	std::function<void(Bitstream)> bitstream;
	std::function<void()> drained;
	std::function<void(const std::string &)> error;
};

class Encoder
{
public:
	virtual ~Encoder() = default;
	[[nodiscard]] virtual std::string description() const = 0;
	[[nodiscard]] virtual const RawLayout &layout() const = 0;

	/**
	 * Encode the frame at \a data (layout().size bytes), read in place.
	 * \a seq numbers frames from 0 since OPEN; \a timestamp is the guest's
	 * (opaque to encoders, nanoseconds to a Dom0 pipeline).
	 * \a release is called exactly once (any thread) when the encoder no
	 * longer reads the memory, also when the frame is dropped or stop()ped.
	 */
	virtual Status encode(const uint8_t *data, uint64_t seq, uint64_t timestamp, bool forceKey,
			      std::function<void()> release) = 0;
	/**
	 * True while the encoder takes the guest's frames as dma-bufs
	 * (EncodeParams::importRawDmaBufs and a driver that has DMABUF): the
	 * caller exports each INPUT buffer's pages and calls encodeDmaBuf().
	 */
	[[nodiscard]] virtual bool importsRawDmaBufs() const { return false; }
	/**
	 * Encode the frame in dma-buf \a fd, the guest's INPUT buffer \a index
	 * (at least layout().size bytes), read in place by the device: no
	 * mapping in Dom0, no copy.  \a release as for encode().
	 * -ENOTSUP: the driver cannot read such a dma-buf (found out with the
	 * first frame, nothing else is in flight then): the frame was *not*
	 * taken, \a release is not called, and frames come through encode()
	 * from now on (importsRawDmaBufs() is false).
	 */
	virtual Status encodeDmaBuf(unsigned index, int fd, uint64_t seq, uint64_t timestamp, bool forceKey,
				    std::function<void()> release)
	{
		(void)index, (void)fd, (void)seq, (void)timestamp, (void)forceKey, (void)release;
		return Error{ -ENOTSUP, "this encoder takes no dma-bufs" };
	}
	/**
	 * Frames through encode() from now on (the caller cannot make dma-bufs
	 * of the guest's pages).  False if too late: a frame came as a dma-buf.
	 */
	virtual bool stopImportingRawDmaBufs() { return true; }
	/**
	 * The raw buffers the encoder lends (EncodeParams::lendBuffers):
	 * buffer i is the guest's INPUT buffer i.  Empty when it lends none
	 * (then frames come through encode()).  The dma-bufs live as long as
	 * the encoder; a grant of one holds its own reference.
	 */
	[[nodiscard]] virtual const std::vector<LentBuffer> &lentRawBuffers() const
	{
		static const std::vector<LentBuffer> none;
		return none;
	}
	/**
	 * Encode the frame the guest rendered into lent buffer \a index, read in
	 * place; \a release as for encode() (the guest may write it again).
	 */
	virtual Status encodeLent(unsigned index, uint64_t seq, uint64_t timestamp, bool forceKey,
				  std::function<void()> release)
	{
		(void)index, (void)seq, (void)timestamp, (void)forceKey;
		if (release)
			release();
		return Error{ -ENOTSUP, "this encoder lends no buffers" };
	}
	/**
	 * Stop lending raw buffers: they could not be granted, frames come
	 * through encode() from now on (copied into the encoder's memory).
	 */
	virtual void stopLending() {}

	/**
	 * The bitstream buffers the encoder lends: buffer i is the guest's
	 * OUTPUT buffer i.  The encoder fills one only after
	 * returnLentCoded(i) (the guest queued it), and keeps it after a
	 * Bitstream with lent == i until the next returnLentCoded(i).
	 */
	[[nodiscard]] virtual const std::vector<LentBuffer> &lentCodedBuffers() const
	{
		static const std::vector<LentBuffer> none;
		return none;
	}
	/** The guest queued lent bitstream buffer \a index: the encoder may fill it. */
	virtual Status returnLentCoded(unsigned index)
	{
		(void)index;
		return Error{ -ENOTSUP, "this encoder lends no buffers" };
	}
	/**
	 * Take lent bitstream buffer \a index back before the driver has it
	 * (the guest destroys it while queued, e.g. after STOP): true if the
	 * driver does not hold it; it then stays out until returnLentCoded().
	 */
	virtual bool reclaimLentCoded(unsigned index)
	{
		(void)index;
		return false;
	}
	/**
	 * Stop lending bitstream buffers (they could not be granted): every
	 * buffer back to the encoder, Bitstreams carry their bytes in \a data.
	 */
	virtual void stopLendingCoded() {}
	virtual Status setBitrate(uint32_t bitsPerSecond) = 0;
	/** Finish every frame queued; sink.drained() afterwards, then restart() to go on. */
	virtual Status drain() = 0;
	/** Drop everything in flight; on return every release() has been called. */
	virtual void stop() = 0;
	/** Ready for frames again (after drained or stop). */
	virtual Status restart() = 0;
	/**
	 * Raw frame bytes this encoder copied (a device that cannot read the
	 * guest's pages in place); 0 on the zero-copy paths.
	 */
	[[nodiscard]] virtual uint64_t rawBytesCopied() const { return 0; }
};

} /* namespace xmb::vcodec */
