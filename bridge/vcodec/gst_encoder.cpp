/* SPDX-License-Identifier: MIT */
#include "bridge/vcodec/gst_encoder.h"
#include "bridge/vcodec/codec_session.h"
#include "bridge/vcodec/gst_guest_frame.h"

#include <cerrno>
#include <chrono>
#include <map>
#include <mutex>
#include <thread>

#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/gst.h>
#include <gst/video/video.h>

#include "protocol/base/monotonic.h"
#include "protocol/base/log.h"

namespace xmb::vcodec {

XMB_LOG_DEFINE_CATEGORY(logGst, "vcodec-gst");

namespace {

constexpr uint32_t fourcc(char a, char b, char c, char d)
{
	return uint32_t(uint8_t(a)) | uint32_t(uint8_t(b)) << 8 | uint32_t(uint8_t(c)) << 16 |
	       uint32_t(uint8_t(d)) << 24;
}

struct RawFormat {
	uint32_t fourcc;
	GstVideoFormat gst;
	const char *name;
};
constexpr RawFormat kRawFormats[] = {
	{ fourcc('Y', 'U', '1', '2'), GST_VIDEO_FORMAT_I420, "I420" },
	{ fourcc('N', 'V', '1', '2'), GST_VIDEO_FORMAT_NV12, "NV12" },
	{ fourcc('Y', 'U', 'Y', 'V'), GST_VIDEO_FORMAT_YUY2, "YUY2" },
};

/* x265enc's "bitrate" is in kbit/s (and 0 would mean its default). */
guint x265Kbps(uint32_t bitsPerSecond)
{
	return std::max<guint>(1, bitsPerSecond / 1000);
}

const RawFormat *rawFormat(uint32_t fcc)
{
	for (const auto &f : kRawFormats)
		if (f.fourcc == fcc)
			return &f;
	return nullptr;
}


struct Release {
	std::function<void()> fn;
	std::shared_ptr<std::atomic<long>> live;
};

void releaseNotify(gpointer p)
{
	auto *r = static_cast<Release *>(p);
	if (r->fn)
		r->fn();
	r->live->fetch_sub(1);
	delete r;
}

} /* namespace */

void initGstreamer()
{
	static std::once_flag once;
	std::call_once(once, [] { gst_init(nullptr, nullptr); });
}

const char *gstEncoderElement(uint32_t codec)
{
	switch (codec) {
	case XENVCODEC_CODEC_VP8: return "vp8enc";
	case XENVCODEC_CODEC_VP9: return "vp9enc";
	case XENVCODEC_CODEC_H264: return "openh264enc";
	case XENVCODEC_CODEC_JPEG: return "jpegenc";
	case XENVCODEC_CODEC_HEVC: return "x265enc";
	default: return nullptr;
	}
}

std::vector<proto::CodecCaps> probeGstCodecs()
{
	initGstreamer();
	std::vector<proto::CodecCaps> out;
	for (uint32_t codec = 1; codec <= XENVCODEC_CODEC_MAX; codec++) {
		const char *element = gstEncoderElement(codec);
		if (!element)
			continue; /* raw: no encoder */
		GstElementFactory *f = gst_element_factory_find(element);
		if (!f)
			continue;
		proto::CodecCaps cc;
		cc.codec = codec;
		for (const GList *l = gst_element_factory_get_static_pad_templates(f); l; l = l->next) {
			auto *t = static_cast<GstStaticPadTemplate *>(l->data);
			if (t->direction != GST_PAD_SINK)
				continue;
			GstCaps *tc = gst_static_pad_template_get_caps(t);
			for (const auto &rf : kRawFormats) {
				GstCaps *c = gst_caps_new_simple("video/x-raw", "format", G_TYPE_STRING,
								 rf.name, nullptr);
				if (gst_caps_can_intersect(c, tc))
					cc.rawFormats.push_back(rf.fourcc);
				gst_caps_unref(c);
			}
			gst_caps_unref(tc);
		}
		gst_object_unref(f);
		switch (codec) {
		case XENVCODEC_CODEC_VP8:
		case XENVCODEC_CODEC_VP9:
			cc.rcModes = { XENVCODEC_RC_VBR, XENVCODEC_RC_CBR, XENVCODEC_RC_CQP };
			cc.profiles = { "0" };
			break;
		case XENVCODEC_CODEC_H264:
			cc.rcModes = { XENVCODEC_RC_CBR };
			cc.profiles = { "constrained-baseline", "baseline" };
			break;
		case XENVCODEC_CODEC_JPEG:
			cc.rcModes = { XENVCODEC_RC_CQP };
			cc.profiles = { "baseline" };
			break;
		case XENVCODEC_CODEC_HEVC:
			cc.rcModes = { XENVCODEC_RC_VBR }; /* x265 ABR */
			cc.profiles = { "main" };
			break;
		}
		cc.levels = { 0 };
		if (!cc.rawFormats.empty())
			out.push_back(std::move(cc));
	}
	return out;
}

std::optional<RawLayout> gstRawLayout(uint32_t fcc, uint32_t w, uint32_t h)
{
	const RawFormat *rf = rawFormat(fcc);
	if (!rf || !w || !h)
		return std::nullopt;
	GstVideoInfo info;
	if (!gst_video_info_set_format(&info, rf->gst, w, h))
		return std::nullopt;
	RawLayout l;
	l.size = static_cast<uint32_t>(GST_VIDEO_INFO_SIZE(&info));
	l.numPlanes = static_cast<uint8_t>(GST_VIDEO_INFO_N_PLANES(&info));
	for (unsigned p = 0; p < l.numPlanes && p < XENVCODEC_MAX_PLANE; p++) {
		l.offset[p] = static_cast<uint32_t>(GST_VIDEO_INFO_PLANE_OFFSET(&info, p));
		l.stride[p] = static_cast<uint32_t>(GST_VIDEO_INFO_PLANE_STRIDE(&info, p));
	}
	return l;
}

struct GstEncoder::Impl {
	EncodeParams params;
	EncoderSink sink;
	const RawFormat *raw = nullptr;
	GstElement *pipeline = nullptr;
	GstElement *src = nullptr;
	GstElement *enc = nullptr;
	GstElement *appsink = nullptr;
	GstClockTime frameDuration = 0;
	unsigned keyCount = 0;
	std::mutex lock; /* enterNs */
	std::map<uint64_t, uint64_t> enterNs; /* pts -> time it entered the encoder */

