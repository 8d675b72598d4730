/* SPDX-License-Identifier: MIT */
/*
 * decodeCameraRequest on every operation, and on requests a hostile or
 * buggy frontend could put in the ring; response and event builders.
 */

#include <cstring>
#include <string>
#include <variant>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

extern "C" {
#include <xen/errno.h>
}

#include <linux/videodev2.h>

#include "protocol/cameraif.h"
#include "shared_page.h"

namespace xmb::proto {
namespace {

using test::makeRequest;
using ::testing::HasSubstr;

using Body = decltype(CameraRequest::body);

/* ---- every operation decodes, with the body its operation implies ---- */

struct OpCase {
	uint8_t op;
	const char *name;
	size_t bodyIndex; /* alternative of CameraRequest::body */
};

template<typename T>
constexpr size_t bodyIndexOf()
{
	Body b = T{};
	return b.index();
}

/* A request for \a op with a body that is valid for it. */
xencamera_req validRequest(uint8_t op, uint16_t id = 0x4242)
{
	xencamera_req r = makeRequest(id, op);
	switch (op) {
	case XENCAMERA_OP_CONFIG_SET:
	case XENCAMERA_OP_CONFIG_VALIDATE:
		r.req.config = { 0x56595559 /* YUYV */, 640, 480 };
		break;
	case XENCAMERA_OP_FRAME_RATE_SET:
		r.req.frame_rate = { 30, 1 };
		break;
	case XENCAMERA_OP_BUF_REQUEST:
		r.req.buf_request.num_bufs = 4;
		break;
	case XENCAMERA_OP_BUF_CREATE:
		r.req.buf_create.index = 2;
		r.req.buf_create.gref_directory = 1234;
		break;
	case XENCAMERA_OP_BUF_DESTROY:
	case XENCAMERA_OP_BUF_QUEUE:
	case XENCAMERA_OP_BUF_DEQUEUE:
		r.req.index.index = 3;
		break;
	case XENCAMERA_OP_CTRL_ENUM:
		r.req.index.index = 1;
		break;
	case XENCAMERA_OP_CTRL_SET:
		r.req.ctrl_value.type = XENCAMERA_CTRL_HUE;
		r.req.ctrl_value.value = -5;
		break;
	case XENCAMERA_OP_CTRL_GET:
		r.req.get_ctrl.type = XENCAMERA_CTRL_SATURATION;
		break;
	default:
		break;
	}
	return r;
}

class DecodeEveryOp : public ::testing::TestWithParam<OpCase>
{
};

TEST_P(DecodeEveryOp, DecodesIdOpAndTheBodyOfItsOperation)
{
	const OpCase &c = GetParam();
	auto r = decodeCameraRequest(validRequest(c.op));
	ASSERT_TRUE(r.ok()) << r.error().message;
	EXPECT_EQ(r->id, 0x4242);
	EXPECT_EQ(r->op, c.op);
	EXPECT_EQ(r->body.index(), c.bodyIndex);
}

TEST_P(DecodeEveryOp, HasItsAbiName)
{
	EXPECT_EQ(cameraOpName(GetParam().op), GetParam().name);
}

/* Linux's frontend leaves the previous response in the reserved header bytes
 * (a non-zero status): the request still decodes, to the same thing. */
TEST_P(DecodeEveryOp, StaleReservedHeaderBytesAreIgnored)
{
	xencamera_req clean = validRequest(GetParam().op);
	auto want = decodeCameraRequest(clean);
	ASSERT_TRUE(want.ok());
	for (size_t i = 0; i < sizeof(xencamera_req::reserved); i++) {
		xencamera_req raw = clean;
		raw.reserved[i] = 0xea; /* e.g. the low byte of a stale -EINVAL status */
		auto r = decodeCameraRequest(raw);
		ASSERT_TRUE(r.ok()) << "reserved[" << i << "]: " << r.error().message;
		EXPECT_EQ(r->id, want->id);
		EXPECT_EQ(r->op, want->op);
		EXPECT_EQ(r->body.index(), want->body.index());
	}
}

const OpCase kOps[] = {
	{ XENCAMERA_OP_CONFIG_SET, "CONFIG_SET", bodyIndexOf<CameraRequest::Config>() },
	{ XENCAMERA_OP_CONFIG_GET, "CONFIG_GET", bodyIndexOf<CameraRequest::None>() },
	{ XENCAMERA_OP_CONFIG_VALIDATE, "CONFIG_VALIDATE", bodyIndexOf<CameraRequest::Config>() },
	{ XENCAMERA_OP_FRAME_RATE_SET, "FRAME_RATE_SET", bodyIndexOf<CameraRequest::FrameRate>() },
	{ XENCAMERA_OP_BUF_GET_LAYOUT, "BUF_GET_LAYOUT", bodyIndexOf<CameraRequest::None>() },
	{ XENCAMERA_OP_BUF_REQUEST, "BUF_REQUEST", bodyIndexOf<CameraRequest::BufRequest>() },
	{ XENCAMERA_OP_BUF_CREATE, "BUF_CREATE", bodyIndexOf<CameraRequest::BufCreate>() },
	{ XENCAMERA_OP_BUF_DESTROY, "BUF_DESTROY", bodyIndexOf<CameraRequest::Index>() },
	{ XENCAMERA_OP_BUF_QUEUE, "BUF_QUEUE", bodyIndexOf<CameraRequest::Index>() },
	{ XENCAMERA_OP_BUF_DEQUEUE, "BUF_DEQUEUE", bodyIndexOf<CameraRequest::Index>() },
	{ XENCAMERA_OP_CTRL_ENUM, "CTRL_ENUM", bodyIndexOf<CameraRequest::Index>() },
	{ XENCAMERA_OP_CTRL_SET, "CTRL_SET", bodyIndexOf<CameraRequest::CtrlSet>() },
	{ XENCAMERA_OP_CTRL_GET, "CTRL_GET", bodyIndexOf<CameraRequest::CtrlGet>() },
	{ XENCAMERA_OP_STREAM_START, "STREAM_START", bodyIndexOf<CameraRequest::None>() },
	{ XENCAMERA_OP_STREAM_STOP, "STREAM_STOP", bodyIndexOf<CameraRequest::None>() },
};

INSTANTIATE_TEST_SUITE_P(AllOps, DecodeEveryOp, ::testing::ValuesIn(kOps),
			 [](const auto &p) { return std::string(p.param.name); });

TEST(DecodeCameraRequest, AllFifteenAbiOperationsAreCovered)
{
	EXPECT_EQ(std::size(kOps), 15u);
	EXPECT_EQ(XENCAMERA_OP_STREAM_STOP, 14);
}

/* ---- body values ---- */

TEST(DecodeConfig, CarriesFourccWidthAndHeight)
{
	auto r = decodeCameraRequest(validRequest(XENCAMERA_OP_CONFIG_SET));
	ASSERT_TRUE(r.ok());
	const auto &c = std::get<CameraRequest::Config>(r->body);
	EXPECT_EQ(c.fourcc, 0x56595559u);
	EXPECT_EQ(c.width, 640u);
	EXPECT_EQ(c.height, 480u);
}

TEST(DecodeFrameRate, CarriesNumeratorAndDenominator)
{
	xencamera_req raw = validRequest(XENCAMERA_OP_FRAME_RATE_SET);
	raw.req.frame_rate = { 30000, 1001 };
	auto r = decodeCameraRequest(raw);
	ASSERT_TRUE(r.ok());
	const auto &f = std::get<CameraRequest::FrameRate>(r->body);
	EXPECT_EQ(f.num, 30000u);
	EXPECT_EQ(f.den, 1001u);
}

TEST(DecodeBufRequest, CarriesTheBufferCount)
{
	auto r = decodeCameraRequest(validRequest(XENCAMERA_OP_BUF_REQUEST));
	ASSERT_TRUE(r.ok());
	EXPECT_EQ(std::get<CameraRequest::BufRequest>(r->body).numBufs, 4);
}

TEST(DecodeBufRequest, ZeroBuffersIsLeftToTheSession)
{
	xencamera_req raw = validRequest(XENCAMERA_OP_BUF_REQUEST);
	raw.req.buf_request.num_bufs = 0; /* "free all buffers" */
	auto r = decodeCameraRequest(raw);
	ASSERT_TRUE(r.ok());
	EXPECT_EQ(std::get<CameraRequest::BufRequest>(r->body).numBufs, 0);
}

TEST(DecodeBufCreate, CarriesIndexPlaneOffsetsAndDirectory)
{
	xencamera_req raw = validRequest(XENCAMERA_OP_BUF_CREATE);
	for (uint32_t i = 0; i < XENCAMERA_MAX_PLANE; i++)
		raw.req.buf_create.plane_offset[i] = 1000 * (i + 1);
	auto r = decodeCameraRequest(raw);
	ASSERT_TRUE(r.ok());
	const auto &b = std::get<CameraRequest::BufCreate>(r->body);
	EXPECT_EQ(b.index, 2);
	EXPECT_EQ(b.grefDirectory, 1234u);
	for (uint32_t i = 0; i < XENCAMERA_MAX_PLANE; i++)
		EXPECT_EQ(b.planeOffset[i], 1000 * (i + 1));
}

TEST(DecodeIndex, BufQueueCarriesTheIndex)
{
	auto r = decodeCameraRequest(validRequest(XENCAMERA_OP_BUF_QUEUE));
	ASSERT_TRUE(r.ok());
	EXPECT_EQ(std::get<CameraRequest::Index>(r->body).index, 3);
}

TEST(DecodeIndex, BufferIndexRangeIsLeftToTheSession)
{
	xencamera_req raw = validRequest(XENCAMERA_OP_BUF_DEQUEUE);
	raw.req.index.index = 255;
	auto r = decodeCameraRequest(raw);
	ASSERT_TRUE(r.ok());
	EXPECT_EQ(std::get<CameraRequest::Index>(r->body).index, 255);
}

TEST(DecodeCtrlSet, CarriesTypeAndSignedValue)
{
	xencamera_req raw = validRequest(XENCAMERA_OP_CTRL_SET);
	raw.req.ctrl_value.value = INT64_MIN;
	auto r = decodeCameraRequest(raw);
	ASSERT_TRUE(r.ok());
	const auto &c = std::get<CameraRequest::CtrlSet>(r->body);
	EXPECT_EQ(c.type, XENCAMERA_CTRL_HUE);
	EXPECT_EQ(c.value, INT64_MIN);
}

TEST(DecodeCtrlGet, CarriesTheType)
{
	auto r = decodeCameraRequest(validRequest(XENCAMERA_OP_CTRL_GET));
	ASSERT_TRUE(r.ok());
	EXPECT_EQ(std::get<CameraRequest::CtrlGet>(r->body).type, XENCAMERA_CTRL_SATURATION);
}

TEST(DecodeCameraRequest, BodyBytesOfABodylessOperationAreIgnored)
{
	xencamera_req raw = validRequest(XENCAMERA_OP_STREAM_START);
	std::memset(raw.req.reserved, 0xee, sizeof(raw.req.reserved));
	EXPECT_TRUE(decodeCameraRequest(raw).ok());
}

/* ---- unknown operations ---- */

class DecodeUnknownOp : public ::testing::TestWithParam<uint8_t>
{
};

TEST_P(DecodeUnknownOp, IsEnosysAndNamesTheOp)
{
	auto r = decodeCameraRequest(makeRequest(1, GetParam()));
	ASSERT_FALSE(r.ok());
	EXPECT_EQ(r.error().code, -XEN_ENOSYS);
	EXPECT_THAT(r.error().message, HasSubstr(cameraOpName(GetParam())));
}

INSTANTIATE_TEST_SUITE_P(Ops, DecodeUnknownOp, ::testing::Values(0x0f, 0x10, 0x7f, 0x80, 0xff));

/* ---- malformed bodies ---- */

Error decodeError(const xencamera_req &raw)
{
	auto r = decodeCameraRequest(raw);
	EXPECT_FALSE(r.ok());
	return r.ok() ? Error{} : r.error();
}

class DecodeConfigSize : public ::testing::TestWithParam<uint8_t>
{
protected:
	xencamera_req withSize(uint32_t w, uint32_t h)
	{
		xencamera_req raw = validRequest(GetParam());
		raw.req.config.width = w;
		raw.req.config.height = h;
		return raw;
	}
};

TEST_P(DecodeConfigSize, ZeroWidthIsEinval)
{
	auto e = decodeError(withSize(0, 480));
	EXPECT_EQ(e.code, -XEN_EINVAL);
	EXPECT_THAT(e.message, HasSubstr("0x480"));
}

TEST_P(DecodeConfigSize, ZeroHeightIsEinval)
{
	EXPECT_EQ(decodeError(withSize(640, 0)).code, -XEN_EINVAL);
}

TEST_P(DecodeConfigSize, WidthAboveTheLimitIsEinval)
{
	EXPECT_EQ(decodeError(withSize(kMaxWidth + 1, 480)).code, -XEN_EINVAL);
}

TEST_P(DecodeConfigSize, HeightAboveTheLimitIsEinval)
{
	EXPECT_EQ(decodeError(withSize(640, kMaxHeight + 1)).code, -XEN_EINVAL);
}

TEST_P(DecodeConfigSize, HugeSizesAreEinval)
{
	EXPECT_EQ(decodeError(withSize(UINT32_MAX, UINT32_MAX)).code, -XEN_EINVAL);
}

TEST_P(DecodeConfigSize, LimitsThemselvesAreAccepted)
{
	EXPECT_TRUE(decodeCameraRequest(withSize(kMaxWidth, kMaxHeight)).ok());
	EXPECT_TRUE(decodeCameraRequest(withSize(1, 1)).ok());
}

INSTANTIATE_TEST_SUITE_P(SetAndValidate, DecodeConfigSize,
			 ::testing::Values(XENCAMERA_OP_CONFIG_SET, XENCAMERA_OP_CONFIG_VALIDATE),
			 [](const auto &p) { return cameraOpName(p.param); });

/*
 * A zero term is V4L2's "use the default": Linux's driver sends 0/0 from
 * S_PARM, and inverts v4l2-compliance's timeperframe 0/1 into 1/0.  V4L2
 * says S_PARM adjusts rather than fails, so these decode (the backend
 * keeps its rate) instead of -XEN_EINVAL.
 */
TEST(DecodeFrameRate, ZeroTermsMeanKeepTheRate)
{
	for (auto [num, den] : { std::pair{ 0u, 0u }, std::pair{ 1u, 0u }, std::pair{ 0u, 30u } }) {
		xencamera_req raw = validRequest(XENCAMERA_OP_FRAME_RATE_SET);
		raw.req.frame_rate.frame_rate_numer = num;
		raw.req.frame_rate.frame_rate_denom = den;
		auto r = decodeCameraRequest(raw);
		ASSERT_TRUE(r.ok()) << num << "/" << den << ": " << r.error().message;
		const auto &f = std::get<CameraRequest::FrameRate>(r->body);
		EXPECT_EQ(f.num, num);
		EXPECT_EQ(f.den, den);
	}
}

TEST(DecodeBufCreate, GrefDirectoryZeroIsEinval)
{
	xencamera_req raw = validRequest(XENCAMERA_OP_BUF_CREATE);
	raw.req.buf_create.gref_directory = 0;
	auto e = decodeError(raw);
	EXPECT_EQ(e.code, -XEN_EINVAL);
	EXPECT_THAT(e.message, HasSubstr("gref_directory"));
}

TEST(DecodeBufCreate, StaleReservedBodyBytesAreIgnored)
{
	for (size_t i = 0; i < sizeof(xencamera_buf_create_req::reserved); i++) {
		xencamera_req raw = validRequest(XENCAMERA_OP_BUF_CREATE);
		raw.req.buf_create.reserved[i] = 0x80;
		auto r = decodeCameraRequest(raw);
		ASSERT_TRUE(r.ok()) << "reserved[" << i << "]";
		auto bc = std::get<CameraRequest::BufCreate>(r->body);
		EXPECT_EQ(bc.grefDirectory, raw.req.buf_create.gref_directory);
		EXPECT_EQ(bc.index, raw.req.buf_create.index);
	}
}

TEST(DecodeCtrlEnum, IndexOfTheLastControlIsAccepted)
{
	xencamera_req raw = validRequest(XENCAMERA_OP_CTRL_ENUM);
	raw.req.index.index = XENCAMERA_MAX_CTRL - 1;
	EXPECT_TRUE(decodeCameraRequest(raw).ok());
}

TEST(DecodeCtrlEnum, IndexPastTheLastControlIsEinval)
{
	for (unsigned idx : { XENCAMERA_MAX_CTRL, XENCAMERA_MAX_CTRL + 1, 255 }) {
		xencamera_req raw = validRequest(XENCAMERA_OP_CTRL_ENUM);
		raw.req.index.index = static_cast<uint8_t>(idx);
		auto e = decodeError(raw);
		EXPECT_EQ(e.code, -XEN_EINVAL) << idx;
		EXPECT_THAT(e.message, HasSubstr(std::to_string(idx)));
	}
}

TEST(DecodeCtrlSet, UnknownControlTypeIsEinval)
{
	for (unsigned type : { XENCAMERA_MAX_CTRL, 255 }) {
		xencamera_req raw = validRequest(XENCAMERA_OP_CTRL_SET);
		raw.req.ctrl_value.type = static_cast<uint8_t>(type);
		auto e = decodeError(raw);
		EXPECT_EQ(e.code, -XEN_EINVAL) << type;
		EXPECT_THAT(e.message, HasSubstr(std::to_string(type)));
	}
}

TEST(DecodeCtrlGet, UnknownControlTypeIsEinval)
{
	for (unsigned type : { XENCAMERA_MAX_CTRL, 255 }) {
		xencamera_req raw = validRequest(XENCAMERA_OP_CTRL_GET);
		raw.req.get_ctrl.type = static_cast<uint8_t>(type);
		auto e = decodeError(raw);
		EXPECT_EQ(e.code, -XEN_EINVAL) << type;
		EXPECT_THAT(e.message, HasSubstr(std::to_string(type)));
	}
}

TEST(DecodeCameraRequest, UnknownOpWithStaleReservedBytesIsStillEnosys)
{
	xencamera_req raw = makeRequest(1, 0x42);
	raw.reserved[4] = 1;
	EXPECT_EQ(decodeError(raw).code, -XEN_ENOSYS);
}

/* ---- names ---- */

TEST(CameraOpName, UnknownOpIsPrintedInHex)
{
	EXPECT_EQ(cameraOpName(0x0f), "op 0x0f");
	EXPECT_EQ(cameraOpName(0xff), "op 0xff");
}

TEST(CameraCtrlName, KnownTypesHaveTheirXenStoreNames)
{
	EXPECT_STREQ(cameraCtrlName(XENCAMERA_CTRL_BRIGHTNESS), "brightness");
	EXPECT_STREQ(cameraCtrlName(XENCAMERA_CTRL_CONTRAST), "contrast");
	EXPECT_STREQ(cameraCtrlName(XENCAMERA_CTRL_SATURATION), "saturation");
	EXPECT_STREQ(cameraCtrlName(XENCAMERA_CTRL_HUE), "hue");
}

TEST(CameraCtrlName, UnknownTypeHasNoName)
{
	EXPECT_EQ(cameraCtrlName(XENCAMERA_MAX_CTRL), nullptr);
	EXPECT_EQ(cameraCtrlName(255), nullptr);
}

TEST(CameraCtrlFromName, RoundTripsEveryKnownControl)
{
	for (uint8_t t = 0; t < XENCAMERA_MAX_CTRL; t++)
		EXPECT_EQ(cameraCtrlFromName(cameraCtrlName(t)), t);
}

TEST(CameraCtrlFromName, IsExactAndCaseSensitive)
{
	EXPECT_EQ(cameraCtrlFromName("Brightness"), std::nullopt);
	EXPECT_EQ(cameraCtrlFromName("brightness "), std::nullopt);
	EXPECT_EQ(cameraCtrlFromName(""), std::nullopt);
	EXPECT_EQ(cameraCtrlFromName(std::string_view("hue\0", 4)), std::nullopt);
}

/* ---- builders: every byte initialised ---- */

template<typename T>
void expectOnlyTheseBytesSet(const T &obj, std::initializer_list<std::pair<size_t, size_t>> fields)
{
	const auto *b = reinterpret_cast<const uint8_t *>(&obj);
	for (size_t i = 0; i < sizeof(T); i++) {
		bool inField = false;
		for (auto [off, len] : fields)
			inField |= i >= off && i < off + len;
		if (!inField) {
			EXPECT_EQ(b[i], 0) << "byte " << i << " is padding/reserved";
		}
	}
}

TEST(MakeCameraResponse, SetsFieldsAndZeroesEverythingElse)
{
	xencamera_resp r = makeCameraResponse(0xbeef, XENCAMERA_OP_CTRL_GET, -XEN_ENOSYS);
	EXPECT_EQ(r.id, 0xbeef);
	EXPECT_EQ(r.operation, XENCAMERA_OP_CTRL_GET);
	EXPECT_EQ(r.status, -XEN_ENOSYS);
	expectOnlyTheseBytesSet(r, { { 0, 2 }, { 2, 1 }, { 4, 4 } });
}

TEST(MakeFrameAvailEvent, SetsFieldsAndZeroesEverythingElse)
{
	xencamera_evt e = makeFrameAvailEvent(0xffff, 7, 0x01020304, 0xa0b0c0d0);
	EXPECT_EQ(e.id, 0xffff);
	EXPECT_EQ(e.type, XENCAMERA_EVT_FRAME_AVAIL);
	EXPECT_EQ(e.evt.frame_avail.index, 7);
	EXPECT_EQ(e.evt.frame_avail.used_sz, 0x01020304u);
	EXPECT_EQ(e.evt.frame_avail.seq_num, 0xa0b0c0d0u);
	/* type is 0 anyway; body: index @8, used_sz @12, seq_num @16 */
	expectOnlyTheseBytesSet(e, { { 0, 2 }, { 8, 1 }, { 12, 4 }, { 16, 4 } });
}

TEST(MakeCtrlChangeEvent, SetsFieldsAndZeroesEverythingElse)
{
	xencamera_evt e = makeCtrlChangeEvent(3, XENCAMERA_CTRL_CONTRAST, -1);
	EXPECT_EQ(e.id, 3);
	EXPECT_EQ(e.type, XENCAMERA_EVT_CTRL_CHANGE);
	EXPECT_EQ(e.evt.ctrl_value.type, XENCAMERA_CTRL_CONTRAST);
	EXPECT_EQ(e.evt.ctrl_value.value, -1);
	/* ctrl_value: type @8, reserved[7] @9, value @16 */
	expectOnlyTheseBytesSet(e, { { 0, 2 }, { 2, 1 }, { 8, 1 }, { 16, 8 } });
}

} /* namespace */
} /* namespace xmb::proto */

