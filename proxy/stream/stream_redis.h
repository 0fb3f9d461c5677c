// StreamInvalidator's Redis (stream_invalidator.cc only): blocking calls with a timeout each, on one
// Redis (BlockingRedis) or, with [cache] redis_cluster, through a BlockingCluster (cache/README.md "Redis
// Cluster"). Thread affinity: the invalidator's own thread.
#pragma once

#include <hiredis/hiredis.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "cache/generations.h"
#include "cache/redis/blocking_cluster.h"
#include "cache/redis/blocking_redis.h"
#include "cache/redis/bump_script.h"
#include "proxy/core/log.h"
#include "proxy/stream/stream_invalidator.h"

namespace pgs::proxy {

// A blocking Redis connection (TLS and AUTH as [cache] says) with a timeout on every command; reconnects
// on the next use after an error. On a Redis Cluster every command goes through `cluster` (each node
// reached with the same TLS, AUTH and timeouts), routed by its first key.
struct StreamInvalidator::Redis {
  const StreamOptions& o;
  cache::redis::BlockingRedis conn;
  std::unique_ptr<cache::redis::BlockingCluster> cluster;

  explicit Redis(const StreamOptions& options) : o(options), conn(options.redis) {
    if (o.redis_cluster) cluster = std::make_unique<cache::redis::BlockingCluster>(cluster_options(o));
  }
  static cache::redis::BlockingClusterOptions cluster_options(const StreamOptions& o) {
    cache::redis::BlockingClusterOptions c;
    for (const std::string& n : o.redis_nodes) {
      if (auto a = cache::parse_node_address(n)) c.seeds.push_back(std::move(*a));
    }
    c.conn = o.redis;
    return c;
  }
  // The first key of the commands sent here: EVAL/EVALSHA <script> <numkeys> <key>..., else SET <key> ...
  static std::string_view route_key(const std::vector<std::string>& args) {
    bool script = !args.empty() && (args[0] == "EVAL" || args[0] == "EVALSHA");
    size_t at = script ? 3 : 1;
    return args.size() > at ? std::string_view(args[at]) : std::string_view();
  }
  bool connect() {
    if (cluster) {
      if (cluster->connect()) return true;
      if (logged_error != "cluster") LOG_WARN("cache: the invalidation stream cannot read the Redis Cluster's slot map");
      logged_error = "cluster";
      return false;
    }
    if (conn.connected()) return true;
    if (conn.connect()) return true;
    if (conn.last_error() != logged_error) {
      LOG_WARN("cache: the invalidation stream cannot reach Redis: " + conn.last_error());
    }
    logged_error = conn.last_error();
    return false;
  }
  using Reply = cache::redis::BlockingRedis::Reply;
  // nullopt: no reply (connection lost, timeout): the connection is dropped.
  std::optional<Reply> command(const std::vector<std::string>& args) {
    if (cluster) return cluster->command(route_key(args), args);
    std::vector<std::string_view> views(args.begin(), args.end());
    return conn.command(views);
  }
  std::string logged_error;  // the last failure logged (each new one is logged once)
  // Bumps `tables` (commit LSN `lsn`, 0 = unknown): true once Redis confirmed every new generation.
  // On a cluster: on every partition, each confirmed by WAIT (the same rules as a sidecar's bump).
  bool bump(const std::set<std::string>& tables, uint64_t lsn) {
    if (tables.empty()) return true;
    size_t partitions = std::max<size_t>(o.names.partitions(), 1);
    for (size_t p = 0; p < partitions; ++p) {
      const std::string& gens = o.names.generations_of(p);
      std::vector<std::string> args = {"EVALSHA", cache::redis::bump_script_sha1(), "3", gens,
                                       o.names.channel_of(p), cache::lsn_hash_name(gens),
                                       lsn != 0 ? std::to_string(lsn) : std::string()};
      args.insert(args.end(), tables.begin(), tables.end());
      bool replicated = true;
      auto send = [&] {
        return cluster ? cluster->command_replicated(gens, args, o.redis_wait_replicas, replicated) : command(args);
      };
      auto r = send();
      if (r && (*r)->type == REDIS_REPLY_ERROR && std::string_view((*r)->str, (*r)->len).starts_with("NOSCRIPT")) {
        args[0] = "EVAL";
        args[1] = std::string(cache::redis::bump_script());
        r = send();
      }
      if (!r || (*r)->type != REDIS_REPLY_ARRAY || (*r)->elements != tables.size() || !replicated) return false;
    }
    return true;
  }
};

}  // namespace pgs::proxy
