/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Guest side of vcodec: one vcodec device of this domain, connected to its
 * Dom0 backend.
 *
 *   CodecFrontend fe(platform);
 *   fe.connect(0);                              // XenBus handshake
 *   fe.open(cfg); fe.getLayout();
 *   fe.createBuffers(4, 4);                     // INPUT and OUTPUT sets, granted to Dom0
 *   write a frame into fe.inputData(i); fe.queueRaw(i, ts);
 *   fe.queueOut(j) ...; auto ev = fe.waitEvent();   // INPUT_DONE / BITSTREAM_READY / ...
 *   fe.drain(); ... EVT_DRAINED;  fe.disconnect();
 *
 * Requests are synchronous (one in flight, answered within a timeout);
 * events are queued and returned by waitEvent()/takeEvent().  Everything
 * from Dom0 is checked (ids, ring/event indices, buffer indices, sizes).
 * One CodecFrontend per Platform.  Not thread-safe, but for interrupt() and
 * clearInterrupt(), which any thread may call.
 */

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "protocol/base/unique_fd.h"
#include "bridge/platform/guest_connection.h"
#include "bridge/platform/platform.h"
#include "protocol/result.h"
#include "protocol/vcodec.h"
#include "protocol/vcodec_schema.h"

namespace xmb::vcodec {

using Clock = std::chrono::steady_clock;
using Millis = std::chrono::milliseconds;

struct CodecLayout {
	uint32_t rawSize = 0;
	uint32_t outSize = 0;
	uint8_t numPlanes = 0;
	uint8_t minBuffers = 0;
	uint8_t maxBuffers = 0;
	uint32_t planeOffset[XENVCODEC_MAX_PLANE] = {};
	uint32_t planeStride[XENVCODEC_MAX_PLANE] = {};
};

struct CodecEvent {
	uint8_t type = 0; /* XENVCODEC_EVT_* */
	uint8_t index = 0;
	bool key = false;
	uint32_t bytesUsed = 0;
	uint64_t timestamp = 0;
	uint32_t seq = 0;
	int32_t status = 0;
};

struct FrontendStats {
	uint64_t requests = 0;
	uint64_t protocolErrors = 0;
	double avgRequestUs = 0;
};

class CodecFrontend
{
public:
	explicit CodecFrontend(xen::Platform &platform);
	~CodecFrontend();
	CodecFrontend(const CodecFrontend &) = delete;
	CodecFrontend &operator=(const CodecFrontend &) = delete;

	/** The capabilities Dom0 published for device \a devid. */
	static Result<proto::VcodecConfig> describe(xen::Platform &platform, uint32_t devid);

	Status connect(uint32_t devid, Millis timeout = Millis(5000));
	void disconnect(Millis timeout = Millis(2000));
	[[nodiscard]] bool connected() const { return connected_; }
	[[nodiscard]] const std::optional<Error> &broken() const { return conn_.broken(); }
	[[nodiscard]] const proto::VcodecConfig &caps() const { return caps_; }
	void setTimeout(Millis t) { timeout_ = t; }
	/**
	 * From any thread: make a wait in connect(), a request or waitEvent()
	 * return -EINTR at once, and every later one until clearInterrupt()
	 * (GstBaseSink unlock / unlock_stop).
	 */
	void interrupt();
	void clearInterrupt();
	/**
	 * Also give up a wait when \a cancelled() holds: asked when a wait
	 * begins and whenever it wakes, never on a timer (e.g. "the element's
	 * pad is flushing", which outlives the unlock/unlock_stop pair a wait
	 * begun late could miss; a wait under way is ended by interrupt()).
	 */
	void setCancelCheck(std::function<bool()> cancelled) { conn_.setCancelCheck(std::move(cancelled)); }

	/* ---- requests; Error.code is the backend's -XEN_E* status ---- */
	Result<xenvcodec_config> open(const xenvcodec_config &config);
	Result<CodecLayout> getLayout();
	/**
	 * Allocate, grant (INPUT read-only, OUTPUT writable) and BUF_CREATE; with
	 * a be-alloc backend, BUF_CREATE and map the pages Dom0 granted.
	 */
	Status createBuffer(uint8_t type, uint8_t index);
	Status createBuffers(uint8_t numInput, uint8_t numOutput);
	Status destroyBuffer(uint8_t type, uint8_t index);
	Status queueRaw(uint8_t index, uint64_t timestamp, uint8_t flags = 0);
	Status queueOut(uint8_t index);
	Status forceKeyFrame();
	Status setBitrate(uint32_t bitsPerSecond);
	Status drain();
	Status stop();
	/** Send a hand-made request (tests: hostile requests). */
	Result<xenvcodec_resp> call(xenvcodec_req req);

	/** Raw frame memory of INPUT buffer \a index (layout rawSize bytes). */
	[[nodiscard]] std::span<uint8_t> inputData(uint8_t index);
	/** Bitstream memory of OUTPUT buffer \a index (outSize bytes). */
	[[nodiscard]] std::span<const uint8_t> outputData(uint8_t index) const;
	/** Grant refs of a buffer's data pages (tests). */
	[[nodiscard]] std::vector<xen::Gref> bufferRefs(uint8_t type, uint8_t index) const;
	[[nodiscard]] const std::optional<CodecLayout> &layout() const { return layout_; }

	Result<CodecEvent> waitEvent(Millis timeout = Millis(-1));
	std::optional<CodecEvent> takeEvent();

	[[nodiscard]] std::vector<int> fds() const;
	Status processEvents();
	[[nodiscard]] FrontendStats stats() const { return stats_; }

private:
	struct Buffer {
		bool created = false;
		bool queued = false;
		xen::GrantShare data;	 /* our pages (frontend-allocated) */
		xen::GrantMapping mapped; /* be-alloc: Dom0's pages, mapped here */
		xen::GrantShare dir;
		[[nodiscard]] uint8_t *memory() const { return mapped ? mapped.data() : data.data(); }
	};
	Result<xenvcodec_resp> request(xenvcodec_req req, const char *what);
	Status waitUntil(const std::function<bool()> &done, Clock::time_point deadline,
			 const std::string &what);
	void handleEvent(const xenvcodec_evt &evt);
	void protocolError(const std::string &msg);
	void releaseTransport();

	xen::Platform &pf_;
	uint32_t devid_ = 0;
	proto::VcodecConfig caps_;
	Millis timeout_ = Millis(5000);
	bool connected_ = false;
	/* The xenbus handshake, shared pages and channels (the same for every protocol). */
	xen::GuestConnection conn_;
	proto::CodecFrontRing ring_;
	proto::CodecEventReader events_;
	uint16_t nextId_ = 0;
	std::optional<uint16_t> waitingId_;
	std::optional<xenvcodec_resp> response_;

	std::optional<CodecLayout> layout_;
	std::vector<Buffer> in_, out_;
	std::deque<CodecEvent> evq_;
	FrontendStats stats_;
	double requestUsTotal_ = 0;
};

} /* namespace xmb::vcodec */