	~Impl()
	{
		if (pipeline) {
			gst_element_set_state(pipeline, GST_STATE_NULL);
			gst_object_unref(src);
			gst_object_unref(enc);
			gst_object_unref(appsink);
			gst_object_unref(pipeline);
		}
	}

	uint64_t seqOf(GstClockTime pts) const
	{
		return frameDuration ? (pts + frameDuration / 2) / frameDuration : 0;
	}

	static GstFlowReturn onSample(GstAppSink *s, gpointer user)
	{
		auto *self = static_cast<Impl *>(user);
		GstSample *sample = gst_app_sink_pull_sample(s);
		if (!sample)
			return GST_FLOW_EOS;
		GstBuffer *buf = gst_sample_get_buffer(sample);
		auto *info = new GstMapInfo;
		if (!buf || !gst_buffer_map(buf, info, GST_MAP_READ)) {
			delete info;
			gst_sample_unref(sample);
			self->sink.error("bitstream buffer cannot be mapped");
			return GST_FLOW_ERROR;
		}
		Bitstream b;
		b.data = info->data;
		b.size = info->size;
		b.key = !GST_BUFFER_FLAG_IS_SET(buf, GST_BUFFER_FLAG_DELTA_UNIT);
		/*
		 * The frame's own timestamp is its running time: encoders that may
		 * reorder (x264enc, x265enc) shift PTS and segment by a min-pts of
		 * 1000 h so that DTS never goes negative.
		 */
		GstClockTime pts = GST_BUFFER_PTS(buf);
		if (const GstSegment *seg = gst_sample_get_segment(sample); seg && seg->format == GST_FORMAT_TIME) {
			GstClockTime rt = gst_segment_to_running_time(seg, GST_FORMAT_TIME, pts);
			if (GST_CLOCK_TIME_IS_VALID(rt))
				pts = rt;
		}
		b.seq = self->seqOf(pts);
		{
			std::lock_guard<std::mutex> l(self->lock);
			auto it = self->enterNs.find(pts);
			if (it != self->enterNs.end()) {
				b.encodeNs = monotonicNs() - it->second;
				self->enterNs.erase(self->enterNs.begin(), std::next(it));
			}
		}
		b.hold = std::shared_ptr<void>(info, [sample, buf](void *p) {
			auto *mi = static_cast<GstMapInfo *>(p);
			gst_buffer_unmap(buf, mi);
			delete mi;
			gst_sample_unref(sample);
		});
		self->sink.bitstream(std::move(b));
		return GST_FLOW_OK;
	}

