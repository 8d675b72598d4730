/* SPDX-License-Identifier: MIT */
/* The daemons' live status socket (xmb-*-service --status / --json). */
#include <atomic>
#include <string>
#include <thread>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "bridge/service/event_loop.h"
#include "bridge/service/delivery_window.h"
#include "bridge/service/status_socket.h"

using namespace xmb;
using namespace xmb::service;
using namespace std::chrono_literals;

namespace {

/* A status socket served by a loop on its own thread, as in the daemons. */
class StatusSocketTest : public ::testing::Test
{
protected:
	void SetUp() override
	{
		char tmpl[] = "/tmp/xmb-status.XXXXXX";
		ASSERT_NE(mkdtemp(tmpl), nullptr);
		dir_ = tmpl;
		path_ = dir_ + "/run/test.sock";
	}
	void start(StatusSocket::Provider p)
	{
		socket_ = std::make_unique<StatusSocket>(loop_, std::move(p));
		socket_->allowAnyUid(true); /* the suite may run as any user */
		Status s = socket_->listen(path_);
		ASSERT_TRUE(s) << s.error().message;
		thread_ = std::thread([this] { loop_.run(); });
	}
	void TearDown() override
	{
		if (thread_.joinable()) {
			loop_.defer([this] { loop_.exit(0); });
			thread_.join();
		}
		socket_.reset();
		std::string cmd = "rm -rf " + dir_;
		(void)!system(cmd.c_str());
	}
	int connectRaw()
	{
		int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		sockaddr_un a{};
		a.sun_family = AF_UNIX;
		std::snprintf(a.sun_path, sizeof(a.sun_path), "%s", path_.c_str());
		EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof(a)), 0);
		return fd;
	}

	EventLoop loop_;
	std::unique_ptr<StatusSocket> socket_;
	std::thread thread_;
	std::string dir_, path_;
};

} /* namespace */

TEST_F(StatusSocketTest, AnswersTextOrJsonAsAsked)
{
	start([](bool json) { return json ? std::string("{\"devices\": []}\n") : std::string("dom1 vcamera/0 ...\n"); });
	auto text = queryStatus(path_, false);
	ASSERT_TRUE(text) << text.error().message;
	EXPECT_EQ(*text, "dom1 vcamera/0 ...\n");
	auto json = queryStatus(path_, true);
	ASSERT_TRUE(json) << json.error().message;
	EXPECT_EQ(*json, "{\"devices\": []}\n");
}

TEST_F(StatusSocketTest, SocketIsPrivateToItsOwner)
{
	start([](bool) { return std::string("x"); });
	struct stat st{};
	ASSERT_EQ(::stat(path_.c_str(), &st), 0);
	EXPECT_EQ(st.st_mode & 0077, 0u) << "socket mode " << std::oct << (st.st_mode & 0777);
	ASSERT_EQ(::stat((dir_ + "/run").c_str(), &st), 0);
	EXPECT_EQ(st.st_mode & 0077, 0u) << "directory mode " << std::oct << (st.st_mode & 0777);
}

/* A status as large as many guests make is delivered whole through non-blocking writes. */
TEST_F(StatusSocketTest, LargeAnswerArrivesWhole)
{
	std::string big(4 << 20, 'a');
	for (size_t i = 0; i < big.size(); i += 4096)
		big[i] = char('0' + (i / 4096) % 10);
	start([&big](bool) { return big; });
	auto got = queryStatus(path_, false);
	ASSERT_TRUE(got) << got.error().message;
	EXPECT_TRUE(*got == big) << "got " << got->size() << " bytes of " << big.size();
}

/* A client that connects and never asks costs a slot for a while, not the service. */
TEST_F(StatusSocketTest, SilentClientNeitherBlocksOthersNorStaysForever)
{
	start([](bool) { return std::string("ok\n"); });
	int silent = connectRaw();
	auto got = queryStatus(path_, false);
	ASSERT_TRUE(got) << got.error().message;
	EXPECT_EQ(*got, "ok\n");
	/* The silent one is closed after the client timeout: read sees EOF. */
	timeval tv{ 5, 0 };
	ASSERT_EQ(setsockopt(silent, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
	char c;
	auto t0 = std::chrono::steady_clock::now();
	EXPECT_EQ(::read(silent, &c, 1), 0);
	EXPECT_LT(std::chrono::steady_clock::now() - t0, 4s);
	::close(silent);
}

TEST_F(StatusSocketTest, SecondDaemonOnTheSamePathIsRefusedAStaleSocketReplaced)
{
	start([](bool) { return std::string("first\n"); });
	EventLoop other;
	StatusSocket second(other, [](bool) { return std::string("second\n"); });
	Status s = second.listen(path_);
	ASSERT_FALSE(s);
	EXPECT_NE(s.error().message.find("another daemon"), std::string::npos) << s.error().message;
	auto still = queryStatus(path_, false);
	ASSERT_TRUE(still.ok()) << still.error().message;
	EXPECT_EQ(*still, "first\n");

	/* A socket file nobody listens on (a daemon that died) is replaced. */
	std::string stale = dir_ + "/stale.sock";
	int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
	sockaddr_un a{};
	a.sun_family = AF_UNIX;
	std::snprintf(a.sun_path, sizeof(a.sun_path), "%s", stale.c_str());
	ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof(a)), 0);
	::close(fd);
	EventLoop third;
	StatusSocket replacing(third, [](bool) { return std::string("third\n"); });
	Status r = replacing.listen(stale);
	EXPECT_TRUE(r) << r.error().message;
}

