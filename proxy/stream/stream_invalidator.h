// StreamInvalidator: cache invalidation from the primary's own write stream (issue 12, item 1).
//
// Every sidecar runs one. At most one of them leads at a time: it holds a lease in Redis
// (<ns>stream:leader, SET NX PX, renewed every quarter of max_delay, taken over by another sidecar
// within max_delay when the leader dies). The leader reads one logical replication slot per served
// database (plugin test_decoding, created when missing) and, for every committed transaction, bumps the
// generation of each table it wrote — whoever wrote it: through a sidecar, a cron job, psql straight to
// the primary. The bump is the same Lua script as a sidecar's own bump at COMMIT (bump_script.h), so it
// is published to every sidecar. Only once Redis confirmed it does the leader report the slot's flush
// position: a leader that dies in between leaves the transaction to be decoded again by the next one.
// DDL is not in the stream: once a round the leader also reads a sum over the catalog (stream_catalog.h:
// relations' pg_class, pg_attribute and pg_rewrite rows, user functions' pg_proc rows) and, when it
// moved, bumps each relation dropped, created again, rewritten, altered or redefined (and the views over
// it), or every table when a user function changed. A decoded write also bumps the views reading what
// it wrote and a partition's parent (the edges read with the catalog). Opening a slot (taking the lease,
// a reconnect, a slot created afresh after Postgres invalidated it) bumps every table once: what
// happened while nobody watched is unknown.
//
// live(): until when this sidecar may serve cached results. The leader refreshes a heartbeat key
// (<ns>stream:beat, until max_delay after the renewal was issued) each round while it is no more than
// max_lag_bytes behind the primary's WAL (pg_current_wal_lsn(), read with the catalog sum, or what the
// walsender sent if later); every other sidecar checks each round that the key holds the token of the
// lease now held, and reads how long it has left. Either is live until that heartbeat expires and no
// longer (cache::LiveUntil), however late its next round comes: a write made while the leader is dead
// is served stale for at most max_delay. A renewal Redis runs late (after the leader gave up on it) does
// nothing (stream_lease.h). No heartbeat (no leader, a leader stuck or too far behind, Redis
// unreachable) means every lookup is a miss (cache::redis::WorkerCache::ready()).
//
// Threads: its own thread makes blocking libpq and Redis calls (cache/redis/blocking_redis.h; each with a
// timeout); live() and
// stats() from any thread; start()/stop() from the owner.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cache/key.h"
#include "cache/live_until.h"
#include "cache/redis/redis_conn.h"
#include "proxy/stream/stream_lease.h"

namespace pgs::proxy {

struct StreamTarget {  // one served database on the primary
  std::string host;
  int port = 5432;
  std::string dbname;
  std::string user;      // a role with REPLICATION
  std::string password;
  std::string slot;      // the slot's name
  std::string sslmode = "disable";  // the primary's server_tls (conf::libpq_tls)
  std::string sslrootcert;          // its CA file; "" = none
};

struct StreamOptions {
  std::vector<StreamTarget> targets;
  // Redis: host, port, user, password, TLS; connect_timeout bounds connect + TLS + AUTH, timeout each command.
  cache::redis::ConnOptions redis;
  // Redis Cluster ([cache] redis_cluster): seeds "ip:port" (each reached with `redis`'s TLS, AUTH and
  // timeouts); `names` then has partitions; each bump runs on every partition followed by WAIT for
  // `redis_wait_replicas` (cache/README.md "Redis Cluster").
  bool redis_cluster = false;
  std::vector<std::string> redis_nodes;
  int redis_wait_replicas = 1;
  cache::RedisNames names;
  std::string sidecar_id;  // this process, unique in the fleet (the lease's value, with a count)
  std::chrono::milliseconds max_delay{2000};
  uint64_t max_lag_bytes = 1ull << 30;
};

struct StreamStats {
  bool leader = false;
  bool live = false;
  uint64_t lag_bytes = 0;       // the leader's: the primary's WAL (or the walsender's, if later) minus what
                                // was confirmed
  uint64_t transactions = 0;    // committed transactions decoded (leader)
  uint64_t bumped_tables = 0;   // tables bumped for them (leader)
  uint64_t leaderships = 0;     // leases taken
  uint64_t errors = 0;          // lost connections, refused commands
};

// The slot name for `prefix` and a database: [a-z0-9_] only (Postgres's rule), at most 63 bytes.
std::string stream_slot_name(std::string_view prefix, std::string_view dbname);

// How long the leader lets writes gather after a round that had some, before it reads them: one wakeup,
// one Redis bump and one confirmation for all of them. A twentieth of max_delay, 5 ms at least and 50 ms
// at most: a write made behind the sidecars' backs is bumped within that (plus the walsender's and
// Redis's latency), well inside max_delay, whatever max_delay is. A lone write is read at once. Measured
// (tpcb-like, 64 clients, ~1,000 commits/s, every commit decoded): the leader's thread spent 22 µs per
// transaction with a fixed 10 ms window and 9-10 µs with 50 ms; most of it is per round (waking up, the
// Redis round trip, the confirmation), not per decoded change.
std::chrono::milliseconds stream_batch_window(std::chrono::milliseconds max_delay);

class StreamInvalidator {
 public:
  explicit StreamInvalidator(StreamOptions options);
  ~StreamInvalidator();  // stop()
  StreamInvalidator(const StreamInvalidator&) = delete;
  StreamInvalidator& operator=(const StreamInvalidator&) = delete;

  void start();
  void stop() noexcept;
  const cache::LiveUntil& live() const { return live_; }
  StreamStats stats() const;

 private:
  struct Redis;
  struct Slot;
  using Slots = std::vector<std::unique_ptr<Slot>>;
  // What one leading round did over every slot (serve_slots).
  struct RoundResult {
    bool all_open = true;    // no slot was closed this round
    bool bumped_all = true;  // false: Redis refused a bump (the round ended there)
    bool had_data = false;   // some slot had writes to bump
    bool drained = true;     // every slot read all its socket held (Slot::read)
    uint64_t lag = 0;        // bytes, the slot furthest behind
  };
  void run();
  bool wait(std::chrono::milliseconds d);  // false once stopping
  void lead(Redis& redis, StreamLease& lease, const std::string& token);  // token: this leadership's lease value
  bool open_slots(Slots& slots);
  RoundResult serve_slots(Slots& slots, Redis& redis, bool round_due);
  bool renew(const StreamLease::Command& redis, StreamLease& lease, const std::string& token, bool all_open,
             uint64_t lag);
  void count_error();
  // Live until `until` (nullopt: not live from now on); logs when that claim changes.
  void set_live(std::optional<std::chrono::steady_clock::time_point> until);

  StreamOptions options_;
  cache::LiveUntil live_;
  bool claimed_live_ = false;  // the last set_live()'s claim (for its log lines); the thread's own
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  StreamStats stats_;  // guarded by mutex_
  std::thread thread_;
};

}  // namespace pgs::proxy
