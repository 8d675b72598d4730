/* SPDX-License-Identifier: MIT */
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <linux/videodev2.h>

#include "protocol/base/unique_fd.h"
#include "v4l2/device_io.h"
#include "v4l2/v4l2_format.h"

namespace xmb::testing {

/**
 * \brief A V4L2 device in user space, behind the DeviceIO seam.
 *
 * Emulates the vb2 queue state machine closely enough to test the capture
 * and encoder logic without a kernel driver: REQBUFS/CREATE_BUFS/QUERYBUF,
 * QBUF/DQBUF with MMAP (memfd-backed, really mmap-able and exportable),
 * USERPTR (written through the pointer) and DMABUF (written through the
 * fd, which is held like the kernel holds an attachment), STREAMON/OFF,
 * controls, events, and for the encoder kinds the stateful encoder's
 * encode loop, drain (ENC_CMD_STOP, LAST, EPIPE) and ENC_CMD_START.
 *
 * The device fd is an eventfd, so it can sit in a real epoll set.
 * Failures can be injected per ioctl and for mmap, and every resource it
 * hands out is counted so tests can assert nothing leaked.
 */
class FakeV4L2Device final : public DeviceIO
{
public:
	enum class Kind { Capture, CaptureMplane, Encoder, EncoderMplane };

	explicit FakeV4L2Device(Kind kind, std::string path = "/dev/fake-video0");
	~FakeV4L2Device() override;

	int open(const char *path, int flags) override;
	int close(int fd) override;
	int ioctl(int fd, unsigned long request, void *arg) override;
	int mmap(int fd, size_t length, int prot, off_t offset, void **addr) override;
	int munmap(void *addr, size_t length) override;

	/* --- fault injection --- */
	/** Fail the (skip+1)-th next call of \a request with -\a error. */
	void failIoctl(unsigned long request, int error, unsigned skip = 0);
	/** Fail the (skip+1)-th next mmap with -\a error. */
	void failMmap(int error, unsigned skip = 0);
	void setEncoderCommandsSupported(bool on) { encoderCommands_ = on; }
	/** Like a dma-contig driver: no USERPTR (REQBUFS refuses it, caps omit it). */
	void setUserPtrSupported(bool on) { userPtr_ = on; }
	/** Encoder: append " fnv=<FNV-1a of the raw frame>" to each bitstream payload. */
	void setPayloadChecksum(bool on) { payloadChecksum_ = on; }
	/**
	 * Off: like a vb2-vmalloc driver (vicodec) given an import without
	 * vmap (gntdev's): PREPARE_BUF/QBUF of a DMABUF fail EFAULT.
	 */
	void setDmaBufImportSupported(bool on) { dmabufImport_ = on; }
	/** VIDIOC_EXPBUF fails (a driver without vb2's export). */
	void setExpBufSupported(bool on) { expBuf_ = on; }
	/** No V4L2 events: (UN)SUBSCRIBE_EVENT and DQEVENT fail ENOTTY (a driver without them). */
	void setEventsSupported(bool on) { eventsSupported_ = on; }
	/**
	 * CaptureMplane: also offer NV12M (Y and CbCr in two memory planes,
	 * MMAP and USERPTR), and NV12 of its own only if \a nativeNV12.
	 */
	void setMultiBufferNV12(bool nativeNV12)
	{
		nv12m_ = true;
		nativeNV12_ = nativeNV12;
	}
	/** The fourcc the capture queue is set to. */
	[[nodiscard]] uint32_t captureFourcc() const { return capture_.format.fourcc; }

	/* --- stimuli --- */
	/** Capture: fill the oldest queued buffer with frame data; false = dropped. */
	bool produceFrame();
	/** Encoder: the coded format changes (new CAPTURE sizeimage). */
	void raiseSourceChange(uint32_t newCodedSize);
	/** Capture: the input now delivers \a width x \a height. */
	void raiseResolutionChange(uint32_t width, uint32_t height);
	/** Another opener changed control \a id. */
	void raiseControlChange(uint32_t id, int64_t value);

