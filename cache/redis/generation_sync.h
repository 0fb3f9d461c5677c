// GenerationSync: keeps one worker's GenerationMap in step with Redis, and bumps generations.
//
// Two connections of its own: a subscription on channel `<ns>gen` and a command connection. After
// every (re)connect of the subscription it waits for the SUBSCRIBE confirmation, then reads the whole
// hash `<ns>gens` (HGETALL) on the command connection: only then is it synced(). Subscribing first
// means no bump can fall between the read and the subscription. While not synced() the proxy must
// bypass the cache (policy: SessionFacts::generations_synced), because bumps may be missed.
//
// bump(tables): one Lua script per call (EVALSHA; EVAL once after Redis lost its scripts) sets each table's generation to max(old + 1, Redis TIME in
// microseconds), PUBLISHes "table generation" for each, and returns the new values, which are applied
// locally before done(true) runs. Time-based values (not HINCRBY from 0) mean that if the hash is ever
// lost (FLUSHALL, eviction under allkeys-*), new generations still never repeat an old one, so no
// entry stored under an old key is served again. The proxy calls bump() at COMMIT of a write (or
// after an autocommit write) and holds the client's ReadyForQuery until done() runs, so that the
// client's next read, through any sidecar, misses. A failed bump is retried (every retry_interval and
// on reconnect) until Redis confirms it; synced() is false meanwhile.
//
// Redis Cluster (cache/README.md "Redis Cluster"; the constructor with a ClusterClient): no connection
// of its own and no subscription (lookups never trust the local map). A bump runs the bump script on
// every partition of `names` (each followed by WAIT `wait_replicas`) and is confirmed only when every
// partition confirmed it; partition 0's new generations are applied to the local map. synced() is
// the cluster client's ready() and no failed bump left to retry.
//
// Thread affinity: one per worker, on that worker's loop. Lifetime: as RedisConn.
#pragma once

#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "cache/generations.h"
#include "cache/key.h"
#include "cache/redis/cluster_client.h"
#include "cache/redis/redis_conn.h"
#include "cache/redis/timer.h"

namespace pgs::cache::redis {

struct SyncStats {
  uint64_t messages = 0;       // pub/sub generation messages applied
  uint64_t bad_messages = 0;   // malformed payloads ignored
  uint64_t resyncs = 0;        // HGETALL loads completed
  uint64_t resync_failures = 0;
  uint64_t bumps = 0;          // tables bumped and confirmed by Redis
  uint64_t bump_failures = 0;  // bump() calls that failed (retried later)
  uint64_t bumps_with_lsn = 0; // bump() calls that carried a commit LSN
  // Result entries Redis evicted (maxmemory), by the class in their key: counted from keyspace
  // notifications (Redis needs notify-keyspace-events with "Ee"), when count_evictions is on.
  std::map<std::string, uint64_t, std::less<>> evictions;
};

class GenerationSync {
 public:
  // `count_evictions`: also subscribe to Redis's eviction events (one sidecar worker should: every
  // subscriber sees every eviction of the shared Redis).
  GenerationSync(uv_loop_t* loop, ConnOptions options, RedisNames names, GenerationMap& map,
                 bool count_evictions = false);
  // Redis Cluster: bumps through `cluster` (must outlive this object), `wait_replicas` per partition.
  GenerationSync(uv_loop_t* loop, ConnOptions options, RedisNames names, GenerationMap& map, ClusterClient* cluster,
                 int wait_replicas);
  void start();

  bool synced() const {
    return (cluster_ != nullptr ? cluster_->ready() : subscribed_ && loaded_) && retry_.empty() && retrying_ == 0;
  }
  void bump(std::vector<std::string> tables, std::function<void(bool ok)> done);
  // Also records `commit_lsn` (the primary's WAL position after the commit of these writes; nullopt
  // = unknown) as the tables' commit LSN for the new generations (lsn_hash_name() in generations.h):
  // replicas' answers read under them are stored only once a replica replayed that far.
  void bump(std::vector<std::string> tables, std::optional<uint64_t> commit_lsn, std::function<void(bool ok)> done);

  const SyncStats& stats() const { return stats_; }
  RedisConn& subscription() { return sub_; }
  RedisConn& commands() { return cmd_; }
  const RedisConn& subscription() const { return sub_; }
  const RedisConn& commands() const { return cmd_; }
  milliseconds retry_interval{200};

 private:
  void on_sub_connect();
  void on_push(const struct redisReply* reply);
  void load_all();
  void on_loaded(const struct redisReply* reply);
  enum class ScriptBy : uint8_t { digest, body };  // EVALSHA, or EVAL after Redis answered NOSCRIPT
  void send_bump(std::vector<std::string> tables, std::optional<uint64_t> commit_lsn, std::function<void(bool)> done,
                 ScriptBy by = ScriptBy::digest);
  void send_cluster_bump(const std::vector<std::string>& tables, std::optional<uint64_t> commit_lsn,
                         std::function<void(bool)> done);
  struct ClusterBump;
  void send_partition(const std::shared_ptr<ClusterBump>& bump, size_t partition, ScriptBy by);
  void finish_partition(const std::shared_ptr<ClusterBump>& bump, bool ok);
  void bump_failed(const std::vector<std::string>& tables);
  void retry_failed();

  GenerationMap& map_;
  RedisNames names_;
  std::string lsn_hash_;  // lsn_hash_name(names_.generations)
  RedisConn sub_;
  RedisConn cmd_;
  Timer retry_timer_;
  bool subscribed_ = false;
  bool loaded_ = false;
  bool loading_ = false;
  bool count_evictions_ = false;
  std::set<std::string> retry_;  // tables whose bump failed, to send again
  ClusterClient* cluster_ = nullptr;
  int wait_replicas_ = 0;
  int retrying_ = 0;  // retries of failed bumps in flight: not synced until they are confirmed
  SyncStats stats_;
};

}  // namespace pgs::cache::redis
