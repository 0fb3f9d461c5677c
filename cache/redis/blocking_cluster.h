// BlockingCluster: a blocking Redis Cluster client, for a thread of its own (the invalidation stream's
// leader: proxy/stream/), one BlockingRedis per node (TLS, AUTH and deadlines as [cache] says). The same rules as ClusterClient (cache/README.md "Redis
// Cluster"): one connection per master, the slot map from CLUSTER SLOTS, MOVED (the map takes it, resent)
// and ASK (ASKING, resent) followed at most `max_redirects` times, replicas never read; a lost connection
// or a timeout is an error and drops that connection and the map (loaded again on the next command).
// Every call is bounded by the connection options' timeouts per round trip. Not thread-safe: one thread owns it.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cache/cluster_keys.h"
#include "cache/redis/blocking_redis.h"
#include "cache/redis/cluster_map.h"

namespace pgs::cache::redis {

struct BlockingClusterOptions {
  std::vector<NodeAddress> seeds;
  ConnOptions conn;  // every node's TLS, AUTH and timeouts (host and port replaced)
  int max_redirects = 3;
};

class BlockingCluster {
 public:
  using Reply = BlockingRedis::Reply;

  explicit BlockingCluster(BlockingClusterOptions options);
  ~BlockingCluster();
  BlockingCluster(const BlockingCluster&) = delete;
  BlockingCluster& operator=(const BlockingCluster&) = delete;

  // Loads the slot map when it has none; false when no node answered CLUSTER SLOTS with a full map.
  bool connect();
  // `args` to the master of key_slot(route_key). nullopt: no reply (unroutable, lost, timeout).
  std::optional<Reply> command(std::string_view route_key, const std::vector<std::string>& args);
  // The same, then WAIT for min(`replicas`, replicas CLUSTER SLOTS lists for that master) on the node that
  // answered. `replicated`: WAIT counted them (true when none was asked).
  std::optional<Reply> command_replicated(std::string_view route_key, const std::vector<std::string>& args,
                                          int replicas, bool& replicated);
  void drop();  // closes every connection and forgets the map
  // Why the last command() or connect() got no reply: the node connection's error (the system, OpenSSL,
  // Redis's AUTH refusal), or that no node gave a full slot map or owned the slot.
  const std::string& last_error() const { return last_error_; }

 private:
  BlockingRedis* node(const NodeAddress& at);  // connected (TLS, AUTH) or null
  std::optional<Reply> run(BlockingRedis* conn, const std::vector<std::string>& args);
  bool refresh();
  std::optional<Reply> route(std::string_view route_key, const std::vector<std::string>& args, NodeAddress& answered);

  BlockingClusterOptions options_;
  std::map<std::string, std::unique_ptr<BlockingRedis>> nodes_;  // by NodeAddress::text()
  SlotMap map_;
  bool loaded_ = false;
  std::string last_error_;
};

}  // namespace pgs::cache::redis
