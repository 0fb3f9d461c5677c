// The fixture of the end-to-end suites of the cache on a private Redis Cluster (issue 13 item 5): the real
// pgsidecar, real Postgres, a cluster of 3 masters with one replica each (tests/support/redis_cluster.h)
// started once per suite, a table and a key prefix per test. `Variant` says how the cluster listens and
// how the proxy reaches it:
//   static constexpr uint16_t kBasePort;       // ports base..base+5, buses + 100
//   static constexpr const char* kTablePrefix;
//   static test::RedisServerOptions server_options(std::string& error);  // TLS, ACL users
//   static std::string cache_toml();           // [cache] keys beyond the nodes (redis_tls, redis_user, ...)
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <map>
#include <set>
#include <sstream>
#include <string>

#include "cache/cluster_keys.h"
#include "cache/key.h"
#include "tests/cache_proxy/cache_util.h"
#include "tests/session/session_util.h"
#include "tests/support/redis_cluster.h"

namespace pgs::it::cache_proxy {

template <typename Variant>
class ClusterCacheTest : public ProxyTest {
 protected:
  static void SetUpTestSuite() {
    std::string setup_error;
    test::RedisServerOptions server = Variant::server_options(setup_error);
    if (!setup_error.empty()) {
      error_ = setup_error;
      return;
    }
    cluster_ = test::PrivateRedisCluster::start_new(Variant::kBasePort, error_, server);
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  void SetUp() override {
    ProxyTest::SetUp();
    if (is_direct()) GTEST_SKIP() << "needs the pgsidecar process";
    ASSERT_NE(cluster_, nullptr) << error_;
    ASSERT_TRUE(cluster_->wait_healthy(Millis(30000))) << cluster_->cli(Variant::kBasePort, {"CLUSTER", "NODES"});
    prefix_ = unique_prefix();
    table_ = std::string(Variant::kTablePrefix) + std::to_string(counter_++) + "_" + std::to_string(getpid());
    create_table(table_);
  }
  void TearDown() override {
    ProxyTest::TearDown();
    if (!table_.empty()) drop_table(table_);
  }
  // The cluster's seeds, a key prefix of the test's own, and the variant's [cache] keys (TLS, login).
  ProxyOptions options(const std::string& variant_toml = Variant::cache_toml()) const {
    ProxyOptions o = cache_options(0, prefix_, {"t:1m:public." + table_});
    std::ostringstream c;
    c << "enabled = true\nredis_cluster = true\nredis_nodes = [";
    for (const std::string& s : cluster_->seeds()) c << (s == cluster_->seeds().front() ? "" : ", ") << '"' << s << '"';
    c << "]\nkey_prefix = \"" << prefix_ << "\"\nredis_timeout = \"200ms\"\n" << variant_toml;
    o.cache_toml = c.str();
    return o;
  }
  Proxy& start() {
    Proxy& p = start_proxy(options());
    EXPECT_TRUE(wait_catalog_read(p)) << "the catalog was not read";
    EXPECT_TRUE(wait_until([&] { return metric(p, "pgsidecar_cache_ready", "") == 1; }, Millis(10000), Millis(50)));
    return p;
  }
  std::string select_sql(int id) const {
    return "SELECT id, v FROM public." + table_ + " WHERE id = " + std::to_string(id);
  }
  long calls() const { return statement_calls(table_); }
  double metric(const Proxy& p, const std::string& name, const std::string& labels = "") const {
    return metric_value(scrape_metrics(p), name, labels);
  }
  double hits(const Proxy& p) const { return metric(p, "pgsidecar_cache_requests_total", "class=\"t\",result=\"hit\""); }

  // Writes v = '<tag>' to row `id` through `writer` and checks every row, twice (a write bumps the whole
  // table: the first pass misses, the second may hit), through `reader` against `expected` (updated
  // with the write). Counts errors and stale reads.
  void write_then_read_all(Pg& writer, Pg& reader, int id, const std::string& tag, std::map<int, std::string>& expected) {
    PgResult w = writer.exec("UPDATE public." + table_ + " SET v = '" + tag + "' WHERE id = " + std::to_string(id));
    if (!w.ok()) {
      ++errors_;
      last_error_ = w.error();
      return;
    }
    expected[id] = tag;
    for (int n = 0; n < 20; ++n) {
      int r = 1 + n % 10;
      PgResult got = reader.exec(select_sql(r));
      if (!got.ok() || got.rows() != 1) {
        ++errors_;
        last_error_ = got.error();
        continue;
      }
      if (got.value(0, 1) != expected[r]) {
        ++stale_;
        last_stale_ = "row " + std::to_string(r) + ": " + got.value(0, 1) + " instead of " + expected[r];
      }
    }
  }
  static std::map<int, std::string> initial() {
    std::map<int, std::string> m;
    for (int i = 1; i <= 10; ++i) m[i] = "v" + std::to_string(i);
    return m;
  }

  // Masters holding keys that match `pattern`.
  std::set<uint16_t> masters_holding(const std::string& pattern) const {
    std::set<uint16_t> holders;
    for (const auto& n : cluster_->nodes()) {
      if (!n.master || n.failed) continue;
      if (!cluster_->cli(n.port, {"--scan", "--pattern", pattern}).empty()) holders.insert(n.port);
    }
    return holders;
  }

  // Ten rows read three times: ten misses, twenty hits; the entries spread over the masters.
  void caches_and_hits() {
    Proxy& p = start();
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
    EXPECT_TRUE(wait_until([&] { return hits(p) >= 20; }, Millis(5000), Millis(50)));
    // The entries spread over more than one master.
    EXPECT_GE(masters_holding(prefix_ + "*:r:*").size(), 2u);
  }

  // Thirty writes through the proxy, each followed by reads of every row: never stale, no error.
  void writes_are_never_followed_by_stale_reads() {
    Proxy& p = start();
    Pg writer{p.spec()}, reader{p.spec()};
    ASSERT_TRUE(writer.ok() && reader.ok());
    std::map<int, std::string> expected = initial();
    for (int i = 0; i < 30; ++i) write_then_read_all(writer, reader, 1 + i % 10, "w" + std::to_string(i), expected);
    EXPECT_EQ(errors_, 0) << last_error_;
    EXPECT_EQ(stale_, 0) << last_stale_;
    EXPECT_TRUE(wait_until([&] { return hits(p) >= 200; }, Millis(5000), Millis(50)))
        << "the second read of each row after a write hits: " << hits(p);
  }

  // Partition 0's slot moved to another master step by step (IMPORTING/MIGRATING, MIGRATE, SETSLOT NODE)
  // while clients read and write: never stale, no error, and the cache works again on the moved slot.
  void a_partitions_slot_moved_mid_run_is_followed() {
    Proxy& p = start();
    Pg writer{p.spec()}, reader{p.spec()};
    ASSERT_TRUE(writer.ok() && reader.ok());
    std::map<int, std::string> expected = initial();
    for (int i = 0; i < 5; ++i) write_then_read_all(writer, reader, 1 + i % 10, "a" + std::to_string(i), expected);
    cache::RedisNames names(prefix_, 3);
    int slot = cache::key_slot(names.generations_of(0));
    auto from = cluster_->master_of_slot(slot);
    ASSERT_TRUE(from);
    uint16_t to = 0;
    for (const auto& n : cluster_->nodes()) {
      if (n.master && !n.failed && n.port != from->port) to = n.port;
    }
    ASSERT_TRUE(cluster_->begin_migration(slot, to));
    for (int i = 5; i < 8; ++i) write_then_read_all(writer, reader, 1 + i % 10, "a" + std::to_string(i), expected);
    ASSERT_TRUE(cluster_->migrate_keys(slot, to));
    for (int i = 8; i < 11; ++i) write_then_read_all(writer, reader, 1 + i % 10, "a" + std::to_string(i), expected);
    ASSERT_TRUE(cluster_->finish_migration(slot, to));
    for (int i = 11; i < 40; ++i) write_then_read_all(writer, reader, 1 + i % 10, "a" + std::to_string(i), expected);
    EXPECT_EQ(errors_, 0) << last_error_;
    EXPECT_EQ(stale_, 0) << last_stale_;
    EXPECT_TRUE(wait_until([&] { return metric(p, "pgsidecar_cache_ready", "") == 1; }, Millis(10000), Millis(50)));
    double before = hits(p);
    for (int round = 0; round < 2; ++round) {
      for (int id = 1; id <= 10; ++id) ASSERT_TRUE(reader.exec(select_sql(id)).ok());
    }
    EXPECT_TRUE(wait_until([&] { return hits(p) >= before + 10; }, Millis(5000), Millis(50)))
        << "the cache works again on the moved slot";
  }

  // A master (partition 0's) killed mid-load; its replica is promoted automatically: no client error, no
  // stale read, and the cache works again. Kills a node: the suite's last test.
  void kill_a_master_mid_load() {
  Proxy& p = start();
  Pg writer{p.spec()}, reader{p.spec()};
  ASSERT_TRUE(writer.ok() && reader.ok());
  std::map<int, std::string> expected = initial();
  for (int i = 0; i < 10; ++i) write_then_read_all(writer, reader, 1 + i % 10, "k" + std::to_string(i), expected);
  cache::RedisNames names(prefix_, 3);
  auto master = cluster_->master_of_slot(cache::key_slot(names.generations_of(0)));
  ASSERT_TRUE(master);
  auto replica = cluster_->replica_of(*master);
  ASSERT_TRUE(replica);
  cluster_->kill_node(master->port);
  // Load until the replica took over and the proxy is ready again, then some more.
  auto deadline = Clock::now() + Millis(30000);
  int i = 10;
  bool promoted = false;
  while (Clock::now() < deadline) {
    write_then_read_all(writer, reader, 1 + i % 10, "k" + std::to_string(i), expected);
    ++i;
    if (!promoted && cluster_->cli(replica->port, {"ROLE"}).rfind("master", 0) == 0 &&
        metric(p, "pgsidecar_cache_ready", "") == 1) {
      promoted = true;
      deadline = Clock::now() + Millis(2000);
    }
  }
  ASSERT_TRUE(promoted) << cluster_->cli(replica->port, {"CLUSTER", "NODES"});
  EXPECT_EQ(errors_, 0) << last_error_;
  EXPECT_EQ(stale_, 0) << last_stale_;
  double before = hits(p);
  for (int round = 0; round < 2; ++round) {
    for (int id = 1; id <= 10; ++id) ASSERT_TRUE(reader.exec(select_sql(id)).ok());
  }
  EXPECT_TRUE(wait_until([&] { return hits(p) >= before + 10; }, Millis(5000), Millis(50)))
      << "the cache works again after the failover";
  }

  static inline test::PrivateRedisCluster* cluster_ = nullptr;
  static inline std::string error_;
  static inline int counter_ = 0;
  std::string prefix_, table_;
  int errors_ = 0, stale_ = 0;
  std::string last_error_, last_stale_;
};

}  // namespace pgs::it::cache_proxy
