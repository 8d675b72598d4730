/* SPDX-License-Identifier: MIT */
#include "bridge/vcodec/codec_service.h"

#include <algorithm>
#include <cerrno>

extern "C" {
#include <xen/io/xenbus.h>
}

#include "bridge/service/toolstack.h"
#include "protocol/vcodec.h"

namespace xmb::vcodec {

XMB_LOG_DEFINE_CATEGORY(logSvc, "vcodec-service");

Result<CodecGuest> parseGuestSpec(const std::string &spec)
{
	CodecGuest g;
	size_t start = 0;
	while (start < spec.size()) {
		size_t end = spec.find(',', start);
		std::string kv = spec.substr(start, end == std::string::npos ? std::string::npos : end - start);
		start = end == std::string::npos ? spec.size() : end + 1;
		size_t eq = kv.find('=');
		if (eq == std::string::npos)
			return Error{ -EINVAL, "guest spec '" + spec + "': '" + kv + "' is not key=value" };
		std::string k = kv.substr(0, eq), v = kv.substr(eq + 1);
		auto num = [&](uint64_t max) -> Result<uint64_t> { return proto::parseUnsigned(k, v, max); };
		if (k == "name") {
			g.name = v;
		} else if (k == "domain") {
			g.domainName = v;
		} else if (k == "domid") {
			auto n = num(0x7fef);
			if (!n)
				return n.error();
			g.domid = static_cast<xen::DomId>(*n);
		} else if (k == "device") {
			auto n = num(255);
			if (!n)
				return n.error();
			g.device = static_cast<unsigned>(*n);
		} else if (k == "max-buffers") {
			auto n = num(XENVCODEC_MAX_BUFFERS);
			if (!n || !*n)
				return Error{ -EINVAL, "max-buffers: '" + v + "': expected 1..32" };
			g.maxBuffers = static_cast<uint8_t>(*n);
		} else if (k == "max-pages") {
			auto n = num(1u << 22);
			if (!n)
				return n.error();
			g.maxPages = *n;
		} else if (k == "be-alloc") {
			if (v != "yes" && v != "no")
				return Error{ -EINVAL, "be-alloc: '" + v + "': expected yes or no" };
			g.beAlloc = v == "yes";
		} else if (k == "codecs") {
			size_t s = 0;
			while (s <= v.size()) {
				size_t e = v.find(':', s);
				std::string c = v.substr(s, e == std::string::npos ? std::string::npos : e - s);
				auto id = proto::codecFromName(c);
				if (!id)
					return Error{ -EINVAL, "codecs: unknown codec '" + c + "'" };
				g.codecs.push_back(*id);
				if (e == std::string::npos)
					break;
				s = e + 1;
			}
		} else {
			return Error{ -EINVAL, "guest spec: unknown key '" + k + "'" };
		}
	}
	if (!g.domid && g.domainName.empty())
		return Error{ -EINVAL, "guest spec '" + spec + "': needs domid= or domain=" };
	if (g.name.empty())
		g.name = g.domid ? "dom" + std::to_string(*g.domid) : g.domainName;
	return g;
}

CodecService::CodecService(xen::Platform &dom0, service::EventLoop &loop,
			   std::vector<proto::CodecCaps> codecs, EncoderFactory factory)
	: dom0_(dom0), loop_(loop), codecs_(std::move(codecs)), factory_(std::move(factory)),
	  backend_(dom0, loop, XENVCODEC_DRIVER_NAME, "encoder", *this)
{
}

CodecService::~CodecService()
{
	stop();
}

Status CodecService::start(const CodecServiceConfig &config)
{
	if (codecs_.empty())
		return Error{ -ENODEV, "no encoder available (install gstreamer1.0-plugins-good/-bad)" };
	importGuestFrames_ = config.importGuestFrames && dom0_.grants->probeDmaBuf().exportFromRefs;
	for (const auto &g : config.guests) {
		auto d = std::make_unique<Device>();
		d->guest = g;
		d->name = g.name;
		d->domid = g.domid;
		d->domainName = g.domainName;
		d->devid = g.device;
		/* Buffers, plus a directory page per buffer of each set. */
		d->pageLimit = g.maxPages + 2 * XENVCODEC_MAX_BUFFERS;
		backend_.add(std::move(d));
	}
	return backend_.start();
}

void CodecService::stop()
{
	backend_.stop();
}

proto::VcodecConfig CodecService::publishedConfig(const CodecGuest &g) const
{
	proto::VcodecConfig c;
	for (const auto &cc : codecs_)
		if (g.codecs.empty() || std::find(g.codecs.begin(), g.codecs.end(), cc.codec) != g.codecs.end())
			c.codecs.push_back(cc);
	c.minWidth = 16;
	c.minHeight = 16;
	c.maxWidth = g.maxWidth;
	c.maxHeight = g.maxHeight;
	c.maxBuffers = g.maxBuffers;
	c.maxBitrate = g.maxBitrate;
	c.beAlloc = g.beAlloc;
	c.inputDmaBuf = !g.beAlloc && importGuestFrames_;
	return c;
}

/* XenbusDriver: the device's nodes with the codecs this guest may use. */
Status CodecService::createNodes(service::XenbusDevice &xd)
{
	Device &d = of(xd);
	d.published = publishedConfig(d.guest);
	if (d.published.codecs.empty())
		return Error{ -EINVAL, "no codec left for this guest" };
	Status s = service::attachDevice(*dom0_.store, dom0_.self, d.frontend, d.devid,
					 proto::formatVcodecConfig(d.published), XENVCODEC_DRIVER_NAME,
					 XENVCODEC_PROTOCOL_VERSION);
	if (s)
		XMB_LOG(logSvc, Info, "[guest %s]: dom%u vcodec/%u attached (%zu codecs)", d.guest.name.c_str(),
			d.frontend, d.devid, d.published.codecs.size());
	return s;
}

/* XenbusDriver: the frontend is Initialised: read its transport, set a session up. */
Result<std::unique_ptr<service::BackendSession>> CodecService::connect(service::XenbusDevice &xd)
{
	Device &d = of(xd);
	proto::XsView view = service::directoryView(*dom0_.store, d.fePath);
	auto transport = proto::parseVcodecTransport(view, { XENVCODEC_PROTOCOL_VERSION });
	if (!transport)
		return Error{ transport.error().code, "bad transport: " + transport.error().message };
	CodecSessionConfig sc;
	sc.frontend = d.frontend;
	sc.devid = d.devid;
	sc.maxPages = d.guest.maxPages;
	sc.caps = d.published;
	auto session = std::make_unique<CodecSession>(
		dom0_, loop_, sc, factory_,
		[this](CodecSession *s, const std::string &why) { backend_.violation(s, why); });
	Status s = session->connect(*transport);
	if (!s)
		return s.error();
	return std::unique_ptr<service::BackendSession>(std::move(session));
}

void CodecService::closing(service::XenbusDevice &d, const char *why)
{
	const CodecStats st = static_cast<CodecSession *>(d.session.get())->stats();
	XMB_LOG(logSvc, Info,
		"dom%u vcodec/%u: closing (%s): %lu frames in, %lu bitstreams, %lu raw bytes copied, "
		"%lu compressed bytes copied, %lu frames read as dma-bufs of its pages",
		d.frontend, d.devid, why, (unsigned long)st.framesIn, (unsigned long)st.bitstreams,
		(unsigned long)st.rawBytesCopied, (unsigned long)st.compressedBytesCopied,
		(unsigned long)st.rawDmaBufFrames);
}

std::vector<CodecDeviceReport> CodecService::report() const
{
	std::vector<CodecDeviceReport> out;
	for (const auto &xd : backend_.devices()) {
		const auto &d = static_cast<const Device &>(*xd);
		CodecDeviceReport r;
		r.label = "[guest " + d.guest.name + "] dom" + std::to_string(d.frontend) + " vcodec/" +
			  std::to_string(d.devid);
		r.connected = d.session != nullptr;
		r.connects = d.connects;
		if (d.session) {
			const auto *session = static_cast<const CodecSession *>(d.session.get());
			r.encoder = session->encoderDescription();
			r.format = session->format();
			r.stats = session->stats();
		}
		out.push_back(r);
	}
	return out;
}

} /* namespace xmb::vcodec */
