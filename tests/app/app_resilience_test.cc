// Rate limiting through Redis and what happens when a dependency is missing: Redis stopped (fail
// open), the database unreachable (503), a client that stalls mid-request (read timeout).
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <thread>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include "tests/app/world.h"
#include "tests/support/redis_server.h"

namespace pgs::app::test {
namespace {

std::string unique_prefix(const std::string& tag) {
  return "flopods-test-" + tag + "-" + std::to_string(getpid()) + "-" +
         std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()) + ":";
}

TEST(RateLimit, The61stAnonymousRequestInAMinuteIs429) {
  World& w = World::get();  // migrated schema and users
  ApiServer api({"--redis-prefix", unique_prefix("anon"), "--rate-user", "5"});
  for (int i = 1; i <= 60; ++i) {
    auto r = http(api.port(), "GET", "/api/v1/me");
    ASSERT_EQ(r.status, 401) << "request " << i << ": " << r.body;
    EXPECT_EQ(r.header("ratelimit-remaining"), std::to_string(60 - i));
  }
  auto limited = http(api.port(), "GET", "/api/v1/workspaces");
  EXPECT_EQ(limited.status, 429) << limited.body;
  const int retry = std::stoi(limited.header("retry-after").empty() ? "0" : limited.header("retry-after"));
  EXPECT_GE(retry, 1);
  EXPECT_LE(retry, 60);
  EXPECT_EQ(limited.header("ratelimit-limit"), "60");
  EXPECT_EQ(limited.header("ratelimit-remaining"), "0");
  // The health probe is exempt, and a user with a token has a budget of its own.
  EXPECT_EQ(http(api.port(), "GET", "/api/v1/health").status, 200);
  for (int i = 1; i <= 5; ++i) EXPECT_EQ(http(api.port(), "GET", "/api/v1/me", w.bob.token).status, 200);
  auto user_limited = http(api.port(), "GET", "/api/v1/me", w.bob.token);
  EXPECT_EQ(user_limited.status, 429);
  EXPECT_NE(user_limited.header("retry-after"), "");
}

// A redis-server of our own (pgs::test::PrivateRedis), so the shared one is never stopped.
class PrivateRedis {
 public:
  PrivateRedis() { start(); }
  void start() {
    const bool up = server_.start() && ::pgs::test::wait_for_redis(server_.port(), std::chrono::seconds(10));
    ASSERT_TRUE(up) << server_.log_tail();
  }
  void stop() { server_.stop(); }
  std::string address() const { return server_.address(); }

 private:
  ::pgs::test::PrivateRedis server_;
};

TEST(Resilience, RedisStoppedTheAppStillAnswers) {
  World& w = World::get();
  PrivateRedis redis;
  ApiServer api({"--redis-prefix", unique_prefix("down")}, db_conninfo(), redis.address());
  auto before = http(api.port(), "GET", "/api/v1/me", w.alice.token);
  ASSERT_EQ(before.status, 200) << before.body;
  EXPECT_EQ(before.header("ratelimit-limit"), "200");

  redis.stop();
  auto during = http(api.port(), "GET", "/api/v1/me", w.alice.token);
  EXPECT_EQ(during.status, 200) << during.body;
  EXPECT_EQ(during.header("ratelimit-limit"), "") << "nothing was counted, so no RateLimit headers";
  EXPECT_EQ(http(api.port(), "GET", "/api/v1/workspaces", w.alice.token).status, 200);
  auto health = http(api.port(), "GET", "/api/v1/health");
  EXPECT_EQ(health.status, 200) << health.body;
  EXPECT_EQ(health.json.at("status"), "degraded");
  EXPECT_EQ(health.json.at("checks").at("redis").at("ok"), false);
  EXPECT_TRUE(wait_for([&] { return api.process().output().find("rate limiting fails open") != std::string::npos; },
                       std::chrono::seconds(5)))
      << api.process().output();

  redis.start();  // back on the same port: enforcement resumes after the back-off
  EXPECT_TRUE(wait_for([&] { return http(api.port(), "GET", "/api/v1/me", w.alice.token).header("ratelimit-limit") == "200"; },
                       std::chrono::seconds(10)));
}

TEST(Resilience, DatabaseUnreachableIs503) {
  World& w = World::get();
  const std::string nowhere = "host=127.0.0.1 port=" + std::to_string(free_port()) +
                              " dbname=flopods user=flopods connect_timeout=2";
  ApiServer api({"--redis-prefix", unique_prefix("nodb"), "--pool-wait-ms", "2000"}, nowhere);
  auto me = http(api.port(), "GET", "/api/v1/me", w.alice.token);
  EXPECT_EQ(me.status, 503) << me.body;
  EXPECT_EQ(me.json.at("error"), "database_unavailable");
  auto health = http(api.port(), "GET", "/api/v1/health");
  EXPECT_EQ(health.status, 503) << health.body;
  EXPECT_EQ(health.json.at("checks").at("database").at("ok"), false);
  // The proxy's readiness is part of health when configured; nothing listens here.
  ApiServer with_readyz({"--readyz", "http://127.0.0.1:" + std::to_string(free_port()) + "/readyz"});
  auto h2 = http(with_readyz.port(), "GET", "/api/v1/health");
  EXPECT_EQ(h2.status, 503) << h2.body;
  EXPECT_EQ(h2.json.at("checks").at("proxy").at("ok"), false);
  EXPECT_EQ(h2.json.at("checks").at("database").at("ok"), true);
}

TEST(Resilience, StalledClientIsDisconnectedAfterTheReadTimeout) {
  World::get();
  ApiServer api({"--redis-prefix", unique_prefix("slow"), "--read-timeout-ms", "300"});
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::socket s(ioc);
  s.connect({boost::asio::ip::make_address("127.0.0.1"), api.port()});
  boost::asio::write(s, boost::asio::buffer(std::string("GET /api/v1/health HTTP/1.1\r\nHost: x\r\n")));
  // The server must close the connection by itself; a blocking read returns at EOF.
  const auto t0 = std::chrono::steady_clock::now();
  boost::system::error_code ec;
  char buf[256];
  while (!ec) s.read_some(boost::asio::buffer(buf), ec);
  EXPECT_EQ(ec, boost::asio::error::eof);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  EXPECT_EQ(api.process().stop(), 0) << "SIGTERM must end the server cleanly (exit 0)";
}

TEST(Resilience, SigtermLetsTheRequestInProgressFinish) {
  World::get();
  // A "proxy" whose /readyz accepts the connection and never answers: the health check then takes
  // its full 1 s probe timeout, which is the window in which we send SIGTERM.
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::acceptor silent(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
  ApiServer api({"--readyz", "http://127.0.0.1:" + std::to_string(silent.local_endpoint().port()) + "/readyz"});
  HttpResult result;
  std::thread client([&] { result = http(api.port(), "GET", "/api/v1/health"); });
  boost::asio::ip::tcp::socket probe(ioc);
  silent.accept(probe);  // returns once the handler is inside the request
  kill(api.process().pid(), SIGTERM);
  client.join();
  EXPECT_EQ(result.status, 503) << result.error;
  EXPECT_EQ(result.json.at("checks").at("proxy").at("ok"), false);
  EXPECT_EQ(api.process().stop(), 0);
}

}  // namespace
}  // namespace pgs::app::test
