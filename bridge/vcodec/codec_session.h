/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * One connected vcodec frontend (Dom0 side): ring, event page, INPUT and
 * OUTPUT buffers, and the encoder.  Requests are copied out of the ring
 * once, decoded, then checked against this session's state.
 *
 * Raw frames: the guest's INPUT pages are mapped once (read-only) at
 * BUF_CREATE and handed to the encoder in place; the mapping is shared
 * with the encoder's release callback, so pages stay mapped for as long as
 * the encoder can read them, whatever the guest or the session does.
 * Bitstream: copied once, bounded by the OUTPUT buffer size, into the
 * guest's OUTPUT pages (mapped writable once at BUF_CREATE).
 *
 * Encoder callbacks arrive on encoder threads; they are posted to a mailbox
 * drained on the event loop, so session state needs no lock.
 */

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "bridge/service/delivery_window.h"
#include "protocol/base/log.h"

#include "bridge/platform/platform.h"
#include "bridge/service/event_loop.h"
#include "bridge/service/ring_server.h"
#include "bridge/service/xenbus_backend.h"
#include "bridge/vcodec/encoder.h"
#include "protocol/vcodec.h"
#include "protocol/vcodec_schema.h"

namespace xmb::vcodec {

using EncoderFactory = std::function<Result<std::unique_ptr<Encoder>>(
	const EncodeParams &, const proto::CodecCaps &, EncoderSink)>;

/** The GStreamer software encoders. */
EncoderFactory gstEncoderFactory();

/** vcodec for the shared RingServer. */
using CodecRingProtocol =
	service::RingProtocol<proto::CodecBackRing, xenvcodec_req, proto::CodecRequest, xenvcodec_resp,
			      proto::CodecEventWriter, xenvcodec_evt, &proto::decodeCodecRequest,
			      &proto::makeCodecResponse>;

struct CodecSessionConfig {
	xen::DomId frontend = 0;
	unsigned devid = 0;
	size_t maxPages = 16384; /**< guest pages mapped at once (buffers + directories) */
	proto::VcodecConfig caps; /**< what was published to this guest */
};

struct CodecStats {
	uint64_t framesIn = 0;	       /**< QUEUE_RAW accepted */
	uint64_t inputsDone = 0;       /**< INPUT_DONE events */
	uint64_t bitstreams = 0;       /**< BITSTREAM_READY events */
	uint64_t keyFrames = 0;
	uint64_t rawBytesCopied = 0;   /**< raw frame bytes Dom0 copied: must stay 0 */
	uint64_t compressedBytesCopied = 0;
	uint64_t bitstreamDrops = 0;   /**< too big for the OUTPUT buffer / backlog full */
	uint64_t requests = 0;
	uint64_t mappedPages = 0;
	uint64_t rawDmaBufFrames = 0;  /**< raw frames the encoder read as dma-bufs of the guest's pages */
	uint64_t dmaBufs = 0;	       /**< dma-bufs of the guest's pages Dom0 holds (GrantTable::exportedDmaBufs) */
	uint64_t bridgeNs = 0;	       /**< Dom0 time on the per-frame path: QUEUE_RAW/QUEUE_OUT
					    handling (wrap + push), mailbox, bitstream copy, events */
	uint64_t encodeNs = 0;	       /**< time inside the encoder element */
	uint64_t throttledOpens = 0;   /**< OPENs answered -XEN_EAGAIN: over the guest's budget */
	/* Over the last bitstreams (service::DeliveryWindow); 0 / none = not known. */
	uint64_t fpsMilli = 0;			/**< bitstreams per second, in thousandths */
	std::optional<uint64_t> latencyP50Us;	/**< QUEUE_RAW accepted to BITSTREAM_READY, median */
	std::optional<uint64_t> latencyP99Us;	/**< the same, 99th percentile */
};

class CodecSession final : public service::BackendSession
{
public:
	using Violation = std::function<void(CodecSession *, const std::string &)>;

	CodecSession(xen::Platform &dom0, service::EventLoop &loop, CodecSessionConfig config,
		     EncoderFactory factory, Violation onViolation);
	~CodecSession() override;
	CodecSession(const CodecSession &) = delete;
	CodecSession &operator=(const CodecSession &) = delete;

	Status connect(const proto::VcodecTransport &transport);
	[[nodiscard]] xen::Port requestPort() const override { return ring_.requestPort(); }
	[[nodiscard]] xen::Port eventPort() const override { return ring_.eventPort(); }
	void onRequestNotify() override { ring_.onRequestNotify(); }
	void onEventNotify() override { ring_.onEventNotify(); }

