// ResultCacheSession: one client's side of the result cache (issue 5, issue 12; issue 11 item 2).
//
// Reads: a request that starts a transaction (no server bound) and is one cacheable unit
// (request/cache_request.h) whose statement the policy accepts is looked up in Redis first. A hit is
// answered from the entry (write_hit: [ParseComplete] [BindComplete] then the stored messages and
// ReadyForQuery); a miss goes to a server while its reply is captured and, at its ReadyForQuery, stored
// if it may be (complete, no error, and no stale store: a replica's answer only once it had replayed past
// the floor the lookup read). Concurrent misses on one key wait for the first (the leader), which hands
// its result, or its failure, to them when it ends or leaves.
//
// Writes: each statement sent to a server adds the tables it writes (memoised per worker); when a reply
// shows the transaction committed (COMMIT, or an autocommit statement without error) their generations
// are bumped and the client's output is held from that ReadyForQuery until Redis confirmed. A committed
// binding whose LSN probe follows bumps its tables once, with the commit LSN the probe reads.
//
// It does no I/O and knows no stream, pool or server: the connection hands it events (a request, the
// lookup's answer, a hit written or not, a leader's result, each reply, a statement sent, the LSN probe
// started or answered, a bump confirmed, the server lost, the client gone) with the facts it needs as
// plain values, and acts on what it returns (look up or forward, serve these bytes, hold or release the
// output, resume the input). Redis and the worker's shared state are reached through `CacheSources`,
// whose asynchronous answers come back as events. Thread affinity: the owning connection's.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cache/capture.h"
#include "cache/dependencies.h"
#include "cache/inflight.h"
#include "cache/lookup.h"
#include "cache/policy.h"
#include "cache/store.h"
#include "conf/config.h"
#include "protocol/frame.h"
#include "proxy/cache_session/cache_stats.h"
#include "proxy/request/buffered_request.h"
#include "proxy/request/cache_request.h"
#include "proxy/session/client_statements.h"
#include "proxy/session/session_params.h"
#include "router/classification.h"

namespace pgs::proxy {

// The worker's cache (Redis) and what the worker knows, a seam for tests. None of the Redis calls is
// made while !available().
class CacheSources {
 public:
  virtual CacheStats& stats() = 0;
  virtual std::shared_ptr<const router::Classification> classify(std::string_view sql) = 0;
  virtual const void* snapshot_id() = 0;                    // the config snapshot in force (its address)
  virtual std::shared_ptr<const void> hold_snapshot() = 0;  // ... held by a memo
  virtual uint64_t catalog_version() = 0;                   // changes whenever row_security() may
  virtual const cache::RowSecurityFacts* row_security() = 0;  // null before the catalog was read
  virtual std::shared_ptr<const cache::WriteDependencies> write_dependencies() = 0;  // may be null
  virtual void refresh_write_dependencies() = 0;  // a DDL committed: re-read them soon
  // A replica's answer was not stored because the monitor had not yet seen it replay far enough: ask
  // for fresher replica positions (HealthMonitor::want_fresh).
  virtual void want_fresh_replica_positions() = 0;

  virtual bool available() = 0;  // the worker has a result cache (Redis connections)
  virtual bool ready() = 0;      // its generation map is in sync (else every lookup bypasses)
  virtual const cache::RedisNames& names() = 0;
  // Reads the generations and the value together; false when it could not be sent. The answer comes
  // back as ResultCacheSession::on_lookup(seq, ...), never from inside this call.
  virtual bool lookup(const cache::Lookup& lookup, uint64_t seq) = 0;
  virtual bool store(const std::string& key, std::string value, std::chrono::milliseconds ttl) = 0;
  virtual cache::Inflight::Role join(const cache::CacheKey& key) = 0;  // a miss on `key` by this client
  // This client's lead on `key` ended: each waiter gets `messages` (null: run your own query) as its
  // on_wait_over(), from inside this call.
  virtual void finish_lead(const cache::CacheKey& key, const std::string* messages) = 0;
  virtual void leave_wait(const cache::CacheKey& key) = 0;  // this client stops waiting on `key`
  // Bumps the generations of `tables` (with the commit LSN when known). `confirm`: the connection hears
  // ResultCacheSession::on_bump_done() once Redis confirmed (or gave up), possibly from inside this call;
  // the one call made while !available() is such a bump, answered at once.
  virtual void bump(std::vector<std::string> tables, std::optional<uint64_t> commit_lsn, bool confirm) = 0;
  // The tables a statement classified as `c` invalidates in this session (the per-worker memo,
  // cache/write_tables_memo.h): valid until the next call.
  virtual const std::vector<std::string>& write_tables(const std::shared_ptr<const router::Classification>& c,
                                                      const cache::SessionFacts& facts) = 0;

