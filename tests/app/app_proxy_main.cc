// main() of app_proxy_test: starts a private pgsidecar with the dev replica (tests/integration
// harness), waits until its reads reach the replica, then runs the API suite through it.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <unistd.h>

#include "tests/app/proxy_env.h"
#include "tests/support/redis_server.h"

namespace pgs::app::test {
namespace {

namespace it = pgs::it;

// Static: constructed (empty) before World::get()'s function-local static, so it is destroyed after
// it. World's destructor deletes the test rows through this proxy.
std::unique_ptr<it::Proxy> g_proxy;

std::string cache_prefix() { return "pgsc-app-" + std::to_string(getpid()) + ":"; }

// Deletes this run's keys from the dev Redis (entries would expire; the generations hash would not).
void delete_cache_keys() { it::redis_delete_prefix(it::kRedisPort, cache_prefix()); }

it::ProxyOptions options() {
  it::ProxyOptions o;
  o.with_replica = true;
  o.pool_size = 20;
  // As conf/pgsidecar.toml: session consistency (read-your-writes per (database, user)), the
  // pgsidecar role for the health monitor; a fast probe so the replica is eligible quickly.
  // FLOPODS_TEST_CONSISTENCY=eventual shows that the read-your-writes tests can fail.
  const char* consistency = std::getenv("FLOPODS_TEST_CONSISTENCY");
  o.extra_toml =
      "[routing]\nconsistency = \"" + std::string(consistency != nullptr ? consistency : "session") +
      "\"\nread_your_writes = \"user\"\n" + it::monitor_toml() + "health_check_interval = \"100ms\"\n";
  // The result cache as conf/pgsidecar.toml ships it (dev Redis, the app's classes), under a key
  // prefix of this run: every API test also checks that no cached read is stale after a write.
  // FLOPODS_TEST_CACHE=off runs without it.
  const char* cache = std::getenv("FLOPODS_TEST_CACHE");
  if (cache == nullptr || std::string(cache) != "off") {
    o.cache_toml = "enabled = true\nredis_host = \"127.0.0.1\"\nredis_port = " + std::to_string(it::kRedisPort) +
                   "\nkey_prefix = \"" + cache_prefix() + "\"\n";
    o.extra_toml +=
        "\n[[cache.classes]]\nname = \"workspace\"\nttl = \"5m\"\n"
        "tables = [\"core.workspaces\", \"core.workspace_members\"]\n"
        "\n[[cache.classes]]\nname = \"user_profile\"\nttl = \"15m\"\ntables = [\"core.users\"]\n"
        "\n[[cache.classes]]\nname = \"flow_metadata\"\nttl = \"1m\"\ntables = [\"canvas.flows\", \"canvas.pods\"]\n"
        "\n[[cache.classes]]\nname = \"document_list\"\nttl = \"30s\"\ntables = [\"documents.documents\"]\n";
  }
  return o;
}

// True once a read-only statement sent through the proxy ran on the replica.
bool replica_serves_reads(it::Proxy& proxy) {
  it::Pg pg(proxy.conninfo());
  if (!pg.ok()) return false;
  return it::wait_until(
      [&] {
        it::PgResult r = pg.exec("SELECT pg_is_in_recovery()");
        return r.ok() && r.rows() == 1 && r.value(0, 0) == "t";
      },
      it::Millis(30000), it::Millis(50));
}

void point_the_suite_at(it::Proxy& proxy) {
  setenv("FLOPODS_TEST_DB", proxy.conninfo().c_str(), 1);
  if (proxy.direct()) return;
  std::string args = std::getenv("FLOPODS_TEST_API_ARGS") != nullptr ? std::getenv("FLOPODS_TEST_API_ARGS") : "";
  args += " --readyz http://127.0.0.1:" + std::to_string(proxy.metrics_port()) + "/readyz";
  setenv("FLOPODS_TEST_API_ARGS", args.c_str(), 1);
}

}  // namespace

it::Proxy& proxy_under_test() { return *g_proxy; }

}  // namespace pgs::app::test

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  using pgs::app::test::g_proxy;
  try {
    pgs::it::require_dev_services();
    g_proxy = pgs::it::Proxy::start(pgs::app::test::options());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "app_proxy_test: cannot start pgsidecar: %s\n", e.what());
    return 1;
  }
  if (!g_proxy->direct() && !pgs::app::test::replica_serves_reads(*g_proxy)) {
    std::fprintf(stderr, "app_proxy_test: reads never reached the replica; proxy log:\n%s\n",
                 g_proxy->log_tail().c_str());
    return 1;
  }
  pgs::app::test::point_the_suite_at(*g_proxy);
  int rc = RUN_ALL_TESTS();
  pgs::app::test::delete_cache_keys();
  return rc;
}
