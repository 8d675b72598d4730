/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * One camera shared by the frontends configured to use it.
 *
 * Stream policy (docs/camera-service.md): the first frontend to configure
 * fixes format, size and rate until every frontend has released it; later
 * frontends must ask for exactly that (CONFIG_VALIDATE tells them what it
 * is).  Zero copy: the camera captures straight into the buffers of one
 * streaming frontend, the "leader" (its granted pages, mapped here, or
 * Dom0 pages granted to it in be-alloc mode).  Other streaming frontends
 * ("followers") get each frame copied into a buffer of theirs — Linux's
 * gntalloc cannot grant one page to several domains, so that copy is the
 * price of sharing on kernels without gntdev dma-buf; it is counted and
 * logged once.  In forced copy mode (benchmarks) or for sources that can
 * only fill their own buffers, every frontend gets a copy.  Guests granted
 * the camera's own buffers (DevicePool) stream in pool mode: the camera
 * fills those, alone or shared by guests that trust each other.
 */

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "bridge/service/device_pool.h"
#include "bridge/service/event_loop.h"
#include "bridge/service/stats.h"
#include "protocol/result.h"
#include "v4l2/camera_source.h"

namespace xmb::service {

/** What the hub needs from a frontend session. */
class HubClient
{
public:
	virtual ~HubClient() = default;
	[[nodiscard]] virtual std::string label() const = 0;
	/** Number of buffers the guest requested (BUF_REQUEST). */
	[[nodiscard]] virtual unsigned bufferCount() const = 0;
	/** Buffers the guest has queued, not yet given to the camera. */
	virtual std::vector<unsigned> queuedBuffers() = 0;
	/** Buffer \a index is queued by the guest: waiting for a frame. */
	[[nodiscard]] virtual bool isQueued(unsigned index) const = 0;
	/** The camera's own buffers granted to this guest (tier "device buffers granted"), or null. */
	[[nodiscard]] virtual std::shared_ptr<DevicePool> devicePool() const { return nullptr; }
	virtual CallerBuffer bufferMemory(unsigned index) = 0;
	/** The buffers are guest pages mapped here (not Dom0 pages granted out). */
	[[nodiscard]] virtual bool buffersAreForeign() const = 0;
	/**
	 * Every buffer also has a dma-buf of its pages (CallerBuffer::dmabufFd;
	 * exp_from_refs, Arm): the camera can import them instead of pinning
	 * user pages.
	 */
	[[nodiscard]] virtual bool buffersAreDmaBufs() const { return false; }
	/** The camera now owns / no longer owns buffer \a index. */
	virtual void setInCamera(unsigned index, bool inCamera) = 0;
	/** Buffer \a index holds a frame captured at \a captureNs (CLOCK_MONOTONIC, 0 unknown): tell the guest. */
	virtual void frameDone(unsigned index, uint32_t bytes, uint32_t seq, uint64_t copied, uint64_t captureNs) = 0;
	/** A queued buffer to copy a frame into (follower path), or false. */
	virtual bool takeBufferForCopy(unsigned &index) = 0;
	/** Take queued buffer \a index to copy a frame into; false if it is not queued. */
	virtual bool takeBuffer(unsigned index) = 0;
	/** A frame went by without a buffer of this client to put it in. */
	virtual void frameDropped() = 0;
	/** Another frontend changed a control. */
	virtual void controlChanged(uint8_t type, int64_t value) = 0;
	/** The camera failed: stop streaming, tell the guest. */
	virtual void cameraFailed(const std::string &why) = 0;
};

struct HubOptions {
	bool forceCopy = false;		   /**< benchmark: copy every frame */
	std::vector<uint32_t> allowedFormats; /**< empty: all the source has */
	/**
	 * The camera may capture into guest pages mapped here (USERPTR).
	 * Off on an x86 PV Dom0 for drivers that vmap USERPTR pages (see
	 * xen::ForeignMapSupport): such frontends then get copies.
	 */
	bool foreignUserPtr = true;
	std::string foreignDetail; /**< why not, for the log */
	/**
	 * Guests granted the camera's own buffers share one set of them
	 * (zero copy for all).  Only for guests that trust each other: the
	 * grants are writable, so each could change the frames the others
	 * read.  Off: each such guest has its own buffers, and two streaming
	 * guests get copies from Dom0 memory.
	 */
	bool shareDeviceBuffers = false;
};

class CameraHub
{
public:
	CameraHub(std::string name, std::unique_ptr<CameraSource> source, EventLoop &loop,
		  HubOptions options = {});
	~CameraHub();

	[[nodiscard]] const std::string &name() const { return name_; }
	CameraSource &source() { return *source_; }
	[[nodiscard]] std::vector<FormatEntry> formats();
	/** The device format asked for behind \a fourcc (formats = NV12M), 0: the source's choice. */
	[[nodiscard]] uint32_t preferredDeviceFourcc(uint32_t fourcc) const;

