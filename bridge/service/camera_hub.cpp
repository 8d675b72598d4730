/* SPDX-License-Identifier: MIT */
#include "bridge/service/camera_hub.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <sys/epoll.h>
#include <sys/mman.h>

#include "protocol/base/log.h"
#include "v4l2/pixel_format.h"

namespace xmb::service {

namespace {

/*
 * Dom0 frame memory shared with whoever holds it: a Dom0 pipeline element
 * may keep a buffer after the camera stopped; unmapped with the last holder.
 */
std::shared_ptr<void> anonymousBuffer(size_t length)
{
	void *p = ::mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return nullptr;
	return std::shared_ptr<void>(p, [length](void *q) { ::munmap(q, length); });
}

} /* namespace */


XMB_LOG_DEFINE_CATEGORY(logHub, "camera");

namespace {

std::string describe(const StreamConfig &c)
{
	char buf[96];
	std::snprintf(buf, sizeof(buf), "%c%c%c%c %ux%u", c.fourcc & 0xff, (c.fourcc >> 8) & 0xff,
		      (c.fourcc >> 16) & 0xff, (c.fourcc >> 24) & 0x7f, c.width, c.height);
	if (c.deviceFourcc)
		return std::string(buf) + " (from the camera's " + pixelFormatName(c.deviceFourcc) + ")";
	return buf;
}

} /* namespace */

CameraHub::CameraHub(std::string name, std::unique_ptr<CameraSource> source, EventLoop &loop,
		     HubOptions options)
	: name_(std::move(name)), source_(std::move(source)), loop_(loop), options_(std::move(options))
{
}

CameraHub::~CameraHub()
{
	if (running_)
		stopSource();
}

bool CameraHub::isAllowed(uint32_t fourcc) const
{
	const auto &a = options_.allowedFormats;
	return a.empty() || std::find(a.begin(), a.end(), fourcc) != a.end();
}

/**
 * \brief The device format the configuration asks for behind \a fourcc
 *
 * `formats = NV12M` names a camera's multi-buffer format; guests see it as
 * NV12.  When the list names such a format and not \a fourcc itself, that
 * is the one to use.  \return it, or 0: the source chooses (its own
 * \a fourcc where it has one)
 */
uint32_t CameraHub::preferredDeviceFourcc(uint32_t fourcc) const
{
	if (isAllowed(fourcc))
		return 0; /* also when nothing is listed: the loop below would find nothing */
	for (uint32_t f : options_.allowedFormats)
		if (oneBufferTwin(f) == fourcc)
			return f;
	return 0;
}

/**
 * \brief What guests may ask for: the source's formats the configuration
 * allows, each fourcc and size once
 *
 * An entry is allowed by its fourcc or by the device format behind it.  A
 * fourcc and size the source has twice (NV12 of its own and NV12 from
 * NV12M) is listed once, from the device format configure() will use.
 */
std::vector<FormatEntry> CameraHub::formats()
{
	std::vector<FormatEntry> all = source_->formats();
	std::erase_if(all, [&](const FormatEntry &f) {
		return !isAllowed(f.fourcc) && !(f.deviceFourcc && isAllowed(f.deviceFourcc));
	});
	std::vector<FormatEntry> out;
	for (const FormatEntry &f : all) {
		auto same = [&](const FormatEntry &o) {
			return o.fourcc == f.fourcc && o.width == f.width && o.height == f.height;
		};
		auto prev = std::find_if(out.begin(), out.end(), same);
		if (prev == out.end()) {
			out.push_back(f);
			continue;
		}
		/* Which one configure() would use: the asked-for device format, else the source's own. */
		uint32_t want = preferredDeviceFourcc(f.fourcc);
		if (prev->deviceFourcc != want && f.deviceFourcc == want)
			*prev = f;
	}
	return out;
}

/**
 * \brief Configure the camera for \a client, or check what it would get.
 *
 * While another frontend holds the configuration only that configuration
 * is accepted (-EBUSY otherwise; current() then tells the caller what it
 * is).  The source may adjust the request (nearest size); the adjusted
 * values are returned for the frontend to check, as cameraif requires.
 */
Result<StreamConfig> CameraHub::configure(HubClient *client, uint32_t fourcc, uint32_t width,
					  uint32_t height, bool validateOnly)
{
	const uint32_t device = preferredDeviceFourcc(fourcc);
	if (!isAllowed(fourcc) && !device)
		return Error{ -EINVAL, "format not allowed for camera " + name_ };

	bool othersHold = !holders_.empty() && !(holders_.size() == 1 && holders_.count(client));
	if (othersHold) {
		if (config_.fourcc == fourcc && config_.width == width && config_.height == height) {
			if (!validateOnly)
				holders_.insert(client);
			return config_;
		}
		return Error{ -EBUSY, "camera " + name_ + " is fixed at " + describe(config_) +
					      " by another guest" };
	}
	if (running_)
		return Error{ -EBUSY, "camera " + name_ + " is streaming" };

	StreamConfig c;
	c.fourcc = fourcc;
	c.width = width;
	c.height = height;
	c.interval = configured_ ? config_.interval : Fraction{ 1, 30 };
	c.deviceFourcc = device;
	int ret = validateOnly ? source_->tryConfigure(c) : source_->configure(c);
	if (ret < 0)
		return Error{ ret, "camera " + name_ + ": " + describe(c) + ": " + std::strerror(-ret) };
	if (!validateOnly) {
		config_ = c;
		configured_ = true;
		holders_.insert(client);
	}
	return c;
}

const StreamConfig *CameraHub::current(const HubClient *) const
{
	return configured_ && !holders_.empty() ? &config_ : nullptr;
}

Result<Fraction> CameraHub::setFrameInterval(HubClient *client, Fraction interval)
{
	if (!holders_.count(client))
		return Error{ -EINVAL, "frame rate before configuration" };
	/* Asking for the rate already in force is fine, even while another guest streams. */
	if (interval == config_.interval)
		return config_.interval;
	if (running_)
		return Error{ -EBUSY, "camera " + name_ + " is streaming" };
	if (holders_.size() > 1)
		return Error{ -EBUSY, "camera " + name_ + " frame rate is fixed by another guest" };
	int ret = source_->setFrameInterval(interval);
	if (ret < 0)
		return Error{ ret, "camera " + name_ + ": frame interval: " + std::strerror(-ret) };
	config_.interval = interval;
	return interval;
}

void CameraHub::releaseConfig(HubClient *client)
{
	holders_.erase(client);
}

Status CameraHub::startStream(HubClient *client)
{
	if (!holders_.count(client))
		return Error{ -EINVAL, "stream start before configuration" };
	if (std::find(streaming_.begin(), streaming_.end(), client) != streaming_.end())
		return Error{ -EBUSY, "already streaming" };
	streaming_.push_back(client);
	std::shared_ptr<DevicePool> wantPool = pickPool();
	HubClient *want = wantPool ? nullptr : pickLeader();
	if (running_) {
		if (want == leader_ && wantPool == streamPool_)
			return {}; /* copy mode already, the same leader, or one more guest on the pool */
		/* Who may receive frames without a copy changed (a second guest came, ...). */
		XMB_LOG(logHub, Info, "camera %s: %s starts: %s: restarting", name_.c_str(),
			client->label().c_str(), want ? "it can take frames without a copy"
						       : "frames now come from Dom0 memory for every guest");
		stopSource();
	}

	leader_ = want;
	streamPool_ = std::move(wantPool);
	copyMode_ = leader_ == nullptr && !streamPool_;
	Status s = startSource();
	if (!s) {
		streaming_.pop_back();
		leader_ = nullptr;
		streamPool_.reset();
		if (!streaming_.empty())
			pickLeaderAndRestart(); /* the others were streaming before this one came */
	}
	return s;
}

Status CameraHub::startSource()
{
	int ret;
	if (copyMode_ && !hasMemoryType(source_->supportedMemory(), MemoryType::MmapExport)) {
		/* A source that only fills caller memory: Dom0's own anonymous buffers. */
		ret = source_->allocateBuffers(MemoryType::UserPtr, 4);
		if (ret < 0)
			return Error{ ret, "camera " + name_ + ": allocate: " + std::strerror(-ret) };
		own_.clear();
		for (unsigned i = 0; i < static_cast<unsigned>(ret); i++) {
			size_t len = config_.layout.size;
			auto mem = anonymousBuffer(len);
			if (!mem) {
				stopSource();
				return Error{ -errno, "camera " + name_ + ": buffer: " + std::strerror(errno) };
			}
			own_.push_back({ UniqueFD(), static_cast<uint8_t *>(mem.get()), len, mem });
			source_->queueBuffer(i, CallerBuffer{ mem.get(), -1, len, mem });
		}
	} else if (copyMode_) {
		ret = source_->allocateBuffers(MemoryType::MmapExport, 4);
		if (ret < 0)
			return Error{ ret, "camera " + name_ + ": allocate: " + std::strerror(-ret) };
		own_.clear();
		for (unsigned i = 0; i < static_cast<unsigned>(ret); i++) {
			ExportedBuffer eb;
			int r = source_->exportBuffer(i, eb);
			void *p = r < 0 ? MAP_FAILED
					: ::mmap(nullptr, eb.length, PROT_READ, MAP_SHARED, eb.fd.get(), 0);
			if (p == MAP_FAILED) {
				stopSource();
				return Error{ r < 0 ? r : -errno, "camera " + name_ + ": export buffer " +
									 std::to_string(i) };
			}
			own_.push_back({ std::move(eb.fd), static_cast<uint8_t *>(p), eb.length });
			source_->queueBuffer(i);
		}
	} else if (streamPool_) {
		/* The granted device buffers, fed back to the camera as the dma-bufs they are. */
		ret = source_->allocateBuffers(MemoryType::DmaBufImport, streamPool_->size());
		if (ret < static_cast<int>(streamPool_->size())) {
			if (ret >= 0)
				source_->releaseBuffers();
			return Error{ ret < 0 ? ret : -ENOMEM, "camera " + name_ + ": import device buffers: " +
								std::strerror(ret < 0 ? -ret : ENOMEM) };
		}
		for (unsigned i : streamPool_->idle())
			queuePoolBuffer(i);
	} else {
		leaderSlots_ = leader_->bufferCount();
		/*
		 * The guest's buffers as dma-bufs where the kernel exported them
		 * (Arm): the driver maps them as any imported buffer.  No spares
		 * then: a spare must be a dma-buf too, and Dom0 anonymous memory
		 * is not one; while the guest holds every buffer the camera drops.
		 */
		leaderDmaBuf_ = importsDmaBufs() && leader_->buffersAreDmaBufs();
		const unsigned spares = leaderDmaBuf_ ? 0 : kSpares;
		ret = source_->allocateBuffers(leaderDmaBuf_ ? MemoryType::DmaBufImport : MemoryType::UserPtr,
					       leaderSlots_ + spares);
		if (ret < static_cast<int>(leaderSlots_ + spares))
			return Error{ ret < 0 ? ret : -ENOMEM,
				      "camera " + name_ + ": allocate: " + std::strerror(ret < 0 ? -ret : ENOMEM) };
		spares_.assign(spares, {});
		for (auto &sp : spares_) {
			sp.length = config_.layout.size;
			sp.keep = anonymousBuffer(sp.length);
			if (!sp.keep) {
				stopSource();
				return Error{ -errno, "camera " + name_ + ": spare buffer: " + std::strerror(errno) };
			}
			sp.data = static_cast<uint8_t *>(sp.keep.get());
		}
		for (unsigned idx : leader_->queuedBuffers()) {
			if (idx >= leaderSlots_)
				continue;
			int q = source_->queueBuffer(idx, leader_->bufferMemory(idx));
			if (q == 0) {
				leader_->setInCamera(idx, true);
				leaderInCamera_++;
			} else if (leaderDmaBuf_ && refusesUserPtr(q)) {
				/* The driver cannot use this dma-buf (e.g. dma-contig and scattered pages): user pointers. */
				dmabufRefused_ = std::string("QBUF DMABUF: ") + std::strerror(-q);
				XMB_LOG(logHub, Warn, "camera %s: the camera cannot import %s's buffers as dma-bufs "
					"(%s; a dma-contig driver needs contiguous memory, a vmalloc one a dma-buf it "
					"can vmap): trying its pages as user memory",
					name_.c_str(), leader_->label().c_str(), dmabufRefused_.c_str());
				stopSource();
				leader_ = pickLeader();
				copyMode_ = leader_ == nullptr;
				return startSource();
			} else if (refusesUserPtr(q)) {
				/* First failure: this camera cannot capture into guest pages.  Copy instead. */
				userPtrRefused_ = std::string("QBUF USERPTR: ") + std::strerror(-q);
				XMB_LOG(logHub, Warn, "camera %s: the camera cannot capture into %s's pages (%s; "
					"a dma-contig driver needs contiguous memory): frames are copied; "
					"'be-alloc = yes' on a Dom0 kernel with CONFIG_XEN_GNTDEV_DMABUF gives "
					"zero copy (the camera's own buffers granted)",
					name_.c_str(), leader_->label().c_str(), userPtrRefused_.c_str());
				stopSource();
				leader_ = nullptr;
				copyMode_ = true;
				return startSource();
			}
		}
	}
	if (copyMode_ && !loggedCopy_) {
		XMB_LOG(logHub, Warn, "camera %s: copy mode (%s): every frame is copied to each guest",
			name_.c_str(), copyReason().c_str());
		loggedCopy_ = true;
	}
	Status added = loop_.addFd(source_->pollFd(), [this](uint32_t) { onSourceReady(); },
				   source_->pollEvents());
	if (!added) {
		stopSource();
		return added;
	}
	ret = source_->start();
	if (ret < 0) {
		stopSource();
		return Error{ ret, "camera " + name_ + ": start: " + std::strerror(-ret) };
	}
	running_ = true;
	feedSpare();
	XMB_LOG(logHub, Info, "camera %s: streaming %s, %s", name_.c_str(), describe(config_).c_str(),
		copyMode_ ? "copy mode"
		: streamPool_ ? ("device buffers granted (dma-buf) to " + std::to_string(streaming_.size()) +
				 " guest(s), zero copy").c_str()
		: leaderDmaBuf_ ? ("zero-copy into " + leader_->label() + "'s buffers, imported as dma-bufs").c_str()
			      : ("zero-copy into " + leader_->label() + "'s buffers").c_str());
	return {};
}

void CameraHub::stopSource()
{
	leaderDmaBuf_ = false;
	loop_.removeFd(source_->pollFd());
	source_->stop();
	if (leader_)
		for (unsigned i = 0; i < leader_->bufferCount(); i++)
			leader_->setInCamera(i, false);
	leaderInCamera_ = 0;
	if (streamPool_)
		for (unsigned i = 0; i < streamPool_->size(); i++)
			streamPool_->setInCamera(i, false);
	source_->releaseBuffers();
	for (auto &b : own_)
		if (b.data && !b.keep)
			::munmap(b.data, b.length); /* our view of the source's buffer */
	own_.clear(); /* Dom0 buffers go when nobody holds them any more */
	spares_.clear();
	seqBase_ = nextSeq_;
	running_ = false;
}

/* Errors with which a driver says "not into this memory" (vb2: not contiguous, cannot pin). */
bool CameraHub::refusesUserPtr(int err) const
{
	return err == -EINVAL || err == -EFAULT || err == -ENOMEM || err == -ENOTSUP;
}

/* Keep the camera busy when the leader has no buffer in it (see Spare). */
void CameraHub::feedSpare()
{
	if (!leader_ || spares_.empty() || leaderInCamera_ > 0)
		return;
	Spare &sp = spares_[0];
	if (sp.inCamera)
		return;
	if (source_->queueBuffer(leaderSlots_, CallerBuffer{ sp.data, -1, sp.length, sp.keep }) == 0)
		sp.inCamera = true;
}

void CameraHub::stopStream(HubClient *client)
{
	auto it = std::find(streaming_.begin(), streaming_.end(), client);
	if (it == streaming_.end())
		return;
	streaming_.erase(it);
	/* What it held goes back: a stopped or dead guest never pins a device buffer. */
	if (auto pool = client->devicePool())
		pool->forget(client);
	if (!running_)
		return;
	if (streaming_.empty()) {
		stopSource();
		leader_ = nullptr;
		streamPool_.reset();
		return;
	}
	std::shared_ptr<DevicePool> wantPool = pickPool();
	if (streamPool_ && wantPool == streamPool_) {
		for (unsigned i : streamPool_->idle())
			queuePoolBuffer(i); /* the buffers it held */
		return;
	}
	if (!wantPool && !streamPool_ && pickLeader() == leader_ && client != leader_)
		return; /* nothing changes for the others */
	stopSource();
	leader_ = nullptr;
	streamPool_.reset();
	pickLeaderAndRestart();
}

void CameraHub::queuePoolBuffer(unsigned index)
{
	const DevicePool::Buffer &b = streamPool_->buffer(index);
	int ret = source_->queueBuffer(index, CallerBuffer{ nullptr, b.fd.get(), b.length, nullptr });
	if (ret == 0)
		streamPool_->setInCamera(index, true);
	else
		XMB_LOG(logHub, Warn, "camera %s: queue device buffer %u: %s", name_.c_str(), index,
			std::strerror(-ret));
}

/*
 * Pool mode when every streaming guest was granted the same device
 * buffers (one guest, or guests sharing by configuration).
 */
std::shared_ptr<DevicePool> CameraHub::pickPool() const
{
	if (options_.forceCopy || streaming_.empty())
		return nullptr;
	std::shared_ptr<DevicePool> pool = streaming_.front()->devicePool();
	if (!pool)
		return nullptr;
	if (streaming_.size() > 1 && !options_.shareDeviceBuffers)
		return nullptr;
	for (HubClient *c : streaming_)
		if (c->devicePool() != pool)
			return nullptr;
	return pool;
}

Result<std::shared_ptr<DevicePool>> CameraHub::joinPool(HubClient *client, unsigned count)
{
	if (!configured_ || !holders_.count(client))
		return Error{ -EINVAL, "device buffers before configuration" };
	if (options_.shareDeviceBuffers)
		if (auto shared = sharedPool_.lock()) {
			if (shared->size() && shared->buffer(0).length >= config_.layout.size)
				return shared;
		}
	if (running_)
		return Error{ -EBUSY, "camera " + name_ + " is streaming; its buffers are allocated "
					  "while it is idle" };
	auto pool = DevicePool::allocate(*source_, count);
	if (!pool)
		return Error{ pool.error().code, "camera " + name_ + ": " + pool.error().message };
	if (options_.shareDeviceBuffers)
		sharedPool_ = *pool;
	return pool;
}

/*
 * The streaming frontend the camera can capture into directly, first in
 * start order; nullptr: copy mode.
 */
bool CameraHub::importsDmaBufs() const
{
	return dmabufRefused_.empty() && hasMemoryType(source_->supportedMemory(), MemoryType::DmaBufImport);
}

HubClient *CameraHub::pickLeader() const
{
	const bool userPtr = hasMemoryType(source_->supportedMemory(), MemoryType::UserPtr);
	if (options_.forceCopy || (!userPtr && !importsDmaBufs()))
		return nullptr;
	for (HubClient *c : streaming_)
		if (c->devicePool())
			return nullptr; /* its memory is the camera's: pool mode or copies */
	/*
	 * Shared: the frames other guests get must come from memory no guest
	 * can write.  A leader's buffers are its own pages (or be-alloc pages
	 * granted writable), so it could rewrite a frame while we copy it to
	 * the others: with two or more streaming, the camera fills Dom0's
	 * memory and every guest gets a copy.
	 */
	if (streaming_.size() > 1)
		return nullptr;
	for (HubClient *c : streaming_) {
		/* A dma-buf of the guest's pages: the driver maps it like any import (no vmap of user pages). */
		if (importsDmaBufs() && c->buffersAreDmaBufs())
			return c;
		if (!userPtr || !userPtrRefused_.empty())
			continue; /* the camera takes no caller memory as user pointers */
		if (options_.foreignUserPtr || !c->buffersAreForeign())
			return c;
	}
	return nullptr;
}

std::string CameraHub::copyReason() const
{
	if (options_.forceCopy)
		return "forced by config";
	if (streaming_.size() > 1)
		return std::to_string(streaming_.size()) + " guests share the camera: their frames come "
		       "from Dom0 memory, never from a guest-writable buffer";
	if (!hasMemoryType(source_->supportedMemory(), MemoryType::UserPtr))
		return "source cannot fill caller memory";
	if (!userPtrRefused_.empty())
		return "the camera refused caller memory (" + userPtrRefused_ + ")";
	return "the guest buffers are foreign mappings the camera driver may not reach: " +
	       options_.foreignDetail + "; 'foreign-userptr = yes' if the driver only DMAs";
}

/* The leader left while others stream: the next one in line leads. */
void CameraHub::pickLeaderAndRestart()
{
	streamPool_ = pickPool();
	leader_ = streamPool_ ? nullptr : pickLeader();
	copyMode_ = leader_ == nullptr && !streamPool_;
	Status s = startSource();
	if (!s)
		failAll(s.error().message);
}

void CameraHub::bufferQueued(HubClient *client, unsigned index)
{
	if (auto pool = client->devicePool()) {
		/* Given back, in whatever mode: the camera may have it once nobody holds it. */
		if (index < pool->size() && pool->giveBack(index, client) && running_ && streamPool_ == pool)
			queuePoolBuffer(index);
		return;
	}
	if (!running_ || copyMode_ || client != leader_)
		return;
	int ret = source_->queueBuffer(index, client->bufferMemory(index));
	if (ret == 0) {
		client->setInCamera(index, true);
		leaderInCamera_++;
	} else
		XMB_LOG(logHub, Warn, "camera %s: queue buffer %u of %s: %s", name_.c_str(), index,
			client->label().c_str(), std::strerror(-ret));
}

void CameraHub::detach(HubClient *client)
{
	stopStream(client);
	releaseConfig(client);
	clients_.erase(client);
}

int CameraHub::setControl(HubClient *origin, uint8_t type, int64_t &value)
{
	int ret = source_->setControl(type, value);
	if (ret < 0)
		return ret;
	for (HubClient *c : clients_)
		if (c != origin)
			c->controlChanged(type, value);
	return 0;
}

void CameraHub::onSourceReady()
{
	CompletedFrame frame;
	int ret;
	while ((ret = source_->dequeueFrame(frame)) == 0)
		deliver(frame);
	if (ret != -EAGAIN) {
		failAll("camera " + name_ + ": dequeue: " + std::strerror(-ret));
		return;
	}
	SourceEvent ev;
	while (source_->dequeueEvent(ev) == 0) {
		switch (ev.type) {
		case SourceEvent::Type::ControlChanged:
			for (HubClient *c : clients_)
				c->controlChanged(ev.control, ev.value);
			break;
		case SourceEvent::Type::SourceChanged:
		case SourceEvent::Type::Error:
			failAll("camera " + name_ + (ev.type == SourceEvent::Type::Error
							     ? ": device error"
							     : ": source format changed"));
			return;
		}
	}
}

/**
 * \brief Hand a completed frame to every streaming frontend.
 *
 * Followers are served before the leader gets its buffer back, because
 * once the leader has it the guest may write into it.
 */
void CameraHub::deliver(const CompletedFrame &frame)
{
	const uint8_t *src = nullptr;
	size_t bytes = std::min<size_t>(frame.bytesUsed, config_.layout.size);
	uint32_t seq = seqBase_ + frame.sequence;
	/*
	 * Strict in what we send: every frame a guest gets has a later seq_num
	 * than the one before.  Drivers do repeat a sequence number (vivid when
	 * its thread runs late: two buffers, one count; seen under TCG), and
	 * Linux's frontend, like ours, takes a repeat for a broken backend.
	 */
	if (static_cast<int32_t>(seq - nextSeq_) < 0)
		seq = nextSeq_;
	nextSeq_ = seq + 1;
	if (streamPool_) {
		deliverPool(frame, seq);
		return;
	}
	bool spare = !copyMode_ && frame.index >= leaderSlots_;
	if (copyMode_) {
		if (frame.index >= own_.size())
			return;
		src = own_[frame.index].data;
		bytes = std::min(bytes, own_[frame.index].length);
	} else if (spare) {
		if (frame.index - leaderSlots_ >= spares_.size())
			return;
		Spare &sp = spares_[frame.index - leaderSlots_];
		sp.inCamera = false;
		src = sp.data;
		bytes = std::min(bytes, sp.length);
		leader_->frameDropped();
	} else {
		CallerBuffer mem = leader_->bufferMemory(frame.index);
		src = static_cast<const uint8_t *>(mem.data);
		bytes = std::min(bytes, mem.length);
		if (leaderInCamera_)
			leaderInCamera_--;
	}

	for (HubClient *c : std::vector<HubClient *>(streaming_)) {
		if (c == leader_)
			continue;
		unsigned idx;
		if (!src || !takeCopyDestination(c, idx)) {
			c->frameDropped();
			continue;
		}
		CallerBuffer dst = c->bufferMemory(idx);
		size_t n = std::min(bytes, dst.length);
		std::memcpy(dst.data, src, n);
		c->frameDone(idx, static_cast<uint32_t>(n), seq, n, frame.timestampNs);
	}

	if (copyMode_ && own_[frame.index].keep) { /* Dom0 memory queued as caller memory */
		const OwnBuffer &b = own_[frame.index];
		source_->queueBuffer(frame.index, CallerBuffer{ b.data, -1, b.length, b.keep });
	} else if (copyMode_) {
		source_->queueBuffer(frame.index);
	} else if (!spare) {
		leader_->setInCamera(frame.index, false);
		/* 0 unless the source itself copied (libv4l2 emulation, planes of a camera without USERPTR). */
		leader_->frameDone(frame.index, static_cast<uint32_t>(bytes), seq,
				   source_->emulatedCopyBytesPerFrame(), frame.timestampNs);
	}
	feedSpare();
}

/*
 * A queued buffer of \a c to copy a frame into.  Device buffers shared by
 * several guests: only one no other guest holds (another guest may be
 * reading that memory), recorded as held so it is not reused under it.
 */
bool CameraHub::takeCopyDestination(HubClient *c, unsigned &index)
{
	std::shared_ptr<DevicePool> pool = c->devicePool();
	if (!pool)
		return c->takeBufferForCopy(index);
	for (unsigned i : c->queuedBuffers())
		if (i < pool->size() && pool->isIdle(i) && pool->give(i, c, pool->size()) && c->takeBuffer(i)) {
			index = i;
			return true;
		}
	return false;
}

/**
 * \brief Pool mode: the frame is in a device buffer granted to every streaming guest
 *
 * Each guest waiting for that buffer (it queued it) and under its quota
 * gets it, with 0 bytes copied; the others miss the frame.  The buffer
 * goes back to the camera when the last of them gives it back.
 */
void CameraHub::deliverPool(const CompletedFrame &frame, uint32_t seq)
{
	std::shared_ptr<DevicePool> pool = streamPool_;
	const unsigned i = frame.index;
	if (i >= pool->size())
		return;
	pool->setInCamera(i, false);
	const auto bytes = static_cast<uint32_t>(
		std::min<size_t>({ frame.bytesUsed, config_.layout.size, pool->buffer(i).length }));
	const unsigned quota = pool->quota(streaming_.size());
	for (HubClient *c : std::vector<HubClient *>(streaming_)) {
		if (c->isQueued(i) && pool->give(i, c, quota))
			c->frameDone(i, bytes, seq, 0, frame.timestampNs);
		else
			c->frameDropped();
	}
	if (running_ && streamPool_ == pool && pool->isIdle(i))
		queuePoolBuffer(i); /* nobody took it */
}

void CameraHub::failAll(const std::string &why)
{
	XMB_LOG(logHub, Error, "%s", why.c_str());
	auto victims = streaming_;
	if (running_)
		stopSource();
	for (HubClient *c : victims)
		if (auto pool = c->devicePool())
			pool->forget(c);
	streaming_.clear();
	leader_ = nullptr;
	streamPool_.reset();
	for (HubClient *c : victims)
		c->cameraFailed(why);
}

} /* namespace xmb::service */