	static void onEos(GstAppSink *, gpointer user)
	{
		static_cast<Impl *>(user)->sink.drained();
	}

	static GstBusSyncReply onBus(GstBus *, GstMessage *msg, gpointer user)
	{
		auto *self = static_cast<Impl *>(user);
		if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR) {
			GError *err = nullptr;
			gchar *dbg = nullptr;
			gst_message_parse_error(msg, &err, &dbg);
			std::string text = std::string(GST_OBJECT_NAME(msg->src)) + ": " +
					   (err ? err->message : "error");
			XMB_LOG(logGst, Warn, "%s (%s)", text.c_str(), dbg ? dbg : "");
			g_clear_error(&err);
			g_free(dbg);
			self->sink.error(text);
		}
		/*
		 * A sync handler that drops a message owns it (GstBusSyncHandler):
		 * without this unref every message leaked, and with the state
		 * changes the pipeline they point to (2 fds and its threads per OPEN).
		 */
		gst_message_unref(msg);
		return GST_BUS_DROP;
	}

	static GstPadProbeReturn onEncoderInput(GstPad *, GstPadProbeInfo *info, gpointer user)
	{
		auto *self = static_cast<Impl *>(user);
		if (GstBuffer *b = GST_PAD_PROBE_INFO_BUFFER(info)) {
			std::lock_guard<std::mutex> l(self->lock);
			if (self->enterNs.size() < 1024)
				self->enterNs[GST_BUFFER_PTS(b)] = monotonicNs();
		}
		return GST_PAD_PROBE_OK;
	}
};

