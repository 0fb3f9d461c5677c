// A worker: one thread, one libuv loop, its own SO_REUSEPORT listener, clients, servers and pools.
// Nothing mutable is shared with other workers; config snapshots and cancel requests arrive through a
// mutex-protected inbox and a uv_async wake-up.
#pragma once

#include <uv.h>

#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <span>
#include <tuple>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "cache/redis/worker_cache.h"
#include "proxy/auth/auth_query.h"
#include "proxy/core/secrets.h"
#include "proxy/core/stats.h"
#include "proxy/net/event_clock.h"
#include "proxy/net/resolver.h"
#include "proxy/net/send_ring.h"
#include "proxy/obs/digest.h"
#include "proxy/session/session_code.h"
#include "proxy/session/session_tracker.h"
#include "router/classifier_cache.h"
#include "router/route.h"

namespace pgs::proxy {

class ClientConn;
class Pool;
class Process;
class ServerConn;

class Worker {
 public:
  Worker(Process& process, int index);
  ~Worker();

  // ---- any thread ----
  bool start(std::string& error);  // binds the listener, starts the thread
  void join();
  void post_snapshot(std::shared_ptr<const Snapshot> snapshot);
  void post_cancel(int32_t pid, int32_t secret);
  void post_shutdown(bool immediate);
  void post_pause(bool paused);  // admin PAUSE / RESUME: new transactions wait for a server
  int index() const { return index_; }
  WorkerStats published_stats() const;  // the latest copy (any thread)

  // ---- loop thread ----
  uv_loop_t* loop() { return &loop_; }
  Process& process() { return process_; }
  const Snapshot& snapshot() const { return *snapshot_; }
  std::shared_ptr<const Snapshot> snapshot_ptr() const { return snapshot_; }
  WorkerMetrics& metrics() { return metrics_; }  // this thread only; others read published_stats()
  // The pool of (database, user) on the primary (target router::kPrimary = -1) or on replica `target`.
  // nullptr if not configured.
  Pool* pool_for(const std::string& database, const std::string& user, int target = -1);
  // Routing: true when replicas are configured and reads may go to them.
  bool routing_enabled() const;
  // Replica health as the router wants it (refreshed when the monitor publishes), with this worker's
  // outstanding transactions per replica.
  std::span<const router::ReplicaSnapshot> replica_view();
  // Time since the monitor measured replica_view() (0 before its first round). Call after replica_view().
  std::chrono::milliseconds replica_view_age() const;
  uint64_t next_route_counter() { return route_counter_++; }
  // A replica that just failed a login or died is skipped until the monitor's next round.
  void mark_replica_down(int replica);
  // Per-fingerprint statistics of a finished request (published to the process once a second).
  // `shape`: lexical_fingerprint(lexical_normalize(sql)) when the caller has it already (0: unknown).
  void record_digest(std::string_view sql, std::chrono::microseconds took, uint64_t rows, bool error,
                     bool cache_hit = false, uint64_t shape = 0);
  // The result cache of this worker once [cache] was enabled (at start or by a reload), or nullptr.
  // A reload that disables it keeps the object: lookups stop (check cache.enabled), bumps go on.
  cache::redis::WorkerCache* result_cache() { return result_cache_.get(); }
  ClientConn* client_by_id(uint64_t id) const {
    auto it = clients_.find(id);
    return it == clients_.end() ? nullptr : it->second;
  }
  void add_client(ClientConn* client);
  void remove_client(ClientConn* client);
  // A cancel key for `client`, registered for route_cancel. False (nothing registered) when the random
  // source failed: the login must fail rather than hand out a predictable key.
  [[nodiscard]] bool allocate_cancel_key(ClientConn* client, int32_t& pid, int32_t& secret);
  // Fire and forget: cancels a query on a server that is being closed anyway (its client left).
  void send_cancel(const ServerConn& server);
  // Cancels the query `server` runs for its client now; the server's pool holds it back from other
  // clients until Postgres has taken the cancel (Pool::cancel_forwarded). Works for replica servers.
  void forward_cancel(ServerConn& server);
  void route_cancel(int32_t pid, int32_t secret);  // from a CancelRequest on this worker's listener
  uint64_t next_server_id() { return next_server_id_++; }
  // Memoised statement classification (router); one per worker, no locks.
  std::shared_ptr<const router::Classification> classify(std::string_view sql) { return classifier_->classify(sql); }
  // Which relations run user code (session_code.h), this worker's copy of the catalog watcher's latest;
  // nullptr before the first read. Valid until the next call.
  const SessionCodeCatalog* session_code();
  uint64_t session_code_version() const { return session_code_version_; }  // of what session_code() gave
  // Whether a statement with no session-changing word runs code the proxy cannot see: `decide()` (which
  // classifies) once per statement shape — the lexically normalised text, literals folded — and per
  // catalog version; bounded. Texts too long to normalise whole are decided every time.
  // `shape` (optional) receives the statement's shape when it was computed (else it is left as it was).
  bool runs_session_code(std::string_view sql, const std::function<bool()>& decide, uint64_t* shape = nullptr);
  // auth_query (conf [proxy] auth_user): the verifiers of users not in [[users]]; see auth/auth_query.h.
  AuthQuery& auth_query() { return *auth_query_; }
  // The servers' host names (net/resolver.h), for server connections, cancels and auth_query.
  HostResolver& resolver() { return *resolver_; }
  // SCRAM pass-through: the keys the last SCRAM login of `user` on this worker proved (ClientKeys), with
  // which its pools log in to servers when the config has no password for it; null before any. Kept in
  // memory only, never logged; replaced by each such login (a changed password brings new keys).
  void note_client_keys(const std::string& user, const protocol::scram::ClientKeys& keys);
  const protocol::scram::ClientKeys* client_keys(const std::string& user) const;
  bool shutting_down() const { return shutting_down_; }
  bool paused() const { return paused_; }
  void maybe_finish_shutdown();
  void server_opened() { ++open_servers_; }
  void server_closed() { --open_servers_; maybe_finish_shutdown(); }
  size_t client_count() const { return clients_.size(); }