	/** Configure (or validate) for \a client; Error.code is a -XEN_E*-compatible errno. */
	Result<StreamConfig> configure(HubClient *client, uint32_t fourcc, uint32_t width,
				       uint32_t height, bool validateOnly);
	[[nodiscard]] const StreamConfig *current(const HubClient *client) const;
	Result<Fraction> setFrameInterval(HubClient *client, Fraction interval);
	void releaseConfig(HubClient *client);

	Status startStream(HubClient *client);
	void stopStream(HubClient *client);
	/** The guest queued buffer \a index: give it to the camera if \a client leads. */
	void bufferQueued(HubClient *client, unsigned index);
	/**
	 * The camera's own buffers for \a client (which holds the
	 * configuration): the shared set if sharing is on and one exists, else
	 * \a count new ones.  Allocated only while the camera is idle.
	 */
	Result<std::shared_ptr<DevicePool>> joinPool(HubClient *client, unsigned count);
	/** Register \a client (for control-change events) / forget it entirely (teardown). */
	void attach(HubClient *client) { clients_.insert(client); }
	void detach(HubClient *client);

	std::vector<CameraControlInfo> controls() { return source_->controls(); }
	int getControl(uint8_t type, int64_t &value) { return source_->getControl(type, value); }
	int setControl(HubClient *origin, uint8_t type, int64_t &value);

	[[nodiscard]] bool copyMode() const { return copyMode_; }
	[[nodiscard]] HubClient *leader() const { return leader_; }
	/** The leader's buffers reach the camera as dma-bufs (V4L2 DMABUF), not user pointers. */
	[[nodiscard]] bool leaderUsesDmaBuf() const { return leader_ && leaderDmaBuf_; }
	/** Whether guest buffers exported as dma-bufs would be used (the camera imports dma-bufs). */
	[[nodiscard]] bool importsDmaBufs() const;
	/** Streaming into granted device buffers: the pool the camera fills, or null. */
	[[nodiscard]] const DevicePool *streamPool() const { return running_ ? streamPool_.get() : nullptr; }

private:
	[[nodiscard]] bool isAllowed(uint32_t fourcc) const;
	void onSourceReady();
	void deliver(const CompletedFrame &frame);
	void deliverPool(const CompletedFrame &frame, uint32_t seq);
	bool takeCopyDestination(HubClient *c, unsigned &index);
	Status startSource();
	void stopSource();
	void pickLeaderAndRestart();
	[[nodiscard]] HubClient *pickLeader() const;
	[[nodiscard]] std::shared_ptr<DevicePool> pickPool() const;
	void queuePoolBuffer(unsigned index);
	[[nodiscard]] std::string copyReason() const;
	void failAll(const std::string &why);

	std::string name_;
	std::unique_ptr<CameraSource> source_;
	EventLoop &loop_;
	HubOptions options_;

	StreamConfig config_;
	bool configured_ = false;
	std::set<HubClient *> clients_;	  /* every attached frontend */
	std::set<HubClient *> holders_;	  /* clients holding the configuration */
	std::vector<HubClient *> streaming_; /* in start order */
	HubClient *leader_ = nullptr;
	bool copyMode_ = false;	/* this stream copies to everyone */
	bool running_ = false;

	/* Copy mode: the source's own buffers, mapped here. */
	struct OwnBuffer {
		UniqueFD fd;
		uint8_t *data = nullptr;
		size_t length = 0;
		std::shared_ptr<void> keep; /* set: Dom0 anonymous memory, queued as caller memory */
	};
	std::vector<OwnBuffer> own_;
	bool loggedCopy_ = false;
	/*
	 * The camera refused a guest's mapped pages (a dma-contig driver
	 * cannot capture into scattered pages): why, and from then on such
	 * guests get copies.
	 */
	std::string userPtrRefused_;
	/* The camera refused a guest buffer's dma-buf at QBUF: user pointers (or copies) from then on. */
	std::string dmabufRefused_;
	bool leaderDmaBuf_ = false; /* this stream queues the leader's dma-bufs */
	[[nodiscard]] bool refusesUserPtr(int err) const;

	/*
	 * Leader mode: Dom0 spare buffers after the leader's slots, queued only
	 * while the leader has none in the camera, so a slow (or stopped) leader
	 * does not starve the followers.
	 */
	struct Spare {
		uint8_t *data = nullptr;
		size_t length = 0;
		bool inCamera = false;
		std::shared_ptr<void> keep; /* the memory, unmapped with its last holder */
	};
	std::vector<Spare> spares_;
	unsigned leaderSlots_ = 0;
	unsigned leaderInCamera_ = 0;
	static constexpr unsigned kSpares = 1;
	void feedSpare();

	/* Pool mode: the camera fills the granted device buffers of every streaming guest. */
	std::shared_ptr<DevicePool> streamPool_;
	std::weak_ptr<DevicePool> sharedPool_; /* shareDeviceBuffers: the one set */

	/* Sequence numbers stay monotonic across source restarts (cameraif requires it). */
	uint32_t seqBase_ = 0;
	uint32_t nextSeq_ = 0;
};

} /* namespace xmb::service */
