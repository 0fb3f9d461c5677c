// The cache's Redis layer against a private Redis Cluster (tests/support/redis_cluster.h: 3 masters, one
// replica each, ports 26450-26455, buses 26550-26555): key slots agree with CLUSTER KEYSLOT, a worker's
// store and bumps spread over the masters, MOVED and ASK are followed, a slot split mid-migration is a
// miss (never a lookup reading an entry and generations from two nodes), and a killed master's replica
// takes over with every confirmed bump (WAIT) still there.
#include <gtest/gtest.h>

#include <optional>
#include <set>
#include <tuple>

#include "cache/cluster_keys.h"
#include "cache/redis/worker_cache.h"
#include "redis_env.h"
#include "tests/support/redis_cluster.h"

namespace pgs::cache {
namespace {

using namespace std::chrono_literals;
using test::PrivateRedisCluster;

constexpr uint16_t kBasePort = 26450;

class ClusterTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { cluster_ = PrivateRedisCluster::start_new(kBasePort, error_); }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(cluster_, nullptr) << error_;
    ASSERT_TRUE(cluster_->wait_healthy(30s)) << cluster_->cli(kBasePort, {"CLUSTER", "NODES"});
    config_.enabled = true;
    config_.redis_cluster = true;
    config_.redis_nodes = {"127.0.0.1:" + std::to_string(kBasePort)};  // one seed: the rest is learnt
    config_.redis_timeout = 1000ms;
    config_.key_prefix = prefix_;
    cache_.emplace(loop_.get(), config_);
    cache_->start();
    ASSERT_TRUE(loop_.run_until([&] { return cache_->ready(); }, 10s));
  }
  void TearDown() override { cache_.reset(); }

  bool bump(std::vector<std::string> tables) {
    std::optional<bool> ok;
    cache_->sync().bump(std::move(tables), [&](bool b) { ok = b; });
    EXPECT_TRUE(loop_.run_until([&] { return ok.has_value(); }, 10s));
    return ok.value_or(false);
  }
  bool set(const std::string& key, const std::string& value) {
    uint64_t before = cache_->store().stats().stores;
    if (!cache_->store().set(key, value, 60s)) return false;
    return loop_.run_until([&] { return cache_->store().stats().stores > before; }, 10s);
  }
  // Lookup of `key` with generations of `tables` (its partition's hash); nullopt when refused.
  std::optional<std::tuple<GetStatus, std::vector<uint64_t>, std::string>> lookup(const CacheKey& k,
                                                                                  std::vector<std::string> tables) {
    std::optional<std::tuple<GetStatus, std::vector<uint64_t>, std::string>> out;
    bool sent = cache_->store().lookup(cache_->names().generations_for(k), tables, key(k),
                                       [&](GetStatus s, std::vector<uint64_t> g, std::string v, std::optional<uint64_t>) {
                                         out.emplace(s, std::move(g), std::move(v));
                                       });
    if (!sent) return std::nullopt;
    EXPECT_TRUE(loop_.run_until([&] { return out.has_value(); }, 10s));
    return out;
  }
  std::string key(const CacheKey& k) const { return cache_->names().result_key(k, "c"); }
  // A key of partition p.
  CacheKey key_in(size_t p, uint64_t n = 0) const {
    size_t parts = cache_->names().partitions();
    return CacheKey{n, p + parts * (n + 1)};
  }

  static PrivateRedisCluster* cluster_;
  static std::string error_;
  testing::TestLoop loop_;
  std::string prefix_ = testing::unique_prefix();
  conf::CacheConfig config_;
  std::optional<redis::WorkerCache> cache_;
};

PrivateRedisCluster* ClusterTest::cluster_ = nullptr;
std::string ClusterTest::error_;

TEST_F(ClusterTest, KeySlotAgreesWithClusterKeyslot) {
  std::vector<std::string> keys = {"foo", "bar", "{user1000}.following", "foo{}{bar}", "foo{{bar}}zap", "a{b}c{d}",
                                   "", "\xff\xfe binary", key(CacheKey{1, 2}), cache_->names().generations};
  for (size_t p = 0; p < 3; ++p) keys.push_back(cache_->names().generations_of(p) + ":lsn");
  for (int i = 0; i < 40; ++i) keys.push_back("k" + std::to_string(i * 7919));
  for (const std::string& k : keys) {
    EXPECT_EQ(cluster_->cli(kBasePort, {"CLUSTER", "KEYSLOT", k}), std::to_string(key_slot(k))) << k;
  }
}

