/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A V4L2 stateful M2M encoder behind the vcodec Encoder interface.
 *
 * Raw frames: be-alloc guests on a Dom0 that can grant dma-bufs render
 * into the encoder's own OUTPUT buffers (MMAP, exported and granted by the
 * session: lentRawBuffers()).  Otherwise the guest's mapped INPUT pages (or
 * Dom0's be-alloc pages) are queued on the OUTPUT queue as USERPTR (no copy).  A driver that cannot take USERPTR
 * gets MMAP OUTPUT buffers and each frame is copied into one: logged once,
 * counted in rawBytesCopied().  So does a Dom0 whose drivers must not be
 * handed foreign-mapped pages (\a foreignUserPtr false: an x86 PV Dom0,
 * where a vb2-vmalloc driver's vmap of them oopses, docs/media-memory.md).
 * Where Dom0 can make a dma-buf of the guest's refs (exp_from_refs: Arm;
 * Linux refuses it on x86, docs/xen-vm.md) the OUTPUT queue is DMABUF and
 * each frame is queued as the dma-buf of the guest's pages
 * (encodeDmaBuf): no mapping in Dom0, no pinning, no copy.  A driver that
 * cannot read such a dma-buf (vb2-vmalloc, e.g. vicodec: an import without
 * vmap) refuses the first one; the encoder then reallocates the queue for
 * caller memory (above), logged.
 *
 * Bitstream: CAPTURE buffers are MMAP; a Bitstream's hold keeps its buffer
 * out of the driver until the session has copied it into the guest's
 * OUTPUT pages, so a guest that queues no OUTPUT buffers throttles the
 * encoder instead of making Dom0 buffer its bitstream.
 *
 * One event loop: the device fd sits in the service's EventLoop
 * (edge-triggered; every wake-up drains both queues to EAGAIN), and every
 * method runs on that loop's thread, so the device needs no thread of its
 * own.
 */

#include <memory>
#include <string>
#include <vector>

#include "bridge/service/event_loop.h"
#include "bridge/vcodec/codec_session.h"
#include "bridge/vcodec/encoder.h"
#include "protocol/vcodec_schema.h"
#include "v4l2/device_io.h"

namespace xmb::vcodec {

/** V4L2 pixel format of the bitstream of \a codec (XENVCODEC_CODEC_*), 0 if none. */
uint32_t v4l2CodedFourcc(uint32_t codec);

/**
 * What the M2M encoder at \a path can do, as vcodec capabilities: one entry
 * per codec the device encodes to, with the raw formats vcodec carries
 * (YU12, NV12, YUYV) that it takes.  Empty if \a path is not an encoder.
 */
std::vector<proto::CodecCaps> probeV4L2Codecs(const std::string &path,
					      DeviceIO &io = DeviceIO::system());

/** The first M2M encoder under /dev (by capability), or "" if there is none. */
std::string findV4L2Encoder(DeviceIO &io = DeviceIO::system(), const std::string &dir = "/dev");

class V4L2Encoder final : public Encoder
{
public:
	static Result<std::unique_ptr<V4L2Encoder>> create(const EncodeParams &params,
							   service::EventLoop &loop,
							   const std::string &path, EncoderSink sink,
							   bool foreignUserPtr = true,
							   DeviceIO &io = DeviceIO::system());
	~V4L2Encoder() override;

	[[nodiscard]] std::string description() const override;
	[[nodiscard]] const RawLayout &layout() const override { return layout_; }
	Status encode(const uint8_t *data, uint64_t seq, uint64_t timestamp, bool forceKey,
		      std::function<void()> release) override;
	[[nodiscard]] const std::vector<LentBuffer> &lentRawBuffers() const override;
	Status encodeLent(unsigned index, uint64_t seq, uint64_t timestamp, bool forceKey,
			  std::function<void()> release) override;
	void stopLending() override;
	[[nodiscard]] bool importsRawDmaBufs() const override;
	Status encodeDmaBuf(unsigned index, int fd, uint64_t seq, uint64_t timestamp, bool forceKey,
			    std::function<void()> release) override;
	bool stopImportingRawDmaBufs() override;
	[[nodiscard]] const std::vector<LentBuffer> &lentCodedBuffers() const override;
	Status returnLentCoded(unsigned index) override;
	bool reclaimLentCoded(unsigned index) override;
	void stopLendingCoded() override;
	Status setBitrate(uint32_t bitsPerSecond) override;
	Status drain() override;
	void stop() override;
	Status restart() override;
	[[nodiscard]] uint64_t rawBytesCopied() const override;

	/** Frames queued to the device or waiting for an OUTPUT slot. */
	[[nodiscard]] size_t framesInFlight() const;
	/** True when frames go in as USERPTR, dma-bufs or in lent buffers (no copy). */
	[[nodiscard]] bool zeroCopy() const;

	struct Impl;

private:
	explicit V4L2Encoder(std::shared_ptr<Impl> impl);
	std::shared_ptr<Impl> impl_;
	RawLayout layout_;
};

/**
 * Sessions get a V4L2Encoder on \a path, driven by \a loop; guest pages go
 * to the driver as USERPTR only if \a foreignUserPtr; the encoder lends its
 * own buffers to be-alloc guests (where Dom0 grants dma-bufs) unless
 * \a shareOwnBuffers is false.
 */
EncoderFactory v4l2EncoderFactory(service::EventLoop &loop, std::string path, bool foreignUserPtr = true,
				  DeviceIO &io = DeviceIO::system(), bool shareOwnBuffers = true);

} /* namespace xmb::vcodec */