Result<std::unique_ptr<GstEncoder>> GstEncoder::create(const EncodeParams &p,
						       const proto::CodecCaps &caps, EncoderSink sink)
{
	initGstreamer();
	const char *element = gstEncoderElement(p.codec);
	const RawFormat *raw = rawFormat(p.rawFourcc);
	if (!element || !raw)
		return Error{ -EINVAL, "unsupported codec or raw format" };
	if (std::find(caps.rawFormats.begin(), caps.rawFormats.end(), p.rawFourcc) == caps.rawFormats.end())
		return Error{ -EINVAL, std::string(element) + ": raw format not accepted" };
	if (std::find(caps.rcModes.begin(), caps.rcModes.end(), p.rcMode) == caps.rcModes.end())
		return Error{ -EINVAL, std::string(element) + ": rate-control mode not supported" };
	if (p.profile >= caps.profiles.size())
		return Error{ -EINVAL, std::string(element) + ": profile index out of range" };
	if (p.level != 0)
		return Error{ -EINVAL, std::string(element) + ": only level 0 (auto) is supported" };
	if ((p.codec == XENVCODEC_CODEC_VP8 || p.codec == XENVCODEC_CODEC_VP9) &&
	    p.rcMode == XENVCODEC_RC_CQP && p.qp > 63)
		return Error{ -EINVAL, "vpx qp > 63" };
	if (p.codec == XENVCODEC_CODEC_JPEG && (p.qp < 1 || p.qp > 100))
		return Error{ -EINVAL, "jpeg quality (qp) outside 1..100" };
	auto layout = gstRawLayout(p.rawFourcc, p.width, p.height);
	if (!layout)
		return Error{ -EINVAL, "no layout for this raw format and size" };

	std::unique_ptr<GstEncoder> e(new GstEncoder);
	e->layout_ = *layout;
	e->impl_ = std::make_unique<Impl>();
	Impl &im = *e->impl_;
	im.params = p;
	im.sink = std::move(sink);
	im.raw = raw;
	im.frameDuration = gst_util_uint64_scale(GST_SECOND, p.rateDen, p.rateNum);

	std::string desc = std::string("appsrc name=src ! ") + element + " name=enc ";
	if (p.codec == XENVCODEC_CODEC_H264)
		desc += "! video/x-h264,stream-format=byte-stream,alignment=au,profile=" +
			caps.profiles[p.profile] + " ";
	if (p.codec == XENVCODEC_CODEC_HEVC)
		desc += "! video/x-h265,stream-format=byte-stream,alignment=au ";
	desc += "! appsink name=sink";
	GError *err = nullptr;
	GstElement *pl = gst_parse_launch(desc.c_str(), &err);
	if (!pl || err) {
		std::string m = err ? err->message : "parse failed";
		g_clear_error(&err);
		if (pl)
			gst_object_unref(pl);
		return Error{ -ENODEV, std::string(element) + ": " + m };
	}
	im.pipeline = pl;
	im.src = gst_bin_get_by_name(GST_BIN(pl), "src");
	im.enc = gst_bin_get_by_name(GST_BIN(pl), "enc");
	im.appsink = gst_bin_get_by_name(GST_BIN(pl), "sink");

	GstCaps *rawCaps = gst_caps_new_simple("video/x-raw", "format", G_TYPE_STRING, raw->name,
					       "width", G_TYPE_INT, int(p.width), "height", G_TYPE_INT,
					       int(p.height), "framerate", GST_TYPE_FRACTION,
					       int(p.rateNum), int(p.rateDen), nullptr);
	g_object_set(im.src, "caps", rawCaps, "format", GST_FORMAT_TIME, "is-live", FALSE,
		     "max-bytes", guint64(1) << 32, nullptr);
	gst_caps_unref(rawCaps);
	g_object_set(im.appsink, "sync", FALSE, "enable-last-sample", FALSE, nullptr);

	auto set = [&](const char *prop, const std::string &v) {
		gst_util_set_object_arg(G_OBJECT(im.enc), prop, v.c_str());
	};
	switch (p.codec) {
	case XENVCODEC_CODEC_VP8:
	case XENVCODEC_CODEC_VP9:
		set("deadline", "1"); /* realtime */
		set("cpu-used", p.codec == XENVCODEC_CODEC_VP8 ? "8" : "8");
		set("lag-in-frames", "0");
		set("threads", "2");
		if (p.gop)
			set("keyframe-max-dist", std::to_string(p.gop));
		if (p.rcMode == XENVCODEC_RC_CQP) {
			set("end-usage", "cq");
			set("cq-level", std::to_string(p.qp));
			set("min-quantizer", std::to_string(p.qp));
			set("max-quantizer", std::to_string(p.qp));
		} else {
			set("end-usage", p.rcMode == XENVCODEC_RC_CBR ? "cbr" : "vbr");
			set("target-bitrate", std::to_string(p.bitrate));
		}
		break;
	case XENVCODEC_CODEC_H264:
		set("rate-control", "bitrate");
		set("bitrate", std::to_string(p.bitrate));
		set("complexity", "low");
		if (p.gop)
			set("gop-size", std::to_string(p.gop));
		break;
	case XENVCODEC_CODEC_JPEG:
		set("quality", std::to_string(p.qp));
		break;
	case XENVCODEC_CODEC_HEVC:
		set("bitrate", std::to_string(x265Kbps(p.bitrate)));
		set("speed-preset", "ultrafast");
		set("tune", "zerolatency");
		if (p.gop)
			set("key-int-max", std::to_string(p.gop));
		break;
	}

	GstAppSinkCallbacks cbs{};
	cbs.new_sample = &Impl::onSample;
	cbs.eos = &Impl::onEos;
	gst_app_sink_set_callbacks(GST_APP_SINK(im.appsink), &cbs, &im, nullptr);
	GstBus *bus = gst_element_get_bus(pl);
	gst_bus_set_sync_handler(bus, &Impl::onBus, &im, nullptr);
	gst_object_unref(bus);
	GstPad *encSink = gst_element_get_static_pad(im.enc, "sink");
	gst_pad_add_probe(encSink, GST_PAD_PROBE_TYPE_BUFFER, &Impl::onEncoderInput, &im, nullptr);
	gst_object_unref(encSink);

	if (gst_element_set_state(pl, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE)
		return Error{ -EIO, std::string(element) + ": cannot start the pipeline" };
	return e;
}

GstEncoder::~GstEncoder()
{
	if (impl_)
		stop();
}

std::string GstEncoder::description() const
{
	const auto &p = impl_->params;
	std::string s = std::string(gstEncoderElement(p.codec)) + " (GStreamer, " + impl_->raw->name +
			" " + std::to_string(p.width) + "x" + std::to_string(p.height) + ", ";
	s += p.rcMode == XENVCODEC_RC_CQP ? "qp " + std::to_string(p.qp)
					  : std::to_string(p.bitrate / 1000) + " kbit/s";
	return s + ", guest pages wrapped: no raw copy)";
}

Status GstEncoder::encode(const uint8_t *data, uint64_t seq, uint64_t /*timestamp*/, bool forceKey,
			  std::function<void()> release)
{
	Impl &im = *impl_;
	live_->fetch_add(1);
	auto *r = new Release{ std::move(release), live_ };
	GstBuffer *buf = wrapGuestFrame(data, layout_, im.raw->gst, im.params.width, im.params.height, r,
					&releaseNotify);
	GstClockTime pts = seq * im.frameDuration;
	GST_BUFFER_PTS(buf) = pts;
	GST_BUFFER_DTS(buf) = pts;
	GST_BUFFER_DURATION(buf) = im.frameDuration;
	if (forceKey) {
		/* running_time = this frame's: the encoder applies it to exactly this frame. */
		GstEvent *ev = gst_video_event_new_downstream_force_key_unit(pts, pts, pts, TRUE,
									    ++im.keyCount);
		gst_element_send_event(im.src, ev);
	}
	GstFlowReturn ret = gst_app_src_push_buffer(GST_APP_SRC(im.src), buf); /* takes buf */
	if (ret != GST_FLOW_OK)
		return Error{ -EIO, std::string("appsrc push: ") + gst_flow_get_name(ret) };
	return {};
}

Status GstEncoder::setBitrate(uint32_t bps)
{
	Impl &im = *impl_;
	switch (im.params.codec) {
	case XENVCODEC_CODEC_VP8:
	case XENVCODEC_CODEC_VP9:
		if (im.params.rcMode == XENVCODEC_RC_CQP)
			return Error{ -EINVAL, "constant-QP session has no bitrate" };
		g_object_set(im.enc, "target-bitrate", gint(bps), nullptr);
		break;
	case XENVCODEC_CODEC_H264:
		g_object_set(im.enc, "bitrate", guint(bps), nullptr);
		break;
	case XENVCODEC_CODEC_HEVC:
		g_object_set(im.enc, "bitrate", x265Kbps(bps), nullptr);
		break;
	default:
		return Error{ -ENOTSUP, "jpeg has no bitrate" };
	}
	im.params.bitrate = bps;
	return {};
}

Status GstEncoder::drain()
{
	if (gst_app_src_end_of_stream(GST_APP_SRC(impl_->src)) != GST_FLOW_OK)
		return Error{ -EIO, "appsrc refused end-of-stream" };
	return {};
}

void GstEncoder::stop()
{
	Impl &im = *impl_;
	/* NULL is synchronous: streaming threads joined, queued and held buffers released. */
	gst_element_set_state(im.pipeline, GST_STATE_NULL);
	/*
	 * No waiting here: this runs on the service's loop thread, which every
	 * guest shares.  A frame still referenced (by an element outside the
	 * pipeline) keeps its pages mapped until it is released, safely.
	 */
	if (live_->load() > 0)
		XMB_LOG(logGst, Info, "%ld wrapped guest frames still referenced after stop; "
				      "their pages stay mapped until released", live_->load());
	std::lock_guard<std::mutex> l(im.lock);
	im.enterNs.clear();
}

Status GstEncoder::restart()
{
	Impl &im = *impl_;
	gst_element_set_state(im.pipeline, GST_STATE_NULL);
	if (gst_element_set_state(im.pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE)
		return Error{ -EIO, "cannot restart the pipeline" };
	return {};
}

EncoderFactory gstEncoderFactory()
{
	return [](const EncodeParams &p, const proto::CodecCaps &c,
		  EncoderSink sink) -> Result<std::unique_ptr<Encoder>> {
		auto e = GstEncoder::create(p, c, std::move(sink));
		if (!e)
			return e.error();
		return std::unique_ptr<Encoder>(std::move(*e));
	};
}

} /* namespace xmb::vcodec */