TEST_F(ClusterTest, EntriesAndBumpsSpreadOverTheMastersAndStayConsistent) {
  ASSERT_EQ(cache_->names().partitions(), 3u);
  std::set<uint16_t> masters;
  for (size_t p = 0; p < 3; ++p) {
    auto m = cluster_->master_of_slot(key_slot(cache_->names().generations_of(p)));
    ASSERT_TRUE(m);
    masters.insert(m->port);
  }
  EXPECT_EQ(masters.size(), 3u) << "one partition per master in a default 3-master cluster";
  ASSERT_TRUE(bump({"core.users"}));
  for (size_t p = 0; p < 3; ++p) {
    CacheKey k = key_in(p);
    ASSERT_TRUE(set(key(k), "value" + std::to_string(p)));
    auto got = lookup(k, {"core.users", "*"});
    ASSERT_TRUE(got);
    ASSERT_EQ(std::get<0>(*got), GetStatus::hit);
    EXPECT_EQ(std::get<2>(*got), "value" + std::to_string(p));
    EXPECT_GT(std::get<1>(*got)[0], 0u) << "the bump reached partition " << p;
    uint64_t before = std::get<1>(*got)[0];
    ASSERT_TRUE(bump({"core.users"}));
    auto after = lookup(k, {"core.users", "*"});
    ASSERT_TRUE(after);
    ASSERT_NE(std::get<0>(*after), GetStatus::error);
    EXPECT_GT(std::get<1>(*after)[0], before) << "every partition sees every bump";
  }
  EXPECT_EQ(cache_->cluster()->stats().moved, 0u);
}

// A partition's keys all live in one slot; moving that slot moves the whole partition.
TEST_F(ClusterTest, MovedAndAskAreFollowedAndAMigratingSlotIsNeverAStaleHit) {
  CacheKey k = key_in(1, 5);
  ASSERT_TRUE(bump({"core.orders"}));
  ASSERT_TRUE(set(key(k), "moving"));
  int slot = key_slot(key(k));
  auto from = cluster_->master_of_slot(slot);
  ASSERT_TRUE(from);
  uint16_t to = 0;
  for (const auto& n : cluster_->nodes()) {
    if (n.master && !n.failed && n.port != from->port) to = n.port;
  }
  ASSERT_NE(to, 0);
  ASSERT_TRUE(cluster_->begin_migration(slot, to));
  // Some of the slot's keys moved: a script whose keys are split between the nodes is refused
  // (TRYAGAIN): a miss; never an entry from one node with generations from the other.
  ASSERT_TRUE(cluster_->migrate_keys(slot, to, 1));
  for (int i = 0; i < 3; ++i) {
    auto split = lookup(k, {"core.orders", "*"});
    if (split && std::get<0>(*split) == GetStatus::hit) {
      EXPECT_EQ(std::get<2>(*split), "moving");
    }
  }
  // Every key moved, the slot still MIGRATING: the source answers ASK and a one-key command follows it.
  ASSERT_TRUE(cluster_->migrate_keys(slot, to));
  std::optional<std::pair<GetStatus, std::string>> got;
  ASSERT_TRUE(cache_->store().get(key(k), [&](GetStatus st, std::string v) { got.emplace(st, std::move(v)); }));
  ASSERT_TRUE(loop_.run_until([&] { return got.has_value(); }, 10s));
  EXPECT_EQ(got->first, GetStatus::hit);
  EXPECT_EQ(got->second, "moving");
  EXPECT_GE(cache_->cluster()->stats().asks, 1u);
  // A bump while the partition migrates is not confirmed (the script's channel key exists on neither
  // node: TRYAGAIN) and waits for its retry; this sidecar bypasses meanwhile.
  EXPECT_FALSE(bump({"core.orders"}));
  EXPECT_FALSE(cache_->ready());
  // The slot now belongs to the target: MOVED, followed, the map learns it, the retried bump lands.
  ASSERT_TRUE(cluster_->finish_migration(slot, to));
  ASSERT_TRUE(loop_.run_until([&] { return cache_->ready(); }, 10s));
  auto moved = lookup(k, {"core.orders", "*"});
  ASSERT_TRUE(moved);
  ASSERT_EQ(std::get<0>(*moved), GetStatus::hit);
  EXPECT_EQ(cache_->cluster()->map().master(static_cast<uint16_t>(slot))->port, to);
  EXPECT_GE(cache_->cluster()->stats().moved + cache_->cluster()->stats().refreshes, 2u);
  uint64_t g = std::get<1>(*moved)[0];
  ASSERT_TRUE(bump({"core.orders"}));
  auto after = lookup(k, {"core.orders", "*"});
  ASSERT_TRUE(after);
  ASSERT_NE(std::get<0>(*after), GetStatus::error);
  EXPECT_GT(std::get<1>(*after)[0], g);
}