TEST(CameraColorimetry, V4L2ValuesMapToCameraifValues)
{
	using xmb::proto::cameraColorimetryFromV4L2;
	auto c = cameraColorimetryFromV4L2(V4L2_COLORSPACE_SMPTE170M, V4L2_XFER_FUNC_709,
					   V4L2_YCBCR_ENC_601, V4L2_QUANTIZATION_LIM_RANGE);
	EXPECT_EQ(c.colorspace, uint32_t(XENCAMERA_COLORSPACE_SMPTE170M));
	EXPECT_EQ(c.xferFunc, uint32_t(XENCAMERA_XFER_FUNC_709));
	EXPECT_EQ(c.ycbcrEnc, uint32_t(XENCAMERA_YCBCR_ENC_601));
	EXPECT_EQ(c.quantization, uint32_t(XENCAMERA_QUANTIZATION_LIM_RANGE));
	c = cameraColorimetryFromV4L2(V4L2_COLORSPACE_SRGB, V4L2_XFER_FUNC_SRGB, V4L2_YCBCR_ENC_601,
				      V4L2_QUANTIZATION_FULL_RANGE);
	EXPECT_EQ(c.colorspace, uint32_t(XENCAMERA_COLORSPACE_SRGB));
	EXPECT_EQ(c.xferFunc, uint32_t(XENCAMERA_XFER_FUNC_SRGB));
	EXPECT_EQ(c.quantization, uint32_t(XENCAMERA_QUANTIZATION_FULL_RANGE));
	/* V4L2 values cameraif lacks go to their nearest kin, never DEFAULT. */
	EXPECT_EQ(cameraColorimetryFromV4L2(V4L2_COLORSPACE_JPEG, 0, 0, 0).colorspace,
		  uint32_t(XENCAMERA_COLORSPACE_SRGB));
	EXPECT_EQ(cameraColorimetryFromV4L2(V4L2_COLORSPACE_470_SYSTEM_BG, 0, 0, 0).colorspace,
		  uint32_t(XENCAMERA_COLORSPACE_SMPTE170M));
	EXPECT_EQ(cameraColorimetryFromV4L2(V4L2_COLORSPACE_BT2020, V4L2_XFER_FUNC_SMPTE2084,
					    V4L2_YCBCR_ENC_BT2020_CONST_LUM, 0).ycbcrEnc,
		  uint32_t(XENCAMERA_YCBCR_ENC_BT2020_CONST_LUM));
}