/*
 * A daemon stopping with clients still connected (one silent, its timer
 * pending; one just answered): the socket goes, its file is removed, and
 * the loop running on afterwards past the client timeout touches nothing
 * of it (ASan would see it).
 */
TEST_F(StatusSocketTest, DestroyedWithClientsPendingLeavesNothingBehind)
{
	start([](bool) { return std::string(100000, 'x'); });
	int silent = connectRaw();
	int asking = connectRaw();
	ASSERT_EQ(::send(asking, "j", 1, MSG_NOSIGNAL), 1);
	std::this_thread::sleep_for(100ms);
	loop_.defer([this] { loop_.exit(0); });
	thread_.join();
	socket_.reset();
	EXPECT_NE(::access(path_.c_str(), F_OK), 0) << "the socket file is removed";
	loop_.addTimer(StatusSocket::kClientTimeout + 500ms, [this] { loop_.exit(0); });
	loop_.run();
	::close(silent);
	::close(asking);
}

TEST(StatusQuery, NoDaemonSaysWhatToCheck)
{
	auto r = queryStatus("/tmp/xmb-no-such-dir/status.sock", false);
	ASSERT_FALSE(r);
	EXPECT_NE(r.error().message.find("is the daemon running?"), std::string::npos) << r.error().message;
}

TEST(StatusJson, StringsAreEscaped)
{
	EXPECT_EQ(jsonString("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
}

TEST(DeliveryWindow, RateAndLatencyPercentilesOverTheLastFrames)
{
	DeliveryWindow w;
	EXPECT_EQ(w.fpsMilli(0), 0u) << "no frames: no rate";
	EXPECT_FALSE(w.latencyUs(50));
	/* 200 frames at 25 fps (40 ms apart); latency 1..200 us: the window holds the last 128. */
	const uint64_t t0 = 1'000'000'000;
	for (uint64_t i = 0; i < 200; i++) {
		const uint64_t sent = t0 + i * 40'000'000;
		w.record(sent, sent - (i + 1) * 1000);
	}
	const uint64_t last = t0 + 199ull * 40'000'000;
	EXPECT_EQ(w.fpsMilli(last), 25000u);
	/* Frames 73..200 are in the window: latencies 73..200 us. */
	EXPECT_EQ(w.latencyUs(0), 73u);
	EXPECT_EQ(w.latencyUs(50), 136u);
	EXPECT_EQ(w.latencyUs(99), 199u);
	EXPECT_EQ(w.latencyUs(100), 200u);
	EXPECT_EQ(w.fpsMilli(last + 3'000'000'000ull), 0u) << "a stream that stopped has no rate";
}

TEST(DeliveryWindow, StampsFromAnotherClockGiveNoLatency)
{
	DeliveryWindow w;
	w.record(5'000'000'000, 0);		 /* the source gave no time */
	w.record(5'040'000'000, 9'000'000'000);	 /* 4 s ahead: not CLOCK_MONOTONIC */
	w.record(50'000'000'000, 1'000'000'000); /* 49 s old: a copied or wall-clock stamp */
	EXPECT_FALSE(w.latencyUs(50));
	/* vivid stamps a frame's nominal time, a little ahead of its delivery: 0, not unknown. */
	w.record(50'040'000'000, 50'045'000'000);
	EXPECT_EQ(w.latencyUs(50), 0u);
	w.record(50'080'000'000, 50'079'000'000);
	w.record(50'120'000'000, 50'118'000'000);
	EXPECT_EQ(w.latencyUs(50), 1000u);
	EXPECT_EQ(w.latencyUs(99), 2000u);
}

TEST(StatusStream, TextAndJsonLeaveOutOrNullWhatIsNotKnown)
{
	EXPECT_EQ(streamStatusText("", 0, std::nullopt, std::nullopt), "");
	EXPECT_EQ(streamStatusText("YUYV 640x480 25/1 fps", 24950, 0, 3628),
		  " format YUYV 640x480 25/1 fps rate 24.95 fps latency-us p50 0 p99 3628");
	EXPECT_EQ(streamStatusJson("", 5, std::nullopt, std::nullopt),
		  "\"format\": \"\", \"fps\": 0.005, \"latency_p50_us\": null, \"latency_p99_us\": null");
	EXPECT_EQ(streamStatusJson("vp8 \"x\"", 30000, 12, 40),
		  "\"format\": \"vp8 \\\"x\\\"\", \"fps\": 30.000, \"latency_p50_us\": 12, \"latency_p99_us\": 40");
}
