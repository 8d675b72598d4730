/* SPDX-License-Identifier: MIT */
#include "bridge/vcodec/codec_session.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

extern "C" {
#include <xen/errno.h>
}

#include "protocol/base/monotonic.h"
#include "v4l2/pixel_format.h"
#include "protocol/base/log.h"
#include "bridge/service/guest_directory.h"
#include "protocol/gref_directory.h"

namespace xmb::vcodec {

XMB_LOG_DEFINE_CATEGORY(logCodec, "vcodec");

namespace {

constexpr size_t kMaxBacklog = 4 * XENVCODEC_MAX_BUFFERS + 64;
/* Above XENVCODEC_MAX_BUFFERS: lent bitstreams (at most one per buffer) are never dropped. */
constexpr size_t kMaxPendingBitstream = 64;

int32_t xenStatus(int err)
{
	switch (err < 0 ? -err : err) {
	case 0: return 0;
	case EPERM: return -XEN_EPERM;
	case ENOENT: return -XEN_ENOENT;
	case E2BIG: return -XEN_E2BIG;
	case ENOMEM: return -XEN_ENOMEM;
	case EACCES: return -XEN_EACCES;
	case EBUSY: return -XEN_EBUSY;
	case EINVAL: return -XEN_EINVAL;
	case ENOSPC: return -XEN_ENOSPC;
	case ENOSYS: return -XEN_ENOSYS;
	case ENOTSUP: return -XEN_EOPNOTSUPP;
	case ENODEV: return -XEN_ENODEV;
	default: return -XEN_EIO;
	}
}


} /* namespace */

CodecSession::CodecSession(xen::Platform &dom0, service::EventLoop &loop, CodecSessionConfig config,
			   EncoderFactory factory, Violation onViolation)
	: dom0_(dom0), loop_(loop), cfg_(std::move(config)), factory_(std::move(factory)),
	  onViolation_(std::move(onViolation)),
	  label_("dom" + std::to_string(cfg_.frontend) + " vcodec/" + std::to_string(cfg_.devid)),
	  ring_(dom0, loop, cfg_.frontend, label_, kMaxBacklog)
{
	ring_.setHandlers([this](const proto::CodecRequest &req) { return serve(req); },
			  [this](const std::string &why) { onViolation_(this, why); });
	in_.resize(maxBuffers());
	out_.resize(maxBuffers());
}

/*
 * Teardown order: the encoder lets go of every guest frame (pipeline to
 * NULL) before any guest page is unmapped; buffers before the rings.
 */
CodecSession::~CodecSession()
{
	mailbox_->alive = false;
	{
		std::lock_guard<std::mutex> l(mailbox_->lock);
		mailbox_->closed = true;
	}
	stopEncoder();
	encoder_.reset();
	pending_.clear();
	releaseBuffers();
	ring_.close();
}

Status CodecSession::connect(const proto::VcodecTransport &t)
{
	Status s = ring_.connect(t.reqRingRef, t.evtRingRef, t.reqEventChannel, t.evtEventChannel);
	if (!s)
		return s;
	XMB_LOG(logCodec, Info, "%s: connected (ring %u, event page %u)", label_.c_str(), t.reqRingRef,
		t.evtRingRef);
	return {};
}

std::string CodecSession::encoderDescription() const
{
	return encoder_ ? encoder_->description() : "not opened";
}

/* One request; the per-frame ones (QUEUE_RAW/QUEUE_OUT) count in the bridge's time. */
xenvcodec_resp CodecSession::serve(const proto::CodecRequest &req)
{
	uint64_t t0 = monotonicNs();
	xenvcodec_resp resp = handle(req);
	if (req.op == XENVCODEC_OP_QUEUE_RAW || req.op == XENVCODEC_OP_QUEUE_OUT)
		stats_.bridgeNs += monotonicNs() - t0;
	return resp;
}

xenvcodec_resp CodecSession::handle(const proto::CodecRequest &req)
{
	xenvcodec_resp resp = proto::makeCodecResponse(req.id, req.op, 0);
	int32_t status = 0;
	auto needOpen = [&] { return opened_ && encoder_ && !encoderFailed_; };
	switch (req.op) {
	case XENVCODEC_OP_OPEN:
		status = opOpen(std::get<proto::CodecRequest::Open>(req.body), resp);
		break;
	case XENVCODEC_OP_GET_LAYOUT: {
		if (!opened_) {
			status = -XEN_EINVAL;
			break;
		}
		auto &l = resp.resp.layout;
		l.raw_size = layout_.size;
		l.out_size = outSize_;
		l.num_planes = layout_.numPlanes;
		l.min_buffers = 2;
		l.max_buffers = maxBuffers();
		for (unsigned p = 0; p < layout_.numPlanes && p < XENVCODEC_MAX_PLANE; p++) {
			l.plane_offset[p] = layout_.offset[p];
			l.plane_stride[p] = layout_.stride[p];
		}
		break;
	}
	case XENVCODEC_OP_BUF_CREATE:
		status = opBufCreate(std::get<proto::CodecRequest::BufCreate>(req.body));
		break;
	case XENVCODEC_OP_BUF_DESTROY: {
		auto b = std::get<proto::CodecRequest::BufIndex>(req.body);
		status = opBufDestroy(b.type, b.index);
		break;
	}
	case XENVCODEC_OP_QUEUE_RAW:
		status = needOpen() ? opQueueRaw(std::get<proto::CodecRequest::QueueRaw>(req.body))
				    : -XEN_EINVAL;
		break;
	case XENVCODEC_OP_QUEUE_OUT:
		status = opQueueOut(std::get<proto::CodecRequest::BufIndex>(req.body).index);
		break;
	case XENVCODEC_OP_FORCE_KEY:
		if (!needOpen())
			status = -XEN_EINVAL;
		else
			forceNext_ = true;
		break;
	case XENVCODEC_OP_SET_BITRATE: {
		uint32_t br = std::get<proto::CodecRequest::Bitrate>(req.body).bitrate;
		if (!needOpen()) {
			status = -XEN_EINVAL;
		} else if (cfg_.caps.maxBitrate && br > cfg_.caps.maxBitrate) {
			status = -XEN_EINVAL;
		} else {
			Status s = encoder_->setBitrate(br);
			status = s ? 0 : xenStatus(s.error().code);
			if (s)
				params_.bitrate = br;
		}
		break;
	}
	case XENVCODEC_OP_DRAIN:
		status = needOpen() ? opDrain() : -XEN_EINVAL;
		break;
	case XENVCODEC_OP_STOP:
		status = opened_ ? opStop() : -XEN_EINVAL;
		break;
	default:
		status = -XEN_ENOSYS;
	}
	resp.status = status;
	return resp;
}

int32_t CodecSession::opOpen(const proto::CodecRequest::Open &o, xenvcodec_resp &resp)
{
	if (draining_ || std::any_of(in_.begin(), in_.end(), [](const InBuf &b) { return b.inEncoder; }))
		return -XEN_EBUSY;
	/* Buffers that are the current encoder's own memory: a new encoder cannot use them. */
	if (anyLent(true) || anyLent(false))
		return -XEN_EBUSY;
	const proto::CodecCaps *caps = cfg_.caps.find(o.codec);
	if (!caps)
		return -XEN_EINVAL;
	const auto &c = cfg_.caps;
	if (o.width < c.minWidth || o.height < c.minHeight || o.width > c.maxWidth ||
	    o.height > c.maxHeight)
		return -XEN_EINVAL;
	if (o.rcMode != XENVCODEC_RC_CQP && c.maxBitrate && o.bitrate > c.maxBitrate)
		return -XEN_EINVAL;
	/*
	 * The cheap refusals before the expensive part (an OPEN builds a whole
	 * encoder pipeline on the loop thread): buffers of another size or
	 * format exist, or the guest is over its OPEN budget.
	 */
	const bool haveBuffersNow =
		std::any_of(in_.begin(), in_.end(), [](const InBuf &b) { return b.created; }) ||
		std::any_of(out_.begin(), out_.end(), [](const OutBuf &b) { return b.created; });
	if (haveBuffersNow && opened_ &&
	    (o.width != params_.width || o.height != params_.height || o.rawFourcc != params_.rawFourcc))
		return -XEN_EBUSY;
	if (!openBudget_.allow()) {
		stats_.throttledOpens++;
		return -XEN_EAGAIN;
	}
	EncodeParams p;
	p.codec = o.codec;
	p.rawFourcc = o.rawFourcc;
	p.width = o.width;
	p.height = o.height;
	p.rateNum = o.rateNum;
	p.rateDen = o.rateDen;
	p.rcMode = o.rcMode;
	p.bitrate = o.bitrate;
	p.qp = o.qp;
	p.gop = o.gop;
	p.profile = o.profile;
	p.level = o.level;
	p.framesInDom0Memory = cfg_.caps.beAlloc;
	p.lendBuffers = cfg_.caps.beAlloc && dom0_.grants->probeDmaBuf().importToRefs ? maxBuffers() : 0;
	/* Published only where Dom0 can export the guest's refs (CodecService::publishedConfig). */
	p.importRawDmaBufs = !cfg_.caps.beAlloc && cfg_.caps.inputDmaBuf;

	/* A new encoder generation: anything the old one still posts is dropped. */
	uint64_t newGen = encGen_ + 1;
	uint64_t oldGen = encGen_;
	encGen_ = newGen;
	auto enc = factory_(p, *caps, makeSink());
	if (!enc) {
		encGen_ = oldGen;
		XMB_LOG(logCodec, Debug, "%s: OPEN: %s", label_.c_str(), enc.error().message.c_str());
		return xenStatus(enc.error().code);
	}
	const RawLayout &nl = (*enc)->layout();
	uint64_t want = std::max<uint64_t>(64 * 1024, uint64_t(nl.size) * 3 / 4);
	uint32_t newOut = static_cast<uint32_t>(proto::pagesFor(want) * xen::kPageSize);
	/* Lent bitstream buffers: the guest's OUTPUT buffers are the encoder's, of their size. */
	if (const auto &lc = (*enc)->lentCodedBuffers(); !lc.empty())
		newOut = static_cast<uint32_t>(lc[0].size);
	bool haveBuffers = std::any_of(in_.begin(), in_.end(), [](const InBuf &b) { return b.created; }) ||
			   std::any_of(out_.begin(), out_.end(), [](const OutBuf &b) { return b.created; });
	if (haveBuffers && (!(nl == layout_) || newOut != outSize_)) {
		(*enc)->stop();
		encGen_ = oldGen;
		return -XEN_EBUSY; /* buffers of another layout exist: destroy them first */
	}
	stopEncoder();
	if (encoder_)
		rawCopiedBefore_ += encoder_->rawBytesCopied();
	encoder_ = std::move(*enc);
	encGen_ = newGen;
	/* INPUT buffers of the earlier encoder: in the memory this one takes. */
	if (encoder_->importsRawDmaBufs() &&
	    std::any_of(in_.begin(), in_.end(), [](const InBuf &b) { return b.created && b.mem.dmabuf < 0; }))
		(void)encoder_->stopImportingRawDmaBufs();
	if (!encoder_->importsRawDmaBufs())
		if (Status m = mapImportedInputs(); !m)
			XMB_LOG(logCodec, Warn, "%s: OPEN: the INPUT buffers cannot be mapped: %s", label_.c_str(),
				m.error().message.c_str());
	params_ = p;
	layout_ = nl;
	outSize_ = newOut;
	opened_ = true;
	{
		const char *name = proto::codecName(p.codec);
		format_ = std::string(name ? name : "codec " + std::to_string(p.codec)) + " " +
			  std::to_string(p.width) + "x" + std::to_string(p.height) + " " +
			  std::to_string(p.rateNum) + "/" + std::to_string(p.rateDen) + " fps from " +
			  fourccToString(p.rawFourcc);
	}
	encoderFailed_ = false;
	forceNext_ = false;
	nextSeq_ = 0;
	tsOf_.clear();
	pending_.clear();
	auto &r = resp.resp.config;
	r.codec = p.codec;
	r.raw_fourcc = p.rawFourcc;
	r.width = p.width;
	r.height = p.height;
	r.frame_rate_numer = p.rateNum;
	r.frame_rate_denom = p.rateDen;
	r.bitrate = p.bitrate;
	r.gop = p.gop;
	r.rc_mode = p.rcMode;
	r.qp = p.qp;
	r.profile = p.profile;
	r.level = p.level;
	XMB_LOG(logCodec, Info, "%s: opened %s", label_.c_str(), encoder_->description().c_str());
	return 0;
}

/* A guest directory walked within the guest's page cap (see walkGuestDirectory). */
Result<std::vector<xen::Gref>> CodecSession::walkDirectory(xen::Gref first, uint64_t bytes, bool collect,
							    std::vector<xen::GrantMapping> *keep)
{
	uint64_t left = cfg_.maxPages > pagesInUse_ ? cfg_.maxPages - pagesInUse_ : 0;
	return service::walkGuestDirectory(*dom0_.grants, cfg_.frontend, first, bytes, left, collect, keep);
}

int32_t CodecSession::opBufCreate(const proto::CodecRequest::BufCreate &bc)
{
	if (!opened_ || bc.index >= maxBuffers())
		return -XEN_EINVAL;
	const bool input = bc.type == XENVCODEC_BUF_INPUT;
	if (input ? in_[bc.index].created : out_[bc.index].created)
		return -XEN_EINVAL;
	const uint32_t size = input ? layout_.size : outSize_;
	if (bc.size != size)
		return -XEN_EINVAL; /* the layout fixes the size */
	if (input) {
		for (unsigned p = 0; p < XENVCODEC_MAX_PLANE; p++) {
			uint32_t want = p < layout_.numPlanes ? layout_.offset[p] : 0;
			if (bc.planeOffset[p] != want)
				return -XEN_EINVAL; /* the encoder reads planes where the layout puts them */
		}
	}
	auto mem = cfg_.caps.beAlloc ? grantedPages(bc, size, input) : guestPages(bc, size, input);
	if (!mem) {
		XMB_LOG(logCodec, Debug, "%s: BUF_CREATE %s %u: %s", label_.c_str(),
			input ? "input" : "output", bc.index, mem.error().message.c_str());
		return xenStatus(mem.error().code);
	}
	pagesInUse_ += mem->pages;
	if (input) {
		InBuf &b = in_[bc.index];
		b.created = true;
		b.inEncoder = false;
		b.gen = ++inputGen_;
		b.mem = std::move(*mem);
	} else {
		OutBuf &b = out_[bc.index];
		b.created = true;
		b.queued = false;
		b.mem = std::move(*mem);
	}
	stats_.mappedPages = dom0_.grants->mappedPages(cfg_.frontend);
	return 0;
}

/*
 * Frontend-allocated: the guest's pages, mapped once -- or, for INPUT where
 * the encoder takes dma-bufs (input-dmabuf published: Arm), exported as a
 * dma-buf the encoder's device reads: nothing mapped in Dom0 at all.
 */
Result<CodecSession::Memory> CodecSession::guestPages(const proto::CodecRequest::BufCreate &bc, uint32_t size,
						      bool input)
{
	auto grefs = walkDirectory(bc.grefDirectory, size);
	if (!grefs)
		return grefs.error();
	if (input && encoder_->importsRawDmaBufs()) {
		auto d = dom0_.grants->dmabufFromRefs(cfg_.frontend, *grefs, true);
		if (d) {
			auto buf = std::make_shared<xen::ForeignDmaBuf>(std::move(*d));
			Memory m{ buf, nullptr, size_t(grefs->size()) * xen::kPageSize, grefs->size() };
			m.dmabuf = buf->fd();
			m.refs = std::move(*grefs);
			return m;
		}
		/*
		 * gntdev maps an export's refs writable: a frontend that grants its
		 * INPUT read-only (one that does not know input-dmabuf) cannot be
		 * exported.  Its frames are mapped instead, for the whole session.
		 */
		if (!encoder_->stopImportingRawDmaBufs())
			return Error{ d.error().code, "INPUT buffer " + std::to_string(bc.index) +
							      " cannot be a dma-buf while earlier ones are: " +
							      d.error().message };
		XMB_LOG(logCodec, Info, "%s: INPUT buffer %u cannot be a dma-buf (%s; granted read-only?): the "
			"guest's frames are mapped", label_.c_str(), bc.index, d.error().message.c_str());
		if (Status s = mapImportedInputs(); !s)
			return s.error();
	}
	/* INPUT: read-only, Dom0 never writes a raw frame.  OUTPUT: Dom0 writes bitstream. */
	auto m = dom0_.grants->map(cfg_.frontend, *grefs, !input);
	if (!m)
		return m.error();
	auto map = std::make_shared<xen::GrantMapping>(std::move(*m));
	return Memory{ map, map->data(), map->size(), grefs->size() };
}

/*
 * be-alloc (cameraif's rules): Dom0 pages granted to the guest, their refs
 * written into the directory the guest granted us.  INPUT writable for the
 * guest (it renders there), OUTPUT read-only (Dom0 writes the bitstream).
 * The pages are Dom0's own: an encoder may be given them as user memory on
 * any Dom0, x86 PV included (no foreign frame reaches the driver).
 */
Result<CodecSession::Memory> CodecSession::grantedPages(const proto::CodecRequest::BufCreate &bc, uint32_t size,
							bool input)
{
	std::vector<xen::GrantMapping> dirPages;
	auto walked = walkDirectory(bc.grefDirectory, size, false, &dirPages);
	if (!walked)
		return walked.error();
	if (bc.index < (input ? encoder_->lentRawBuffers() : encoder_->lentCodedBuffers()).size()) {
		auto lent = grantLentBuffer(bc.index, input, size, dirPages);
		if (!lent)
			return lent.error();
		if (*lent)
			return std::move(**lent);
		/* Not granted, nothing lent yet: the encoder copies from now on. */
	}
	const size_t pages = proto::pagesFor(size);
	if (pagesInUse_ + dirPages.size() + pages > cfg_.maxPages)
		return Error{ -ENOSPC, "be-alloc: the guest's page cap" };
	auto share = dom0_.grants->share(cfg_.frontend, pages, input);
	if (!share)
		return share.error();
	if (Status w = service::writeGuestDirectory(dirPages, share->refs()); !w)
		return w.error();
	auto keep = std::make_shared<xen::GrantShare>(std::move(*share));
	return Memory{ keep, keep->data(), pages * xen::kPageSize, pages };
}

/*
 * The encoder takes no dma-bufs (any more): the INPUT buffers exported as
 * dma-bufs are mapped instead (read-only), before any frame of theirs is
 * in the encoder.
 */
Status CodecSession::mapImportedInputs()
{
	for (unsigned i = 0; i < in_.size(); i++) {
		InBuf &b = in_[i];
		if (!b.created || b.mem.dmabuf < 0)
			continue;
		if (b.inEncoder)
			return Error{ -EBUSY, "INPUT buffer " + std::to_string(i) + " is in the encoder as a dma-buf" };
		auto m = dom0_.grants->map(cfg_.frontend, b.mem.refs, false);
		if (!m)
			return m.error();
		auto map = std::make_shared<xen::GrantMapping>(std::move(*m));
		b.mem = Memory{ map, map->data(), map->size(), b.mem.pages };
	}
	stats_.mappedPages = dom0_.grants->mappedPages(cfg_.frontend);
	return {};
}

bool CodecSession::anyLent(bool input) const
{
	auto lent = [](const auto &b) { return b.created && b.mem.lent >= 0; };
	return input ? std::any_of(in_.begin(), in_.end(), lent) : std::any_of(out_.begin(), out_.end(), lent);
}

/**
 * \brief be-alloc buffer \a index of a set is the encoder's own buffer, granted
 *
 * Where the Dom0 kernel grants dma-bufs (imp_to_refs) the encoder lends
 * its buffers: the guest renders into the encoder's memory and the frame is
 * queued where it is, or reads the bitstream where the encoder wrote it.
 * Refs of the first pages the layout needs go into the guest's directory.
 * If the first grant of a set fails, lending that set stops (logged) and
 * nullopt says "fall back to Dom0 pages"; a later failure fails the request.
 */
Result<std::optional<CodecSession::Memory>> CodecSession::grantLentBuffer(unsigned index, bool input, uint32_t size,
									  std::span<xen::GrantMapping> dirPages)
{
	const LentBuffer &lb = (input ? encoder_->lentRawBuffers() : encoder_->lentCodedBuffers())[index];
	const size_t need = proto::pagesFor(size);
	const size_t pages = lb.size / xen::kPageSize;
	const size_t kept = dom0_.grants->quarantinedPages(cfg_.frontend);
	if (pagesInUse_ + dirPages.size() + pages + kept > cfg_.maxPages)
		return Error{ -ENOSPC, "be-alloc: the guest's page cap (with " + std::to_string(kept) +
					       " pages of earlier grants kept until it is gone)" };
	auto g = dom0_.grants->refsFromDmabuf(cfg_.frontend, lb.dmabuf.get(), pages);
	if (!g) {
		if (anyLent(input))
			return g.error();
		XMB_LOG(logCodec, Warn, "%s: granting the encoder's %s buffer %u failed (%s): Dom0 pages granted "
			"instead", label_.c_str(), input ? "raw" : "bitstream", index, g.error().message.c_str());
		if (input)
			encoder_->stopLending();
		else
			encoder_->stopLendingCoded();
		return std::optional<Memory>{};
	}
	if (Status w = service::writeGuestDirectory(dirPages, std::span(g->refs()).first(need)); !w)
		return w.error();
	return std::optional<Memory>{ Memory{ std::make_shared<xen::DmaBufGrant>(std::move(*g)), nullptr, lb.size,
					       pages, int(index) } };
}

int32_t CodecSession::opBufDestroy(uint8_t type, uint8_t index)
{
	if (index >= maxBuffers())
		return -XEN_EINVAL;
	if (type == XENVCODEC_BUF_INPUT) {
		InBuf &b = in_[index];
		if (!b.created)
			return -XEN_EINVAL;
		if (b.inEncoder)
			return -XEN_EBUSY;
		pagesInUse_ -= b.mem.pages;
		b = InBuf{};
	} else {
		OutBuf &b = out_[index];
		if (!b.created)
			return -XEN_EINVAL;
		/* The encoder's own buffer, queued to the driver: it may be writing. After STOP it is not. */
		if (b.mem.lent >= 0 && b.queued && !encoder_->reclaimLentCoded(index))
			return -XEN_EBUSY;
		std::erase(outQueue_, index);
		pagesInUse_ -= b.mem.pages;
		b = OutBuf{};
	}
	stats_.mappedPages = dom0_.grants->mappedPages(cfg_.frontend);
	return 0;
}

int32_t CodecSession::opQueueRaw(const proto::CodecRequest::QueueRaw &q)
{
	if (q.index >= maxBuffers() || !in_[q.index].created || in_[q.index].inEncoder)
		return -XEN_EINVAL;
	if (draining_)
		return -XEN_EBUSY;
	InBuf &b = in_[q.index];
	uint64_t seq = nextSeq_++;
	bool key = forceNext_ || (q.flags & XENVCODEC_FRAME_FLAG_KEY);
	forceNext_ = false;
	if (tsOf_.size() >= 1024)
		tsOf_.erase(tsOf_.begin());
	tsOf_[seq] = InFlight{ q.timestamp, monotonicNs() };
	b.inEncoder = true;
	/*
	 * The release callback owns a reference to the mapping: the pages stay
	 * mapped until the encoder lets go of the frame, even if the session
	 * or the guest goes first.
	 */
	auto release = [&] {
		return [mb = mailbox_, &loop = loop_, self = this, pages = b.mem.keep, encGen = encGen_,
			index = q.index, gen = b.gen]() mutable {
			pages.reset(); /* the last reference unmaps, if the session let go already */
			postTo(mb, loop, self, InputDoneMsg{ encGen, index, gen });
		};
	};
	Status s;
	if (b.mem.lent >= 0) {
		s = encoder_->encodeLent(unsigned(b.mem.lent), seq, q.timestamp, key, release());
	} else if (b.mem.dmabuf >= 0) {
		s = encoder_->encodeDmaBuf(q.index, b.mem.dmabuf, seq, q.timestamp, key, release());
		if (s) {
			stats_.rawDmaBufFrames++;
		} else if (s.error().code == -ENOTSUP) {
			/* The driver cannot read it (logged by the encoder): the frame was not taken. */
			b.inEncoder = false;
			Status m = mapImportedInputs();
			if (!m)
				return xenStatus(m.error().code);
			b.inEncoder = true;
			s = encoder_->encode(b.mem.data, seq, q.timestamp, key, release());
		}
	} else {
		s = encoder_->encode(b.mem.data, seq, q.timestamp, key, release());
	}
	if (!s) {
		XMB_LOG(logCodec, Debug, "%s: QUEUE_RAW: %s", label_.c_str(), s.error().message.c_str());
		return xenStatus(s.error().code);
	}
	stats_.framesIn++;
	return 0;
}

int32_t CodecSession::opQueueOut(uint8_t index)
{
	if (index >= maxBuffers() || !out_[index].created || out_[index].queued)
		return -XEN_EINVAL;
	if (out_[index].mem.lent >= 0) {
		/* The encoder's own buffer: back to it, it writes the next bitstream there. */
		Status s = encoder_->returnLentCoded(index);
		if (!s)
			return xenStatus(s.error().code);
		out_[index].queued = true;
		return 0;
	}
	out_[index].queued = true;
	outQueue_.push_back(index);
	deliverBitstreams();
	return 0;
}

int32_t CodecSession::opDrain()
{
	if (draining_)
		return -XEN_EBUSY;
	Status s = encoder_->drain();
	if (!s)
		return xenStatus(s.error().code);
	draining_ = true;
	drainDone_ = false;
	return 0;
}

int32_t CodecSession::opStop()
{
	stopEncoder();
	pending_.clear();
	tsOf_.clear();
	draining_ = false;
	drainDone_ = false;
	forceNext_ = false;
	if (encoder_) {
		encGen_++; /* drop what the stopped pipeline posted */
		/* Inputs the encoder had are the guest's again (their INPUT_DONE was dropped). */
		for (unsigned i = 0; i < in_.size(); i++)
			if (in_[i].inEncoder) {
				in_[i].inEncoder = false;
				stats_.inputsDone++;
				ring_.queue(proto::makeInputDoneEvent(evtId_++, static_cast<uint8_t>(i), 0));
			}
		Status s = encoder_->restart();
		encoderFailed_ = !s;
		if (!s)
			return xenStatus(s.error().code);
	}
	return 0;
}

CodecStats CodecSession::stats() const
{
	CodecStats st = stats_;
	st.requests = ring_.requests();
	st.rawBytesCopied += rawCopiedBefore_ + (encoder_ ? encoder_->rawBytesCopied() : 0);
	st.dmaBufs = dom0_.grants->exportedDmaBufs(cfg_.frontend);
	st.fpsMilli = delivered_.fpsMilli(monotonicNs());
	st.latencyP50Us = delivered_.latencyUs(50);
	st.latencyP99Us = delivered_.latencyUs(99);
	return st;
}

void CodecSession::stopEncoder()
{
	if (encoder_)
		encoder_->stop(); /* every wrapped guest frame released on return */
}

EncoderSink CodecSession::makeSink()
{
	EncoderSink s;
	/* Encoder threads: only the mailbox is touched, never the session itself. */
	uint64_t gen = encGen_;
	s.bitstream = [this, gen](Bitstream b) { post(BitstreamMsg{ gen, std::move(b) }); };
	s.drained = [this, gen] { post(DrainedMsg{ gen }); };
	s.error = [this, gen](const std::string &w) { post(ErrorMsg{ gen, w }); };
	return s;
}

void CodecSession::post(Msg m)
{
	postTo(mailbox_, loop_, this, std::move(m));
}

/* Any thread.  Touches the mailbox and the loop only; \a self only if still alive. */
void CodecSession::postTo(const std::shared_ptr<Mailbox> &mb, service::EventLoop &loop,
			  CodecSession *self, Msg m)
{
	/* defer() under the lock: the destructor's close waits for it, so the loop is alive. */
	std::lock_guard<std::mutex> l(mb->lock);
	if (mb->closed)
		return;
	mb->items.push_back(std::move(m));
	if (mb->scheduled)
		return;
	mb->scheduled = true;
	loop.defer([mb, self] {
		if (mb->alive)
			self->drainMailbox();
	});
}

void CodecSession::drainMailbox()
{
	std::deque<Msg> items;
	{
		std::lock_guard<std::mutex> l(mailbox_->lock);
		items.swap(mailbox_->items);
		mailbox_->scheduled = false;
	}
	uint64_t t0 = monotonicNs();
	for (auto &m : items) {
		if (auto *d = std::get_if<InputDoneMsg>(&m)) {
			if (d->index >= in_.size())
				continue;
			InBuf &b = in_[d->index];
			/* A release from an encoder since replaced or stopped is stale. */
			if (d->encGen != encGen_ || !b.created || b.gen != d->gen || !b.inEncoder)
				continue;
			b.inEncoder = false;
			stats_.inputsDone++;
			ring_.queue(proto::makeInputDoneEvent(evtId_++, static_cast<uint8_t>(d->index), 0));
		} else if (auto *bs = std::get_if<BitstreamMsg>(&m)) {
			if (bs->bs.lent >= 0 && bs->encGen != encGen_) {
				/* Stale (STOP): the buffer is still the guest's queued one, give it back. */
				const auto i = static_cast<unsigned>(bs->bs.lent);
				if (encoder_ && lentOutQueued(i))
					(void)encoder_->returnLentCoded(i);
				continue;
			}
			if (bs->encGen != encGen_)
				continue;
			stats_.encodeNs += bs->bs.encodeNs;
			if (pending_.size() >= kMaxPendingBitstream) {
				stats_.bitstreamDrops++;
				pending_.pop_front();
			}
			pending_.push_back(std::move(bs->bs));
		} else if (auto *dr = std::get_if<DrainedMsg>(&m)) {
			if (dr->encGen != encGen_ || !draining_)
				continue;
			drainDone_ = true;
		} else if (auto *e = std::get_if<ErrorMsg>(&m)) {
			if (e->encGen != encGen_ || encoderFailed_)
				continue;
			XMB_LOG(logCodec, Warn, "%s: encoder failed: %s", label_.c_str(), e->what.c_str());
			encoderFailed_ = true;
			ring_.queue(proto::makeCodecErrorEvent(evtId_++, -XEN_EIO));
		}
	}
	deliverBitstreams();
	stats_.bridgeNs += monotonicNs() - t0;
	ring_.flush();
}

/*
 * One bounded copy of each encoded frame into the next queued OUTPUT buffer;
 * a bitstream in a lent buffer is announced where it is (the guest's OUTPUT
 * buffer of that index, which it queued), nothing copied.
 */
void CodecSession::deliverBitstreams()
{
	while (!pending_.empty() && (pending_.front().lent >= 0 || !outQueue_.empty())) {
		Bitstream bs = std::move(pending_.front());
		pending_.pop_front();
		const bool lent = bs.lent >= 0;
		unsigned idx = lent ? static_cast<unsigned>(bs.lent) : outQueue_.front();
		if (lent && !lentOutQueued(idx)) {
			/* Cannot be: the encoder fills only buffers the guest queued, which it cannot destroy. */
			stats_.bitstreamDrops++;
			XMB_LOG(logCodec, Error, "%s: a bitstream in buffer %u the guest did not queue", label_.c_str(), idx);
			continue;
		}
		auto it = tsOf_.find(bs.seq);
		const InFlight frame = it != tsOf_.end() ? it->second : InFlight{};
		const uint64_t ts = frame.timestamp;
		if (it != tsOf_.end())
			tsOf_.erase(tsOf_.begin(), std::next(it));
		if (bs.size > out_[idx].mem.size || bs.size > outSize_) {
			stats_.bitstreamDrops++;
			ring_.queue(proto::makeCodecErrorEvent(evtId_++, -XEN_E2BIG));
			continue;
		}
		out_[idx].queued = false;
		if (!lent) {
			outQueue_.pop_front();
			std::memcpy(out_[idx].mem.data, bs.data, bs.size);
			stats_.compressedBytesCopied += bs.size;
		}
		stats_.bitstreams++;
		stats_.keyFrames += bs.key;
		delivered_.record(monotonicNs(), frame.queuedNs);
		ring_.queue(proto::makeBitstreamEvent(evtId_++, static_cast<uint8_t>(idx),
						     static_cast<uint32_t>(bs.size), bs.key, ts,
						     static_cast<uint32_t>(bs.seq)));
	}
	maybeDrained();
}

void CodecSession::maybeDrained()
{
	if (!draining_ || !drainDone_ || !pending_.empty())
		return;
	draining_ = false;
	drainDone_ = false;
	ring_.queue(proto::makeDrainedEvent(evtId_++));
	Status s = encoder_->restart();
	if (!s) {
		encoderFailed_ = true;
		ring_.queue(proto::makeCodecErrorEvent(evtId_++, -XEN_EIO));
	}
}

void CodecSession::releaseBuffers()
{
	outQueue_.clear();
	for (auto &b : in_)
		b = InBuf{};
	for (auto &b : out_)
		b = OutBuf{};
	pagesInUse_ = 0;
	stats_.mappedPages = dom0_.grants->mappedPages(cfg_.frontend);
}

} /* namespace xmb::vcodec */
