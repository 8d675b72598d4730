/* SPDX-License-Identifier: MIT */
/* xmb-camera-guest: list devices, capture, save, check the test pattern. */
#include "bridge/frontend/capture_app.h"

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <optional>
#include <ostream>
#include <sstream>
#include <sys/stat.h>

#include "bridge/frontend/camera_frontend.h"
#include "bridge/image/convert.h"
#include "bridge/image/png_writer.h"
#include "protocol/cameraif.h"
#include "v4l2/test_pattern.h"

namespace xmb::frontend {

namespace {

std::string fourccStr(uint32_t f)
{
	return proto::formatFourccLabel(f);
}

Result<uint64_t> parseNumber(const std::string &opt, const std::string &v, uint64_t min, uint64_t max)
{
	auto n = proto::parseUnsigned(opt, v, max);
	if (!n)
		return Error{ -EINVAL, opt + ": '" + v + "' is not a number up to " + std::to_string(max) };
	if (*n < min)
		return Error{ -EINVAL, opt + ": must be at least " + std::to_string(min) };
	return *n;
}

std::string ctrlName(uint8_t type)
{
	const char *n = proto::cameraCtrlName(type);
	return n ? n : "control" + std::to_string(type);
}

std::string statusLine(const Error &e)
{
	return e.message + (e.code ? " [" + std::to_string(e.code) + "]" : "");
}

Status ensureDir(const std::string &dir)
{
	if (::mkdir(dir.c_str(), 0755) == 0 || errno == EEXIST)
		return {};
	return Error{ -errno, dir + ": " + std::strerror(errno) };
}

/* Compares frames with the test pattern, rendered into the buffer's layout. */
class PatternChecker
{
public:
	Status init(const FrameLayout &layout)
	{
		layout_ = layout;
		auto packed = test_pattern::layout(layout.fourcc, layout.width, layout.height);
		if (!packed)
			return Error{ -ENOTSUP, "--check-pattern: the test pattern has no " +
							fourccStr(layout.fourcc) + " " +
							std::to_string(layout.width) + "x" +
							std::to_string(layout.height) };
		packed_ = *packed;
		expected_.resize(layout.size);
		if (!test_pattern::render(layout_, 0, expected_.data(), expected_.size()))
			return Error{ -ENOTSUP, "--check-pattern: cannot render the pattern into the "
						"backend's buffer layout" };
		return {};
	}