	/* --- introspection --- */
	[[nodiscard]] unsigned openCount() const { return static_cast<unsigned>(fds_.size()); }
	[[nodiscard]] size_t liveMappings() const { return mappings_.size(); }
	[[nodiscard]] size_t heldDmaBufs() const;
	[[nodiscard]] size_t allocatedBuffers() const;
	[[nodiscard]] bool isStreaming(bool outputQueue) const;
	[[nodiscard]] int64_t controlValue(uint32_t id) const;
	[[nodiscard]] unsigned keyFramesEncoded() const { return keyFrames_; }
	[[nodiscard]] unsigned framesEncoded() const { return encoded_; }
	[[nodiscard]] uint32_t lastExpbufFlags() const { return lastExpbufFlags_; }
	[[nodiscard]] unsigned ioctlCount(unsigned long request) const;
	/** Frame data the fake writes for capture sequence \a seq at byte \a i. */
	static uint8_t frameByte(uint32_t seq, size_t i) { return static_cast<uint8_t>(seq * 7 + i % 251); }

private:
	struct Buffer {
		enum class State { Idle, Queued, Done } state = State::Idle;
		uint32_t length = 0;
		UniqueFD memfd;	   /* MMAP backing */
		void *userptr = nullptr;
		UniqueFD dmabuf;   /* held like a dma-buf attachment */
		int dmabufFdNum = -1;
		uint32_t bytesUsed = 0;
		uint32_t flags = 0;
		uint32_t sequence = 0;
		timeval timestamp{};
		/* Memory planes 1.. of a multi-buffer format (MMAP and USERPTR only). */
		struct MorePlane {
			uint32_t length = 0;
			UniqueFD memfd;
			void *userptr = nullptr;
		};
		std::vector<MorePlane> more;
	};
	struct Queue {
		uint32_t type = 0;
		V4L2Format format;
		uint32_t memory = V4L2_MEMORY_MMAP;
		std::vector<Buffer> buffers;
		bool streaming = false;
		std::deque<unsigned> queued, done;
		uint32_t sequence = 0;
		v4l2_fract interval{ 1, 30 };
	};
	struct Control {
		v4l2_query_ext_ctrl info{};
		int64_t value = 0;
		std::vector<std::string> menu;
	};

	Queue *queueFor(uint32_t type);
	bool isMplane() const;
	bool isEncoder() const;
	void setFormat(Queue &q, V4L2Format &f, bool apply);
	int writeBuffer(Buffer &b, const void *data, size_t size);
	int readBuffer(const Buffer &b, void *data, size_t size) const;
	void freeBuffers(Queue &q);
	int allocatePlanes(const Queue &q, Buffer &b, uint32_t memory, uint32_t size0);
	void encodeLoop();
	void signal();
	void pushEvent(const v4l2_event &ev);
	int injected(unsigned long request);

	int doQueryCap(v4l2_capability *c);
	int doEnumFmt(v4l2_fmtdesc *d);
	int doEnumFrameSizes(v4l2_frmsizeenum *f);
	int doEnumFrameIntervals(v4l2_frmivalenum *f);
	int doFmt(unsigned long request, v4l2_format *f);
	int doParm(unsigned long request, v4l2_streamparm *p);
	int doReqBufs(v4l2_requestbuffers *r);
	int doCreateBufs(v4l2_create_buffers *c);
	int doQueryBuf(v4l2_buffer *b);
	int doQBuf(v4l2_buffer *b, bool prepareOnly = false);
	int doDQBuf(v4l2_buffer *b);
	int doExpBuf(v4l2_exportbuffer *e);
	int doStream(unsigned long request, const uint32_t *type);
	int doQueryExtCtrl(v4l2_query_ext_ctrl *q);
	int doQueryMenu(v4l2_querymenu *m);
	int doExtCtrls(unsigned long request, v4l2_ext_controls *cs);
	int doSubscribe(unsigned long request, v4l2_event_subscription *s);
	int doDQEvent(v4l2_event *e);
	int doEncoderCmd(unsigned long request, v4l2_encoder_cmd *c);
	void fillBuffer(const Queue &q, unsigned index, v4l2_buffer *b) const;

	Kind kind_;
	std::string path_;
	std::set<int> fds_;
	Queue capture_, output_;
	std::map<uint32_t, Control> controls_;
	std::set<std::pair<uint32_t, uint32_t>> subscriptions_;
	std::deque<v4l2_event> events_;
	std::map<void *, size_t> mappings_;
	std::map<unsigned long, std::deque<std::pair<unsigned, int>>> ioctlFailures_;
	std::map<unsigned long, unsigned> ioctlCounts_;
	std::deque<std::pair<unsigned, int>> mmapFailures_;
	bool encoderCommands_ = true;
	bool userPtr_ = true;
	bool payloadChecksum_ = false;
	bool expBuf_ = true;
	bool dmabufImport_ = true;
	bool eventsSupported_ = true;
	bool nv12m_ = false;
	bool nativeNV12_ = true;
	bool stopPending_ = false;
	bool lastSent_ = false;
	bool forceKey_ = false;
	unsigned encoded_ = 0;
	unsigned keyFrames_ = 0;
	uint32_t lastExpbufFlags_ = 0;
};

} /* namespace xmb::testing */
