/* SPDX-License-Identifier: MIT */
#include <gtest/gtest.h>
#include <linux/videodev2.h>

#include "v4l2/libcamera_source.h"
#include "v4l2/pixel_format.h"
#include "v4l2/v4l2_format.h"

using namespace xmb;

TEST(PixelFormat, FourccPrintsAndParses)
{
	EXPECT_EQ(fourccToString(V4L2_PIX_FMT_NV12), "NV12");
	EXPECT_EQ(fourccFromString("YUYV"), V4L2_PIX_FMT_YUYV);
	EXPECT_EQ(fourccToString(V4L2_PIX_FMT_ARGB555X), "AR15-BE");
	EXPECT_EQ(fourccFromString("AR15-BE"), V4L2_PIX_FMT_ARGB555X);
	EXPECT_EQ(fourccFromString("NV1"), 0u);
}

TEST(PixelFormat, DriverLayoutPlacesChromaAfterPaddedLuma)
{
	FrameLayout l = driverFrameLayout(V4L2_PIX_FMT_NV12, 1920, 1080, 2048, 2048 * 1080 * 3 / 2 + 4096);
	EXPECT_EQ(l.numPlanes, 2u);
	EXPECT_EQ(l.planes[1].offset, 2048u * 1080u);
	EXPECT_EQ(l.planes[1].stride, 2048u);
	EXPECT_EQ(l.size, 2048u * 1080u * 3 / 2 + 4096) << "driver padding is kept";
}

TEST(PixelFormat, UnknownFormatIsOneOpaquePlane)
{
	FrameLayout l = driverFrameLayout(V4L2_PIX_FMT_MJPEG, 640, 480, 0, 100000);
	EXPECT_EQ(l.numPlanes, 1u);
	EXPECT_EQ(l.size, 100000u);
}

TEST(PixelFormat, V4L2FormatSurvivesBothBufferTypes)
{
	V4L2Format f;
	f.fourcc = V4L2_PIX_FMT_NV12;
	f.width = 320;
	f.height = 240;
	f.planes[0] = { 320, 320 * 240 * 3 / 2 };
	for (uint32_t type : { V4L2_BUF_TYPE_VIDEO_CAPTURE, V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE }) {
		v4l2_format raw;
		toV4L2(f, type, raw);
		V4L2Format back = fromV4L2(raw);
		EXPECT_EQ(back.fourcc, f.fourcc);
		EXPECT_EQ(back.width, 320u);
		EXPECT_EQ(back.planes[0].sizeImage, f.planes[0].sizeImage);
		EXPECT_EQ(back.numPlanes, 1u);
	}
}

TEST(PixelFormat, DrmAndV4L2RgbNamesAreSwapped)
{
	constexpr uint32_t drmRgb888 = 'R' | 'G' << 8 | '2' << 16 | '4' << 24;
	EXPECT_EQ(v4l2FourccFromDrm(drmRgb888), V4L2_PIX_FMT_BGR24);
	EXPECT_EQ(drmFourccFromV4L2(V4L2_PIX_FMT_BGR24), drmRgb888);
	EXPECT_EQ(v4l2FourccFromDrm(V4L2_PIX_FMT_NV12), V4L2_PIX_FMT_NV12) << "YUV codes are shared";
	EXPECT_EQ(drmFourccFromV4L2(v4l2FourccFromDrm(drmRgb888)), drmRgb888);
}

TEST(PixelFormat, ColorimetryIsResolvedByV4L2Rules)
{
	/* A driver that says nothing: SD Y'CbCr is SMPTE 170M, HD is Rec. 709, RGB sRGB. */
	Colorimetry sd = resolveColorimetry({}, V4L2_PIX_FMT_NV12, 480);
	EXPECT_EQ(sd, (Colorimetry{ V4L2_COLORSPACE_SMPTE170M, V4L2_XFER_FUNC_709, V4L2_YCBCR_ENC_601,
				    V4L2_QUANTIZATION_LIM_RANGE }));
	Colorimetry hd = resolveColorimetry({}, V4L2_PIX_FMT_YUYV, 1080);
	EXPECT_EQ(hd, (Colorimetry{ V4L2_COLORSPACE_REC709, V4L2_XFER_FUNC_709, V4L2_YCBCR_ENC_709,
				    V4L2_QUANTIZATION_LIM_RANGE }));
	Colorimetry rgb = resolveColorimetry({}, V4L2_PIX_FMT_BGR24, 1080);
	EXPECT_EQ(rgb.colorspace, V4L2_COLORSPACE_SRGB);
	EXPECT_EQ(rgb.xferFunc, V4L2_XFER_FUNC_SRGB);
	EXPECT_EQ(rgb.quantization, V4L2_QUANTIZATION_FULL_RANGE);
	/* What the driver did say is kept. */
	Colorimetry full = resolveColorimetry({ V4L2_COLORSPACE_REC709, 0, 0, V4L2_QUANTIZATION_FULL_RANGE },
					      V4L2_PIX_FMT_NV12, 480);
	EXPECT_EQ(full.colorspace, V4L2_COLORSPACE_REC709);
	EXPECT_EQ(full.ycbcrEnc, V4L2_YCBCR_ENC_709);
	EXPECT_EQ(full.quantization, V4L2_QUANTIZATION_FULL_RANGE);
}

TEST(PixelFormat, MultiBufferFormatsHaveOneBufferTwinsWhosePlanesTheBridgeKnows)
{
	EXPECT_EQ(oneBufferTwin(V4L2_PIX_FMT_NV12M), uint32_t(V4L2_PIX_FMT_NV12));
	EXPECT_EQ(oneBufferTwin(V4L2_PIX_FMT_NV21M), uint32_t(V4L2_PIX_FMT_NV21));
	EXPECT_EQ(oneBufferTwin(V4L2_PIX_FMT_YUV420M), uint32_t(V4L2_PIX_FMT_YUV420));
	EXPECT_EQ(oneBufferTwin(V4L2_PIX_FMT_YUV422M), uint32_t(V4L2_PIX_FMT_YUV422P));
	/* Every twin's planes can be described to a guest. */
	for (uint32_t m : { V4L2_PIX_FMT_NV12M, V4L2_PIX_FMT_NV21M, V4L2_PIX_FMT_NV16M, V4L2_PIX_FMT_YUV420M,
			    V4L2_PIX_FMT_YVU420M, V4L2_PIX_FMT_YUV422M })
		EXPECT_TRUE(packedFrameLayout(oneBufferTwin(m), 64, 64).has_value()) << fourccToString(m);
	/* One-buffer formats and tiled or unknown multi-buffer ones have none. */
	EXPECT_EQ(oneBufferTwin(V4L2_PIX_FMT_NV12), 0u);
	EXPECT_EQ(oneBufferTwin(V4L2_PIX_FMT_YUYV), 0u);
	EXPECT_EQ(oneBufferTwin(V4L2_PIX_FMT_NV12MT), 0u);
}
