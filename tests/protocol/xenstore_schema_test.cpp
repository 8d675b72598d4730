/* SPDX-License-Identifier: MIT */
/*
 * The vcamera XenStore schema: a valid directory round-trips, and every
 * field rejects malformed values with an error that names the key and the
 * value (the frontend directory is guest-writable).
 */

#include <cerrno>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

extern "C" {
#include <xen/io/cameraif.h>
#include <xen/io/xenbus.h>
}

#include "protocol/xenstore_schema.h"

namespace xmb::proto {
namespace {

using ::testing::HasSubstr;
using KV = std::map<std::string, std::string>;

constexpr uint32_t fourcc(char a, char b, char c, char d)
{
	return static_cast<uint32_t>(a) | static_cast<uint32_t>(b) << 8 |
	       static_cast<uint32_t>(c) << 16 | static_cast<uint32_t>(d) << 24;
}

KV validConfigKeys()
{
	return {
		{ "be-alloc", "0" },
		{ "unique-id", "usb-0000:00:14.0-1" },
		{ "max-buffers", "4" },
		{ "controls", "brightness,contrast" },
		{ "formats/YUYV/640x480/frame-rates", "30/1,15/1" },
		{ "formats/YUYV/1280x720/frame-rates", "30/1" },
		{ "formats/MJPG/1920x1080/frame-rates", "30/1,60/1" },
	};
}

KV validTransportKeys()
{
	return {
		{ "version", "1" },
		{ "req-ring-ref", "8" },
		{ "req-event-channel", "17" },
		{ "evt-ring-ref", "9" },
		{ "evt-event-channel", "18" },
	};
}

Result<VcameraConfig> parseConfig(const KV &kv)
{
	return parseVcameraConfig(mapView(kv));
}

Result<VcameraTransport> parseTransport(const KV &kv)
{
	return parseVcameraTransport(mapView(kv), { "1" });
}

/* ---- valid directories ---- */

VcameraConfig fullConfig()
{
	VcameraConfig c;
	c.beAlloc = true;
	c.uniqueId = "platform-camera:front";
	c.maxBuffers = 255;
	c.controls = { XENCAMERA_CTRL_HUE, XENCAMERA_CTRL_BRIGHTNESS, XENCAMERA_CTRL_SATURATION,
		       XENCAMERA_CTRL_CONTRAST };
	/* Parsing lists labels and sizes in XenStore (sorted) order; keep that order here. */
	c.formats = {
		{ fourcc('G', 'R', 'E', 'Y'), { { 8192, 8192, { { 1, 1 } } } } },
		{ fourcc('M', 'J', 'P', 'G'),
		  { { 1280, 720, { { 30, 1 }, { 60, 1 } } },
		    { 1920, 1080, { { 30000, 1001 }, { 4294967295u, 4294967295u } } } } },
		{ fourcc('Y', '8', ' ', ' '), { { 1, 1, { { 5, 1 } } } } },
		{ fourcc('Y', 'U', 'Y', 'V') | 1u << 31, { { 640, 480, { { 30, 1 } } } } },
	};
	return c;
}

TEST(VcameraConfig, FullConfigRoundTripsThroughFormatAndParse)
{
	VcameraConfig cfg = fullConfig();
	KV kv = formatVcameraConfig(cfg);
	auto parsed = parseConfig(kv);
	ASSERT_TRUE(parsed.ok()) << parsed.error().message;
	EXPECT_EQ(*parsed, cfg);
}

TEST(VcameraConfig, FormattedKeysAreTheSchemaOnes)
{
	KV kv = formatVcameraConfig(fullConfig());
	EXPECT_EQ(kv.at("be-alloc"), "1");
	EXPECT_EQ(kv.at("unique-id"), "platform-camera:front");
	EXPECT_EQ(kv.at("max-buffers"), "255");
	EXPECT_EQ(kv.at("controls"), "hue,brightness,saturation,contrast");
	EXPECT_EQ(kv.at("formats/MJPG/1920x1080/frame-rates"), "30000/1001,4294967295/4294967295");
	EXPECT_EQ(kv.at("formats/Y8/1x1/frame-rates"), "5/1");
	EXPECT_EQ(kv.at("formats/YUYV-BE/640x480/frame-rates"), "30/1");
}

TEST(VcameraConfig, CanonicalDirectoryRoundTripsThroughParseAndFormat)
{
	KV kv = validConfigKeys();
	auto parsed = parseConfig(kv);
	ASSERT_TRUE(parsed.ok()) << parsed.error().message;
	EXPECT_EQ(formatVcameraConfig(*parsed), kv);
}

TEST(VcameraConfig, ValidDirectoryParsesToItsValues)
{
	auto cfg = parseConfig(validConfigKeys());
	ASSERT_TRUE(cfg.ok()) << cfg.error().message;
	EXPECT_FALSE(cfg->beAlloc);
	EXPECT_EQ(cfg->uniqueId, "usb-0000:00:14.0-1");
	EXPECT_EQ(cfg->maxBuffers, 4);
	EXPECT_EQ(cfg->controls, (std::vector<uint8_t>{ XENCAMERA_CTRL_BRIGHTNESS, XENCAMERA_CTRL_CONTRAST }));
	ASSERT_EQ(cfg->formats.size(), 2u);
	EXPECT_EQ(cfg->formats[0].fourcc, fourcc('M', 'J', 'P', 'G'));
	EXPECT_EQ(cfg->formats[1].fourcc, fourcc('Y', 'U', 'Y', 'V'));
	ASSERT_EQ(cfg->formats[1].resolutions.size(), 2u);
	const Resolution &vga = cfg->formats[1].resolutions[1];
	EXPECT_EQ(vga.width, 640u);
	EXPECT_EQ(vga.height, 480u);
	EXPECT_EQ(vga.frameRates, (std::vector<Fraction>{ { 30, 1 }, { 15, 1 } }));
}

TEST(VcameraConfig, BeAllocIsOptionalAndDefaultsToFrontendBuffers)
{
	KV kv = validConfigKeys();
	kv.erase("be-alloc");
	auto cfg = parseConfig(kv);
	ASSERT_TRUE(cfg.ok()) << cfg.error().message;
	EXPECT_FALSE(cfg->beAlloc);
}

TEST(VcameraConfig, BeAllocOneMeansBackendBuffers)
{
	KV kv = validConfigKeys();
	kv["be-alloc"] = "1";
	auto cfg = parseConfig(kv);
	ASSERT_TRUE(cfg.ok()) << cfg.error().message;
	EXPECT_TRUE(cfg->beAlloc);
}

TEST(VcameraConfig, ControlsAreOptional)
{
	KV kv = validConfigKeys();
	kv.erase("controls");
	auto cfg = parseConfig(kv);
	ASSERT_TRUE(cfg.ok()) << cfg.error().message;
	EXPECT_TRUE(cfg->controls.empty());
}

TEST(VcameraConfig, EmptyControlsMeanACameraWithoutControls)
{
	KV kv = validConfigKeys();
	kv["controls"] = "";
	auto cfg = parseConfig(kv);
	ASSERT_TRUE(cfg.ok()) << cfg.error().message;
	EXPECT_TRUE(cfg->controls.empty());
}

TEST(VcameraConfig, BigEndianSuffixSetsBit31)
{
	KV kv = validConfigKeys();
	kv["formats/RGB3-BE/640x480/frame-rates"] = "30/1";
	auto cfg = parseConfig(kv);
	ASSERT_TRUE(cfg.ok()) << cfg.error().message;
	ASSERT_EQ(cfg->formats.size(), 3u);
	EXPECT_EQ(cfg->formats[1].fourcc, fourcc('R', 'G', 'B', '3') | 1u << 31);
}

TEST(VcameraConfig, BoundaryCountsAreAccepted)
{
	KV kv = validConfigKeys();
	std::string rates;
	for (unsigned i = 1; i <= kMaxFrameRates; i++)
		rates += (i > 1 ? "," : "") + std::to_string(i) + "/1";
	kv["formats/YUYV/640x480/frame-rates"] = rates;
	for (unsigned i = 1; i <= kMaxResolutionsPerFormat; i++)
		kv["formats/NV12/" + std::to_string(i) + "x1/frame-rates"] = "1/1";
	for (unsigned i = 3; i < kMaxFormats; i++)
		kv["formats/F" + std::to_string(i) + "/1x1/frame-rates"] = "1/1";
	auto cfg = parseConfig(kv);
	ASSERT_TRUE(cfg.ok()) << cfg.error().message;
	EXPECT_EQ(cfg->formats.size(), kMaxFormats);
}

TEST(VcameraConfig, LargestValuesAreAccepted)
{
	KV kv = validConfigKeys();
	kv["max-buffers"] = "255";
	kv["unique-id"] = std::string(kMaxUniqueIdLen, '~');
	kv["formats/YUYV/8192x8192/frame-rates"] = "4294967295/4294967295";
	auto cfg = parseConfig(kv);
	ASSERT_TRUE(cfg.ok()) << cfg.error().message;
	EXPECT_EQ(cfg->maxBuffers, 255);
}

TEST(VcameraConfig, UniqueIdMayHaveSpaces)
{
	/* libcamera's camera ids have them; the service publishes "libcamera:<id>". */
	KV kv = validConfigKeys();
	kv["unique-id"] = "libcamera:platform/vimc.0 Sensor B";
	auto cfg = parseConfig(kv);
	ASSERT_TRUE(cfg.ok()) << cfg.error().message;
	EXPECT_EQ(cfg->uniqueId, "libcamera:platform/vimc.0 Sensor B");
}

/* ---- malformed configuration: one case per field and value ---- */

struct BadConfig {
	std::string name;
	std::function<void(KV &)> mutate;
	std::vector<std::string> inMessage; /* the key, and the value as quoted */
	int code = -EINVAL;
};

std::function<void(KV &)> set(std::string key, std::string value)
{
	return [key, value](KV &kv) { kv[key] = value; };
}

std::function<void(KV &)> erase(std::string key)
{
	return [key](KV &kv) { kv.erase(key); };
}

std::function<void(KV &)> eraseFormats()
{
	return [](KV &kv) { std::erase_if(kv, [](const auto &e) { return e.first.starts_with("formats/"); }); };
}

std::string singleQuoted(const std::string &v) { return "'" + v + "'"; }

BadConfig scalar(std::string name, std::string key, std::string value)
{
	return { std::move(name), set(key, value), { key + ": ", singleQuoted(value) } };
}

BadConfig label(std::string name, std::string lbl, std::string shown = {})
{
	return { std::move(name), set("formats/" + lbl + "/640x480/frame-rates", "30/1"),
		 { "formats/" + lbl, singleQuoted(shown.empty() ? lbl : shown) } };
}

BadConfig resolution(std::string name, std::string res)
{
	std::string rdir = "formats/YUYV/" + res;
	return { std::move(name), set(rdir + "/frame-rates", "30/1"), { rdir + ": ", singleQuoted(res) } };
}

BadConfig rates(std::string name, std::string value, std::string shown = {})
{
	std::string key = "formats/YUYV/640x480/frame-rates";
	return { std::move(name), set(key, value), { key + ": ", singleQuoted(shown.empty() ? value : shown) } };
}

std::string repeatList(const std::string &item, unsigned n, bool distinct)
{
	std::string s;
	for (unsigned i = 1; i <= n; i++)
		s += (i > 1 ? "," : "") + (distinct ? std::to_string(i) : "") + item;
	return s;
}

std::vector<BadConfig> badConfigs()
{
	std::string longId(kMaxUniqueIdLen + 1, 'u');
	std::string tooManyRates = repeatList("/1", kMaxFrameRates + 1, true);
	std::string veryLong(kMaxValueLen + 1, '1');
	return {
		/* be-alloc */
		scalar("BeAllocTwo", "be-alloc", "2"),
		scalar("BeAllocEmpty", "be-alloc", ""),
		scalar("BeAllocYes", "be-alloc", "yes"),
		scalar("BeAllocLeadingZero", "be-alloc", "01"),
		scalar("BeAllocTrailingSpace", "be-alloc", "1 "),
		/* unique-id */
		scalar("UniqueIdEmpty", "unique-id", ""),
		{ "UniqueIdTooLong", set("unique-id", longId),
		  { "unique-id: ", "'" + longId.substr(0, 64) + "...'" } },
		{ "UniqueIdWithControlChar", set("unique-id", "cam\x01"), { "unique-id: ", "'cam\\x01'" } },
		{ "UniqueIdWithDel", set("unique-id", "cam\x7f"), { "unique-id: ", "'cam\\x7f'" } },
		{ "UniqueIdNonAscii", set("unique-id", "cam\xc3\xa9"), { "unique-id: ", "'cam\\xc3\\xa9'" } },
		{ "UniqueIdMissing", erase("unique-id"), { "unique-id", "missing" }, -ENOENT },
		/* max-buffers */
		scalar("MaxBuffersZero", "max-buffers", "0"),
		scalar("MaxBuffers256", "max-buffers", "256"),
		scalar("MaxBuffersNegative", "max-buffers", "-1"),
		scalar("MaxBuffersPlusSign", "max-buffers", "+3"),
		scalar("MaxBuffersLeadingZero", "max-buffers", "03"),
		scalar("MaxBuffersTrailingSpace", "max-buffers", "3 "),
		scalar("MaxBuffersLeadingSpace", "max-buffers", " 3"),
		scalar("MaxBuffersHex", "max-buffers", "0x3"),
		scalar("MaxBuffersEmpty", "max-buffers", ""),
		scalar("MaxBuffersBeyondUint64", "max-buffers", "18446744073709551616"),
		{ "MaxBuffersMissing", erase("max-buffers"), { "max-buffers", "missing" }, -ENOENT },
		/* controls */
		scalar("ControlsUnknownName", "controls", "brightness,gamma"),
		scalar("ControlsDuplicate", "controls", "contrast,hue,contrast"),
		scalar("ControlsTrailingComma", "controls", "brightness,"),
		scalar("ControlsLeadingComma", "controls", ",brightness"),
		scalar("ControlsWrongCase", "controls", "Brightness"),
		scalar("ControlsSpaceAfterComma", "controls", "brightness, contrast"),
		/* formats */
		{ "FormatsMissing", eraseFormats(), { "formats", "missing" }, -ENOENT },
		{ "FormatsTooMany",
		  [](KV &kv) {
			  for (unsigned i = 0; i < kMaxFormats; i++)
				  kv["formats/F" + std::to_string(i) + "/1x1/frame-rates"] = "1/1";
		  },
		  { "formats", "more than 32" }, -E2BIG },
		label("FormatLabelFiveChars", "ABCDE"),
		label("FormatLabelFiveCharsBigEndian", "ABCDE-BE"),
		label("FormatLabelEmpty", ""),
		label("FormatLabelSpace", "AB C"),
		label("FormatLabelTrailingSpace", "AB "),
		label("FormatLabelStar", "AB*C"),
		label("FormatLabelColon", "A:B"),
		label("FormatLabelQuote", "A\"B"),
		label("FormatLabelPipe", "A|B"),
		label("FormatLabelQuestionMark", "A?B"),
		label("FormatLabelLessThan", "A<B"),
		label("FormatLabelGreaterThan", "A>B"),
		label("FormatLabelBackslash", "A\\B"),
		label("FormatLabelControlChar", "A\tB", "A\\x09B"),
		label("FormatLabelDel", "A\x7f", "A\\x7f"),
		label("FormatLabelNonAscii", "A\xc3\xa9", "A\\xc3\\xa9"),
		{ "FormatWithoutResolutions", set("formats/NV12", ""), { "formats/NV12", "no resolutions" }, -ENOENT },
		/* resolution directory names */
		resolution("ResolutionWidthOnly", "640"),
		resolution("ResolutionZeroWidth", "0x480"),
		resolution("ResolutionZeroHeight", "640x0"),
		resolution("ResolutionNoHeight", "640x"),
		resolution("ResolutionNoWidth", "x480"),
		resolution("ResolutionThreeTerms", "640x480x2"),
		resolution("ResolutionHugeWidth", "99999x1"),
		resolution("ResolutionWidthOverLimit", "8193x1"),
		resolution("ResolutionHeightOverLimit", "1x8193"),
		resolution("ResolutionUpperCaseX", "640X480"),
		resolution("ResolutionLeadingZero", "0640x480"),
		resolution("ResolutionPlusSign", "+640x480"),
		resolution("ResolutionNegative", "-1x480"),
		resolution("ResolutionSpace", "640x 480"),
		{ "ResolutionsTooMany",
		  [](KV &kv) {
			  for (unsigned i = 1; i <= kMaxResolutionsPerFormat; i++)
				  kv["formats/YUYV/" + std::to_string(i) + "x1/frame-rates"] = "1/1";
		  },
		  { "formats/YUYV", "more than 64" }, -E2BIG },
		{ "ResolutionWithoutFrameRates", set("formats/YUYV/800x600/other", "1"),
		  { "formats/YUYV/800x600/frame-rates", "missing" }, -ENOENT },
		/* frame-rates */
		rates("FrameRatesEmpty", ""),
		rates("FrameRatesNoDenominator", "30"),
		rates("FrameRatesZeroDenominator", "30/0"),
		rates("FrameRatesZeroNumerator", "0/1"),
		rates("FrameRatesTrailingComma", "30/1,"),
		rates("FrameRatesLeadingComma", ",30/1"),
		rates("FrameRatesDuplicate", "30/1,30/1"),
		rates("FrameRatesTooMany", tooManyRates, tooManyRates.substr(0, 64) + "..."),
		rates("FrameRatesNumeratorBeyondUint32", "4294967296/1"),
		rates("FrameRatesDenominatorBeyondUint32", "1/4294967296"),
		rates("FrameRatesThreeTerms", "30/1/2"),
		rates("FrameRatesDoubleSlash", "30//1"),
		rates("FrameRatesSpace", "30 /1"),
		rates("FrameRatesPlusSign", "+30/1"),
		rates("FrameRatesLeadingZero", "30/01"),
		rates("FrameRatesTrailingSpace", "30/1 "),
		rates("FrameRatesDecimal", "29.97/1"),
		rates("FrameRatesTooLong", veryLong, veryLong.substr(0, 64) + "..."),
	};
}

class MalformedVcameraConfig : public ::testing::TestWithParam<BadConfig>
{
};

TEST_P(MalformedVcameraConfig, IsRejectedWithAMessageNamingKeyAndValue)
{
	KV kv = validConfigKeys();
	GetParam().mutate(kv);
	auto r = parseConfig(kv);
	ASSERT_FALSE(r.ok()) << "accepted";
	EXPECT_EQ(r.error().code, GetParam().code) << r.error().message;
	for (const auto &s : GetParam().inMessage)
		EXPECT_THAT(r.error().message, HasSubstr(s));
}

INSTANTIATE_TEST_SUITE_P(EveryField, MalformedVcameraConfig, ::testing::ValuesIn(badConfigs()),
			 [](const auto &p) { return p.param.name; });

/* ---- transport keys ---- */

TEST(VcameraTransport, RoundTripsThroughFormatAndParse)
{
	VcameraTransport t{ "1", 8, 17, 4294967295u, 1 };
	auto parsed = parseTransport(formatVcameraTransport(t));
	ASSERT_TRUE(parsed.ok()) << parsed.error().message;
	EXPECT_EQ(*parsed, t);
}

TEST(VcameraTransport, ValidKeysParseToTheirValues)
{
	auto t = parseTransport(validTransportKeys());
	ASSERT_TRUE(t.ok()) << t.error().message;
	EXPECT_EQ(t->version, "1");
	EXPECT_EQ(t->reqRingRef, 8u);
	EXPECT_EQ(t->reqEventChannel, 17u);
	EXPECT_EQ(t->evtRingRef, 9u);
	EXPECT_EQ(t->evtEventChannel, 18u);
}

TEST(VcameraTransport, AnyVersionTheBackendListsIsAccepted)
{
	KV kv = validTransportKeys();
	kv["version"] = "2";
	auto t = parseVcameraTransport(mapView(kv), { "1", "2" });
	ASSERT_TRUE(t.ok()) << t.error().message;
	EXPECT_EQ(t->version, "2");
}

TEST(VcameraTransport, MissingVersionMeansProtocolOneAsLinuxFrontendWritesNone)
{
	auto kv = validTransportKeys();
	kv.erase("version");
	auto t = parseVcameraTransport(mapView(kv), { "1" });
	ASSERT_TRUE(t.ok()) << t.error().message;
	EXPECT_EQ(t->version, "1");
	EXPECT_TRUE(t->versionImplied);
	/* Implied 1 is still checked against what the backend supports. */
	EXPECT_FALSE(parseVcameraTransport(mapView(kv), { "2" }).ok());
	/* Our own output stays strict: the version is always written. */
	EXPECT_EQ(formatVcameraTransport(*t).count("version"), 1u);
}

TEST(VcameraTransport, NoSupportedVersionsRejectsEveryFrontend)
{
	EXPECT_FALSE(parseVcameraTransport(mapView(validTransportKeys()), {}).ok());
}

std::vector<BadConfig> badTransports()
{
	std::vector<BadConfig> cases = {
		scalar("VersionUnsupported", "version", "2"),
		scalar("VersionEmpty", "version", ""),
		scalar("VersionTrailingSpace", "version", "1 "),
	};
	const std::pair<const char *, const char *> keys[] = {
		{ "ReqRingRef", "req-ring-ref" },
		{ "ReqEventChannel", "req-event-channel" },
		{ "EvtRingRef", "evt-ring-ref" },
		{ "EvtEventChannel", "evt-event-channel" },
	};
	for (auto [name, key] : keys) {
		std::string n = name;
		cases.push_back({ n + "Missing", erase(key), { key, "missing" }, -ENOENT });
		cases.push_back(scalar(n + "Zero", key, "0"));
		cases.push_back(scalar(n + "Empty", key, ""));
		cases.push_back(scalar(n + "Letters", key, "abc"));
		cases.push_back(scalar(n + "Negative", key, "-8"));
		cases.push_back(scalar(n + "Hex", key, "0x8"));
		cases.push_back(scalar(n + "LeadingZero", key, "08"));
		cases.push_back(scalar(n + "TrailingSpace", key, "8 "));
		cases.push_back(scalar(n + "BeyondUint32", key, "4294967296"));
	}
	return cases;
}

class MalformedVcameraTransport : public ::testing::TestWithParam<BadConfig>
{
};

TEST_P(MalformedVcameraTransport, IsRejectedWithAMessageNamingKeyAndValue)
{
	KV kv = validTransportKeys();
	GetParam().mutate(kv);
	auto r = parseTransport(kv);
	ASSERT_FALSE(r.ok()) << "accepted";
	EXPECT_EQ(r.error().code, GetParam().code) << r.error().message;
	for (const auto &s : GetParam().inMessage)
		EXPECT_THAT(r.error().message, HasSubstr(s));
}

INSTANTIATE_TEST_SUITE_P(EveryKey, MalformedVcameraTransport, ::testing::ValuesIn(badTransports()),
			 [](const auto &p) { return p.param.name; });

/* ---- scalar parsers ---- */

TEST(ParseUnsigned, AcceptsPlainDecimalUpToMax)
{
	EXPECT_EQ(parseUnsigned("k", "0", 10).value(), 0u);
	EXPECT_EQ(parseUnsigned("k", "10", 10).value(), 10u);
	EXPECT_EQ(parseUnsigned("k", "18446744073709551615", UINT64_MAX).value(), UINT64_MAX);
}

TEST(ParseUnsigned, RejectsEverythingElseNamingKeyAndValue)
{
	for (const char *v : { "", "11", "-0", "+1", "01", "00", " 1", "1 ", "1a", "0x1", "1e3", "1.0",
			       "18446744073709551616" }) {
		auto r = parseUnsigned("some-key", v, 10);
		ASSERT_FALSE(r.ok()) << "'" << v << "'";
		EXPECT_EQ(r.error().code, -EINVAL);
		EXPECT_THAT(r.error().message, HasSubstr("some-key: '" + std::string(v) + "'"));
	}
}

TEST(ParseUnsigned, RejectsEmbeddedNul)
{
	EXPECT_FALSE(parseUnsigned("k", std::string_view("1\0", 2), 10).ok());
}

TEST(ParseXenbusState, AcceptsEveryState)
{
	for (int s = XenbusStateUnknown; s <= XenbusStateReconfigured; s++)
		EXPECT_EQ(parseXenbusState("state", std::to_string(s)).value(), s);
}

TEST(ParseXenbusState, RejectsStatesBeyondReconfigured)
{
	auto r = parseXenbusState("state", "9");
	ASSERT_FALSE(r.ok());
	EXPECT_THAT(r.error().message, HasSubstr("state: '9'"));
}

TEST(FourccLabel, ShortLabelsArePaddedWithSpacesAndFormatBack)
{
	auto f = parseFourccLabel("k", "Y8");
	ASSERT_TRUE(f.ok());
	EXPECT_EQ(*f, fourcc('Y', '8', ' ', ' '));
	EXPECT_EQ(formatFourccLabel(*f), "Y8");
}

TEST(FourccLabel, BigEndianSuffixRoundTrips)
{
	for (const char *l : { "YUYV-BE", "A-BE", "AR24-BE", "-BE-BE" }) {
		auto f = parseFourccLabel("k", l);
		ASSERT_TRUE(f.ok()) << l;
		EXPECT_TRUE(*f & 1u << 31) << l;
		EXPECT_EQ(formatFourccLabel(*f), l);
	}
}

TEST(FourccLabel, SuffixAloneIsAnOrdinaryLabel)
{
	auto f = parseFourccLabel("k", "-BE");
	ASSERT_TRUE(f.ok());
	EXPECT_EQ(*f, fourcc('-', 'B', 'E', ' '));
	EXPECT_EQ(formatFourccLabel(*f), "-BE");
}

TEST(Resolution, ParsesWidthAndHeight)
{
	auto r = parseResolution("k", "1920x1080");
	ASSERT_TRUE(r.ok());
	EXPECT_EQ(r->first, 1920u);
	EXPECT_EQ(r->second, 1080u);
}

TEST(FrameRates, FormatIsTheInverseOfParse)
{
	std::vector<Fraction> r = { { 30000, 1001 }, { 1, 4294967295u } };
	EXPECT_EQ(formatFrameRates(r), "30000/1001,1/4294967295");
	EXPECT_EQ(parseFrameRates("k", formatFrameRates(r)).value(), r);
}

TEST(Controls, FormatSkipsUnknownTypes)
{
	EXPECT_EQ(formatControls({ XENCAMERA_CTRL_HUE, 200, XENCAMERA_CTRL_CONTRAST }), "hue,contrast");
}

TEST(Controls, ErrorQuotesTheUnknownName)
{
	auto r = parseControls("controls", "hue,zoom");
	ASSERT_FALSE(r.ok());
	EXPECT_THAT(r.error().message, HasSubstr("'zoom'"));
}

/* ---- mapView and paths ---- */

TEST(MapView, ListsDirectChildrenOnce)
{
	KV kv = { { "a/b/c", "1" }, { "a/b/d", "2" }, { "a/e", "3" }, { "ab", "4" } };
	XsView v = mapView(kv);
	EXPECT_EQ(v.list("a"), (std::vector<std::string>{ "b", "e" }));
	EXPECT_EQ(v.list(""), (std::vector<std::string>{ "a", "ab" }));
	EXPECT_EQ(v.list("a/e"), std::nullopt);
	EXPECT_EQ(v.read("a/e"), "3");
	EXPECT_EQ(v.read("a/b"), std::nullopt);
}

TEST(VcameraPaths, FollowTheToolstackLayout)
{
	auto p = vcameraPaths(0, 5, 1);
	EXPECT_EQ(p.frontend, "/local/domain/5/device/vcamera/1");
	EXPECT_EQ(p.backend, "/local/domain/0/backend/vcamera/5/1");
	EXPECT_EQ(vcameraPaths(2, 7, 0, "vcodec").backend, "/local/domain/2/backend/vcodec/7/0");
}

} /* namespace */
} /* namespace xmb::proto */