  void for_each_client(const std::function<void(ClientConn&)>& fn);

 private:
  static void async_cb(uv_async_t* h) noexcept;
  static void tick_cb(uv_timer_t* h) noexcept;
  static void accept_cb(uv_stream_t* s, int status) noexcept;
  void run();
  void drain_inbox();
  void apply_snapshot(std::shared_ptr<const Snapshot> snapshot);
  void deliver_cancel(int32_t pid, int32_t secret);
  void on_accept(int status);
  void tick();
  void publish_stats(bool with_rows);
  void begin_shutdown(bool immediate);
  void close_loop_handles();
  void release_memory_after_burst();  // see worker.cc

  Process& process_;
  int index_;
  uv_loop_t loop_{};
  uv_tcp_t listener_{};
  uv_async_t async_{};
  uv_timer_t tick_timer_{};
  std::thread thread_;
  bool listener_open_ = false;

  std::mutex inbox_mutex_;
  std::shared_ptr<const Snapshot> inbox_snapshot_;
  std::vector<std::pair<int32_t, int32_t>> inbox_cancels_;
  bool inbox_shutdown_ = false;
  bool inbox_immediate_ = false;
  bool inbox_open_ = false;
  int inbox_pause_ = -1;  // -1 none, 0 resume, 1 pause  // false before start and once the async handle is closed

  std::shared_ptr<const Snapshot> snapshot_;
  std::map<std::tuple<std::string, std::string, int>, std::unique_ptr<Pool>> pools_;
  std::vector<router::ReplicaSnapshot> replica_view_;
  std::vector<uint64_t> replica_down_until_gen_;  // skip replica i while the monitor's generation < this
  uint64_t replica_view_generation_ = UINT64_MAX;
  std::chrono::steady_clock::time_point replica_view_taken_at_{};  // the snapshot's taken_at (epoch: none)
  uint64_t route_counter_ = 0;
  std::unordered_map<uint64_t, ClientConn*> clients_;  // by id: callbacks that outlive a client look it up
  std::unordered_map<int32_t, ClientConn*> clients_by_pid_;
  size_t clients_peak_ = 0;  // most clients at once since memory was last given back
  int trim_ticks_left_ = 0;  // seconds of malloc_trim still due after a burst left
  std::unique_ptr<cache::redis::WorkerCache> result_cache_;
  std::unique_ptr<SendRing> send_ring_;      // the loop's sends ([proxy] io_uring); null: send(2)
  std::unique_ptr<HostResolver> resolver_;  // before auth_query_, which uses it
  std::unique_ptr<AuthQuery> auth_query_;
  std::unordered_map<std::string, protocol::scram::ClientKeys> client_keys_;  // by user (authenticated only)
  void start_result_cache();   // once [cache] is enabled
  void expire_cache_waits(Clock::time_point now);
  uint32_t next_cancel_counter_ = 1;
  uint64_t next_client_id_ = 1;
  uint64_t next_server_id_ = 1;
  size_t open_servers_ = 0;
  bool shutting_down_ = false;
  bool paused_ = false;
  bool handles_closed_ = false;
  Clock::time_point shutdown_deadline_{};
  WorkerMetrics metrics_;
  mutable std::mutex stats_mutex_;
  WorkerStats published_;
  unsigned ticks_ = 0;
  std::unique_ptr<router::ClassifierCache> classifier_;
  std::unique_ptr<obs::DigestTable> digests_;
  std::shared_ptr<const SessionCodeCatalog> session_code_;  // see session_code()
  uint64_t session_code_version_ = 0;
  std::unordered_map<uint64_t, bool> session_code_memo_;  // statement shape -> runs unseen code
  uint64_t session_code_memo_version_ = 0;                 // the catalog version the memo is for
  uint64_t logged_auth_failures_ = 0;  // Redis AUTH refusals already logged (publish_stats)
  uint64_t logged_tls_failures_ = 0;   // Redis TLS handshake failures already logged (publish_stats)
};

}  // namespace pgs::proxy
