// ObservabilityServer in-process with fake WorkerStats: /metrics (checked by promtool and the Python
// prometheus_client parser), /healthz, /readyz (200/503), /digests, and the start-up error.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "proxy/admin/http_endpoints.h"
#include "proxy/admin/reachability.h"
#include "tests/admin/test_util.h"
#include "tests/support/metrics.h"
#include "tests/support/wait.h"

namespace pgs::proxy::admin {
namespace {

using ::pgs::test::http_get;

WorkerStats fake(int index) {
  WorkerStats w;
  w.worker = index;
  PoolStats p;
  p.database = "flopods";
  p.user = "flopods";
  p.pool_mode = "transaction";
  p.wait.observe(0.0001);
  p.wait.observe(0.3);
  w.pools.push_back(p);
  for (const char* state : {"active", "idle", "waiting"}) {
    ClientRow c;
    c.state = state;
    w.clients.push_back(c);
  }
  ServerRow s;
  s.user = "flopods";
  s.database = "flopods";
  s.role = "primary";
  s.state = "idle";
  w.servers.push_back(s);
  w.metrics.queries_by_target[0] = 100 + index;
  for (int i = 0; i < 10; ++i) w.metrics.query_duration[0].observe(0.003);
  w.metrics.transaction_duration[0].observe(20.0);  // between the 10 s and 30 s bounds
  w.metrics.errors_by_class["42"] = 2;
  w.metrics.bytes_received = 1000;
  w.metrics.bytes_sent = 5000;
  w.metrics.count_login_failure(LoginFailure::password);
  w.metrics.count_protocol_error(ProtocolError::unsupported_message);
  w.metrics.pinned_clients[0] = 1;
  return w;
}

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.metrics_listen = "127.0.0.1:0";
    config_.metrics_host = "127.0.0.1";
    config_.metrics_port = 0;
  }
  std::unique_ptr<ObservabilityServer> start(ObservabilitySources s) {
    auto server = std::make_unique<ObservabilityServer>(config_, std::move(s));
    std::string error = server->start();
    EXPECT_EQ(error, "");
    EXPECT_NE(server->port(), 0);
    return server;
  }
  conf::ObservabilityConfig config_;
  std::atomic<bool> reachable_{true}, draining_{false};
};

ObservabilitySources sources(std::atomic<bool>& reachable, std::atomic<bool>& draining) {
  ObservabilitySources s;
  s.stats = [] { return std::vector<WorkerStats>{fake(0), fake(1)}; };
  s.readiness = [&] {
    obs::Readiness r;
    r.primary_reachable = reachable.load();
    r.draining = draining.load();
    return r;
  };
  s.process = [] { return ProcessFacts{.reloads_ok = 3, .reloads_failed = 1}; };
  return s;
}

TEST_F(ServerTest, MetricsAggregateWorkers) {
  auto server = start(sources(reachable_, draining_));
  auto r = http_get(server->port(), "/metrics");
  ASSERT_EQ(r.status, 200) << r.headers;
  EXPECT_NE(r.headers.find("version=0.0.4"), std::string::npos);
  const std::string& b = r.body;
  for (const char* line : {
           "pgsidecar_queries_total{target=\"primary\"} 201\n",
           "pgsidecar_queries_total{target=\"cache\"} 0\n",
           "pgsidecar_client_connections{state=\"waiting\"} 2\n",
           "pgsidecar_server_connections{pool=\"flopods/flopods\",role=\"primary\",state=\"idle\"} 2\n",
           "pgsidecar_errors_total{sqlstate_class=\"42\"} 4\n",
           "pgsidecar_client_bytes_received_total 2000\n",
           "pgsidecar_client_bytes_sent_total 10000\n",
           "pgsidecar_config_reloads_total{result=\"ok\"} 3\n",
           "pgsidecar_config_reloads_total{result=\"error\"} 1\n",
           "pgsidecar_login_failures_total{reason=\"password\"} 2\n",
           "pgsidecar_login_failures_total{reason=\"unknown_database\"} 0\n",
           "pgsidecar_protocol_errors_total{reason=\"unsupported_message\"} 2\n",
           "pgsidecar_protocol_errors_total{reason=\"invalid_startup\"} 0\n",
           "pgsidecar_pinned_clients{reason=\"listen\"} 2\n",
           "pgsidecar_query_duration_seconds_bucket{target=\"primary\",le=\"0.0025\"} 0\n",
           "pgsidecar_query_duration_seconds_bucket{target=\"primary\",le=\"0.005\"} 20\n",
           "pgsidecar_query_duration_seconds_count{target=\"primary\"} 20\n",
           "pgsidecar_transaction_duration_seconds_bucket{target=\"primary\",le=\"10\"} 0\n",
           "pgsidecar_transaction_duration_seconds_bucket{target=\"primary\",le=\"30\"} 2\n",
           "pgsidecar_transaction_duration_seconds_count{target=\"primary\"} 2\n",
           // Exact at every exported bound: 0.0001 is counted at le=0.0001 (not only from le=0.0005 on).
           "pgsidecar_pool_wait_seconds_bucket{pool=\"flopods/flopods\",le=\"5e-05\"} 0\n",
           "pgsidecar_pool_wait_seconds_bucket{pool=\"flopods/flopods\",le=\"0.0001\"} 2\n",
           "pgsidecar_pool_wait_seconds_bucket{pool=\"flopods/flopods\",le=\"0.0005\"} 2\n",
           "pgsidecar_pool_wait_seconds_bucket{pool=\"flopods/flopods\",le=\"0.5\"} 4\n",
       }) {
    EXPECT_NE(b.find(line), std::string::npos) << line << "\n" << b;
  }
  EXPECT_NE(b.find("pgsidecar_uptime_seconds "), std::string::npos);
}

