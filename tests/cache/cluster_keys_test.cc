// Redis Cluster key arithmetic: CRC16 slots with hash tags (known values of Redis's CLUSTER KEYSLOT;
// tests/cache_cluster compares many more against a live cluster), partition tags, MOVED/ASK parsing,
// node addresses, and the cluster key layout of RedisNames.
#include <gtest/gtest.h>

#include <set>

#include "cache/cluster_keys.h"
#include "cache/key.h"

namespace pgs::cache {
namespace {

TEST(ClusterKeys, Crc16IsXmodem) {
  EXPECT_EQ(crc16_xmodem("123456789"), 0x31C3);  // the check value of CRC-16/XMODEM
  EXPECT_EQ(crc16_xmodem(""), 0);
}

TEST(ClusterKeys, KeySlotMatchesRedis) {
  EXPECT_EQ(key_slot("foo"), 12182);
  EXPECT_EQ(key_slot("bar"), 5061);
  EXPECT_EQ(key_slot("hello"), 866);
  EXPECT_EQ(key_slot("somekey"), 11058);
  EXPECT_EQ(key_slot(""), 0);
}

TEST(ClusterKeys, HashTags) {
  EXPECT_EQ(key_slot("{user1000}.following"), key_slot("{user1000}.followers"));
  EXPECT_EQ(key_slot("{user1000}.following"), key_slot("user1000"));
  EXPECT_EQ(key_slot("foo{}{bar}"), crc16_xmodem("foo{}{bar}") % 16384) << "an empty tag hashes the whole key";
  EXPECT_EQ(key_slot("foo{{bar}}zap"), key_slot("{bar")) << "the tag ends at the first } after the first {";
  EXPECT_EQ(key_slot("foo{bar}{zap}"), key_slot("bar")) << "only the first tag counts";
  EXPECT_EQ(key_slot("foo{bar"), crc16_xmodem("foo{bar") % 16384) << "no closing brace: no tag";
  EXPECT_EQ(key_slot("}{x}"), key_slot("x"));
}

TEST(ClusterKeys, PartitionTagsSpreadOverTheSlots) {
  for (size_t n : {1u, 2u, 3u, 6u, 12u, 100u}) {
    std::vector<std::string> tags = partition_tags(n);
    ASSERT_EQ(tags.size(), n);
    for (size_t p = 0; p < n; ++p) {
      uint16_t s = key_slot(tags[p]);
      EXPECT_GE(s, p * 16384 / n) << n << " " << tags[p];
      EXPECT_LT(s, (p + 1) * 16384 / n) << n << " " << tags[p];
    }
  }
  EXPECT_EQ(partition_tags(3), partition_tags(3)) << "deterministic";
  EXPECT_TRUE(partition_tags(0).empty());
  EXPECT_TRUE(partition_tags(16385).empty());
}

TEST(ClusterKeys, Redirects) {
  auto moved = parse_redirect("MOVED 3999 127.0.0.1:6381");
  ASSERT_TRUE(moved);
  EXPECT_EQ(moved->kind, Redirect::Kind::moved);
  EXPECT_EQ(moved->slot, 3999);
  EXPECT_EQ(moved->node, (NodeAddress{"127.0.0.1", 6381}));
  auto ask = parse_redirect("ASK 16383 ::1:7000");
  ASSERT_TRUE(ask);
  EXPECT_EQ(ask->kind, Redirect::Kind::ask);
  EXPECT_EQ(ask->slot, 16383);
  EXPECT_EQ(ask->node, (NodeAddress{"::1", 7000}));
  EXPECT_EQ(ask->node.text(), "[::1]:7000");
  for (const char* bad : {"MOVED 16384 127.0.0.1:1", "MOVED -1 127.0.0.1:1", "MOVED 1 127.0.0.1:0",
                          "MOVED 1 127.0.0.1:65536", "MOVED 1 redis.example:6379", "MOVED 1 :6379",
                          "MOVED 1 127.0.0.1:6379 x", "MOVED 1", "MOVED", "ASK  1 127.0.0.1:1",
                          "TRYAGAIN Multiple keys request during rehashing of slot",
                          "CLUSTERDOWN The cluster is down", "ERR moved", "MOVED 1 127.0.0.1:", "MOVED x 127.0.0.1:1",
                          "MOVED 1 127.0.0.1", "ASK 99999999999999999999 127.0.0.1:1"}) {
    EXPECT_FALSE(parse_redirect(bad)) << bad;
  }
}

TEST(ClusterKeys, NodeAddresses) {
  EXPECT_EQ(parse_node_address("[::1]:6379"), (NodeAddress{"::1", 6379}));
  EXPECT_EQ(parse_node_address("10.0.0.1:1"), (NodeAddress{"10.0.0.1", 1}));
  EXPECT_FALSE(parse_node_address("localhost:6379")) << "names would need a blocking resolver";
  EXPECT_FALSE(parse_node_address("10.0.0.1"));
  EXPECT_FALSE(parse_node_address("10.0.0.256:1"));
  EXPECT_FALSE(parse_node_address(""));
}

TEST(ClusterKeys, ClusterLayoutKeepsAnEntryWithItsGenerations) {
  RedisNames names("t1:", 3);
  ASSERT_EQ(names.partitions(), 3u);
  std::set<size_t> seen;
  for (uint64_t i = 0; i < 30; ++i) {
    CacheKey k{i * 7919, i * 104729 + 13};
    std::string key = names.result_key(k, "workspace");
    const std::string& gens = names.generations_for(k);
    EXPECT_EQ(key_slot(key), key_slot(gens)) << key;
    EXPECT_EQ(key_slot(key), key_slot(gens + ":lsn")) << "the commit LSN hash is gens + \":lsn\"";
    EXPECT_EQ(key_slot(key), key_slot(names.channel_of(names.partition_of(k)))) << "the bump script's KEYS[2]";
    EXPECT_EQ(names.class_of(key), "workspace") << key;
    seen.insert(names.partition_of(k));
  }
  EXPECT_EQ(seen.size(), 3u);
  EXPECT_NE(key_slot(names.generations_of(0)), key_slot(names.generations_of(1)));
  EXPECT_EQ(names.generations, names.generations_of(0));
  EXPECT_EQ(names.class_of("t1:pgsc:v1:r:workspace:0123456789abcdeffedcba9876543210"), "")
      << "a single-Redis key is not one of a cluster namespace";
  RedisNames single("t1:");
  EXPECT_EQ(single.partitions(), 0u);
  EXPECT_EQ(single.generations_for(CacheKey{1, 2}), "t1:pgsc:v1:gens");
  EXPECT_EQ(single.result_key(CacheKey{0, 1}, "c"), "t1:pgsc:v1:r:c:00000000000000000000000000000001");
}

}  // namespace
}  // namespace pgs::cache
