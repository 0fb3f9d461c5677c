// Checks of pgs_test_support itself, with no dev service: waits end at their deadline, children are
// reaped, the parsers read what the proxy writes. If these fail, no suite built on them can be trusted.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <stdexcept>
#include <thread>

#include "tests/support/metrics.h"
#include "tests/support/net.h"
#include "tests/support/pg.h"
#include "tests/support/process.h"
#include "tests/support/raw_client.h"
#include "tests/support/redis_cluster.h"
#include "tests/support/redis_server.h"
#include "tests/support/wait.h"

namespace pgs::test {
namespace {

TEST(SupportWait, ReturnsAsSoonAsThePredicateHolds) {
  int n = 0;
  auto t0 = Clock::now();
  EXPECT_TRUE(wait_until([&] { return ++n == 3; }, Millis(10000), Millis(1)));
  EXPECT_EQ(n, 3);
  EXPECT_LT(Clock::now() - t0, Millis(5000));
}

TEST(SupportWait, TimesOutAtTheDeadlineNotLongAfter) {
  int calls = 0;
  auto t0 = Clock::now();
  EXPECT_FALSE(wait_until([&] { return ++calls < 0; }, Millis(100), Millis(30)));
  auto took = Clock::now() - t0;
  EXPECT_GE(took, Millis(100));
  EXPECT_LT(took, Millis(2000));
  EXPECT_GE(calls, 2);  // polled, not checked once and slept through
}

TEST(SupportWait, TheThrowingFormNamesWhatItWaitedFor) {
  try {
    wait_until([] { return false; }, Millis(30), "the moon to turn blue", Millis(5));
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("the moon to turn blue"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(wait_until([] { return true; }, Millis(30), "nothing"));
}

TEST(SupportWait, TimeLeftIsNeverNegative) {
  EXPECT_EQ(time_left(Clock::now() - Millis(50)), Millis(0));
  EXPECT_EQ(ms_left(Clock::now() - Millis(50)), 0);
  EXPECT_GT(ms_left(Clock::now() + Millis(5000)), 4000);
}

TEST(SupportProcess, TheLauncherReapsAChildThatExits) {
  std::string dir = make_temp_dir("pgs-support-test-");
  Child c = Child::spawn({"sh", "-c", "echo hello; exit 7"}, {}, dir + "/log");
  ASSERT_TRUE(c.wait_exit(Millis(5000)));
  EXPECT_FALSE(c.running());
  ASSERT_TRUE(c.exit_code().has_value());
  EXPECT_EQ(*c.exit_code(), 7);
  EXPECT_FALSE(c.exited_by_signal());
  EXPECT_EQ(read_file_tail(dir + "/log"), "hello\n");
  run_program({"rm", "-rf", dir}, {}, Millis(5000));
}

TEST(SupportProcess, StopEscalatesToSigkill) {
  // A child that ignores SIGTERM (once it says so) is killed when the grace period ends.
  std::string dir = make_temp_dir("pgs-support-test-");
  Child c = Child::spawn({"sh", "-c", "trap '' TERM; echo ready; while :; do sleep 1; done"}, {}, dir + "/log");
  ASSERT_TRUE(wait_until([&] { return read_file_tail(dir + "/log") == "ready\n"; }, Millis(5000)));
  auto t0 = Clock::now();
  c.stop(Millis(200));
  EXPECT_LT(Clock::now() - t0, Millis(5000));
  ASSERT_TRUE(c.exit_code().has_value());
  EXPECT_TRUE(c.exited_by_signal());
  EXPECT_EQ(*c.exit_code(), 128 + SIGKILL);
  run_program({"rm", "-rf", dir}, {}, Millis(5000));
}

TEST(SupportProcess, WaitExitHonoursItsDeadline) {
  Child c = Child::spawn({"sleep", "30"}, {}, "/dev/null");
  auto t0 = Clock::now();
  EXPECT_FALSE(c.wait_exit(Millis(100)));
  EXPECT_LT(Clock::now() - t0, Millis(2000));
  EXPECT_TRUE(c.running());
}  // the destructor kills and reaps it

TEST(SupportNet, FreePortCanBeListenedOn) {
  uint16_t port = free_port();
  EXPECT_NE(port, 0);
  EXPECT_EQ(connect_loopback(port), -1) << "nothing listens there";
}

TEST(SupportPg, ConnSpecHasTheDevDefaults) {
  std::string s = ConnSpec{}.str();
  for (const char* want : {"host='127.0.0.1'", "port='15432'", "dbname='flopods'", "user='flopods'",
                           "password='flopods-dev'", "sslmode='disable'", "connect_timeout='10'"}) {
    EXPECT_NE(s.find(want), std::string::npos) << want << " missing in " << s;
  }
  ConnSpec su = superuser_spec(kReplicaPort, "x");
  EXPECT_NE(su.str().find("port='15433'"), std::string::npos);
  EXPECT_NE(su.str().find("user='postgres'"), std::string::npos);
}

TEST(SupportPg, ConnectWithinGivesUpAtTheDeadline) {
  ConnSpec s;
  s.port = free_port();  // nothing listens: refused at once, retried until the deadline
  auto t0 = Clock::now();
  Pg pg = connect_within(s.str(), Millis(300), Millis(50));
  EXPECT_FALSE(pg.ok());
  EXPECT_GE(Clock::now() - t0, Millis(300));
  EXPECT_LT(Clock::now() - t0, Millis(5000));
}

constexpr const char* kPage =
    "# HELP pgsidecar_cache_requests_total Cache lookups.\n"
    "# TYPE pgsidecar_cache_requests_total counter\n"
    "pgsidecar_cache_requests_total{class=\"a\",result=\"hit\"} 3\n"
    "pgsidecar_cache_requests_total{class=\"a\",result=\"miss\"} 5\n"
    "pgsidecar_cache_requests_total{class=\"b\",result=\"hit\"} 4\n"
    "pgsidecar_up 1\n"
    "pgsidecar_pinned_clients{reason=\"listen\"} 2\n";

TEST(SupportMetrics, ValueOfOneSeries) {
  EXPECT_EQ(metric_value(kPage, "pgsidecar_up", ""), 1);
  EXPECT_EQ(metric_value(kPage, "pgsidecar_pinned_clients", "reason=\"listen\""), 2);
  EXPECT_EQ(metric_value(kPage, "pgsidecar_pinned_clients", "reason=\"sql_prepare\""), -1);
  EXPECT_EQ(metric_value(kPage, "pgsidecar_cache_requests_total", ""), -1) << "a labelled family has no bare series";
}

TEST(SupportMetrics, SumOverLabels) {
  EXPECT_EQ(metric_sum(kPage, "pgsidecar_cache_requests_total"), 12);
  EXPECT_EQ(metric_sum(kPage, "pgsidecar_cache_requests_total", "result=\"hit\""), 7);
  EXPECT_EQ(metric_sum(kPage, "pgsidecar_cache_requests_total", "result=\"stale\""), -1);
  EXPECT_EQ(metric_sum(kPage, "pgsidecar_absent_total"), -1);
}

// One HTTP exchange served by a thread: the reply is split into status, headers and body.
TEST(SupportMetrics, HttpGetReadsStatusHeadersAndBody) {
  int lfd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ASSERT_EQ(::bind(lfd, reinterpret_cast<sockaddr*>(&a), len), 0);
  ASSERT_EQ(::getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &len), 0);
  ASSERT_EQ(::listen(lfd, 1), 0);
  std::string request;
  std::thread server([&] {
    int c = ::accept(lfd, nullptr, nullptr);
    char buf[4096];
    ssize_t n = ::recv(c, buf, sizeof buf, 0);
    if (n > 0) request.assign(buf, static_cast<size_t>(n));
    std::string reply = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n" + std::string(kPage);
    (void)!::send(c, reply.data(), reply.size(), MSG_NOSIGNAL);
    ::close(c);
  });
  HttpReply r = http_get(ntohs(a.sin_port), "/metrics", Millis(5000));
  server.join();
  ::close(lfd);
  EXPECT_EQ(request.rfind("GET /metrics HTTP/1.1\r\n", 0), 0u) << request;
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.headers.find("Content-Type: text/plain"), std::string::npos);
  EXPECT_EQ(r.body, kPage);
  EXPECT_EQ(http_get(free_port(), "/metrics", Millis(1000)).status, 0) << "no listener: no reply";
}

TEST(SupportRawClient, EncodersAndErrorFields) {
  EXPECT_EQ(be16(0x0102), std::string("\x01\x02", 2));
  EXPECT_EQ(get_be32(be32(0xdeadbeef), 0), 0xdeadbeefu);
  EXPECT_EQ(query_message("x"), std::string("Q\0\0\0\6x\0", 7));
  ErrorFields f = parse_error_fields(std::string("SERROR\0C22012\0Mdivision by zero\0\0", 34));
  EXPECT_EQ(f.sqlstate(), "22012");
  EXPECT_EQ(f.describe(), "ERROR 22012 division by zero");
  EXPECT_EQ(md5_hex(""), "d41d8cd98f00b204e9800998ecf8427e");
}

// A cluster whose ports (or buses) fall where outgoing connections take their local ports is refused
// before any node starts, on every run, rather than failing on the runs where a port happens to be held.
TEST(SupportRedisCluster, PortsInTheEphemeralRangeAreRefused) {
  EXPECT_FALSE(in_ephemeral_range(26450));
  EXPECT_FALSE(in_ephemeral_range(26450 + PrivateRedisCluster::kBusOffset + 5));
  ASSERT_TRUE(in_ephemeral_range(40000));
  std::string error;
  PrivateRedisCluster* cluster = PrivateRedisCluster::start_new(40000, error);
  EXPECT_EQ(cluster, nullptr);
  delete cluster;
  EXPECT_NE(error.find("ephemeral"), std::string::npos) << error;
  // Only the last node's bus lies in the range, and the first node's port is held: the range is what
  // the start refuses, before it comes to any node (a node by node check would stop at the first port).
  const uint16_t lowest = ephemeral_port_range().first;
  if (lowest < PrivateRedisCluster::kBusOffset + 5 + 1024) GTEST_SKIP() << "ephemeral range starts at " << lowest;
  const auto base = static_cast<uint16_t>(lowest - PrivateRedisCluster::kBusOffset - 5);
  ASSERT_FALSE(in_ephemeral_range(base));
  ASSERT_TRUE(in_ephemeral_range(base + PrivateRedisCluster::kBusOffset + 5));
  int holder = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(holder, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(base);
  ASSERT_EQ(bind(holder, reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << "port " << base << " is taken";
  ASSERT_EQ(listen(holder, 1), 0);
  cluster = PrivateRedisCluster::start_new(base, error);
  close(holder);
  EXPECT_EQ(cluster, nullptr);
  delete cluster;
  EXPECT_NE(error.find("ephemeral"), std::string::npos) << error;
}

TEST(SupportRedis, PrivateServerStartsPausesAndStops) {
  if (run_program({"sh", "-c", "command -v redis-server"}, {}, Millis(5000)).exit_code != 0) {
    GTEST_SKIP() << "redis-server is not installed";
  }
  PrivateRedis redis;
  ASSERT_TRUE(redis.running()) << redis.log_tail();
  EXPECT_TRUE(redis_ping(redis.port()));
  redis.stop_process();
  EXPECT_FALSE(redis_ping(redis.port(), Millis(200))) << "a SIGSTOPped server does not answer";
  EXPECT_TRUE(redis.running());
  redis.continue_process();
  EXPECT_TRUE(wait_for_redis(redis.port(), Millis(5000)));
  redis.stop();
  EXPECT_FALSE(redis.running());
  EXPECT_FALSE(redis_ping(redis.port(), Millis(200)));
  ASSERT_TRUE(redis.start()) << "restarts on the same port";
  EXPECT_TRUE(redis_ping(redis.port()));
}

}  // namespace
}  // namespace pgs::test
