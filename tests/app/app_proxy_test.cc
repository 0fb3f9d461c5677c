// flopods-api through a private pgsidecar with replica routing on (see proxy_env.h): the proxy's
// /readyz, the app's health check of it, reads served by the replica, and read-your-writes across the
// app's pool (PATCH, then at once GET, many times). The rest of the API suite (app_api_test.cc) runs
// in the same binary through the same proxy.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <string>

#include "tests/app/proxy_env.h"
#include "tests/app/world.h"

namespace pgs::app::test {
namespace {

namespace it = pgs::it;

// Calls, on the replica, of statements whose text contains `needle` (pg_stat_statements).
long replica_calls(const std::string& needle) { return it::statement_calls(it::kReplicaPort, needle); }

// A flopods-api instance of its own, through the proxy, without rate limits (these tests send
// hundreds of requests as one user), with several pooled connections.
ApiServer unlimited_api(const std::string& tag) {
  return ApiServer({"--pool", "8", "--rate-user", "0", "--rate-anon", "0", "--redis-prefix",
                    "flopods-test-" + tag + "-" + std::to_string(getpid()) + ":"});
}

TEST(AppThroughProxy, ProxyReadyzAnswers200) {
  it::Proxy& proxy = proxy_under_test();
  if (proxy.direct()) GTEST_SKIP() << "no proxy process in direct mode";
  auto r = http(proxy.metrics_port(), "GET", "/readyz");
  EXPECT_EQ(r.status, 200) << r.error << r.body;
}

TEST(AppThroughProxy, HealthChecksTheProxyReadyz) {
  if (proxy_under_test().direct()) GTEST_SKIP() << "no proxy process in direct mode";
  World& w = World::get();
  auto r = http(w.api->port(), "GET", "/api/v1/health");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json.at("status"), "ok") << r.body;
  EXPECT_EQ(r.json.at("checks").at("proxy").at("ok"), true) << r.body;
}

TEST(AppThroughProxy, AppReadsAreServedByTheReplica) {
  if (proxy_under_test().direct()) GTEST_SKIP() << "no replica routing in direct mode";
  World& w = World::get();
  ApiServer api = unlimited_api("replica");
  // The /api/v1/me query (handlers_users.cc) only reads. Once the replica has replayed this session's
  // last write (the set-up's), it is eligible; under load on the shared dev servers that may take a
  // moment, so ask again until one call lands there.
  const std::string needle = "AS unread_notifications FROM core.users u WHERE u.id";
  const long before = replica_calls(needle);
  EXPECT_TRUE(wait_for([&] {
    EXPECT_EQ(http(api.port(), "GET", "/api/v1/me", w.bob.token).status, 200);
    return replica_calls(needle) > before;
  }, std::chrono::seconds(20))) << "no /api/v1/me read ran on the replica";
}

// Cache hits on the proxy's /metrics, all classes together (-1 when the page cannot be read).
double cache_hits(it::Proxy& proxy) {
  const std::string page = it::scrape_metrics(proxy);
  if (page.empty()) return -1;
  return std::max(0.0, it::metric_sum(page, "pgsidecar_cache_requests_total", "result=\"hit\""));
}

// The app's hot reads (a workspace, a flow) are answered from the cache on repeats, and a PATCH is
// seen at once (PatchThenImmediateGetAlwaysSeesTheChange runs with the cache on too).
TEST(AppThroughProxy, RepeatedReadsHitTheCache) {
  if (proxy_under_test().direct()) GTEST_SKIP() << "no cache in direct mode";
  if (const char* c = std::getenv("FLOPODS_TEST_CACHE"); c != nullptr && std::string(c) == "off") {
    GTEST_SKIP() << "FLOPODS_TEST_CACHE=off";
  }
  World& w = World::get();
  ApiServer api = unlimited_api("cache");
  const double before = cache_hits(proxy_under_test());
  ASSERT_GE(before, 0);
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(http(api.port(), "GET", "/api/v1/flows/" + w.flow_alice, w.alice.token).status, 200);
  }
  EXPECT_TRUE(wait_for([&] { return cache_hits(proxy_under_test()) >= before + 4; }, std::chrono::seconds(5)))
      << "repeated GETs of one flow were not served from the cache";
}

TEST(AppThroughProxy, PatchThenImmediateGetAlwaysSeesTheChange) {
  World& w = World::get();
  // 300 requests by one user, so no rate limit. Several pooled connections: the GET usually runs on
  // another connection than the PATCH, yet the proxy treats them as one (database, user) session.
  ApiServer api = unlimited_api("ryw");
  const std::string flow = "/api/v1/flows/" + w.flow_alice;
  const std::string list = "/api/v1/workspaces/" + w.ws_alice + "/flows?limit=1";
  for (int i = 0; i < 100; ++i) {
    const std::string desc = "proxy revision " + std::to_string(i);
    auto p = http(api.port(), "PATCH", flow, w.alice.token, R"({"description":")" + desc + "\"}");
    ASSERT_EQ(p.status, 200) << p.body;
    auto g = http(api.port(), "GET", flow, w.alice.token);
    ASSERT_EQ(g.status, 200) << g.body;
    EXPECT_EQ(g.json.at("description"), desc.c_str()) << "stale flow after PATCH, round " << i;
    EXPECT_EQ(g.json.at("version"), p.json.at("version")) << "round " << i;
    // The list is ordered by updated_at: the flow just patched comes first, with the new text.
    auto l = http(api.port(), "GET", list, w.alice.token);
    ASSERT_EQ(l.status, 200) << l.body;
    const auto& flows = l.json.at("flows").as_array();
    ASSERT_EQ(flows.size(), 1u);
    EXPECT_EQ(std::to_string(flows[0].at("id").as_int64()), w.flow_alice) << "stale list, round " << i;
    EXPECT_EQ(flows[0].at("description"), desc.c_str()) << "stale list, round " << i;
  }
}

}  // namespace
}  // namespace pgs::app::test