	/*
	 * nullopt if the frame with seq_num \a seq is the pattern's frame
	 * seq - base, where base is fixed by the first frame's own counter: a
	 * test-pattern camera counts from 0 at each start, while the service's
	 * seq_num for that camera goes on across starts (an earlier guest's
	 * stream).  Else a description of the first difference.
	 */
	std::optional<std::string> check(uint64_t seq, std::span<const uint8_t> data, uint32_t used)
	{
		if (!base_) {
			base_ = 0;
			if (layout_ == packed_)
				if (auto c = test_pattern::readCounter(layout_.fourcc, layout_.width, layout_.height,
								       data.data(), std::min<size_t>(used, data.size()));
				    c && *c <= seq)
					base_ = seq - *c;
		}
		const uint64_t n = seq - *base_;
		test_pattern::render(layout_, n, expected_.data(), expected_.size());
		for (unsigned p = 0; p < packed_.numPlanes; p++) {
			const uint32_t rowBytes = packed_.planes[p].stride;
			const uint32_t rows = rowBytes ? packed_.planes[p].size / rowBytes : 0;
			const PlaneLayout &pl = layout_.planes[p];
			for (uint32_t r = 0; r < rows; r++) {
				size_t off = pl.offset + size_t{ r } * pl.stride;
				if (off + rowBytes > used || off + rowBytes > data.size())
					return "frame of " + std::to_string(used) + " bytes ends inside plane " +
					       std::to_string(p) + " row " + std::to_string(r);
				const uint8_t *got = data.data() + off, *want = expected_.data() + off;
				if (std::memcmp(got, want, rowBytes) == 0)
					continue;
				uint32_t c = 0;
				while (got[c] == want[c])
					c++;
				std::ostringstream s;
				s << "plane " << p << " row " << r << " byte " << c << " (offset " << off + c
				  << "): got " << unsigned(got[c]) << ", expected " << unsigned(want[c]);
				if (layout_ == packed_) {
					auto counter = test_pattern::readCounter(layout_.fourcc, layout_.width,
										 layout_.height, data.data(),
										 used);
					if (counter)
						s << "; the frame's counter reads " << *counter;
				}
				return s.str();
			}
		}
		return std::nullopt;
	}

private:
	FrameLayout layout_;
	FrameLayout packed_;
	std::vector<uint8_t> expected_;
	std::optional<uint64_t> base_; /* seq_num - pattern frame number, from the first frame */
};

} /* namespace */

std::string captureUsage(const char *argv0)
{
	std::ostringstream s;
	s << "Usage: " << argv0 << " [options]\n"
	  << "Capture from a para-virtual camera (Xen cameraif) in this guest.\n\n"
	  << "  --list                 list this domain's vcamera devices and exit\n"
	  << "  --device N             vcamera device id (default 0)\n"
	  << "  --format FOURCC        pixel format, e.g. NV12 (default: first advertised)\n"
	  << "  --size WxH             frame size (default: first advertised for the format)\n"
	  << "  --rate N/D             frame rate in frames per second, e.g. 30/1\n"
	  << "  --buffers N            buffers to request (default 4)\n"
	  << "  --frames N             stop after N frames (default: until Ctrl-C)\n"
	  << "  --save-raw DIR         write frames as DIR/frame-<seq>.<fourcc>\n"
	  << "  --save-png DIR         write frames as DIR/frame-<seq>.png\n"
	  << "  --every K              save every K-th frame only (default 1)\n"
	  << "  --set-control NAME=V   set a control (brightness, contrast, saturation,\n"
	  << "                         hue, or a type number); may be repeated\n"
	  << "  --check-pattern        verify every frame against the test pattern\n"
	  << "                         (frame number = seq_num, offset by the first\n"
	  << "                         frame's counter), print mismatches\n"
	  << "  --timeout MS           request/frame timeout (default 5000)\n"
	  << "  --quiet                no per-second lines, only the summary\n"
	  << "  --help                 this text\n\n"
	  << "Exit status: 0 ok, 1 runtime failure (or pattern mismatch), 2 usage error.\n";
	return s.str();
}

Result<CaptureOptions> parseCaptureArgs(int argc, const char *const *argv)
{
	CaptureOptions o;
	for (int i = 1; i < argc; i++) {
		std::string a = argv[i];
		std::string value;
		bool hasInline = false;
		if (a.rfind("--", 0) == 0) {
			if (auto eq = a.find('='); eq != std::string::npos) {
				value = a.substr(eq + 1);
				a = a.substr(0, eq);
				hasInline = true;
			}
		}
		auto need = [&]() -> Result<std::string> {
			if (hasInline)
				return value;
			if (i + 1 >= argc)
				return Error{ -EINVAL, a + ": missing value" };
			return std::string(argv[++i]);
		};
		auto flag = [&]() -> Status {
			if (hasInline)
				return Error{ -EINVAL, a + ": takes no value" };
			return {};
		};
#define XMB_NEED(var)                   \
	auto var = need();              \
	if (!var)                       \
		return var.error();
		if (a == "--help" || a == "-h") {
			o.help = true;
		} else if (a == "--list") {
			if (Status s = flag(); !s)
				return s.error();
			o.list = true;
		} else if (a == "--check-pattern") {
			if (Status s = flag(); !s)
				return s.error();
			o.checkPattern = true;
		} else if (a == "--quiet") {
			if (Status s = flag(); !s)
				return s.error();
			o.quiet = true;
		} else if (a == "--device") {
			XMB_NEED(v);
			auto n = parseNumber(a, *v, 0, UINT32_MAX);
			if (!n)
				return n.error();
			o.devid = static_cast<uint32_t>(*n);
		} else if (a == "--format") {
			XMB_NEED(v);
			auto f = proto::parseFourccLabel("--format", *v);
			if (!f)
				return f.error();
			o.fourcc = *f;
		} else if (a == "--size") {
			XMB_NEED(v);
			auto wh = proto::parseResolution("--size", *v);
			if (!wh)
				return wh.error();
			o.width = wh->first;
			o.height = wh->second;
		} else if (a == "--rate") {
			XMB_NEED(v);
			auto r = proto::parseFrameRates("--rate", *v);
			if (!r)
				return r.error();
			if (r->size() != 1)
				return Error{ -EINVAL, "--rate: one N/D fraction expected" };
			o.rate = r->front();
		} else if (a == "--buffers") {
			XMB_NEED(v);
			auto n = parseNumber(a, *v, 1, UINT8_MAX);
			if (!n)
				return n.error();
			o.buffers = static_cast<unsigned>(*n);
		} else if (a == "--frames") {
			XMB_NEED(v);
			auto n = parseNumber(a, *v, 1, UINT64_MAX);
			if (!n)
				return n.error();
			o.frames = *n;
		} else if (a == "--every") {
			XMB_NEED(v);
			auto n = parseNumber(a, *v, 1, UINT32_MAX);
			if (!n)
				return n.error();
			o.every = static_cast<unsigned>(*n);
		} else if (a == "--timeout") {
			XMB_NEED(v);
			auto n = parseNumber(a, *v, 1, 3600 * 1000);
			if (!n)
				return n.error();
			o.timeout = std::chrono::milliseconds(*n);
		} else if (a == "--save-raw" || a == "--save-png") {
			XMB_NEED(v);
			if (v->empty())
				return Error{ -EINVAL, a + ": empty directory" };
			(a == "--save-raw" ? o.saveRawDir : o.savePngDir) = *v;
		} else if (a == "--set-control") {
			XMB_NEED(v);
			auto eq = v->find('=');
			if (eq == std::string::npos || eq == 0)
				return Error{ -EINVAL, "--set-control: '" + *v + "': expected NAME=VALUE" };
			std::string name = v->substr(0, eq), val = v->substr(eq + 1);
			std::optional<uint8_t> type = proto::cameraCtrlFromName(name);
			if (!type) {
				auto n = proto::parseUnsigned("--set-control", name, UINT8_MAX);
				if (!n)
					return Error{ -EINVAL, "--set-control: unknown control '" + name +
								       "' (brightness, contrast, saturation, hue "
								       "or a number)" };
				type = static_cast<uint8_t>(*n);
			}
			errno = 0;
			char *end = nullptr;
			long long x = std::strtoll(val.c_str(), &end, 0);
			if (val.empty() || *end || errno)
				return Error{ -EINVAL, "--set-control: '" + val + "' is not an integer" };
			o.controls.emplace_back(*type, static_cast<int64_t>(x));
		} else {
			return Error{ -EINVAL, "unknown argument '" + std::string(argv[i]) + "'" };
		}
#undef XMB_NEED
	}
	if (o.list && (o.checkPattern || !o.saveRawDir.empty() || !o.savePngDir.empty()))
		return Error{ -EINVAL, "--list does not capture: drop the capture options" };
	return o;
}

int listDevices(xen::Platform &platform, std::ostream &out, std::ostream &err)
{
	auto devs = CameraFrontend::discover(platform);
	if (!devs) {
		err << "error: discovering vcamera devices: " << statusLine(devs.error()) << "\n";
		return kExitFailure;
	}
	if (devs->empty()) {
		out << "no vcamera devices in dom" << platform.self << "\n";
		return kExitOk;
	}
	for (const DeviceInfo &d : *devs) {
		const proto::VcameraConfig &c = d.config;
		out << "device " << d.devid << ": " << c.uniqueId << "\n"
		    << "  backend: dom" << d.backendId << " " << d.backendPath << " ("
		    << xenbusStateName(d.backendState) << "), frontend "
		    << xenbusStateName(d.frontendState) << "\n"
		    << "  buffers: up to " << unsigned(c.maxBuffers) << ", "
		    << (c.beAlloc ? "backend-allocated" : "frontend-allocated") << "\n"
		    << "  controls:";
		if (c.controls.empty())
			out << " none";
		for (uint8_t t : c.controls)
			out << " " << ctrlName(t);
		out << "\n";
		for (const proto::FormatCaps &f : c.formats) {
			out << "  format " << fourccStr(f.fourcc) << ":\n";
			for (const proto::Resolution &r : f.resolutions) {
				out << "    " << r.width << "x" << r.height << " @";
				for (size_t i = 0; i < r.frameRates.size(); i++)
					out << (i ? "," : " ") << r.frameRates[i].num << "/"
					    << r.frameRates[i].den;
				out << "\n";
			}
		}
	}
	return kExitOk;
}

int runCapture(xen::Platform &platform, const CaptureOptions &opts, std::ostream &out,
	       std::ostream &err, const std::atomic<bool> *stop)
{
	auto fail = [&](const std::string &what, const Error &e) {
		err << "error: " << what << (what.empty() ? "" : ": ") << statusLine(e) << "\n";
		return kExitFailure;
	};
	auto stopped = [&] { return stop && stop->load(); };

	for (const std::string *dir : { &opts.saveRawDir, &opts.savePngDir })
		if (!dir->empty())
			if (Status s = ensureDir(*dir); !s)
				return fail("output directory", s.error());

	CameraFrontend fe(platform);
	fe.setTimeout(opts.timeout);
	if (Status s = fe.connect(opts.devid, opts.timeout); !s)
		return fail("", s.error());
	const proto::VcameraConfig &caps = fe.device().config;

	/* Choose format, size and rate: given, else the first advertised. */
	uint32_t fourcc = opts.fourcc, width = opts.width, height = opts.height;
	proto::Fraction rate = opts.rate;
	const proto::FormatCaps *fmt = nullptr;
	for (const auto &f : caps.formats)
		if (!fourcc || f.fourcc == fourcc) {
			fmt = &f;
			break;
		}
	if (!fourcc) {
		if (!fmt)
			return fail("", Error{ -ENOENT, "device advertises no formats" });
		fourcc = fmt->fourcc;
	}
	const proto::Resolution *res = nullptr;
	if (fmt)
		for (const auto &r : fmt->resolutions)
			if (!width || (r.width == width && r.height == height)) {
				res = &r;
				break;
			}
	if (!width) {
		if (!res)
			return fail("", Error{ -ENOENT, "device advertises no size for " + fourccStr(fourcc) +
							       ": give --size" });
		width = res->width;
		height = res->height;
	}
	if (!rate.den && res && !res->frameRates.empty())
		rate = res->frameRates.front();

	for (const auto &[type, value] : opts.controls)
		if (Status s = fe.ctrlSet(type, value); !s)
			return fail("", s.error());

	auto cfg = fe.configSet(fourcc, width, height);
	if (!cfg)
		return fail("", cfg.error());
	if (cfg->fourcc != fourcc || cfg->width != width || cfg->height != height)
		err << "warning: backend chose " << fourccStr(cfg->fourcc) << " " << cfg->width << "x"
		    << cfg->height << " instead of " << fourccStr(fourcc) << " " << width << "x"
		    << height << "\n";
	if (rate.den) {
		if (Status s = fe.frameRateSet(rate.num, rate.den); !s)
			return fail("", s.error());
	}
	auto layout = fe.getLayout();
	if (!layout)
		return fail("", layout.error());
	auto nbufs = fe.allocateBuffers(static_cast<uint8_t>(opts.buffers));
	if (!nbufs)
		return fail("allocating buffers", nbufs.error());

	FrameLayout fl;
	fl.fourcc = cfg->fourcc;
	fl.width = cfg->width;
	fl.height = cfg->height;
	fl.size = layout->size;
	fl.numPlanes = layout->numPlanes;
	for (unsigned p = 0; p < layout->numPlanes; p++)
		fl.planes[p] = { layout->planeOffset(p), layout->planeStride[p], layout->planeSize[p] };

	PatternChecker checker;
	if (opts.checkPattern)
		if (Status s = checker.init(fl); !s)
			return fail("", s.error());
	if (!opts.savePngDir.empty() && !image::canConvert(fl.fourcc))
		return fail("--save-png", Error{ -ENOTSUP, "no RGB conversion for " + fourccStr(fl.fourcc) });

	out << "capturing from vcamera " << opts.devid << " (" << caps.uniqueId << "): "
	    << fourccStr(fl.fourcc) << " " << fl.width << "x" << fl.height;
	if (rate.den)
		out << " @ " << rate.num << "/" << rate.den;
	out << ", " << unsigned(*nbufs) << " buffers of " << layout->size << " bytes ("
	    << (caps.beAlloc ? "backend" : "frontend") << "-allocated)\n";

	if (Status s = fe.queueAll(); !s)
		return fail("", s.error());
	if (Status s = fe.streamStart(); !s)
		return fail("", s.error());

	const auto start = Clock::now();
	auto lastReport = start;
	auto lastFrame = start;
	uint64_t reportFrames = 0, frames = 0, mismatches = 0, savedRaw = 0, savedPng = 0;
	int rc = kExitOk;
	std::string failure;

	while (!stopped() && (!opts.frames || frames < opts.frames)) {
		auto f = fe.waitFrame(std::chrono::milliseconds(250));
		auto now = Clock::now();
		if (!f) {
			if (f.error().code == -EINTR)
				continue; /* a signal: look at *stop */
			if (f.error().code != -ETIMEDOUT) {
				rc = fail("", f.error());
				break;
			}
			if (now - lastFrame >= opts.timeout) {
				rc = fail("", Error{ -ETIMEDOUT, "no frame for " +
									 std::to_string(opts.timeout.count()) +
									 " ms" });
				break;
			}
		} else {
			lastFrame = now;
			frames++;
			std::span<const uint8_t> data = fe.bufferData(f->index);
			if (opts.checkPattern) {
				if (auto m = checker.check(f->seq, data, f->usedSize)) {
					if (++mismatches <= 10)
						out << "mismatch: frame seq " << f->seq << ": " << *m << "\n";
				}
			}
			if ((frames - 1) % opts.every == 0) {
				char base[64];
				std::snprintf(base, sizeof(base), "/frame-%08" PRIu32, f->seq);
				if (!opts.saveRawDir.empty()) {
					std::string path = opts.saveRawDir + base + "." + fourccStr(fl.fourcc);
					std::ofstream o(path, std::ios::binary);
					o.write(reinterpret_cast<const char *>(data.data()), f->usedSize);
					if (!o) {
						rc = fail("", Error{ -EIO, path + ": write failed" });
						break;
					}
					savedRaw++;
				}
				if (!opts.savePngDir.empty()) {
					auto rgb = image::toRgb24(fl, data.first(f->usedSize));
					if (!rgb) {
						rc = fail("converting frame " + std::to_string(f->seq), rgb.error());
						break;
					}
					std::string path = opts.savePngDir + base + ".png";
					if (Status s = image::writePng(path, fl.width, fl.height, *rgb); !s) {
						rc = fail("", s.error());
						break;
					}
					savedPng++;
				}
			}
			if (Status s = fe.bufQueue(f->index); !s) {
				rc = fail("", s.error());
				break;
			}
		}
		for (const ControlChange &c : fe.takeControlChanges())
			out << "control change: " << ctrlName(c.type) << "=" << c.value << "\n";
		if (!opts.quiet && now - lastReport >= std::chrono::seconds(1)) {
			double secs = std::chrono::duration<double>(now - start).count();
			double win = std::chrono::duration<double>(now - lastReport).count();
			Stats st = fe.stats();
			out << std::fixed << std::setprecision(1) << "[" << secs << "s] frames " << frames
			    << " fps " << std::setprecision(2) << (frames - reportFrames) / win
			    << " drops " << st.drops;
			if (opts.checkPattern)
				out << " mismatches " << mismatches;
			out << "\n" << std::flush;
			reportFrames = frames;
			lastReport = now;
		}
	}

	if (rc == kExitOk && !fe.broken()) {
		if (Status s = fe.streamStop(); !s)
			rc = fail("", s.error());
	}
	Stats st = fe.stats();
	double secs = std::chrono::duration<double>(Clock::now() - start).count();
	fe.disconnect();
	if (opts.checkPattern && mismatches) {
		if (mismatches > 10)
			out << "(" << mismatches - 10 << " more mismatching frames not shown)\n";
		if (rc == kExitOk)
			err << "error: " << mismatches << " of " << frames
			    << " frames differ from the test pattern\n";
		rc = kExitFailure;
	}
	out << std::fixed << std::setprecision(2) << "summary: " << (rc == kExitOk ? "ok" : "FAILED")
	    << " frames " << frames << " drops " << st.drops << " fps "
	    << (secs > 0 ? frames / secs : 0.0);
	if (opts.checkPattern)
		out << " mismatches " << mismatches;
	out << " saved-raw " << savedRaw << " saved-png " << savedPng << " request-rtt-ms avg "
	    << st.avgRequestMs << " max " << st.maxRequestMs << " protocol-errors "
	    << st.protocolErrors << "\n";
	return rc;
}

} /* namespace xmb::frontend */
