/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Guest side of the para-virtual camera (<xen/io/cameraif.h>): one vcamera
 * device of this domain, connected to its Dom0 backend.
 *
 *   auto fe = CameraFrontend(platform);
 *   fe.connect(0);                          // XenBus handshake
 *   fe.configSet(NV12, 640, 480);           // and the other requests
 *   fe.getLayout(); fe.allocateBuffers(4);  // frontend- or backend-allocated
 *   for (i...) fe.bufQueue(i);
 *   fe.streamStart();
 *   auto f = fe.waitFrame();  fe.bufferData(f->index) ... fe.bufQueue(f->index);
 *   fe.disconnect();                        // or let the destructor do it
 *
 * Requests are synchronous (one in flight, answered within a timeout);
 * waiting is poll(2) on the event-channel and XenStore fds, never a sleep.
 * A caller with its own event loop polls fds() and calls processEvents()
 * when one is readable, then takeFrame()/takeControlChanges().
 *
 * Everything that comes from Dom0 is checked: response ids and operations,
 * ring and event-page indices, buffer indices and sizes in FRAME_AVAIL,
 * the gref directory the backend fills in be-alloc mode.  A ring that
 * claims impossible indices, or a backend that leaves (state Closing/
 * Closed or its directory gone), breaks the connection: every later call
 * fails with an Error saying why.
 *
 * One CameraFrontend per Platform: it consumes the platform's event-channel
 * handle and XenStore watch queue.  Not thread-safe.
 */

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "bridge/platform/guest_connection.h"
#include "bridge/platform/platform.h"
#include "protocol/cameraif.h"
#include "protocol/result.h"
#include "protocol/xenstore_schema.h"

namespace xmb::frontend {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using Millis = std::chrono::milliseconds;

constexpr Millis kDefaultTimeout = 5s;

/** One vcamera device of this domain, as the toolstack described it. */
struct DeviceInfo {
	uint32_t devid = 0;
	xen::DomId backendId = 0;
	std::string frontendPath;
	std::string backendPath;
	int frontendState = 0; /* XenbusState, 0 if unreadable */
	int backendState = 0;
	proto::VcameraConfig config;
};

/** CONFIG_SET/VALIDATE/GET response. */
struct CameraConfig {
	uint32_t fourcc = 0;
	uint32_t width = 0;
	uint32_t height = 0;
	uint32_t colorspace = 0;
	uint32_t xferFunc = 0;
	uint32_t ycbcrEnc = 0;
	uint32_t quantization = 0;
	proto::Fraction aspect;    /* display aspect ratio */
	proto::Fraction frameRate; /* frames per second = num/den */
};

/** BUF_GET_LAYOUT response (validated: planes within size). */
struct BufferLayout {
	uint8_t numPlanes = 0;
	uint32_t size = 0;
	std::array<uint32_t, XENCAMERA_MAX_PLANE> planeSize{};
	std::array<uint32_t, XENCAMERA_MAX_PLANE> planeStride{};
	/** Offset of plane \a p in our buffers (cumulative plane sizes). */
	[[nodiscard]] uint32_t planeOffset(unsigned p) const;
};

/** CTRL_ENUM response. */
struct ControlInfo {
	uint8_t index = 0;
	uint8_t type = 0;
	uint32_t flags = 0;
	int64_t min = 0, max = 0, step = 0, defaultValue = 0;
};

/** CTRL_CHANGE event. */
struct ControlChange {
	uint8_t type = 0;
	int64_t value = 0;
};

/**
 * A captured frame: buffer \a index holds it and is ours until re-queued.
 * Announced by FRAME_AVAIL and handed out only after the backend answered
 * our BUF_DEQUEUE for it (cameraif: the buffer may not be touched before).
 */
struct Frame {
	uint8_t index = 0;
	uint32_t usedSize = 0;
	uint32_t seq = 0;
	Clock::time_point arrival;
};

struct Stats {
	uint64_t frames = 0;          /* frames handed out (announced and dequeued) */
	uint64_t drops = 0;           /* frames missing from seq_num gaps */
	uint64_t superseded = 0;      /* announced frames overwritten before our dequeue */
	uint64_t protocolErrors = 0;  /* bad events/responses ignored */
	uint64_t controlChanges = 0;
	uint64_t requests = 0;
	double fps = 0;               /* over the last second or so */
	double avgRequestMs = 0;      /* request -> response round trip */
	double maxRequestMs = 0;
	double avgFrameIntervalMs = 0;
};

class CameraFrontend
{
public:
	/** \a platform must outlive this object. */
	explicit CameraFrontend(xen::Platform &platform);
	~CameraFrontend();
	CameraFrontend(const CameraFrontend &) = delete;
	CameraFrontend &operator=(const CameraFrontend &) = delete;

