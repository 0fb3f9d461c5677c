// Issue 13 items 4 and 5 together, end to end: the cache on a private Redis Cluster (ports 27000-27005,
// buses 27100-27105) that serves TLS only, on every link (clients, cluster bus, replication), and
// requires an ACL login (the default user is off), as ElastiCache in cluster mode with in-transit
// encryption and RBAC does; certificates made for the run (tests/support/certs.h), the proxy on
// verify-full. The plaintext suite's scenarios (cluster_fixture.h): caching with hits spread over the
// masters, no stale read after writes through the proxy, a slot moved mid-run (MIGRATE over TLS with
// AUTH2), a master killed mid-load; then the invalidation stream's bumps over it, and a wrong password
// as a logged, counted miss, never a client error.
#include "tests/cache_proxy/cluster_fixture.h"
#include "tests/support/certs.h"

namespace pgs::it::cache_proxy {
namespace {

constexpr const char* kUser = "pgs_cache";
constexpr const char* kPassword = "cluster-tls-secret";

const test::TwoAuthorities& pki() { return test::two_authorities(); }

// TLS only with the ACL login; the proxy verifies the nodes' certificate (it names localhost, 127.0.0.1).
struct TlsAclCluster {
  static constexpr uint16_t kBasePort = 27000;
  static constexpr const char* kTablePrefix = "pgs_cache_cluster_tls_";
  static test::RedisServerOptions server_options(std::string& error) {
    error = pki().error();
    return {pki().main.cert, pki().main.key, pki().main.ca, {{"admin", "admin-secret"}, {kUser, kPassword}}};
  }
  static std::string cache_toml(const std::string& password = kPassword) {
    return "redis_tls = \"verify-full\"\nredis_tls_ca_file = \"" + pki().main.ca +
           "\"\nredis_tls_server_name = \"localhost\"\nredis_user = \"" + kUser + "\"\nredis_password = \"" +
           password + "\"\n";
  }
};
using CacheClusterTlsTest = ClusterCacheTest<TlsAclCluster>;

TEST_F(CacheClusterTlsTest, CachesAndHitsOverTheCluster) {
  caches_and_hits();
  EXPECT_LE(metric(*proxy_, "pgsidecar_redis_errors_total"), 0) << proxy_->log_tail();  // -1: none
}

TEST_F(CacheClusterTlsTest, AWriteThroughTheProxyIsNeverFollowedByAStaleRead) {
  writes_are_never_followed_by_stale_reads();
}

// MIGRATE between TLS nodes with the login (AUTH2).
TEST_F(CacheClusterTlsTest, APartitionsSlotMovedMidRunIsFollowed) { a_partitions_slot_moved_mid_run_is_followed(); }

// The invalidation stream's leader (BlockingCluster: its lease, heartbeat and bumps) over the TLS cluster
// with the ACL login: a write straight to the primary reaches a cached read through the proxy.
TEST_F(CacheClusterTlsTest, TheInvalidationStreamBumpsOverTheCluster) {
  std::string slot = "pgs_stream_cluster_tls_" + std::to_string(getpid());
  ProxyOptions o = options();
  o.cache_toml += stream_toml(slot);
  Proxy& p = start_proxy(o);
  ASSERT_TRUE(wait_catalog_read(p));
  ASSERT_TRUE(wait_until([&] { return metric(p, "pgsidecar_cache_stream_live") == 1; }, Millis(15000), Millis(20)))
      << p.log_tail();
  EXPECT_EQ(metric(p, "pgsidecar_cache_stream_leader"), 1);
  Pg c{p.spec()};
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ(direct_write_reaches(c, table_), "") << p.log_tail();
  proxy_.reset();
  drop_stream_slots(slot);
}

// A wrong password: Redis refuses the login on every node; the proxy logs and counts it, every lookup is a
// miss, every client gets its rows, and nothing is stored.
TEST_F(CacheClusterTlsTest, AWrongPasswordIsALoggedMissNeverAClientError) {
  Proxy& p = start_proxy(options(TlsAclCluster::cache_toml("not-the-password")));
  EXPECT_TRUE(wait_until([&] { return metric(p, "pgsidecar_redis_errors_total") >= 1; }, Millis(5000), Millis(50)))
      << p.log_tail();
  Pg c{p.spec()};
  ASSERT_TRUE(c.ok()) << c.error();
  long before = calls();
  for (int i = 0; i < 3; ++i) {
    PgResult r = c.exec(select_sql(2));
    ASSERT_TRUE(r.ok()) << r.error();
    EXPECT_EQ(r.value(0, 1), "v2");
  }
  EXPECT_EQ(calls() - before, 3) << "every lookup a miss";
  EXPECT_LE(hits(p), 0);
  EXPECT_TRUE(wait_until([&] { return p.log_tail().find("WRONGPASS") != std::string::npos; }, Millis(5000),
                         Millis(50)))
      << p.log_tail();
  EXPECT_TRUE(masters_holding(prefix_ + "*").empty()) << "nothing stored";
}

// Last (it kills a node): a master killed mid-load over TLS; its replica is promoted automatically.
TEST_F(CacheClusterTlsTest, ZMasterKilledMidLoadCostsNoErrorAndNoStaleRead) { kill_a_master_mid_load(); }

}  // namespace
}  // namespace pgs::it::cache_proxy