 protected:
  ~CacheSources() = default;
};

// The client as the key sees it. Views: valid for the call.
struct CacheClient {
  std::string_view user;           // the login role (a SET ROLE in gucs overrides it)
  std::string_view database;       // as the client named it (in the key)
  std::string_view server_dbname;  // as the catalog names it (row-level security); "" when unknown
  const GucMap* gucs = nullptr;    // the client's settings
  bool may_have_temp_tables = false;
};

enum class CacheStep : uint8_t {
  ignore,   // not for this session (a stale answer, another step): nothing to do
  pending,  // a Redis answer or a leader resumes the client: keep its input paused
  serve,    // write the hit (write_hit) and report it (on_served)
  served,   // answered from the cache: carry on with what the client sent next
  forward,  // send the request to a server (it was looked up: it is not looked up again)
};

// What a bound server's reply means for the client's output and Redis.
struct CacheReplyAction {
  bool hold_output = false;  // hold the client's output from this reply on (until on_bump_done releases)
  // Tables to bump now, with ResultCacheSession::send_bump() (after holding the output).
  std::optional<std::vector<std::string>> bump;
};

// A bump confirmed (on_bump_done).
enum class BumpDone : uint8_t {
  none,     // other bumps still hold the output
  release,  // release the output; the server's reply processing carries on and flushes itself
  resume,   // release the output, flush, and resume the client's input
};

class ResultCacheSession {
 public:
  // ---- reads ----
  // The worker's cache is on (a Redis connection and [cache] enabled): replies are observed.
  void set_observing(bool on) { observe_ = on; }
  bool observes_replies() const { return observe_; }
  // A request that starts a transaction: true when it was looked up already (its answer was a miss):
  // it goes to a server now. Read once per request.
  bool take_looked_up() {
    bool was = looked_up_;
    looked_up_ = false;
    return was;
  }
  // Looks `request` up (pending: on_lookup resumes) or not (forward). `started` is when it arrived.
  CacheStep begin_lookup(const BufferedRequest& request, const ClientStatements& statements, const CacheClient& client,
                         const conf::Config& config, std::chrono::steady_clock::time_point started,
                         CacheSources& sources);
  // Redis answered lookup `seq`. serve: `*messages` views the stored reply inside `value`.
  CacheStep on_lookup(uint64_t seq, cache::GetStatus status, const std::vector<uint64_t>& generations,
                      const std::string& value, std::optional<uint64_t> replica_floor, const conf::Config& config,
                      CacheSources& sources, std::string_view* messages);
  // The leader this client waited for ended: serve its `messages`, or forward (null: it failed).
  CacheStep on_wait_over(const std::string* messages, CacheSources& sources);
  // The hit the last serve asked for was written (`written`), or could not be (the request changed).
  CacheStep on_served(bool written, const conf::Config& config, CacheSources& sources);
  // Writes the reply of a hit for the request at the head of `buffered` into `out`: [ParseComplete]
  // [BindComplete], `messages`, ReadyForQuery 'I'. Returns the request's bytes (to consume) and sets
  // `*sql` to its statement, or 0 when the head is not the request that was looked up (nothing written).
  // A named Parse is remembered in `statements`, as the server would have prepared it.
  size_t write_hit(const BufferedRequest& buffered, std::string_view messages, ClientStatements& statements,
                   std::string& out, std::string* sql) const;
  std::chrono::steady_clock::time_point lookup_started() const { return started_; }

  // ---- a miss on its server ----
  bool capturing() const { return step_ == Step::capturing; }
  // A server was bound to run the captured miss: the replay LSN the monitor last saw on its replica
  // (0: unknown), or nullopt for the primary.
  void note_read_target(std::optional<uint64_t> replica_replay) {
    if (capturing()) read_replay_ = replica_replay;
  }
  // A reply appended to the client's outbox. `lsn_probe_follows`: read at a ReadyForQuery only; the
  // primary's WAL position will be read right after it (a transaction pool's primary server, at its
  // release point or with the probe already sent behind the request, routing on).
  CacheReplyAction on_reply(char type, protocol::Bytes whole, bool lsn_probe_follows, const conf::Config& config,
                            CacheSources& sources);
  // The reply has a part the capture cannot see (a streamed row, a notice, a setting, the server lost).
  void abort_capture(CacheSources& sources);

