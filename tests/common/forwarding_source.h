/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A camera source that forwards everything to another one, for tests that
 * change one behaviour of a real source (a Dom0 pipeline holding buffers, a
 * dma-contig driver refusing scattered memory, ...) by overriding it.
 */
#include <memory>

#include "v4l2/camera_source.h"

namespace xmb::test {

class ForwardingSource : public CameraSource
{
public:
	explicit ForwardingSource(std::unique_ptr<CameraSource> inner) : inner_(std::move(inner)) {}
	std::string id() const override { return inner_->id(); }
	std::string description() const override { return inner_->description(); }
	std::vector<FormatEntry> formats() override { return inner_->formats(); }
	MemoryTypes supportedMemory() const override { return inner_->supportedMemory(); }
	int tryConfigure(StreamConfig &c) override { return inner_->tryConfigure(c); }
	int configure(StreamConfig &c) override { return inner_->configure(c); }
	int setFrameInterval(Fraction &i) override { return inner_->setFrameInterval(i); }
	int allocateBuffers(MemoryType m, unsigned n) override { return inner_->allocateBuffers(m, n); }
	int exportBuffer(unsigned i, ExportedBuffer &out) override { return inner_->exportBuffer(i, out); }
	int queueBuffer(unsigned i, const CallerBuffer &mem) override { return inner_->queueBuffer(i, mem); }
	int releaseBuffers() override { return inner_->releaseBuffers(); }
	int start() override { return inner_->start(); }
	int stop() override { return inner_->stop(); }
	int pollFd() const override { return inner_->pollFd(); }
	uint32_t pollEvents() const override { return inner_->pollEvents(); }
	int dequeueFrame(CompletedFrame &f) override { return inner_->dequeueFrame(f); }
	int dequeueEvent(SourceEvent &e) override { return inner_->dequeueEvent(e); }
	std::vector<CameraControlInfo> controls() override { return inner_->controls(); }
	int getControl(uint8_t t, int64_t &v) override { return inner_->getControl(t, v); }
	int setControl(uint8_t t, int64_t &v) override { return inner_->setControl(t, v); }

protected:
	std::unique_ptr<CameraSource> inner_;
};

} /* namespace xmb::test */