	/** Statistics; rawBytesCopied includes what the encoders copied. */
	[[nodiscard]] CodecStats stats() const;
	/** "vp8 640x480 30/1 fps from YU12" once opened; else empty. */
	[[nodiscard]] const std::string &format() const { return format_; }
	[[nodiscard]] std::string encoderDescription() const;
	[[nodiscard]] const std::string &label() const { return label_; }

private:
	/*
	 * A buffer's memory: the guest's pages mapped here, or (be-alloc) Dom0
	 * pages granted to the guest.  \a keep owns it: shared with an encoder
	 * still reading a frame, so it outlives the buffer if it must.
	 */
	struct Memory {
		std::shared_ptr<void> keep;
		uint8_t *data = nullptr;
		size_t size = 0;
		size_t pages = 0;
		int lent = -1; /**< the encoder's own buffer (granted dma-buf); data is then null */
		/** The guest's pages as a dma-buf (a ForeignDmaBuf in keep); data is then null. */
		int dmabuf = -1;
		/** With dmabuf: its refs, to map them instead if the encoder cannot take it. */
		std::vector<xen::Gref> refs;
	};
	struct InBuf {
		bool created = false;
		bool inEncoder = false;
		uint64_t gen = 0;
		Memory mem;
	};
	struct OutBuf {
		bool created = false;
		bool queued = false;
		Memory mem;
	};
	Result<Memory> guestPages(const proto::CodecRequest::BufCreate &bc, uint32_t size, bool input);
	Result<Memory> grantedPages(const proto::CodecRequest::BufCreate &bc, uint32_t size, bool input);
	Result<std::optional<Memory>> grantLentBuffer(unsigned index, bool input, uint32_t size,
						      std::span<xen::GrantMapping> dirPages);
	/** Does a created buffer of the INPUT (\a input) or OUTPUT set live in the encoder's memory? */
	[[nodiscard]] bool anyLent(bool input) const;
	Status mapImportedInputs();
	/** OUTPUT buffer \a i is a lent one the guest has queued (the encoder may fill it). */
	[[nodiscard]] bool lentOutQueued(unsigned i) const
	{
		return i < out_.size() && out_[i].created && out_[i].queued && out_[i].mem.lent >= 0;
	}
	struct InputDoneMsg { uint64_t encGen; unsigned index; uint64_t gen; };
	struct BitstreamMsg { uint64_t encGen; Bitstream bs; };
	struct DrainedMsg { uint64_t encGen; };
	struct ErrorMsg { uint64_t encGen; std::string what; };
	using Msg = std::variant<InputDoneMsg, BitstreamMsg, DrainedMsg, ErrorMsg>;
	struct Mailbox {
		std::mutex lock;
		std::deque<Msg> items;
		bool scheduled = false;
		bool alive = true;   /* loop thread only */
		/*
		 * Under lock: the session is gone, and its loop may be too.  A
		 * frame released later (a Dom0 pipeline may hold one past the
		 * session, xmbguestsrc) must not touch the loop.
		 */
		bool closed = false;
	};

	xenvcodec_resp handle(const proto::CodecRequest &req);
	int32_t opOpen(const proto::CodecRequest::Open &o, xenvcodec_resp &resp);
	int32_t opBufCreate(const proto::CodecRequest::BufCreate &bc);
	int32_t opBufDestroy(uint8_t type, uint8_t index);
	int32_t opQueueRaw(const proto::CodecRequest::QueueRaw &q);
	int32_t opQueueOut(uint8_t index);
	int32_t opDrain();
	int32_t opStop();
	Result<std::vector<xen::Gref>> walkDirectory(xen::Gref first, uint64_t bytes, bool collect = true,
						     std::vector<xen::GrantMapping> *keep = nullptr);
	xenvcodec_resp serve(const proto::CodecRequest &req);
	void post(Msg m);
	static void postTo(const std::shared_ptr<Mailbox> &mb, service::EventLoop &loop,
			   CodecSession *self, Msg m);
	void drainMailbox();
	void deliverBitstreams();
	void maybeDrained();
	void stopEncoder();
	void releaseBuffers();
	EncoderSink makeSink();
	[[nodiscard]] uint8_t maxBuffers() const { return cfg_.caps.maxBuffers; }

	xen::Platform &dom0_;
	service::EventLoop &loop_;
	CodecSessionConfig cfg_;
	EncoderFactory factory_;
	Violation onViolation_;
	std::string label_;
	RateLimit openBudget_{ 5, 2 }; /* OPENs (each builds an encoder) a guest may make us do */

	/* Destroyed after the buffers (the destructor releases those first). */
	service::RingServer<CodecRingProtocol> ring_;
	uint16_t evtId_ = 0;

	std::shared_ptr<Mailbox> mailbox_ = std::make_shared<Mailbox>();
	std::unique_ptr<Encoder> encoder_;
	uint64_t encGen_ = 0;
	EncodeParams params_;
	RawLayout layout_;
	uint32_t outSize_ = 0;
	bool opened_ = false;
	bool encoderFailed_ = false;
	bool draining_ = false;
	bool drainDone_ = false; /* encoder drained; DRAINED once the backlog of bitstream is out */
	bool forceNext_ = false;
	uint64_t nextSeq_ = 0;
	uint64_t inputGen_ = 0;
	struct InFlight {
		uint64_t timestamp = 0; /* the guest's */
		uint64_t queuedNs = 0;	/* when QUEUE_RAW was accepted (CLOCK_MONOTONIC) */
	};
	std::map<uint64_t, InFlight> tsOf_; /* seq -> its frame */
	service::DeliveryWindow delivered_; /* bitstream rate and latency for --status */
	std::string format_;		     /* what the guest opened, for --status */
	std::vector<InBuf> in_;
	std::vector<OutBuf> out_;
	std::deque<unsigned> outQueue_;
	std::deque<Bitstream> pending_;
	size_t pagesInUse_ = 0;

	CodecStats stats_;
	uint64_t rawCopiedBefore_ = 0; /**< by encoders this session replaced */
};

} /* namespace xmb::vcodec */
