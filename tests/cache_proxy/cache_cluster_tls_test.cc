// Issue 13 items 4 and 5 together, end to end: the real pgsidecar with its cache on a private Redis Cluster
// (3 masters, one replica each, ports 27000-27005, buses 37000-37005) that serves TLS only, on every
// link (clients, cluster bus, replication), and requires an ACL login (the default user is off), as
// ElastiCache in cluster mode with in-transit encryption and RBAC does. Certificates are made for the run
// (tests/support/certs.h). The proxy caches and hits over it, a write through the proxy and a write straight
// to the primary (the invalidation stream) are never followed by a stale read, and a wrong password is a
// logged, counted miss, never a client error.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <sstream>

#include "tests/cache_proxy/cache_util.h"
#include "tests/session/session_util.h"
#include "tests/support/certs.h"
#include "tests/support/redis_cluster.h"

namespace pgs::it::cache_proxy {
namespace {

constexpr uint16_t kBasePort = 27000;
constexpr const char* kUser = "pgs_cache";
constexpr const char* kPassword = "cluster-tls-secret";

const test::TwoAuthorities& pki() { return test::two_authorities(); }

class CacheClusterTlsTest : public ProxyTest {
 protected:
  static void SetUpTestSuite() {
    if (!pki().error().empty()) {
      error_ = pki().error();
      return;
    }
    test::RedisServerOptions o{pki().main.cert, pki().main.key, pki().main.ca,
                               {{"admin", "admin-secret"}, {kUser, kPassword}}};
    cluster_ = test::PrivateRedisCluster::start_new(kBasePort, error_, o);
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  void SetUp() override {
    ProxyTest::SetUp();
    if (is_direct()) GTEST_SKIP() << "needs the pgsidecar process";
    ASSERT_NE(cluster_, nullptr) << error_;
    ASSERT_TRUE(cluster_->wait_healthy(Millis(30000))) << cluster_->cli(kBasePort, {"CLUSTER", "NODES"});
    prefix_ = unique_prefix();
    table_ = "pgs_cache_cluster_tls_" + std::to_string(counter_++) + "_" + std::to_string(getpid());
    create_table(table_);
  }
  void TearDown() override {
    ProxyTest::TearDown();
    if (!table_.empty()) drop_table(table_);
  }
  // The cluster's seeds, verify-full against the run's CA (the nodes' certificate names localhost and
  // 127.0.0.1), the ACL user.
  ProxyOptions options(const std::string& password = kPassword) const {
    ProxyOptions o = cache_options(0, prefix_, {"t:1m:public." + table_});
    std::ostringstream c;
    c << "enabled = true\nredis_cluster = true\nredis_nodes = [";
    for (const std::string& s : cluster_->seeds()) c << (s == cluster_->seeds().front() ? "" : ", ") << '"' << s << '"';
    c << "]\nkey_prefix = \"" << prefix_ << "\"\nredis_timeout = \"200ms\"\n"
      << "redis_tls = \"verify-full\"\nredis_tls_ca_file = \"" << pki().main.ca << "\"\n"
      << "redis_tls_server_name = \"localhost\"\nredis_user = \"" << kUser << "\"\nredis_password = \"" << password
      << "\"\n";
    o.cache_toml = c.str();
    return o;
  }
  std::string select_sql(int id) const {
    return "SELECT id, v FROM public." + table_ + " WHERE id = " + std::to_string(id);
  }
  long calls() const { return statement_calls(table_); }
  double metric(const Proxy& p, const std::string& name, const std::string& labels = "") const {
    return metric_value(scrape_metrics(p), name, labels);
  }
  double hits(const Proxy& p) const { return metric(p, "pgsidecar_cache_requests_total", "class=\"t\",result=\"hit\""); }
  // Masters holding keys of this test's prefix (asked over TLS, logged in).
  std::set<uint16_t> masters_holding(const std::string& pattern) const {
    std::set<uint16_t> holders;
    for (const auto& n : cluster_->nodes()) {
      if (!n.master || n.failed) continue;
      if (!cluster_->cli(n.port, {"--scan", "--pattern", pattern}).empty()) holders.insert(n.port);
    }
    return holders;
  }

  static test::PrivateRedisCluster* cluster_;
  static std::string error_;
  static inline int counter_ = 0;
  std::string prefix_, table_;
};

test::PrivateRedisCluster* CacheClusterTlsTest::cluster_ = nullptr;
std::string CacheClusterTlsTest::error_;

// Ten rows read three times: ten misses, twenty hits; the entries spread over the masters; then a write
// through the proxy to every row, each followed by reads of every row, never stale.
TEST_F(CacheClusterTlsTest, CachesAndInvalidatesOverTheTlsAclCluster) {
  Proxy& p = start_proxy(options());
  ASSERT_TRUE(wait_catalog_read(p));
  ASSERT_TRUE(wait_until([&] { return metric(p, "pgsidecar_cache_ready") == 1; }, Millis(10000), Millis(50)))
      << p.log_tail();
  Pg c{p.spec()};
  ASSERT_TRUE(c.ok()) << c.error();
  long before = calls();
  for (int round = 0; round < 3; ++round) {
    for (int id = 1; id <= 10; ++id) {
      PgResult r = c.exec(select_sql(id));
      ASSERT_TRUE(r.ok()) << r.error();
      ASSERT_EQ(r.rows(), 1);
      EXPECT_EQ(r.value(0, 1), "v" + std::to_string(id));
    }
  }
  EXPECT_EQ(calls() - before, 10) << "ten misses, twenty hits";
  EXPECT_TRUE(wait_until([&] { return hits(p) >= 20; }, Millis(5000), Millis(50))) << hits(p);
  EXPECT_GE(masters_holding(prefix_ + "*:r:*").size(), 2u) << "the entries spread over the masters";

  Pg writer{p.spec()};
  ASSERT_TRUE(writer.ok()) << writer.error();
  int stale = 0;
  std::string last_stale;
  std::map<int, std::string> expected;
  for (int id = 1; id <= 10; ++id) expected[id] = "v" + std::to_string(id);
  for (int i = 0; i < 20; ++i) {
    int id = 1 + i % 10;
    std::string tag = "w" + std::to_string(i);
    PgResult w = writer.exec("UPDATE public." + table_ + " SET v = '" + tag + "' WHERE id = " + std::to_string(id));
    ASSERT_TRUE(w.ok()) << w.error();
    expected[id] = tag;
    for (int r = 1; r <= 10; ++r) {
      PgResult got = c.exec(select_sql(r));
      ASSERT_TRUE(got.ok() && got.rows() == 1) << got.error();
      if (got.value(0, 1) != expected[r]) {
        ++stale;
        last_stale = "row " + std::to_string(r) + ": " + got.value(0, 1) + " instead of " + expected[r];
      }
    }
  }
  EXPECT_EQ(stale, 0) << last_stale;
  EXPECT_LE(metric(p, "pgsidecar_redis_errors_total"), 0) << p.log_tail();  // -1: none
}

// The invalidation stream's leader (BlockingCluster: its lease, heartbeat and bumps) over the TLS cluster
// with the ACL login: a write straight to the primary reaches a cached read through the proxy.
TEST_F(CacheClusterTlsTest, TheInvalidationStreamBumpsOverTheTlsAclCluster) {
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
  Proxy& p = start_proxy(options("not-the-password"));
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

}  // namespace
}  // namespace pgs::it::cache_proxy
