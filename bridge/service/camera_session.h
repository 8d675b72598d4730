/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * One connected vcamera frontend: its rings, event channels, buffers and
 * cameraif request handling.  Everything the guest sends is copied out of
 * the ring once, decoded, then checked against this session's state.
 */

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "protocol/base/log.h"
#include "protocol/base/monotonic.h"
#include "bridge/platform/platform.h"
#include "bridge/service/camera_hub.h"
#include "bridge/service/delivery_window.h"
#include "bridge/service/ring_server.h"
#include "bridge/service/stats.h"
#include "bridge/service/xenbus_backend.h"
#include "protocol/cameraif.h"
#include "protocol/xenstore_schema.h"

namespace xmb::service {

/** cameraif for the shared RingServer. */
using CameraRingProtocol =
	RingProtocol<proto::CameraBackRing, xencamera_req, proto::CameraRequest, xencamera_resp,
		     proto::EventPageWriter, xencamera_evt, &proto::decodeCameraRequest, &proto::makeCameraResponse>;

struct SessionConfig {
	xen::DomId frontend = 0;
	unsigned devid = 0;
	uint8_t maxBuffers = 4;
	bool beAlloc = false;
	size_t maxPages = 65536;	/**< guest pages mapped or granted at once */
	std::vector<uint8_t> controls; /**< cameraif control types offered */
	/** Answered by CONFIG_GET/BUF_GET_LAYOUT before any CONFIG_SET (V4L2's
	 * G_FMT comes first): the first published format and resolution. */
	uint32_t defaultFourcc = 0, defaultWidth = 0, defaultHeight = 0;
};

class CameraSession final : public HubClient, public BackendSession
{
public:
	using Violation = std::function<void(CameraSession *, const std::string &)>;

	CameraSession(xen::Platform &dom0, EventLoop &loop, CameraHub &hub, SessionConfig config,
		      Violation onViolation);
	~CameraSession() override;
	CameraSession(const CameraSession &) = delete;
	CameraSession &operator=(const CameraSession &) = delete;

	/** Map the rings and bind the channels the frontend published. */
	Status connect(const proto::VcameraTransport &transport);

	[[nodiscard]] xen::Port requestPort() const override { return ring_.requestPort(); }
	[[nodiscard]] xen::Port eventPort() const override { return ring_.eventPort(); }
	/** The request channel fired: serve the ring, then unmask. */
	void onRequestNotify() override { ring_.onRequestNotify(); }
	/** The event channel fired (the guest consumed events): unmask. */
	void onEventNotify() override { ring_.onEventNotify(); }

	[[nodiscard]] SessionStats stats() const
	{
		SessionStats s = stats_;
		s.requests = ring_.requests();
		s.stormDelays = ring_.stormDelays();
		const uint64_t now = monotonicNs();
		s.fpsMilli = delivered_.fpsMilli(now);
		s.latencyP50Us = delivered_.latencyUs(50);
		s.latencyP99Us = delivered_.latencyUs(99);
		return s;
	}
	[[nodiscard]] const char *tier() const;
	/** What the guest streams (or would): its configuration, or null before CONFIG_SET. */
	[[nodiscard]] const StreamConfig *format() const { return configured_ ? hub_.current(this) : nullptr; }

