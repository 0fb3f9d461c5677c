// ClusterClient: commands to a Redis Cluster, routed by key slot (cache/README.md "Redis Cluster").
//
// One RedisConn per master (built on RedisConn's public API only), the SlotMap from CLUSTER SLOTS (asked
// of any connected node, seeds first), refreshed on every MOVED, CLUSTERDOWN or lost connection, and every
// `refresh_interval` while not ready(). A command goes to the master of its route key's slot. `MOVED`: the
// map takes the new owner and the command is resent there; `ASK`: ASKING and the command on the target,
// the map unchanged; at most `max_redirects` of either. Anything else (TRYAGAIN while a slot's keys are
// split between two nodes, CLUSTERDOWN, a timeout, a lost connection) is the caller's error: a lookup is a
// miss, a bump a failed bump. Replicas are never read.
//
// Thread affinity: the loop's thread. Lifetime: as RedisConn (the loop runs once more after destruction;
// callbacks of requests still in flight are dropped, never called). Never destroy it from inside one of
// its callbacks.
#pragma once

#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cache/cluster_keys.h"
#include "cache/redis/cluster_map.h"
#include "cache/redis/redis_conn.h"
#include "cache/redis/timer.h"

namespace pgs::cache::redis {

struct ClusterOptions {
  std::vector<NodeAddress> seeds;          // [cache] redis_nodes
  ConnOptions conn;                        // every node's options (timeouts, AUTH); host and port replaced
  milliseconds refresh_interval{200};      // CLUSTER SLOTS again this often while not ready()
  // ... and this often while ready(): a replica that joined (or came back after a failover) is then
  // waited for by bumps within this bound, not only after the next MOVED or lost connection.
  milliseconds ready_refresh_interval{2000};
  int max_redirects = 3;                   // MOVED/ASK followed per command
  size_t max_nodes = 64;                   // connections kept at most (seeds and masters ever named)
};

struct ClusterStats {
  uint64_t refreshes = 0;          // CLUSTER SLOTS replies taken as the map
  uint64_t refresh_failures = 0;   // refused, failed, or a reply that did not parse
  uint64_t moved = 0;
  uint64_t asks = 0;
  uint64_t unroutable = 0;         // slot without a master, or its master not connected
  uint64_t wait_short = 0;         // WAIT counted fewer replicas than asked
};

class ClusterClient {
 public:
  ClusterClient(uv_loop_t* loop, ClusterOptions options);
  ~ClusterClient();
  ClusterClient(const ClusterClient&) = delete;
  ClusterClient& operator=(const ClusterClient&) = delete;

  void start();  // connects to the seeds; the map loads once one answers
  // Every slot has a master and every one of those masters is connected.
  bool ready() const;

  // Sends `args` to the master of key_slot(route_key); `done` runs exactly once, later, with the final
  // reply (redirections followed; other error replies as they are). False when refused at once (no
  // connected master for the slot, or it is busy): `done` is then never called. `args` are copied.
  bool command(std::string_view route_key, std::span<const std::string_view> args, RedisConn::ReplyCallback done,
               milliseconds timeout = milliseconds{0});
  // The same, followed on the same connection (same round trip) by WAIT `replicas` <timeout>; after
  // `done`, `replicated(ok)` runs exactly once: ok when the reply given to `done` was not an error and
  // WAIT counted at least `replicas` replicas.
  bool command_replicated(std::string_view route_key, std::span<const std::string_view> args,
                          RedisConn::ReplyCallback done, int replicas, std::function<void(bool ok)> replicated,
                          milliseconds timeout = milliseconds{0});

  std::vector<const RedisConn*> connections() const;
  const ClusterStats& stats() const { return stats_; }
  const SlotMap& map() const { return map_; }
  const ClusterOptions& options() const { return options_; }

 private:
  struct Request;
  bool send(const std::shared_ptr<Request>& req, const NodeAddress& node, bool asking);
  void on_reply(const std::shared_ptr<Request>& req, uint64_t attempt, const redisReply* reply, ReplyError error);
  bool follow(const std::shared_ptr<Request>& req, const redisReply* reply);
  void deliver(const std::shared_ptr<Request>& req, const redisReply* reply, ReplyError error);
  void on_wait(const std::shared_ptr<Request>& req, uint64_t attempt, const redisReply* reply, ReplyError error);
  RedisConn* conn_for(const NodeAddress& node);  // creates (and starts) one when missing; null past max_nodes
  void map_changed();
  void want_refresh();
  void refresh_now();
  void on_tick();

  uv_loop_t* loop_;
  ClusterOptions options_;
  std::map<std::string, std::unique_ptr<RedisConn>> nodes_;  // by NodeAddress::text()
  SlotMap map_;
  bool map_loaded_ = false;
  bool complete_ = false;
  std::vector<RedisConn*> routed_;  // connections of the masters holding a slot
  bool refreshing_ = false;
  bool refresh_wanted_ = false;
  uint64_t last_refresh_ms_ = 0;  // uv_now() of the last CLUSTER SLOTS sent
  Timer tick_;
  ClusterStats stats_;
};

}  // namespace pgs::cache::redis
