// parse_cluster_slots(): CLUSTER SLOTS replies, as RESP bytes read by hiredis's own reader (what the
// cluster client sees), well-formed and hostile.
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <memory>
#include <string>

#include "cache/redis/cluster_map.h"

namespace pgs::cache::redis {
namespace {

struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

ReplyPtr read_resp(const std::string& bytes) {
  redisReader* reader = redisReaderCreate();
  redisReaderFeed(reader, bytes.data(), bytes.size());
  void* out = nullptr;
  int rc = redisReaderGetReply(reader, &out);
  redisReaderFree(reader);
  EXPECT_EQ(rc, REDIS_OK);
  EXPECT_NE(out, nullptr) << "incomplete RESP in the test";
  return ReplyPtr(static_cast<redisReply*>(out));
}

std::string bulk(const std::string& s) { return "$" + std::to_string(s.size()) + "\r\n" + s + "\r\n"; }
std::string node(const std::string& ip, int port, const std::string& id = "0123abcd") {
  return "*3\r\n" + bulk(ip) + ":" + std::to_string(port) + "\r\n" + bulk(id);
}
std::string range(int first, int last, const std::string& nodes, int n_nodes) {
  return "*" + std::to_string(2 + n_nodes) + "\r\n:" + std::to_string(first) + "\r\n:" + std::to_string(last) +
         "\r\n" + nodes;
}

const NodeAddress kAsked{"127.0.0.1", 7000};

TEST(ClusterMap, ThreeMastersWithReplicas) {
  std::string resp = "*3\r\n" + range(0, 5460, node("127.0.0.1", 7000) + node("127.0.0.1", 7003), 2) +
                     range(5461, 10922, node("127.0.0.1", 7001) + node("127.0.0.1", 7004), 2) +
                     range(10923, 16383, node("127.0.0.1", 7002) + node("127.0.0.1", 7005), 2);
  ReplyPtr r = read_resp(resp);
  SlotsParse p = parse_cluster_slots(r.get(), kAsked);
  ASSERT_TRUE(p.map) << p.error;
  EXPECT_TRUE(p.map->complete());
  EXPECT_EQ(*p.map->master(0), (NodeAddress{"127.0.0.1", 7000}));
  EXPECT_EQ(*p.map->master(5461), (NodeAddress{"127.0.0.1", 7001}));
  EXPECT_EQ(*p.map->master(16383), (NodeAddress{"127.0.0.1", 7002}));
  EXPECT_EQ(p.map->masters().size(), 3u) << "replicas are never routed to";
  EXPECT_EQ(p.map->replicas(NodeAddress{"127.0.0.1", 7000}), 1u);
  EXPECT_EQ(p.map->replicas(NodeAddress{"127.0.0.1", 7003}), SIZE_MAX) << "not a master: unknown";
}

TEST(ClusterMap, EmptyAddressIsTheNodeAskedUnknownOrNamesAreUncovered) {
  std::string resp = "*3\r\n" + range(0, 99, node("", 7009), 1) + range(100, 199, node("?", 7001), 1) +
                     range(200, 299, node("redis-2.example", 7002), 1);
  ReplyPtr r = read_resp(resp);
  SlotsParse p = parse_cluster_slots(r.get(), kAsked);
  ASSERT_TRUE(p.map) << p.error;
  EXPECT_EQ(*p.map->master(50), (NodeAddress{"127.0.0.1", 7009}));
  EXPECT_EQ(p.map->master(150), nullptr);
  EXPECT_EQ(p.map->master(250), nullptr);
  EXPECT_EQ(p.map->master(300), nullptr);
  EXPECT_EQ(p.map->covered(), 100u);
  EXPECT_EQ(p.map->replicas(NodeAddress{"127.0.0.1", 7009}), 0u);
  EXPECT_FALSE(p.map->complete());
}

TEST(ClusterMap, HostileRepliesAreErrors) {
  const std::string ok_node = node("127.0.0.1", 7000);
  const std::string cases[] = {
      ":1\r\n",                                                     // not an array
      "-ERR This instance has cluster support disabled\r\n",        // an error
      "*1\r\n" + range(0, 16384, ok_node, 1),                        // past the last slot
      "*1\r\n" + range(-1, 5, ok_node, 1),                           // negative
      "*1\r\n" + range(10, 5, ok_node, 1),                           // reversed
      "*2\r\n" + range(0, 10, ok_node, 1) + range(10, 20, ok_node, 1),  // overlapping
      "*1\r\n*2\r\n:0\r\n:5\r\n",                                    // no node
      "*1\r\n" + range(0, 5, ":7\r\n", 1),                           // node not an array
      "*1\r\n" + range(0, 5, "*1\r\n" + bulk("127.0.0.1"), 1),       // node without a port
      "*1\r\n" + range(0, 5, node("127.0.0.1", 70000), 1),           // port out of range
      "*1\r\n" + range(0, 5, "*2\r\n:1\r\n:7000\r\n", 1),            // address not a string
      "*1\r\n*3\r\n" + bulk("0") + ":5\r\n" + ok_node,               // slot as a string
      "*1\r\n" + range(0, 5, ok_node + ":3\r\n", 2),                 // a replica entry malformed
      "*1\r\n:5\r\n",                                                // range not an array
  };
  for (const std::string& c : cases) {
    ReplyPtr r = read_resp(c);
    SlotsParse p = parse_cluster_slots(r.get(), kAsked);
    EXPECT_FALSE(p.map) << c;
    EXPECT_FALSE(p.error.empty()) << c;
  }
  EXPECT_FALSE(parse_cluster_slots(nullptr, kAsked).map);
}

TEST(ClusterMap, MovedAssignsOneSlot) {
  SlotMap m;
  m.assign_range(0, 16383, NodeAddress{"127.0.0.1", 7000});
  m.assign(42, NodeAddress{"127.0.0.1", 7001});
  EXPECT_EQ(m.master(42)->port, 7001);
  EXPECT_EQ(m.master(41)->port, 7000);
  EXPECT_EQ(m.masters().size(), 2u);
  EXPECT_EQ(m.replicas(NodeAddress{"127.0.0.1", 7001}), SIZE_MAX) << "learnt from a MOVED: unknown";
  EXPECT_EQ(m.master(16384), nullptr);
  m.assign_range(5, 16384, NodeAddress{"127.0.0.1", 7002});  // out of bounds: ignored
  EXPECT_EQ(m.master(5)->port, 7000);
}

}  // namespace
}  // namespace pgs::cache::redis