	/* HubClient */
	[[nodiscard]] std::string label() const override { return label_; }
	[[nodiscard]] unsigned bufferCount() const override { return numBufs_; }
	std::vector<unsigned> queuedBuffers() override;
	[[nodiscard]] bool isQueued(unsigned index) const override
	{
		return index < bufs_.size() && bufs_[index].created && bufs_[index].state == BufState::Queued;
	}
	[[nodiscard]] std::shared_ptr<DevicePool> devicePool() const override { return pool_; }
	bool takeBuffer(unsigned index) override;
	CallerBuffer bufferMemory(unsigned index) override;
	[[nodiscard]] bool buffersAreForeign() const override { return !cfg_.beAlloc; }
	[[nodiscard]] bool buffersAreDmaBufs() const override;
	void setInCamera(unsigned index, bool inCamera) override;
	void frameDone(unsigned index, uint32_t bytes, uint32_t seq, uint64_t copied, uint64_t captureNs) override;
	bool takeBufferForCopy(unsigned &index) override;
	void frameDropped() override { stats_.drops++; }
	void controlChanged(uint8_t type, int64_t value) override;
	void cameraFailed(const std::string &why) override;

private:
	enum class BufState { Frontend, Queued, InCamera };
	struct Buffer {
		bool created = false;
		BufState state = BufState::Frontend;
		/* Shared: a Dom0 pipeline may still hold the memory after the guest's buffer goes. */
		std::shared_ptr<xen::GrantMapping> mapping; /* frontend-allocated pages, mapped here */
		std::shared_ptr<xen::GrantShare> share;     /* be-alloc: Dom0 pages granted to the guest */
		std::shared_ptr<xen::DmaBufGrant> grant;    /* be-alloc: a device buffer granted (pool_) */
		/* Frontend-allocated, where Dom0's kernel exports refs (Arm): the same pages as a dma-buf. */
		std::shared_ptr<xen::ForeignDmaBuf> dmabuf;
		uint8_t *data = nullptr; /* the frame: plane 0 (a sub-page offset into the pages) */
		size_t size = 0;
		size_t pages = 0;        /* mapped or granted */
	};

	xencamera_resp handle(const proto::CameraRequest &req);
	Result<StreamConfig> currentOrDefault();
	int32_t opConfig(const proto::CameraRequest &req, xencamera_resp &resp);
	int32_t opBufRequest(uint8_t n, xencamera_resp &resp);
	int32_t opBufCreate(const proto::CameraRequest::BufCreate &bc);
	void exportAsDmaBuf(Buffer &b, unsigned index, uint32_t start, std::span<const xen::Gref> refs);
	int32_t grantDeviceBuffer(Buffer &b, unsigned index, uint32_t start,
				  std::span<xen::GrantMapping> dirPages);
	void joinDevicePool(unsigned count);
	int32_t opBufDestroy(uint8_t index);
	int32_t opBufQueue(uint8_t index);
	int32_t opBufDequeue(uint8_t index);
	int32_t opCtrlEnum(uint8_t index, xencamera_resp &resp);
	int32_t opStreamStart();
	void opStreamStop();
	unsigned createdExtent() const;
	std::optional<uint32_t> dataOffset(const proto::CameraRequest::BufCreate &bc) const;
	Result<std::vector<xen::Gref>> walkDirectory(xen::Gref first, uint64_t bytes, bool collect,
						      std::vector<xen::GrantMapping> *keep);
	void fillConfig(const StreamConfig &c, xencamera_resp &resp) const;
	bool controlOffered(uint8_t type) const;
	void releaseBuffers();

	xen::Platform &dom0_;
	CameraHub &hub_;
	SessionConfig cfg_;
	Violation onViolation_;
	std::string label_;
	RateLimit guestLogLimit_{ 5, 1 }; /* lines a guest's requests can make us log */
	RateLimit ctrlBudget_{ 20, 10 };  /* CTRL_SETs a guest may make us apply */
	RateLimit requestLogLimit_{ 20, 5 }; /* debug lines about refused requests */

	/* Destroyed after the buffers (the destructor releases those first). */
	RingServer<CameraRingProtocol> ring_;
	uint16_t evtId_ = 0;

	bool configured_ = false;
	FrameLayout layout_;
	bool streaming_ = false;
	unsigned numBufs_ = 0;
	std::vector<Buffer> bufs_;
	std::deque<unsigned> queue_;
	/* be-alloc with gntdev dma-buf import: the camera's own buffers (tier "device buffers granted"). */
	std::shared_ptr<DevicePool> pool_;
	bool loggedPoolFallback_ = false;
	size_t pagesInUse_ = 0;

	SessionStats stats_;
	DeliveryWindow delivered_; /* rate and latency for --status */
};

/** Map an errno to the cameraif -XEN_E* status. */
int32_t xenStatus(int err);

} /* namespace xmb::service */
