/* SPDX-License-Identifier: MIT */
#include "bridge/service/camera_session.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <numeric>

extern "C" {
#include <xen/errno.h>
}

#include "protocol/base/log.h"
#include "bridge/service/guest_directory.h"
#include "protocol/gref_directory.h"
#include "v4l2/pixel_format.h"

namespace xmb::service {

XMB_LOG_DEFINE_CATEGORY(logSession, "session");

int32_t xenStatus(int err)
{
	switch (err < 0 ? -err : err) {
	case 0: return 0;
	case EPERM: return -XEN_EPERM;
	case ENOENT: return -XEN_ENOENT;
	case EIO: return -XEN_EIO;
	case E2BIG: return -XEN_E2BIG;
	case ENOMEM: return -XEN_ENOMEM;
	case EACCES: return -XEN_EACCES;
	case EBUSY: return -XEN_EBUSY;
	case EEXIST: return -XEN_EEXIST;
	case EINVAL: return -XEN_EINVAL;
	case ENOSPC: return -XEN_ENOSPC;
	case ENOSYS: return -XEN_ENOSYS;
	case ENOTSUP: return -XEN_EOPNOTSUPP;
	case ELOOP: return -XEN_EINVAL;
	default: return -XEN_EIO;
	}
}

CameraSession::CameraSession(xen::Platform &dom0, EventLoop &loop, CameraHub &hub,
			     SessionConfig config, Violation onViolation)
	: dom0_(dom0), hub_(hub), cfg_(std::move(config)),
	  onViolation_(std::move(onViolation)),
	  label_("dom" + std::to_string(cfg_.frontend) + " vcamera/" + std::to_string(cfg_.devid)),
	  ring_(dom0, loop, cfg_.frontend, label_)
{
	ring_.setHandlers([this](const proto::CameraRequest &req) { return handle(req); },
			  [this](const std::string &why) { onViolation_(this, why); });
	hub_.attach(this);
}

/*
 * Teardown order matters: the camera must stop writing into guest pages
 * before they are unmapped, and buffers go before the rings.
 */
CameraSession::~CameraSession()
{
	hub_.detach(this);
	releaseBuffers();
	ring_.close();
}

Status CameraSession::connect(const proto::VcameraTransport &t)
{
	Status s = ring_.connect(t.reqRingRef, t.evtRingRef, t.reqEventChannel, t.evtEventChannel);
	if (!s)
		return s;
	XMB_LOG(logSession, Info, "%s: connected (ring %u, event page %u, ports %u/%u, %s buffers)",
		label_.c_str(), t.reqRingRef, t.evtRingRef, ring_.requestPort(), ring_.eventPort(),
		cfg_.beAlloc ? "backend-allocated" : "frontend-allocated");
	return {};
}

const char *CameraSession::tier() const
{
	if (pool_ && (!streaming_ || hub_.streamPool() == pool_.get()))
		return "device buffers granted (dma-buf)";
	if (hub_.copyMode() || (streaming_ && hub_.leader() != this))
		return "copy";
	/* The source itself copies into our buffers (libv4l2 conversion, planes of a camera without USERPTR). */
	if (streaming_ && hub_.source().emulatedCopyBytesPerFrame())
		return "copy";
	if (cfg_.beAlloc)
		return "zero-copy (be-alloc: Dom0 pages granted)";
	return streaming_ && hub_.leaderUsesDmaBuf() ? "zero-copy (guest pages as dma-bufs, exp_from_refs)"
						     : "zero-copy (guest pages mapped, USERPTR)";
}

xencamera_resp CameraSession::handle(const proto::CameraRequest &req)
{
	xencamera_resp resp = proto::makeCameraResponse(req.id, req.op, 0);
	int32_t status = 0;
	switch (req.op) {
	case XENCAMERA_OP_CONFIG_SET:
	case XENCAMERA_OP_CONFIG_VALIDATE:
	case XENCAMERA_OP_CONFIG_GET:
		status = opConfig(req, resp);
		break;
	case XENCAMERA_OP_FRAME_RATE_SET: {
		auto fr = std::get<proto::CameraRequest::FrameRate>(req.body);
		if (!fr.num || !fr.den)
			break; /* a zero term: V4L2's "default"; the current rate stays (status 0) */
		if (streaming_) {
			status = -XEN_EBUSY;
			break;
		}
		/* Rate num/den frames per second is an interval of den/num seconds. */
		auto r = hub_.setFrameInterval(this, Fraction{ fr.den, fr.num });
		status = r ? 0 : xenStatus(r.error().code);
		break;
	}
	case XENCAMERA_OP_BUF_GET_LAYOUT: {
		FrameLayout layout = layout_;
		if (!configured_) {
			/* Before CONFIG_SET: the layout of the configuration CONFIG_GET reports. */
			auto cur = currentOrDefault();
			if (!cur) {
				status = xenStatus(cur.error().code);
				break;
			}
			layout = cur->layout;
		}
		auto &l = resp.resp.buf_layout;
		l.num_planes = static_cast<uint8_t>(layout.numPlanes);
		l.size = layout.size;
		for (unsigned p = 0; p < layout.numPlanes && p < XENCAMERA_MAX_PLANE; p++) {
			l.plane_size[p] = layout.planes[p].size;
			l.plane_stride[p] = layout.planes[p].stride;
		}
		break;
	}
	case XENCAMERA_OP_BUF_REQUEST:
		status = opBufRequest(std::get<proto::CameraRequest::BufRequest>(req.body).numBufs, resp);
		break;
	case XENCAMERA_OP_BUF_CREATE:
		status = opBufCreate(std::get<proto::CameraRequest::BufCreate>(req.body));
		break;
	case XENCAMERA_OP_BUF_DESTROY:
		status = opBufDestroy(std::get<proto::CameraRequest::Index>(req.body).index);
		break;
	case XENCAMERA_OP_BUF_QUEUE:
		status = opBufQueue(std::get<proto::CameraRequest::Index>(req.body).index);
		break;
	case XENCAMERA_OP_BUF_DEQUEUE:
		status = opBufDequeue(std::get<proto::CameraRequest::Index>(req.body).index);
		break;
	case XENCAMERA_OP_CTRL_ENUM:
		status = opCtrlEnum(std::get<proto::CameraRequest::Index>(req.body).index, resp);
		break;
	case XENCAMERA_OP_CTRL_SET: {
		auto cs = std::get<proto::CameraRequest::CtrlSet>(req.body);
		if (!controlOffered(cs.type)) {
			status = -XEN_EINVAL;
			break;
		}
		/*
		 * Each CTRL_SET costs device ioctls and a CTRL_CHANGE on every
		 * other guest's event page: a budget per guest (a slider's worth,
		 * 20 at once, 10 per second), -XEN_EAGAIN beyond it.
		 */
		if (!ctrlBudget_.allow()) {
			stats_.throttledRequests++;
			status = -XEN_EAGAIN;
			break;
		}
		int64_t v = cs.value;
		status = xenStatus(hub_.setControl(this, cs.type, v));
		break;
	}
	case XENCAMERA_OP_CTRL_GET: {
		auto cg = std::get<proto::CameraRequest::CtrlGet>(req.body);
		if (!controlOffered(cg.type)) {
			status = -XEN_EINVAL;
			break;
		}
		int64_t v = 0;
		status = xenStatus(hub_.getControl(cg.type, v));
		if (!status) {
			resp.resp.ctrl_value.type = cg.type;
			resp.resp.ctrl_value.value = v;
		}
		break;
	}
	case XENCAMERA_OP_STREAM_START:
		status = opStreamStart();
		break;
	case XENCAMERA_OP_STREAM_STOP:
		opStreamStop();
		break;
	default:
		status = -XEN_ENOSYS;
	}
	/* Every refusal is visible in a debug log (interop work needs it), at a bounded rate. */
	if (status < 0 && requestLogLimit_.allow())
		XMB_LOG(logSession, Debug, "%s: %s answered %d", label_.c_str(),
			proto::cameraOpName(req.op).c_str(), status);
	resp.status = status;
	return resp;
}

void CameraSession::fillConfig(const StreamConfig &c, xencamera_resp &resp) const
{
	auto &r = resp.resp.config;
	r.pixel_format = c.fourcc;
	r.width = c.width;
	r.height = c.height;
	/*
	 * Always explicit: V4L2 forbids COLORSPACE_DEFAULT in G_FMT, and a
	 * frontend passes these straight on.  What the source said, with
	 * V4L2's own defaulting rules for what it left open.
	 */
	Colorimetry v = resolveColorimetry(c.colorimetry, c.fourcc, c.height);
	proto::CameraColorimetry x =
		proto::cameraColorimetryFromV4L2(v.colorspace, v.xferFunc, v.ycbcrEnc, v.quantization);
	r.colorspace = x.colorspace;
	r.xfer_func = x.xferFunc;
	r.ycbcr_enc = x.ycbcrEnc;
	r.quantization = x.quantization;
	uint32_t g = std::gcd(c.width, c.height);
	r.displ_asp_ratio_numer = g ? c.width / g : 0;
	r.displ_asp_ratio_denom = g ? c.height / g : 0;
	r.frame_rate_numer = c.interval.denominator;
	r.frame_rate_denom = c.interval.numerator;
}

/**
 * \brief The stream's configuration, or the camera's default one
 *
 * V4L2 applications (and Linux's frontend on open) ask for the current
 * format before setting one: there is always one to report.  The default is
 * validated against the camera like a CONFIG_VALIDATE, nothing is changed.
 */
Result<StreamConfig> CameraSession::currentOrDefault()
{
	if (const StreamConfig *c = hub_.current(this))
		return *c;
	if (!cfg_.defaultFourcc)
		return Error{ -EINVAL, "no format published" };
	return hub_.configure(this, cfg_.defaultFourcc, cfg_.defaultWidth, cfg_.defaultHeight, true);
}

int32_t CameraSession::opConfig(const proto::CameraRequest &req, xencamera_resp &resp)
{
	if (req.op == XENCAMERA_OP_CONFIG_GET) {
		auto c = currentOrDefault();
		if (!c)
			return xenStatus(c.error().code);
		fillConfig(*c, resp);
		return 0;
	}
	bool validate = req.op == XENCAMERA_OP_CONFIG_VALIDATE;
	/*
	 * cameraif: no configuration change while streaming or with buffers
	 * requested.  Linux's driver never sends BUF_REQUEST 0 (its REQBUFS 0
	 * destroys each buffer and stops there): with none created and
	 * nothing streaming, a count still requested is released here.
	 */
	if (!validate && (streaming_ || createdExtent()))
		return -XEN_EBUSY;
	if (!validate && numBufs_) {
		releaseBuffers();
		numBufs_ = 0;
	}
	auto c = std::get<proto::CameraRequest::Config>(req.body);
	auto r = hub_.configure(this, c.fourcc, c.width, c.height, validate);
	if (!r) {
		/* Tell the frontend what the camera is fixed at, if another guest fixed it. */
		if (const StreamConfig *cur = hub_.current(this))
			fillConfig(*cur, resp);
		return xenStatus(r.error().code);
	}
	fillConfig(*r, resp);
	if (!validate) {
		configured_ = true;
		layout_ = r->layout;
	}
	return 0;
}

int32_t CameraSession::opBufRequest(uint8_t n, xencamera_resp &resp)
{
	if (streaming_)
		return -XEN_EBUSY;
	if (!configured_)
		return -XEN_EINVAL;
	if (n == 0) {
		releaseBuffers(); /* the protocol's "free everything" */
		numBufs_ = 0;
		return 0;
	}
	if (pool_ && createdExtent()) {
		resp.resp.buf_request.num_bufs = 0; /* the camera's buffers are a fixed set: none added */
		return 0;
	}
	if (const unsigned created = createdExtent()) {
		/*
		 * Buffers exist: this is Linux's VIDIOC_CREATE_BUFS (REQBUFS
		 * destroys every buffer first).  vb2 creates the new buffers at
		 * the indices after its existing ones and takes our answer as
		 * the number *added*; nothing existing is touched.  Counted from
		 * the buffers that exist, not from the last count: the driver
		 * asks before checking the size, and a CREATE_BUFS it then
		 * refuses itself creates nothing (v4l2-compliance does that).
		 */
		numBufs_ = std::min<unsigned>(created + n, cfg_.maxBuffers);
		bufs_.resize(numBufs_);
		resp.resp.buf_request.num_bufs = static_cast<uint8_t>(numBufs_ - std::min(created, numBufs_));
		return 0;
	}
	/* Nothing created yet: the count is set (or tuned again, as cameraif allows). */
	numBufs_ = std::min<unsigned>(n, cfg_.maxBuffers);
	pool_.reset();
	if (cfg_.beAlloc)
		joinDevicePool(numBufs_);
	if (pool_)
		numBufs_ = std::min<unsigned>(pool_->size(), cfg_.maxBuffers);
	bufs_.resize(numBufs_);
	resp.resp.buf_request.num_bufs = static_cast<uint8_t>(numBufs_);
	return 0;
}

/**
 * \brief Tier "device buffers granted": be-alloc buffers are the camera's own
 *
 * Where the Dom0 kernel can grant a dma-buf (gntdev imp_to_refs), a
 * be-alloc guest gets the camera's buffers (DevicePool) instead of Dom0
 * pages the camera is then given: the only way a dma-contig driver, which
 * cannot capture into scattered pages, reaches a guest without a copy.
 * Otherwise (or if the camera cannot export and import its buffers) the
 * gntalloc be-alloc tier serves it, and the reason is logged once.
 */
void CameraSession::joinDevicePool(unsigned count)
{
	xen::DmaBufSupport dmabuf = dom0_.grants->probeDmaBuf();
	std::string why;
	const size_t kept = dom0_.grants->quarantinedPages(cfg_.frontend);
	if (!dmabuf.importToRefs) {
		why = dmabuf.detail;
	} else if (kept + count * proto::pagesFor(layout_.size) > cfg_.maxPages) {
		/* Released imports are kept until the guest is gone (XSA-396): bounded by its page cap. */
		why = std::to_string(kept) + " pages of its earlier device buffers are kept until it is "
		      "gone (it may still map them) and more would pass max-pages";
	} else {
		auto p = hub_.joinPool(this, count);
		if (p) {
			pool_ = std::move(*p);
			XMB_LOG(logSession, Info, "%s: be-alloc buffers are camera %s's own (%u, %s): "
				"device buffers granted (dma-buf)", label_.c_str(), hub_.name().c_str(),
				pool_->size(), pool_->isDmaBuf() ? "dma-bufs" : "memfds");
			return;
		}
		why = p.error().message;
	}
	if (!loggedPoolFallback_ || guestLogLimit_.allow()) {
		XMB_LOG(logSession, Info, "%s: be-alloc: Dom0 pages granted, the camera captures into "
			"them (device buffers cannot be granted: %s)", label_.c_str(), why.c_str());
		loggedPoolFallback_ = true;
	}
}

/**
 * \brief Grant device buffer \a index to the guest; refs into its directory
 *
 * The kernel grants the whole dma-buf (its size must match), writable;
 * the directory holds what the layout needs.  A failure before any buffer
 * exists drops back to the gntalloc tier (returns 1); later it fails the
 * request.
 */
int32_t CameraSession::grantDeviceBuffer(Buffer &b, unsigned index, uint32_t start,
					 std::span<xen::GrantMapping> dirPages)
{
	const DevicePool::Buffer &db = pool_->buffer(index);
	const size_t need = proto::pagesFor(layout_.size);
	const size_t pages = db.length / xen::kPageSize;
	if (start != 0 || db.length % xen::kPageSize || pages < need) {
		if (requestLogLimit_.allow())
			XMB_LOG(logSession, Debug, "%s: BUF_CREATE %u: device buffer of %zu bytes, plane offset "
				"%u, layout %u bytes: refused", label_.c_str(), index, db.length, start, layout_.size);
		return -XEN_EINVAL;
	}
	if (pagesInUse_ + pages > cfg_.maxPages)
		return -XEN_ENOMEM;
	auto g = dom0_.grants->refsFromDmabuf(cfg_.frontend, db.fd.get(), pages);
	if (!g) {
		if (!createdExtent()) {
			XMB_LOG(logSession, Warn, "%s: granting camera buffer %u failed (%s): Dom0 pages "
				"granted instead", label_.c_str(), index, g.error().message.c_str());
			pool_.reset();
			return 1;
		}
		return xenStatus(g.error().code);
	}
	Status w = writeGuestDirectory(dirPages, std::span(g->refs()).first(need));
	if (!w)
		return xenStatus(w.error().code);
	b.grant = std::make_shared<xen::DmaBufGrant>(std::move(*g));
	b.data = db.data;
	b.pages = pages;
	stats_.grantedPages += pages;
	return 0;
}

/** Highest created buffer index + 1; 0 when no buffer is created. */
unsigned CameraSession::createdExtent() const
{
	unsigned extent = 0;
	for (unsigned i = 0; i < numBufs_ && i < bufs_.size(); i++)
		if (bufs_[i].created)
			extent = i + 1;
	return extent;
}

/**
 * \brief Walk a guest's gref directory, mapping each directory page once.
 * \param keep Where to keep the (writable) directory mappings, for be-alloc
 *
 * The walk is bounded by the layout size (fixed by us, not the guest) and
 * the per-guest page cap; each directory page is copied out before use.
 */
Result<std::vector<xen::Gref>> CameraSession::walkDirectory(xen::Gref first, uint64_t bytes, bool collect,
							     std::vector<xen::GrantMapping> *keep)
{
	return walkGuestDirectory(*dom0_.grants, cfg_.frontend, first, bytes, cfg_.maxPages - pagesInUse_,
				  collect, keep);
}

/**
 * \brief Where a buffer's data starts in its pages, from BUF_CREATE's plane offsets
 * \return the offset, or nullopt if we refuse it
 *
 * plane_offset[0] places the buffer in its pages: Linux's xen-camera-front
 * sends the sub-page offset of USERPTR memory there.  The other planes
 * follow our layout (BUF_GET_LAYOUT) from that start.  Their plane_offset
 * fields are not read: that driver leaves them holding stale bytes of an
 * earlier response, so they carry no intent we could honour.  The start is
 * below a page, so a buffer spans at most one page more than its size.
 */
std::optional<uint32_t> CameraSession::dataOffset(const proto::CameraRequest::BufCreate &bc) const
{
	const uint32_t start = bc.planeOffset[0];
	if (start >= xen::kPageSize)
		return std::nullopt;
	return start;
}

int32_t CameraSession::opBufCreate(const proto::CameraRequest::BufCreate &bc)
{
	if (bc.index >= numBufs_ || bufs_[bc.index].created)
		return -XEN_EINVAL;
	auto start = dataOffset(bc);
	if (!start) {
		if (guestLogLimit_.allow())
			XMB_LOG(logSession, Warn, "%s: BUF_CREATE %u: plane_offset[0] %u is not a "
				"sub-page offset: refused", label_.c_str(), bc.index, bc.planeOffset[0]);
		return -XEN_EINVAL;
	}
	const uint64_t extent = uint64_t(*start) + layout_.size;

	Buffer &b = bufs_[bc.index];
	size_t pages = proto::pagesFor(extent);
	if (!cfg_.beAlloc) {
		auto grefs = walkDirectory(bc.grefDirectory, extent, true, nullptr);
		if (!grefs) {
			XMB_LOG(logSession, Debug, "%s: BUF_CREATE %u: %s", label_.c_str(), bc.index,
				grefs.error().message.c_str());
			return xenStatus(grefs.error().code);
		}
		auto m = dom0_.grants->map(cfg_.frontend, *grefs, true);
		if (!m) {
			XMB_LOG(logSession, Debug, "%s: BUF_CREATE %u: %s", label_.c_str(), bc.index,
				m.error().message.c_str());
			return xenStatus(m.error().code);
		}
		b.mapping = std::make_shared<xen::GrantMapping>(std::move(*m));
		b.data = b.mapping->data();
		exportAsDmaBuf(b, bc.index, *start, *grefs);
	} else {
		std::vector<xen::GrantMapping> dirPages;
		auto walked = walkDirectory(bc.grefDirectory, extent, false, &dirPages);
		if (!walked)
			return xenStatus(walked.error().code);
		if (pool_) {
			int32_t r = bc.index < pool_->size() ? grantDeviceBuffer(b, bc.index, *start, dirPages)
							      : -XEN_EINVAL;
			if (r < 0)
				return r;
			if (r == 0) {
				b.size = layout_.size;
				b.created = true;
				b.state = BufState::Frontend;
				pagesInUse_ += b.pages;
				return 0;
			}
		}
		/*
		 * Writable: Linux's xen-camera-front maps be-alloc pages writable
		 * and fails on a read-only grant (the protocol does not ask for
		 * read-only).  So a be-alloc guest can write its own buffers: no
		 * other guest may ever be given frames from these pages.
		 */
		auto share = dom0_.grants->share(cfg_.frontend, pages, true);
		if (!share) {
			/* Seen at 1080p: the guest cannot stream, and only the admin can fix it. */
			if (share.error().code == -ENOSPC && guestLogLimit_.allow())
				XMB_LOG(logSession, Warn,
					"%s: be-alloc buffer %u (%zu pages): Dom0 may grant no more pages: "
					"gntalloc's limit for all its users is reached (raise "
					"/sys/module/xen_gntalloc/parameters/limit; Linux's default is 1024 pages)",
					label_.c_str(), bc.index, pages);
			return xenStatus(share.error().code);
		}
		Status w = writeGuestDirectory(dirPages, share->refs());
		if (!w)
			return xenStatus(w.error().code);
		b.share = std::make_shared<xen::GrantShare>(std::move(*share));
		b.data = b.share->data();
		stats_.grantedPages += pages;
	}
	b.data += *start; /* the camera fills (or we copy into) the frame where the guest said */
	b.size = layout_.size;
	b.pages = pages;
	if (*start)
		XMB_LOG(logSession, Debug, "%s: buffer %u starts %u bytes into its first page",
			label_.c_str(), bc.index, *start);
	b.created = true;
	b.state = BufState::Frontend;
	pagesInUse_ += pages;
	stats_.mappedPages = dom0_.grants->mappedPages(cfg_.frontend);
	return 0;
}

/**
 * \brief Also make frontend-allocated buffer \a b a dma-buf of its pages
 *
 * Where Dom0's kernel exports foreign refs as a dma-buf (exp_from_refs:
 * Arm; x86 refuses it) and the camera imports dma-bufs, the camera then
 * writes the guest's pages through an import, as it would any dma-buf: no
 * user pages pinned and vmapped.  The page mapping stays for the rest (copies
 * to other guests, a Dom0 pipeline).  Not for a buffer that starts inside
 * its first page (a dma-buf has no offset for the camera to write at), nor
 * when the export fails: the buffer is then used as mapped pages only.
 */
void CameraSession::exportAsDmaBuf(Buffer &b, unsigned index, uint32_t start, std::span<const xen::Gref> refs)
{
	if (start || !hub_.importsDmaBufs() || !dom0_.grants->probeDmaBuf().exportFromRefs)
		return;
	auto d = dom0_.grants->dmabufFromRefs(cfg_.frontend, refs, true);
	if (!d) {
		if (guestLogLimit_.allow())
			XMB_LOG(logSession, Warn, "%s: buffer %u: exp_from_refs failed (%s): its pages are used "
				"as mapped memory", label_.c_str(), index, d.error().message.c_str());
		return;
	}
	b.dmabuf = std::make_shared<xen::ForeignDmaBuf>(std::move(*d));
}

bool CameraSession::buffersAreDmaBufs() const
{
	unsigned n = 0;
	for (unsigned i = 0; i < numBufs_ && i < bufs_.size(); i++) {
		if (!bufs_[i].created)
			continue;
		if (!bufs_[i].dmabuf)
			return false;
		n++;
	}
	return n > 0;
}

int32_t CameraSession::opBufDestroy(uint8_t index)
{
	if (index >= numBufs_ || !bufs_[index].created)
		return -XEN_EINVAL;
	Buffer &b = bufs_[index];
	if (b.state == BufState::InCamera)
		return -XEN_EBUSY;
	std::erase(queue_, index);
	pagesInUse_ -= b.pages;
	if (b.share || b.grant)
		stats_.grantedPages -= b.pages;
	b = Buffer{};
	stats_.mappedPages = dom0_.grants->mappedPages(cfg_.frontend);
	return 0;
}

int32_t CameraSession::opBufQueue(uint8_t index)
{
	if (index >= numBufs_ || !bufs_[index].created || bufs_[index].state != BufState::Frontend)
		return -XEN_EINVAL;
	bufs_[index].state = BufState::Queued;
	queue_.push_back(index);
	hub_.bufferQueued(this, index);
	return 0;
}

int32_t CameraSession::opBufDequeue(uint8_t index)
{
	if (index >= numBufs_ || !bufs_[index].created)
		return -XEN_EINVAL;
	Buffer &b = bufs_[index];
	if (b.state == BufState::InCamera)
		return -XEN_EBUSY; /* the camera may be writing it right now */
	if (b.state == BufState::Queued) {
		std::erase(queue_, index);
		b.state = BufState::Frontend;
	}
	return 0;
}

bool CameraSession::controlOffered(uint8_t type) const
{
	return std::find(cfg_.controls.begin(), cfg_.controls.end(), type) != cfg_.controls.end();
}

int32_t CameraSession::opCtrlEnum(uint8_t index, xencamera_resp &resp)
{
	std::vector<CameraControlInfo> offered;
	for (const auto &c : hub_.controls())
		if (controlOffered(c.type))
			offered.push_back(c);
	if (index >= offered.size())
		return -XEN_EINVAL;
	const auto &c = offered[index];
	auto &e = resp.resp.ctrl_enum;
	e.index = index;
	e.type = c.type;
	e.flags = c.flags;
	e.min = c.minimum;
	e.max = c.maximum;
	e.step = c.step;
	e.def_val = c.defaultValue;
	return 0;
}

int32_t CameraSession::opStreamStart()
{
	if (streaming_)
		return -XEN_EBUSY;
	if (!configured_ || !numBufs_ ||
	    std::none_of(bufs_.begin(), bufs_.end(), [](const Buffer &b) { return b.created; }))
		return -XEN_EINVAL;
	streaming_ = true;
	Status s = hub_.startStream(this);
	if (!s) {
		streaming_ = false;
		XMB_LOG(logSession, Warn, "%s: stream start: %s", label_.c_str(), s.error().message.c_str());
		return xenStatus(s.error().code);
	}
	XMB_LOG(logSession, Info, "%s: streaming, %s", label_.c_str(), tier());
	return 0;
}

void CameraSession::opStreamStop()
{
	if (!streaming_)
		return;
	hub_.stopStream(this);
	streaming_ = false;
	/* Every buffer goes back to the frontend, as vb2 expects after STREAMOFF. */
	for (auto &b : bufs_)
		if (b.created)
			b.state = BufState::Frontend;
	queue_.clear();
}

std::vector<unsigned> CameraSession::queuedBuffers()
{
	return { queue_.begin(), queue_.end() };
}

CallerBuffer CameraSession::bufferMemory(unsigned index)
{
	if (index >= bufs_.size() || !bufs_[index].created)
		return {};
	const Buffer &b = bufs_[index];
	std::shared_ptr<void> owner = b.mapping ? std::shared_ptr<void>(b.mapping)
				      : b.share ? std::shared_ptr<void>(b.share)
						: std::shared_ptr<void>(pool_);
	if (b.dmabuf) /* the dma-buf lives with its holders too (a queued import) */
		owner = std::make_shared<std::pair<std::shared_ptr<void>, std::shared_ptr<xen::ForeignDmaBuf>>>(
			std::move(owner), b.dmabuf);
	return { b.data, b.dmabuf ? b.dmabuf->fd() : -1, b.size, std::move(owner) };
}

void CameraSession::setInCamera(unsigned index, bool inCamera)
{
	if (index >= bufs_.size() || !bufs_[index].created)
		return;
	Buffer &b = bufs_[index];
	if (inCamera && b.state == BufState::Queued) {
		std::erase(queue_, index);
		b.state = BufState::InCamera;
	} else if (!inCamera && b.state == BufState::InCamera) {
		b.state = BufState::Queued;
		queue_.push_back(index);
	}
}

bool CameraSession::takeBuffer(unsigned index)
{
	if (!isQueued(index))
		return false;
	std::erase(queue_, index);
	bufs_[index].state = BufState::Frontend;
	return true;
}

bool CameraSession::takeBufferForCopy(unsigned &index)
{
	if (queue_.empty())
		return false;
	index = queue_.front();
	queue_.pop_front();
	bufs_[index].state = BufState::Frontend;
	return true;
}

void CameraSession::frameDone(unsigned index, uint32_t bytes, uint32_t seq, uint64_t copied, uint64_t captureNs)
{
	if (index >= bufs_.size() || !bufs_[index].created)
		return;
	std::erase(queue_, index);
	bufs_[index].state = BufState::Frontend;
	stats_.bytesCopied += copied;
	/*
	 * A full event page loses the event: the frame is dropped and the
	 * buffer re-queued so it is not lost (the ring server closes a guest
	 * that leaves its page full for kEventStall).
	 */
	switch (ring_.put(proto::makeFrameAvailEvent(evtId_++, static_cast<uint8_t>(index), bytes, seq))) {
	case RingServer<CameraRingProtocol>::Sent::Yes:
		stats_.frames++;
		delivered_.record(monotonicNs(), captureNs);
		break;
	case RingServer<CameraRingProtocol>::Sent::PageFull:
		stats_.drops++;
		bufs_[index].state = BufState::Queued;
		queue_.push_back(index);
		hub_.bufferQueued(this, index);
		break;
	case RingServer<CameraRingProtocol>::Sent::Closed:
		break;
	}
}

void CameraSession::controlChanged(uint8_t type, int64_t value)
{
	if (controlOffered(type))
		(void)ring_.put(proto::makeCtrlChangeEvent(evtId_++, type, value)); /* lost if the page is full */
}

void CameraSession::cameraFailed(const std::string &why)
{
	XMB_LOG(logSession, Warn, "%s: camera stopped: %s", label_.c_str(), why.c_str());
	streaming_ = false;
	for (auto &b : bufs_)
		if (b.created)
			b.state = BufState::Frontend;
	queue_.clear();
}

void CameraSession::releaseBuffers()
{
	queue_.clear();
	for (auto &b : bufs_)
		if (b.share || b.grant)
			stats_.grantedPages -= b.pages;
	bufs_.clear(); /* unmaps guest pages; ends (or defers) Dom0 grants */
	pool_.reset();
	pagesInUse_ = 0;
	stats_.mappedPages = dom0_.grants->mappedPages(cfg_.frontend);
}

} /* namespace xmb::service */