TEST_F(ServerTest, MetricsPassPromtoolAndPythonParser) {
  auto server = start(sources(reachable_, draining_));
  auto r = http_get(server->port(), "/metrics");
  ASSERT_EQ(r.status, 200);
  if (std::string(PGS_PROMTOOL).empty()) GTEST_SKIP() << "promtool not installed";
  auto lint = admin_test::run_with_stdin(std::string(PGS_PROMTOOL) + " check metrics", r.body);
  EXPECT_EQ(lint.status, 0) << lint.output;
  EXPECT_EQ(lint.output, "") << "promtool findings";
  auto py = admin_test::python_sum(PGS_SYSTEM_PYTHON, "pgsidecar_queries_total", r.body);
  ASSERT_EQ(py.status, 0) << py.output;
  EXPECT_EQ(py.output, "201\n");
  // The check can fail: a broken exposition is rejected.
  auto bad = admin_test::run_with_stdin(std::string(PGS_PROMTOOL) + " check metrics", r.body + "x{a=\"1 2\n");
  EXPECT_NE(bad.status, 0);
}

TEST_F(ServerTest, HealthAndReadiness) {
  auto server = start(sources(reachable_, draining_));
  EXPECT_EQ(http_get(server->port(), "/healthz").status, 200);
  auto ready = http_get(server->port(), "/readyz");
  EXPECT_EQ(ready.status, 200);
  EXPECT_NE(ready.body.find("\"ready\":true"), std::string::npos) << ready.body;
  reachable_ = false;
  auto down = http_get(server->port(), "/readyz");
  EXPECT_EQ(down.status, 503);
  EXPECT_NE(down.body.find("\"primary\":\"down\""), std::string::npos) << down.body;
  reachable_ = true;
  draining_ = true;
  EXPECT_EQ(http_get(server->port(), "/readyz").status, 503);
  draining_ = false;
  EXPECT_EQ(http_get(server->port(), "/readyz").status, 200);
}

TEST_F(ServerTest, DigestsEmptyArrayUntilWiredAndUnknownPath404) {
  auto server = start(sources(reachable_, draining_));
  auto d = http_get(server->port(), "/digests");
  EXPECT_EQ(d.status, 200);
  EXPECT_EQ(d.body, "[]\n");
  EXPECT_NE(d.headers.find("application/json"), std::string::npos);
  EXPECT_EQ(http_get(server->port(), "/nope").status, 404);
}

TEST_F(ServerTest, BusyPortIsAStartError) {
  auto first = start(sources(reachable_, draining_));
  config_.metrics_listen = "127.0.0.1:" + std::to_string(first->port());
  config_.metrics_port = first->port();
  ObservabilityServer second(config_, sources(reachable_, draining_));
  EXPECT_NE(second.start(), "");
  EXPECT_EQ(second.port(), 0);
}

TEST_F(ServerTest, EmptyListenStartsNothing) {
  config_.metrics_listen = "";
  ObservabilityServer s(config_, sources(reachable_, draining_));
  EXPECT_EQ(s.start(), "");
  EXPECT_EQ(s.port(), 0);
  s.stop();
  s.stop();
}