  // ---- writes ----
  // A statement sent to a server: notes the tables it writes, to bump at commit. Per Query: no
  // allocation of its own (the per-worker memo decides which tables).
  void note_writes(std::string_view sql, const CacheClient& client, CacheSources& sources);
  void note_unknown_writes();  // a statement the proxy cannot read: any table, perhaps DDL
  // The unnamed statement's text, whose writes are noted when a Bind runs it (null: forget it).
  void set_unnamed(std::shared_ptr<const std::string> sql) {
    if (observe_ || sql == nullptr) unnamed_sql_ = std::move(sql);
  }
  void note_unnamed_bound(const CacheClient& client, CacheSources& sources) {
    if (unnamed_sql_) note_writes(*unnamed_sql_, client, sources);
  }
  bool writes_pending() const { return !writes_.empty(); }  // the open transaction wrote
  // Committed writes whose bump waits for the primary's WAL position (the LSN probe).
  bool commit_bump_waits_for_lsn() const { return !commit_tables_.empty(); }
  // The LSN probe was started; `for_cache`: the commit bump waits for its row.
  void on_lsn_probe_started(bool for_cache) { lsn_probe_sent_ = for_cache; }
  // The probe this session waited for answered (`lsn`), or ended without a row (nullopt): bump.
  void on_lsn_probe_done(std::optional<uint64_t> lsn, CacheSources& sources);
  // Bumps the binding's committed tables now (without the LSN when nullopt): no probe will run.
  void send_commit_bump(std::optional<uint64_t> commit_lsn, CacheSources& sources);
  void send_bump(std::vector<std::string> tables, std::optional<uint64_t> commit_lsn, CacheSources& sources);
  BumpDone on_bump_done();

  // ---- the client's input and its end ----
  // Input waits while the cache answers and while a commit's bump is unconfirmed.
  bool holds_input() const { return step_ == Step::lookup || step_ == Step::waiting || pending_bumps_ > 0; }
  bool busy() const { return step_ != Step::none; }
  bool bumps_pending() const { return pending_bumps_ > 0; }
  // The server died: a capture ends, committed tables are bumped without the LSN and the open
  // transaction's writes too (a COMMIT may have been in flight).
  void on_server_lost(CacheSources& sources);
  void leave(CacheSources& sources);  // the client goes: leave a wait, hand a lead on, bump what it wrote

 private:
  enum class Step : uint8_t { none, lookup, waiting, capturing };
  cache::SessionFacts facts_of(const CacheClient& client) const;
  bool bypass_memo_applies(const router::Classification* c, const cache::SessionFacts& facts,
                           uint64_t catalog_version, CacheSources& sources) const;
  CacheStep after_miss(const conf::Config& config, CacheSources& sources);
  void end_capture(char status, CacheSources& sources);
  void finish_lead(const std::string* messages, CacheSources& sources);
  bool replica_read_storable() const;
  CacheReplyAction on_ready_for_query(char status, bool lsn_probe_follows, const conf::Config& config,
                                      CacheSources& sources);
  void bump_without_answer(std::vector<std::string>& tables, CacheSources& sources);

  bool observe_ = false;    // the worker's cache is on
  bool looked_up_ = false;  // the buffered request was looked up already: send it to a server
  Step step_ = Step::none;
  bool serving_after_wait_ = false;  // the pending serve is a leader's result, not a hit
  bool leader_ = false;              // this client fetches for the waiters on lookup_'s key
  uint64_t seq_ = 0;                 // tells a stale Redis answer from the current lookup
  cache::ReplyShape shape_ = cache::ReplyShape::simple;        // of the request
  cache::ReplyShape entry_shape_ = cache::ReplyShape::simple;  // of its entry (keyed_statement())
  cache::Lookup lookup_;
  struct BypassMemo {  // the last bypass decision, reused while nothing it depends on changed
    std::shared_ptr<const router::Classification> classification;
    std::shared_ptr<const void> snapshot;  // held: a reloaded config is never mistaken for this one
    std::string role, search_path;
    bool temp_tables = false;
    uint64_t catalog_version = 0;  // when decided
    cache::BypassReason reason = cache::BypassReason::disabled;
  } bypass_memo_;
  uint64_t fingerprint_ = 0;    // of the generations read with the lookup (stored with a miss)
  cache::CacheKey inflight_;    // the Inflight key of this miss (slot and generations)
  std::chrono::steady_clock::time_point started_;
  std::optional<cache::ResultCapture> capture_;
  bool capture_started_ = false;  // past ParseComplete/BindComplete
  // Commit tracking: tables written in the open transaction (sorted, unique), bumped at COMMIT.
  std::vector<std::string> writes_;
  std::shared_ptr<const std::string> unnamed_sql_;  // the unnamed statement's text (writes are noted at Bind)
  bool reply_saw_commit_ = false, reply_saw_error_ = false, reply_last_rollback_ = false;
  bool ddl_ = false;       // the open transaction ran DDL: re-read the write dependencies after its commit
  int pending_bumps_ = 0;  // the output is held until Redis confirmed these
  // Committed tables of this binding, bumped with the commit LSN once the LSN probe answered (one
  // pending_bumps_ hold for all of them).
  std::vector<std::string> commit_tables_;
  bool lsn_probe_sent_ = false;  // the LSN probe running was started for commit_tables_
  // No stale store (cache/README.md): the LSN a replica must have replayed for this miss's result to be
  // stored (nullopt: unknown), and the replay LSN last seen on the replica that runs it (nullopt: the
  // primary runs it).
  std::optional<uint64_t> replica_floor_;
  std::optional<uint64_t> read_replay_;
  bool bumping_now_ = false;  // inside CacheSources::bump() (its answer may come at once)
};

}  // namespace pgs::proxy