	/** vcamera devices of this domain (device/vcamera/<id>), with parsed config. */
	static Result<std::vector<DeviceInfo>> discover(xen::Platform &platform);
	/** One device; errors name the key that is missing or malformed. */
	static Result<DeviceInfo> describe(xen::Platform &platform, uint32_t devid);

	/**
	 * XenBus handshake with device \a devid: wait for the backend's InitWait,
	 * publish ring, event page and channels, go Initialised, wait for
	 * Connected, go Connected.
	 */
	Status connect(uint32_t devid, Millis timeout = kDefaultTimeout);
	/** Stop, destroy buffers, Closing, release ring and ports, Closed.  Idempotent. */
	void disconnect(Millis timeout = 2s);
	[[nodiscard]] bool connected() const { return connected_; }
	/** Why the connection is unusable (backend gone, ring overflow), if it is. */
	[[nodiscard]] const std::optional<Error> &broken() const { return conn_.broken(); }
	[[nodiscard]] const DeviceInfo &device() const { return dev_; }

	void setTimeout(Millis t) { timeout_ = t; }
	[[nodiscard]] Millis timeout() const { return timeout_; }
	/**
	 * From any thread: make a wait in connect() (for the device's nodes or the
	 * backend's state) or a request return -EINTR at once, and every later one
	 * until clearInterrupt() (GstBaseSrc unlock / unlock_stop).
	 */
	void interrupt() { conn_.interrupt(); }
	void clearInterrupt() { conn_.clearInterrupt(); }

	/* ---- the 15 requests; Error.code is the backend's -XEN_E* status ---- */
	Result<CameraConfig> configSet(uint32_t fourcc, uint32_t width, uint32_t height);
	Result<CameraConfig> configValidate(uint32_t fourcc, uint32_t width, uint32_t height);
	Result<CameraConfig> configGet();
	Status frameRateSet(uint32_t num, uint32_t den);
	Result<BufferLayout> getLayout();
	/** \return the number of buffers the backend grants (may be fewer). */
	Result<uint8_t> bufRequest(uint8_t numBufs);
	/** Allocate/share (or map, be-alloc) buffer \a index; needs getLayout + bufRequest. */
	Status bufCreate(uint8_t index);
	Status bufDestroy(uint8_t index);
	/**
	 * Give buffer \a index back to the backend.  Before STREAM_START it is a
	 * request answered before this returns.  While streaming it returns at
	 * once: the request goes out with the next BUF_DEQUEUE (one notification,
	 * one backend wake-up for both) unless fewer than two buffers would be
	 * left with the backend, then at once; any other request sends it first.
	 * A refusal then counts as a protocol error and the buffer is ours again.
	 */
	Status bufQueue(uint8_t index);
	/** Buffers given back while streaming and held for the next BUF_DEQUEUE. */
	[[nodiscard]] bool holdsBack() const { return !queueBacklog_.empty(); }
	/** Send them now (a caller with its own poll loop: when no frame came for a while). */
	void sendHeldBack();
	Status bufDequeue(uint8_t index);
	/** -XEN_EINVAL past the last control. */
	Result<ControlInfo> ctrlEnum(uint8_t index);
	Status ctrlSet(uint8_t type, int64_t value);
	Result<int64_t> ctrlGet(uint8_t type);
	Status streamStart();
	Status streamStop();

	/* ---- helpers ---- */
	/** All controls (CTRL_ENUM 0.. until -XEN_EINVAL). */
	Result<std::vector<ControlInfo>> ctrlEnumAll();
	/** getLayout (if not done) + bufRequest(n) + bufCreate each; \return the count. */
	Result<uint8_t> allocateBuffers(uint8_t n);
	/** Destroy every created buffer, then BUF_REQUEST 0. */
	Status freeBuffers();
	/** Queue every created buffer we own. */
	Status queueAll();

	[[nodiscard]] uint8_t numBuffers() const { return numBufs_; }
	[[nodiscard]] const std::optional<BufferLayout> &layout() const { return layout_; }
	[[nodiscard]] const std::optional<CameraConfig> &config() const { return config_; }
	[[nodiscard]] bool streaming() const { return streaming_; }
	/** Buffer memory (layout size bytes); empty if \a index is not created. */
	[[nodiscard]] std::span<const uint8_t> bufferData(uint8_t index) const;

