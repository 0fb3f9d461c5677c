// Issue 13 item 5 end to end: the real pgsidecar with its cache on a private Redis Cluster (3 masters, one
// replica each, ports 26460-26465, buses 26560-26565; tests/support/redis_cluster.h), real Postgres. The
// proxy caches and hits, a write through it is never followed by a stale read, a partition's slot moved
// between masters mid-run is followed, and a master killed mid-load (its replica promoted) costs no
// client error and no stale read.
#include "tests/cache_proxy/cluster_fixture.h"

namespace pgs::it::cache_proxy {
namespace {

// Plaintext, no login.
struct PlainCluster {
  static constexpr uint16_t kBasePort = 26460;
  static constexpr const char* kTablePrefix = "pgs_cache_cluster_";
  static test::RedisServerOptions server_options(std::string&) { return {}; }
  static std::string cache_toml() { return ""; }
};
using CacheClusterTest = ClusterCacheTest<PlainCluster>;

TEST_F(CacheClusterTest, CachesAndHitsOverTheCluster) { caches_and_hits(); }

TEST_F(CacheClusterTest, AWriteThroughTheProxyIsNeverFollowedByAStaleRead) { writes_are_never_followed_by_stale_reads(); }

// Every entry of a partition lives in its tag's slot: move partition 0's slot to another master while
// clients read and write.
TEST_F(CacheClusterTest, APartitionsSlotMovedMidRunIsFollowed) { a_partitions_slot_moved_mid_run_is_followed(); }

// The invalidation stream over the cluster: one leader (lease and heartbeat in partition 0's slot), and a
// write straight to the primary is bumped on every partition, so a cached read through the other sidecar
// sees it within the stream's bound.
TEST_F(CacheClusterTest, TheInvalidationStreamLeadsAndBumpsOverTheCluster) {
  std::string slot = "pgs_stream_cluster_" + std::to_string(getpid());
  ProxyOptions o = options();
  o.cache_toml += stream_toml(slot);
  std::vector<std::unique_ptr<Proxy>> sidecars;
  sidecars.push_back(Proxy::start(o));
  sidecars.push_back(Proxy::start(o));
  auto stream_metric = [&](const Proxy& p, const std::string& name) { return metric(p, name, ""); };
  for (auto& s : sidecars) {
    ASSERT_TRUE(wait_catalog_read(*s));
    ASSERT_TRUE(wait_until([&] { return stream_metric(*s, "pgsidecar_cache_stream_live") == 1; }, Millis(15000), Millis(20)))
        << s->log_tail();
  }
  EXPECT_EQ(stream_metric(*sidecars[0], "pgsidecar_cache_stream_leader") +
                stream_metric(*sidecars[1], "pgsidecar_cache_stream_leader"),
            1);
  Pg c{sidecars[1]->spec()};
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ(direct_write_reaches(c, table_), "");
  sidecars.clear();
  drop_stream_slots(slot);
}

// Last (it kills a node): a master killed mid-load; its replica is promoted automatically.
TEST_F(CacheClusterTest, ZMasterKilledMidLoadCostsNoErrorAndNoStaleRead) { kill_a_master_mid_load(); }

}  // namespace
}  // namespace pgs::it::cache_proxy
