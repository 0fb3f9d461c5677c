// WorkerCache: the result-cache objects one proxy worker owns, built from the [cache] config, on the
// worker's loop: the store (GET/SET), the generation sync (subscription + bumps), the generation map
// the stampede table and the memo of what write statements invalidate. Thread affinity and lifetime: as RedisConn (the loop must run once more
// after destruction).
#pragma once

#include <uv.h>

#include <atomic>
#include <memory>
#include <vector>

#include "cache/generations.h"
#include "cache/inflight.h"
#include "cache/key.h"
#include "cache/live_until.h"
#include "cache/redis/generation_sync.h"
#include "cache/redis/redis_store.h"
#include "cache/write_tables_memo.h"
#include "conf/config.h"

namespace pgs::cache::redis {

// Connection options from [cache]: redis_host, redis_port, redis_timeout, redis_user, redis_password and
// redis_tls*; the rest keep their defaults.
ConnOptions conn_options(const conf::CacheConfig& config);
// [cache] redis_cluster = true: the cluster client's options (seeds from redis_nodes; nodes that do not
// parse are left out, the config check refuses them first).
ClusterOptions cluster_options(const conf::CacheConfig& config);

class WorkerCache {
 public:
  // `count_evictions`: this worker counts Redis's evictions of result entries (one worker should).
  WorkerCache(uv_loop_t* loop, const conf::CacheConfig& config, Inflight::Options inflight = {},
              bool count_evictions = false);
  void start();  // connects (and keeps reconnecting); nothing is served until ready()

  // SessionFacts::generations_synced: the generation map is current (else bypass the cache): in step
  // with Redis, and, with an invalidation stream, that stream proven live (writes made behind every
  // sidecar's back are bumped).
  bool ready() const {
    return sync_.synced() && (cluster_ == nullptr || cluster_->ready()) &&
           (stream_live_ == nullptr || stream_live_->live());
  }
  // The invalidation stream's liveness (null: none configured). Must outlive this object.
  void require_stream(const LiveUntil* live) { stream_live_ = live; }
  RedisStore& store() { return store_; }
  GenerationSync& sync() { return sync_; }
  GenerationMap& generations() { return generations_; }
  Inflight& inflight() { return inflight_; }
  const RedisNames& names() const { return names_; }
  // Redis Cluster (null for a single Redis): the store's client, and the bumps' (connections of their own,
  // as on one Redis: a bump's WAIT blocks its connection until the replicas answered, and no lookup
  // may queue behind it).
  ClusterClient* cluster() { return cluster_.get(); }
  ClusterClient* sync_cluster() { return sync_cluster_.get(); }
  // Every Redis connection this worker's cache holds (counters, AUTH refusals).
  std::vector<const RedisConn*> connections() const;
  WriteTablesMemo& write_tables() { return write_tables_; }

 private:
  RedisNames names_;
  std::unique_ptr<ClusterClient> cluster_;       // before store_ and sync_: they use them
  std::unique_ptr<ClusterClient> sync_cluster_;
  GenerationMap generations_;
  Inflight inflight_;
  RedisStore store_;
  GenerationSync sync_;
  WriteTablesMemo write_tables_;
  const LiveUntil* stream_live_ = nullptr;
};

}  // namespace pgs::cache::redis
