/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A hand-made cameraif backend on a LoopbackXen Dom0, in a thread: the
 * toolstack's XenStore layout, the XenBus handshake, every request, and
 * test-pattern frames.  Small and literal on purpose: it checks the
 * frontend against the protocol text, not against the real service.
 * Knobs let tests make it misbehave.
 */

#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <linux/videodev2.h>

#include "bridge/platform/loopback/loopback_xen.h"
#include "protocol/cameraif.h"
#include "protocol/xenstore_schema.h"

namespace xmb::frontend::test {

struct FakeBackendOptions {
	xen::DomId frontend = 1;
	uint32_t devid = 0;
	bool beAlloc = false;
	uint8_t maxBuffers = 4;
	uint32_t fourcc = V4L2_PIX_FMT_NV12;
	uint32_t width = 64;
	uint32_t height = 48;
	unsigned frameIntervalMs = 2;
	/* EPAM's camera_be and libxl write no backend "versions" node. */
	bool writeVersions = true;
	/*
	 * Queue semantics of EPAM's camera_be (the reference backend): a
	 * FRAME_AVAIL does not take the buffer off the queue; the head keeps
	 * receiving every frame until the frontend's BUF_DEQUEUE removes it;
	 * a buffer may be queued twice; the gref directory is mapped writable.
	 */
	bool referenceQueue = false;
};

class FakeBackend
{
public:
	FakeBackend(xen::Platform &dom0, FakeBackendOptions opts);
	~FakeBackend();

	/** Toolstack part: frontend + backend directories, backend InitWait. */
	void publish();
	void start();
	void stop();

	/* ---- knobs (set from the test thread) ---- */
	std::atomic<bool> ignoreRequests{ false }; /* never answer */
	std::atomic<uint32_t> dropEvery{ 0 };      /* skip a seq every N frames */
	std::atomic<bool> badIndexOnce{ false };   /* one FRAME_AVAIL with index 200 */
	std::atomic<bool> bigUsedOnce{ false };    /* one FRAME_AVAIL with huge used_sz */
	std::atomic<bool> corruptRspProd{ false }; /* claim 100 responses next time */
	std::atomic<bool> emptyBeAllocDirectory{ false }; /* answer BUF_CREATE, write no refs */
	void injectCtrlChange(uint8_t type, int64_t value);
	/** Write our state node (e.g. Closed, to simulate the backend going away). */
	void setState(int state);

	/* ---- observations ---- */
	std::atomic<int> connects{ 0 };
	std::atomic<int> closes{ 0 };
	std::atomic<int> framesSent{ 0 };
	std::atomic<int> dequeues{ 0 };
	std::atomic<int> buffersCreated{ 0 };
	std::atomic<int> buffersDestroyed{ 0 };
	std::atomic<int> requests{ 0 };
	/* wake-ups whose requests held both a BUF_QUEUE and a BUF_DEQUEUE */
	std::atomic<int> queueDequeueBatches{ 0 };
	[[nodiscard]] size_t liveMappings() const;

	proto::VcameraPaths paths;

private:
	struct Buffer {
		xen::GrantMapping data;  /* frontend-allocated */
		xen::GrantShare shared;  /* be-alloc */
		uint8_t *bytes = nullptr;
	};

	void run();
	void onFrontendState();
	void connectRing();
	void closeRing();
	void serveRequests();
	xencamera_resp handle(const xencamera_req &raw);
	int createBuffer(const proto::CameraRequest::BufCreate &c);
	void produceFrame();
	void sendEvent(const xencamera_evt &e);

	xen::Platform &dom0_;
	FakeBackendOptions opts_;
	std::thread thread_;
	std::atomic<bool> stop_{ false };

	xen::GrantMapping ringMap_, evtMap_;
	proto::CameraBackRing ring_;
	proto::EventPageWriter events_;
	xen::EventPort reqPort_, evtPort_;
	bool connected_ = false;

	uint32_t fourcc_, width_, height_;
	uint32_t rateNum_ = 30, rateDen_ = 1;
	uint8_t numBufs_ = 0;
	std::map<uint8_t, Buffer> buffers_;
	std::deque<uint8_t> queue_;
	bool streaming_ = false;
	uint32_t seq_ = 0;
	uint32_t sent_ = 0;
	int64_t ctrl_[2] = { 0, 50 };
	std::chrono::steady_clock::time_point nextFrame_;

	mutable std::mutex lock_;
	std::vector<std::pair<uint8_t, int64_t>> pendingCtrl_;
};

} /* namespace xmb::frontend::test */