TEST(Metrics, ReplicaHealthAndRoutingDecisions) {
  monitor::HealthSnapshot h;
  monitor::NodeHealth checked, never;
  checked.node.name = "replica1";
  checked.healthy = true;
  checked.lag_bytes = 4096;
  checked.lag = std::chrono::milliseconds(250);
  checked.checked_at = std::chrono::steady_clock::now();
  never.node.name = "replica2";
  h.replicas = {checked, never};
  ProcessFacts facts;
  facts.health = std::make_shared<const monitor::HealthSnapshot>(h);
  WorkerStats w;
  w.metrics.routing_decisions[1][0] = 5;
  std::string text = render_metrics({w, w}, facts);
  EXPECT_NE(text.find("pgsidecar_replica_healthy{replica=\"replica1\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("pgsidecar_replica_healthy{replica=\"replica2\"} 0\n"), std::string::npos);
  EXPECT_NE(text.find("pgsidecar_replica_lag_bytes{replica=\"replica1\"} 4096\n"), std::string::npos);
  EXPECT_NE(text.find("pgsidecar_replica_lag_seconds{replica=\"replica1\"} 0.25\n"), std::string::npos);
  EXPECT_EQ(text.find("pgsidecar_replica_lag_bytes{replica=\"replica2\"}"), std::string::npos);
  EXPECT_NE(text.find("pgsidecar_routing_decisions_total{target=\"replica\",reason="), std::string::npos);
  EXPECT_NE(text.find("} 10\n", text.find("pgsidecar_routing_decisions_total{target=\"replica\"")), std::string::npos);

  obs::Readiness r = readiness_from(facts.health.get(), true, false);
  ASSERT_EQ(r.replicas.size(), 2u);
  EXPECT_EQ(r.replicas[0].lag_bytes, 4096);
  EXPECT_EQ(r.replicas[1].lag_bytes, -1);
  auto resp = obs::readiness_response(r);
  EXPECT_EQ(resp.status, 200u);
  EXPECT_EQ(obs::readiness_response(readiness_from(nullptr, true, true)).status, 503u);
}

TEST(PostgresReachable, ClosedPortIsUnreachable) {
  // Bind a port and do not listen: connections are refused.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  EXPECT_FALSE(postgres_reachable("127.0.0.1", ntohs(a.sin_port), 1));
  ::close(fd);
}

// A ping that blocks until released, as PQping does against a primary that accepts and never answers.
class HangingPing {
 public:
  bool ping(const std::string&, uint16_t) {
    std::unique_lock<std::mutex> lock(mutex_);
    ++calls_;
    released_cv_.wait(lock, [&] { return released_; });
    return answer_;
  }
  void release(bool answer) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      released_ = true;
      answer_ = answer;
    }
    released_cv_.notify_all();
  }
  int calls() {
    std::lock_guard<std::mutex> lock(mutex_);
    return calls_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable released_cv_;
  bool released_ = false, answer_ = false;
  int calls_ = 0;
};

bool wait_for(const std::function<bool()>& cond, std::chrono::milliseconds deadline) {
  return ::pgs::test::wait_until(cond, deadline, std::chrono::milliseconds(1));
}

// /readyz reads the probe on the HTTP thread: it must answer at once while a ping hangs (before the
// fix the ping ran there and held every endpoint for its whole connect timeout).
TEST(ReachabilityProbe, AnswersWithoutWaitingForAHangingPing) {
  HangingPing hang;
  using Ms = std::chrono::milliseconds;
  {
    ReachabilityProbe probe([&](const std::string& h, uint16_t p) { return hang.ping(h, p); }, Ms(50));
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_FALSE(probe.reachable("127.0.0.1", 5432, Ms(100)));  // no answer yet: waits at most 100 ms
    for (int i = 0; i < 20; ++i) EXPECT_FALSE(probe.reachable("127.0.0.1", 5432, Ms(100)));
    EXPECT_LT(std::chrono::steady_clock::now() - t0, Ms(1000));  // 100 ms once, not 21 times
    EXPECT_EQ(hang.calls(), 1);  // one ping at a time
    hang.release(true);
    EXPECT_TRUE(wait_for([&] { return probe.reachable("127.0.0.1", 5432, Ms(0)); }, Ms(5000)));
    // Stale after max_age: a new ping is asked for, the latest answer is served meanwhile.
    EXPECT_TRUE(wait_for([&] { return hang.calls() >= 2 || !probe.reachable("127.0.0.1", 5432, Ms(0)); },
                         Ms(5000)));
    EXPECT_TRUE(probe.reachable("127.0.0.1", 5432, Ms(0)));
  }  // the destructor joins the thread
}

TEST(ReachabilityProbe, ANewTargetHasNoAnswerUntilPinged) {
  using Ms = std::chrono::milliseconds;
  ReachabilityProbe probe([](const std::string&, uint16_t port) { return port == 1111; }, Ms(1000));
  EXPECT_TRUE(probe.reachable("127.0.0.1", 1111, Ms(5000)));   // waits for its first answer
  EXPECT_FALSE(probe.reachable("127.0.0.1", 2222, Ms(5000)));  // another target: its own answer
}

}  // namespace
}  // namespace pgs::proxy::admin
