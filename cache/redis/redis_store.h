// RedisStore: the cache::Store on Redis. GET key; SET key value PX ttl. Every failure (not connected,
// too many requests in flight, timeout, error reply such as OOM when Redis is full) is a miss for the
// caller and a counter here. Thread affinity: one per worker, on that worker's loop.
#pragma once

#include <functional>
#include <optional>
#include <span>
#include <vector>

#include <uv.h>

#include "cache/redis/cluster_client.h"
#include "cache/redis/redis_conn.h"
#include "cache/store.h"

namespace pgs::cache::redis {

struct StoreStats {
  uint64_t hits = 0;
  uint64_t misses = 0;
  uint64_t get_errors = 0;   // timeouts, lost connections, error replies, wrong reply types
  uint64_t refused = 0;      // get()/set() refused at once (down or busy)
  uint64_t stores = 0;       // SET confirmed
  uint64_t store_errors = 0; // SET failed (e.g. OOM), timed out or lost
};

class RedisStore final : public Store {
 public:
  RedisStore(uv_loop_t* loop, ConnOptions options);
  // Redis Cluster: every command goes through `cluster` (routed by its key; it must outlive this
  // store), and the store's own connection is never started.
  RedisStore(uv_loop_t* loop, ConnOptions options, ClusterClient* cluster);
  void start() {
    if (cluster_ == nullptr) conn_.start();
  }

  bool get(const std::string& key, GetCallback done) override;
  // One round trip: the current generations (`fields` of the hash `generations_hash`; 0 when absent
  // or malformed), the value at `key`, and the commit LSNs of those generations (lsn_hash_name()).
  // The callback runs exactly once, later (hit / miss / error; `generations` is filled for hit and
  // miss). `replica_floor`: the WAL position a replica must have replayed for a result read under
  // these generations to be stored (replica_floor() in generations.h); nullopt = unknown (an error,
  // or a generation bumped without an LSN): store no replica's answer. False when refused, as get().
  using LookupCallback = std::function<void(GetStatus status, std::vector<uint64_t> generations, std::string value,
                                            std::optional<uint64_t> replica_floor)>;
  bool lookup(const std::string& generations_hash, std::span<const std::string> fields, const std::string& key,
              LookupCallback done);
  bool set(const std::string& key, std::string value, std::chrono::milliseconds ttl) override;

  bool connected() const { return cluster_ != nullptr ? cluster_->ready() : conn_.connected(); }
  const StoreStats& stats() const { return stats_; }
  const ConnStats& conn_stats() const { return conn_.stats(); }
  RedisConn& conn() { return conn_; }  // single Redis only
  const RedisConn& conn() const { return conn_; }

 private:
  bool send(std::string_view route_key, std::span<const std::string_view> args, RedisConn::ReplyCallback done);
  RedisConn conn_;
  ClusterClient* cluster_ = nullptr;
  StoreStats stats_;
};

}  // namespace pgs::cache::redis
