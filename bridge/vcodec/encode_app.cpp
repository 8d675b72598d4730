/* SPDX-License-Identifier: MIT */
#include "bridge/vcodec/encode_app.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "v4l2/media_types.h"
#include "v4l2/test_pattern.h"

namespace xmb::vcodec {

namespace {

void le16(uint8_t *p, uint16_t v) { p[0] = v & 0xff; p[1] = v >> 8; }
void le32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (v >> (8 * i)) & 0xff; }
void le64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (v >> (8 * i)) & 0xff; }

constexpr uint32_t kYU12 = 0x32315559, kNV12 = 0x3231564e, kYUYV = 0x56595559;

/* Plane heights of a raw format (for sizes and for reading packed files). */
std::vector<std::pair<uint32_t, uint32_t>> planeDims(uint32_t fourcc, uint32_t w, uint32_t h)
{
	/* {bytes per row (packed), rows} */
	switch (fourcc) {
	case kYU12: return { { w, h }, { w / 2, h / 2 }, { w / 2, h / 2 } };
	case kNV12: return { { w, h }, { w, h / 2 } };
	case kYUYV: return { { w * 2, h } };
	default: return {};
	}
}

FrameLayout frameLayout(const CodecLayout &l, uint32_t fourcc, uint32_t w, uint32_t h)
{
	FrameLayout f;
	f.fourcc = fourcc;
	f.width = w;
	f.height = h;
	f.size = l.rawSize;
	auto dims = planeDims(fourcc, w, h);
	f.numPlanes = static_cast<unsigned>(dims.size());
	for (unsigned p = 0; p < f.numPlanes && p < l.numPlanes; p++) {
		f.planes[p].offset = l.planeOffset[p];
		f.planes[p].stride = l.planeStride[p];
		f.planes[p].size = l.planeStride[p] * dims[p].second;
	}
	return f;
}

} /* namespace */

ContainerWriter::~ContainerWriter()
{
	(void)close();
}

Status ContainerWriter::open(const std::string &path, uint32_t codec, uint32_t width,
			     uint32_t height, uint32_t rateNum, uint32_t rateDen)
{
	f_ = std::fopen(path.c_str(), "wb");
	if (!f_)
		return Error{ -errno, path + ": " + std::strerror(errno) };
	ivf_ = codec == XENVCODEC_CODEC_VP8 || codec == XENVCODEC_CODEC_VP9;
	frames_ = 0;
	if (ivf_) {
		uint8_t h[32] = { 'D', 'K', 'I', 'F' };
		le16(h + 4, 0);	 /* version */
		le16(h + 6, 32); /* header size */
		std::memcpy(h + 8, codec == XENVCODEC_CODEC_VP8 ? "VP80" : "VP90", 4);
		le16(h + 12, static_cast<uint16_t>(width));
		le16(h + 14, static_cast<uint16_t>(height));
		le32(h + 16, rateNum); /* time base: denominator = rate, numerator = 1 frame */
		le32(h + 20, rateDen);
		le32(h + 24, 0); /* frame count, patched at close */
		if (std::fwrite(h, 1, 32, f_) != 32)
			return Error{ -EIO, path + ": write failed" };
	}
	return {};
}

Status ContainerWriter::write(const uint8_t *data, size_t size, uint64_t pts)
{
	if (!f_)
		return Error{ -EBADF, "container not open" };
	if (ivf_) {
		uint8_t h[12];
		le32(h, static_cast<uint32_t>(size));
		le64(h + 4, pts);
		if (std::fwrite(h, 1, 12, f_) != 12)
			return Error{ -EIO, "write failed" };
	}
	if (size && std::fwrite(data, 1, size, f_) != size)
		return Error{ -EIO, "write failed" };
	frames_++;
	return {};
}

Status ContainerWriter::close()
{
	if (!f_)
		return {};
	if (ivf_) {
		uint8_t n[4];
		le32(n, frames_);
		std::fseek(f_, 24, SEEK_SET);
		std::fwrite(n, 1, 4, f_);
	}
	int r = std::fclose(f_);
	f_ = nullptr;
	if (r)
		return Error{ -EIO, "close failed" };
	return {};
}