	/** Next frame (waits up to \a timeout; kDefaultTimeout if negative). */
	Result<Frame> waitFrame(Millis timeout = Millis(-1));
	/** A frame already received, without waiting. */
	std::optional<Frame> takeFrame();
	std::vector<ControlChange> takeControlChanges();

	/* ---- external event loop ---- */
	/** fds to poll for POLLIN: event channels, XenStore watches. */
	[[nodiscard]] std::vector<int> fds() const;
	/** Non-blocking: handle what arrived (responses, events, backend state). */
	Status processEvents();

	[[nodiscard]] Stats stats() const;

private:
	/*
	 * Queued: the backend's.  Dequeuing: announced by FRAME_AVAIL, our
	 * BUF_DEQUEUE sent, not to be read until its answer (a backend may
	 * still be writing it).  Owned: ours to read and queue again.
	 */
	enum class BufState { None, Owned, Queued, Dequeuing };
	struct Buffer {
		BufState state = BufState::None;
		xen::GrantShare data;     /* frontend-allocated pages */
		xen::GrantShare dir;      /* gref directory pages */
		xen::GrantMapping mapped; /* be-alloc: backend's pages */
		Frame announced;          /* Dequeuing: the latest FRAME_AVAIL for it */
		[[nodiscard]] const uint8_t *bytes() const;
	};

	Result<xencamera_resp> call(xencamera_req req, const char *what);
	Status waitUntil(const std::function<bool()> &done, Clock::time_point deadline,
			 const std::string &what);
	Status checkUsable(const char *what) const;
	void handleResponse(const xencamera_resp &resp);
	void handleEvent(const xencamera_evt &evt);
	void drainEvents();
	void sendDequeue(uint8_t index);
	void flushDequeues();
	bool pushIndexRequests(uint8_t op, std::deque<uint8_t> &backlog, std::map<uint16_t, uint8_t> &inFlight,
			       size_t maxInFlight);
	bool pushQueued();
	[[nodiscard]] size_t queuedAtBackend() const;
	void finishDequeue(uint8_t index, int32_t status);
	void deliverFrame(const Frame &f);
	uint16_t takeRequestId();
	void protocolError(const std::string &msg);
	void releaseTransport();
	Result<CameraConfig> configCall(uint8_t op, uint32_t fourcc, uint32_t w, uint32_t h);
	Status mapBeAllocBuffer(Buffer &buf);
	void releaseBuffer(Buffer &buf);
	static xencamera_req makeRequest(uint8_t op);

	xen::Platform &pf_;
	DeviceInfo dev_;
	Millis timeout_ = kDefaultTimeout;
	bool connected_ = false;
	/* The xenbus handshake, shared pages and channels (the same for every protocol). */
	xen::GuestConnection conn_;
	proto::CameraFrontRing ring_;
	proto::EventPageReader events_;

	uint16_t nextId_ = 0;
	std::optional<uint16_t> waitingId_;
	std::optional<xencamera_resp> response_;
	std::set<uint16_t> abandoned_; /* timed-out ids whose answer we drop */
	std::map<uint16_t, uint8_t> dequeues_; /* BUF_DEQUEUE in flight: id -> index */
	std::deque<uint8_t> dequeueBacklog_;   /* announced, not sent yet (ring busy) */
	std::map<uint16_t, uint8_t> queues_;   /* BUF_QUEUE in flight while streaming: id -> index */
	std::deque<uint8_t> queueBacklog_;     /* given back while streaming, not sent yet */

	std::optional<CameraConfig> config_;
	std::optional<BufferLayout> layout_;
	uint8_t numBufs_ = 0;
	std::vector<Buffer> buffers_;
	bool streaming_ = false;

	std::deque<Frame> frames_;
	std::vector<ControlChange> ctrlChanges_;
	std::optional<uint32_t> lastSeq_;

	/* stats */
	Stats stats_;
	double requestMsTotal_ = 0;
	uint64_t answeredRequests_ = 0;
	double frameIntervalMsTotal_ = 0;
	uint64_t frameIntervals_ = 0;
	std::optional<Clock::time_point> lastFrameAt_;
	Clock::time_point fpsWindowStart_ = Clock::now();
	uint64_t fpsWindowFrames_ = 0;
	double fps_ = 0;
};

/** XenbusState names for messages ("InitWait"). */
using xen::xenbusStateName;

} /* namespace xmb::frontend */
