/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The Dom0 vcodec service: toolstack part (device nodes, capabilities),
 * xenbus state machine per device from XenStore watches, one CodecSession
 * per connected frontend, all on one EventLoop.  Same rules as the camera
 * service: a misbehaving frontend is closed alone; @releaseDomain releases
 * a dead guest's sessions, encoder frames and mappings at once.
 */

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "protocol/base/log.h"
#include "bridge/platform/platform.h"
#include "bridge/service/event_loop.h"
#include "bridge/service/xenbus_backend.h"
#include "bridge/vcodec/codec_session.h"

namespace xmb::vcodec {

struct CodecGuest {
	std::string name;		/**< for logs */
	std::optional<xen::DomId> domid; /**< or domainName */
	std::string domainName;
	unsigned device = 0;
	uint8_t maxBuffers = 8;	       /**< per buffer set, 1..32 */
	size_t maxPages = 16384;       /**< guest pages mapped at once (64 MiB) */
	uint32_t maxWidth = 4096, maxHeight = 4096;
	uint32_t maxBitrate = 100000000;
	std::vector<uint32_t> codecs;  /**< allow-list (XENVCODEC_CODEC_*), empty: all */
	bool beAlloc = false;	       /**< Dom0 allocates the buffers and grants them (published be-alloc) */
};

struct CodecServiceConfig {
	std::vector<CodecGuest> guests;
	/**
	 * The encoder takes raw frames as dma-bufs (a V4L2 device): where Dom0
	 * can export a guest's refs (exp_from_refs: Arm), frontend-allocated
	 * guests are told input-dmabuf (grant INPUT writable) and their frames
	 * reach the device as dma-bufs of their pages.
	 */
	bool importGuestFrames = false;
};

/** Parse "name=g1,domid=1,device=0,max-buffers=8,max-pages=16384,codecs=vp8:jpeg,be-alloc=yes" (CLI). */
Result<CodecGuest> parseGuestSpec(const std::string &spec);

struct CodecDeviceReport {
	std::string label;
	bool connected = false;
	uint64_t connects = 0; /**< sessions set up for this device so far */
	std::string encoder;
	std::string format; /**< what the guest opened ("vp8 640x480 30/1 fps from YU12"); else empty */
	CodecStats stats;
};

class CodecService final : private service::XenbusDriver
{
public:
	/** \a codecs: what the encoders can do (probeGstCodecs() for the software ones). */
	CodecService(xen::Platform &dom0, service::EventLoop &loop, std::vector<proto::CodecCaps> codecs,
		     EncoderFactory factory = gstEncoderFactory());
	~CodecService() override;

	Status start(const CodecServiceConfig &config);
	void stop();
	std::vector<CodecDeviceReport> report() const;
	[[nodiscard]] size_t connected() const { return backend_.connected(); }

private:
	/* A vcodec device: the xenbus part is shared (service::XenbusBackend). */
	struct Device final : service::XenbusDevice {
		CodecGuest guest;
		proto::VcodecConfig published;
	};
	static Device &of(service::XenbusDevice &d) { return static_cast<Device &>(d); }

	proto::VcodecConfig publishedConfig(const CodecGuest &g) const;
	bool importGuestFrames_ = false;

	/* XenbusDriver */
	Status createNodes(service::XenbusDevice &d) override;
	Result<std::unique_ptr<service::BackendSession>> connect(service::XenbusDevice &d) override;
	void closing(service::XenbusDevice &d, const char *why) override;

	xen::Platform &dom0_;
	service::EventLoop &loop_;
	std::vector<proto::CodecCaps> codecs_;
	EncoderFactory factory_;
	service::XenbusBackend backend_;
};

} /* namespace xmb::vcodec */