Result<EncodeResult> runEncode(CodecFrontend &fe, const EncodeOptions &opt,
			       const std::function<void(std::span<const uint8_t>, const EncodedInfo &)> &onBitstream)
{
	auto codec = proto::codecFromName(opt.codec);
	if (!codec)
		return Error{ -EINVAL, "unknown codec '" + opt.codec + "' (vp8, vp9, h264, hevc, jpeg, fwht, raw)" };
	if (*codec == XENVCODEC_CODEC_RAW && !opt.output.empty())
		return Error{ -EINVAL, "codec raw: the frames stay in Dom0, no bitstream comes back to write to " +
					       opt.output };
	auto rc = proto::rcModeFromName(opt.rc);
	if (!rc)
		return Error{ -EINVAL, "unknown rate control '" + opt.rc + "' (vbr, cbr, cqp)" };
	xenvcodec_config cfg{};
	cfg.codec = *codec;
	cfg.raw_fourcc = opt.rawFourcc;
	cfg.width = opt.width;
	cfg.height = opt.height;
	cfg.frame_rate_numer = opt.rateNum;
	cfg.frame_rate_denom = opt.rateDen;
	cfg.rc_mode = *rc;
	cfg.bitrate = opt.bitrate;
	cfg.qp = opt.qp;
	cfg.gop = opt.gop;
	cfg.profile = opt.profile;
	if (auto r = fe.open(cfg); !r)
		return r.error();
	auto layout = fe.getLayout();
	if (!layout)
		return layout.error();
	uint8_t nbuf = std::min<uint8_t>(opt.buffers, layout->maxBuffers);
	/* raw: nothing comes back, so no OUTPUT buffers */
	uint8_t nout = *codec == XENVCODEC_CODEC_RAW ? 0 : nbuf;
	if (Status s = fe.createBuffers(nbuf, nout); !s)
		return s.error();
	for (uint8_t i = 0; i < nout; i++)
		if (Status s = fe.queueOut(i); !s)
			return s.error();

	FrameLayout fl = frameLayout(*layout, opt.rawFourcc, opt.width, opt.height);
	std::ifstream in;
	if (!opt.input.empty()) {
		in.open(opt.input, std::ios::binary);
		if (!in)
			return Error{ -ENOENT, opt.input + ": cannot open" };
	}
	ContainerWriter out;
	if (!opt.output.empty())
		if (Status s = out.open(opt.output, *codec, opt.width, opt.height, opt.rateNum, opt.rateDen); !s)
			return s.error();

	EncodeResult res;
	std::vector<uint8_t> freeIn;
	for (uint8_t i = 0; i < nbuf; i++)
		freeIn.push_back(i);
	auto handle = [&](const CodecEvent &e) -> Status {
		switch (e.type) {
		case XENVCODEC_EVT_INPUT_DONE:
			freeIn.push_back(e.index);
			break;
		case XENVCODEC_EVT_BITSTREAM_READY: {
			auto data = fe.outputData(e.index).subspan(0, e.bytesUsed);
			EncodedInfo info{ e.seq, e.timestamp, e.bytesUsed, e.key };
			res.frames.push_back(info);
			res.bytes += e.bytesUsed;
			if (onBitstream)
				onBitstream(data, info);
			if (!opt.output.empty())
				if (Status s = out.write(data.data(), data.size(), e.seq); !s)
					return s;
			return fe.queueOut(e.index);
		}
		case XENVCODEC_EVT_DRAINED:
			res.drained = true;
			break;
		case XENVCODEC_EVT_ERROR:
			res.errors++;
			break;
		}
		return {};
	};

	auto t0 = Clock::now();
	const uint64_t frameNs = uint64_t(1000000000) * opt.rateDen / opt.rateNum;
	for (uint32_t n = 0; n < opt.frames; n++) {
		while (freeIn.empty()) {
			auto e = fe.waitEvent();
			if (!e)
				return e.error();
			if (Status s = handle(*e); !s)
				return s.error();
		}
		uint8_t idx = freeIn.front();
		freeIn.erase(freeIn.begin());
		auto mem = fe.inputData(idx);
		if (in.is_open()) {
			/* A tightly packed raw file: rows into the layout's strides. */
			auto dims = planeDims(opt.rawFourcc, opt.width, opt.height);
			for (unsigned p = 0; p < dims.size(); p++)
				for (uint32_t row = 0; row < dims[p].second; row++)
					if (!in.read(reinterpret_cast<char *>(mem.data() + fl.planes[p].offset +
									       size_t(row) * fl.planes[p].stride),
						     dims[p].first))
						return Error{ -EIO, opt.input + ": short read at frame " + std::to_string(n) };
		} else if (!test_pattern::render(fl, n, mem.data(), mem.size())) {
			return Error{ -EINVAL, "test pattern cannot render this format" };
		}
		if (opt.bitrateAt && opt.bitrateAt->first == n)
			if (Status s = fe.setBitrate(opt.bitrateAt->second); !s)
				return s.error();
		bool key = std::find(opt.keyFrames.begin(), opt.keyFrames.end(), n) != opt.keyFrames.end();
		if (Status s = fe.queueRaw(idx, n * frameNs, key ? XENVCODEC_FRAME_FLAG_KEY : 0); !s)
			return s.error();
		res.framesIn++;
		while (auto e = fe.takeEvent())
			if (Status s = handle(*e); !s)
				return s.error();
	}
	if (opt.drainAtEnd) {
		if (Status s = fe.drain(); !s)
			return s.error();
		while (!res.drained) {
			auto e = fe.waitEvent();
			if (!e)
				return e.error();
			if (Status s = handle(*e); !s)
				return s.error();
		}
	}
	res.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
	/* raw: frames handed to Dom0 (no bitstream comes back) */
	size_t done = *codec == XENVCODEC_CODEC_RAW ? res.framesIn : res.frames.size();
	res.fps = res.seconds > 0 ? done / res.seconds : 0;
	if (!opt.output.empty())
		if (Status s = out.close(); !s)
			return s.error();
	return res;
}

std::string formatResult(const EncodeResult &r, const EncodeOptions &opt)
{
	size_t keys = std::count_if(r.frames.begin(), r.frames.end(), [](const EncodedInfo &i) { return i.key; });
	char buf[512];
	double kbps = r.seconds > 0 && !r.frames.empty()
			      ? r.bytes * 8.0 / (r.frames.size() * double(opt.rateDen) / opt.rateNum) / 1000
			      : 0;
	std::snprintf(buf, sizeof(buf),
		      "%s %ux%u: %u frames in, %zu encoded (%zu key), %llu bytes (%.0f kbit/s at %u/%u fps), "
		      "%.2f s, %.1f fps%s%s",
		      opt.codec.c_str(), opt.width, opt.height, r.framesIn, r.frames.size(), keys,
		      (unsigned long long)r.bytes, kbps, opt.rateNum, opt.rateDen, r.seconds, r.fps,
		      r.drained ? ", drained" : "", r.errors ? ", ERRORS" : "");
	return buf;
}

} /* namespace xmb::vcodec */