// A bump counts only once the master's replica has it (WAIT): the replica a failover would promote.
TEST_F(ClusterTest, ABumpTheReplicaDidNotReceiveIsNotConfirmed) {
  auto master = cluster_->master_of_slot(key_slot(cache_->names().generations_of(2)));
  ASSERT_TRUE(master);
  auto replica = cluster_->replica_of(*master);
  ASSERT_TRUE(replica);
  // A replica counts once the client's map lists it (a cluster just formed may list none yet; the map
  // is read again every ready_refresh_interval).
  const NodeAddress master_at{"127.0.0.1", master->port};
  ASSERT_TRUE(loop_.run_until([&] { return cache_->sync_cluster()->map().replicas(master_at) >= 1; }, 10s));
  ASSERT_TRUE(bump({"core.waited"}));
  cluster_->pause_node(replica->port);
  EXPECT_FALSE(bump({"core.waited"})) << "the replica cannot acknowledge it";
  EXPECT_FALSE(cache_->ready()) << "a bump to retry: this sidecar bypasses";
  cluster_->resume_node(replica->port);
  ASSERT_TRUE(loop_.run_until([&] { return cache_->ready(); }, 10s)) << "the retry was confirmed";
  EXPECT_GE(cache_->sync_cluster()->stats().wait_short, 1u);
}

// Last: it kills a master (the cluster stays healthy, with one master less replicated).
TEST_F(ClusterTest, ZKilledMasterIsReplacedByItsReplicaWithEveryConfirmedBump) {
  CacheKey k = key_in(0, 9);
  int slot = key_slot(key(k));
  auto master = cluster_->master_of_slot(slot);
  ASSERT_TRUE(master);
  auto replica = cluster_->replica_of(*master);
  ASSERT_TRUE(replica);
  ASSERT_TRUE(set(key(k), "before"));
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(bump({"core.items"}));  // each one WAITed for the replica
  auto last = lookup(k, {"core.items", "*"});
  ASSERT_TRUE(last);
  ASSERT_EQ(std::get<0>(*last), GetStatus::hit);
  uint64_t newest = std::get<1>(*last)[0];
  cluster_->kill_node(master->port);
  auto killed = std::chrono::steady_clock::now();
  // Until the replica is promoted: not ready (every lookup bypasses), bumps fail and are retried.
  ASSERT_TRUE(loop_.run_until([&] { return !cache_->ready(); }, 5s));
  EXPECT_FALSE(bump({"core.other"}));
  EXPECT_FALSE(cache_->sync().synced());
  ASSERT_TRUE(loop_.run_until([&] { return cache_->ready() && cache_->sync().synced(); }, 30s))
      << cluster_->cli(replica->port, {"CLUSTER", "NODES"});
  auto bypassed = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - killed);
  RecordProperty("bypassed_ms", std::to_string(bypassed.count()));  // cluster-node-timeout 1 s + election
  EXPECT_EQ(cache_->cluster()->map().master(static_cast<uint16_t>(slot))->port, replica->port);
  auto after = lookup(k, {"core.items", "*"});
  ASSERT_TRUE(after);
  ASSERT_EQ(std::get<0>(*after), GetStatus::hit)
      << cluster_->cli(replica->port, {"GET", key(k)}) << " "
      << cluster_->cli(replica->port, {"HGETALL", cache_->names().generations_for(k)}) << " "
      << cluster_->cli(replica->port, {"EVAL", "return redis.call('GET', KEYS[1])", "1", key(k)});
  EXPECT_GE(std::get<1>(*after)[0], newest) << "no confirmed bump was lost with the master";
}

}  // namespace
}  // namespace pgs::cache
