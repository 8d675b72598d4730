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

#include "bridge/base/log.h"
#include "bridge/platform/platform.h"
#include "bridge/service/event_loop.h"
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
};

struct CodecServiceConfig {
	std::vector<CodecGuest> guests;
};

/** Parse "name=g1,domid=1,device=0,max-buffers=8,max-pages=16384,codecs=vp8:jpeg" (CLI). */
Result<CodecGuest> parseGuestSpec(const std::string &spec);

struct CodecDeviceReport {
	std::string label;
	bool connected = false;
	std::string encoder;
	CodecStats stats;
};

class CodecService
{
public:
	/** \a codecs: what the encoders can do (probeGstCodecs() for the software ones). */
	CodecService(xen::Platform &dom0, service::EventLoop &loop, std::vector<proto::CodecCaps> codecs,
		     EncoderFactory factory = gstEncoderFactory());
	~CodecService();

	Status start(const CodecServiceConfig &config);
	void stop();
	std::vector<CodecDeviceReport> report() const;
	[[nodiscard]] size_t connected() const;

private:
	struct Device {
		CodecGuest guest;
		xen::DomId frontend = 0;
		bool attached = false;
		proto::VcodecConfig published;
		std::unique_ptr<CodecSession> session;
		std::string fePath, bePath, token;
		RateLimit logLimit{ 5, 1 };
	};

	proto::VcodecConfig publishedConfig(const CodecGuest &g) const;
	void attachPending();
	Status attach(Device &d, xen::DomId fe);
	void detach(Device &d, bool removeNodes);
	void onXenStore();
	void onEventChannel();
	void frontendChanged(Device &d);
	void connectFrontend(Device &d);
	void teardown(Device &d, const char *why);
	void onViolation(CodecSession *s, const std::string &why);
	void checkDomains();
	void setBackendState(Device &d, int state);
	void updatePageLimit(xen::DomId fe);

	xen::Platform &dom0_;
	service::EventLoop &loop_;
	std::vector<proto::CodecCaps> codecs_;
	EncoderFactory factory_;
	std::vector<std::unique_ptr<Device>> devices_;
	std::map<xen::Port, CodecSession *> ports_;
	bool watching_ = false;
};

} /* namespace xmb::vcodec */
