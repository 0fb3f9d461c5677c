// ClientConn, part 5: the result cache (issue 5; cache/README.md).
//
// Reads: a client with no server bound (outside a transaction) whose first buffered request is one
// cacheable unit (cache_request.h) and whose statement the policy accepts is looked up in Redis before
// any server is asked for. A hit is answered here; a miss goes to a server as usual while its reply is
// captured (observe_reply) and stored. Concurrent misses on one key wait for the first (Inflight).
//
// Writes: every statement sent to a server adds the tables it writes to cache_writes_. When a reply
// shows the transaction committed (COMMIT, or an autocommit statement without error), the generations
// of those tables are bumped in Redis and the client's ReadyForQuery, with everything after it, is held
// (an output barrier) until Redis confirmed: the client's next read, through any sidecar, misses.
// A rolled-back transaction bumps nothing.
#include <array>

#include "cache/dependencies.h"
#include "cache/entry.h"
#include "protocol/writer.h"
#include "proxy/client/client_conn.h"
#include "proxy/core/log.h"
#include "proxy/core/process.h"
#include "proxy/core/worker.h"
#include "proxy/pool/pool.h"

namespace pgs::proxy {

namespace {

constexpr size_t kMaxPendingWrites = 256;  // tables noted in one transaction; beyond: bump "*"

std::string_view command_tag(protocol::Bytes whole) {
  if (whole.size() <= 5) return {};
  std::string_view body(reinterpret_cast<const char*>(whole.data()) + 5, whole.size() - 5);
  if (!body.empty() && body.back() == '\0') body.remove_suffix(1);
  return body;
}

uint64_t unix_millis() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}

}  // namespace

cache::SessionFacts ClientConn::cache_facts() const {
  cache::SessionFacts f;
  f.in_transaction = false;  // lookups happen with no server bound: outside any transaction
  f.role = request_.user;
  if (const std::string* role = request_.gucs.get("role"); role != nullptr && *role != "none" && !role->empty()) {
    f.role = *role;
  }
  if (const std::string* path = request_.gucs.get("search_path")) f.search_path = *path;
  f.may_have_temp_tables = session_state_.pinned_for(PinReason::temp_table);
  return f;
}

// Row-level security facts for decide(): this worker's copy of the catalog (null before the first read)
// and the client's database as the catalog names it.
void ClientConn::add_row_security_facts(cache::SessionFacts& f) {
  f.row_security = worker_.session_code();
  if (primary_pool_ != nullptr) f.database = primary_pool_->target().server_dbname;
}

bool ClientConn::bypass_memo_applies(const router::Classification* c, const cache::SessionFacts& facts,
                                     uint64_t catalog_version) const {
  return bypass_memo_.classification.get() == c && bypass_memo_.snapshot.get() == &worker_.snapshot() &&
         facts.generations_synced && bypass_memo_.catalog_version == catalog_version &&
         bypass_memo_.role == facts.role && bypass_memo_.search_path == facts.search_path &&
         bypass_memo_.temp_tables == facts.may_have_temp_tables;
}

// The settings a result may depend on. Every custom setting (a dotted name: app.tenant) the session
// holds is part of the key: a view, a function or a default may read it with current_setting().
std::vector<cache::Setting> ClientConn::result_settings() const {
  std::vector<cache::Setting> settings;
  for (std::string_view name : cache::kResultSettings) {
    if (const std::string* v = request_.gucs.get(name)) settings.emplace_back(name, *v);
  }
  for (const auto& [name, value] : request_.gucs.items()) {
    if (name.find('.') != std::string::npos) settings.emplace_back(name, value);
  }
  return settings;
}

ClientConn::CacheAttempt ClientConn::try_cache(const BufferedRequest& request) {
  cache::redis::WorkerCache* wc = worker_.result_cache();
  const conf::Config& config = *worker_.snapshot().config;
  cache_observe_ = wc != nullptr && config.cache.enabled;
  if (!cache_observe_ || closing()) return CacheAttempt::forward;
  auto req = scan_cacheable_request(request);
  if (!req) return CacheAttempt::forward;
  std::string_view sql = req->sql;
  const PreparedStatement* named = nullptr;
  if (!req->parse && req->shape != cache::ReplyShape::simple) {
    named = statements_.find(req->bind.statement);
    if (named == nullptr) return CacheAttempt::forward;  // the unnamed statement of an earlier batch, or unknown
    sql = named->sql;
  } else if (req->parse && statements_.find(req->parse->name) != nullptr) {
    return CacheAttempt::forward;  // a duplicate name: the server says 42P05
  }
  auto& stats = worker_.metrics().cache;
  auto c = worker_.classify(sql);
  cache::SessionFacts facts = cache_facts();
  facts.generations_synced = wc->ready();
  uint64_t catalog_version = worker_.process().catalog_version();  // read first: never newer than the facts
  add_row_security_facts(facts);
  // Clients repeat their statements: a bypass decided for this very classification, session, config
  // and catalog is not decided again (decide() resolves table names, which allocates). The catalog
  // decides row-level security and which schema an unqualified name is in.
  if (bypass_memo_applies(c.get(), facts, catalog_version)) {
    ++stats.bypass[static_cast<size_t>(bypass_memo_.reason)];
    return CacheAttempt::forward;
  }
  cache::CacheDecision d = cache::decide(*c, facts, config.cache);
  if (!d.cacheable) {
    ++stats.bypass[static_cast<size_t>(d.reason)];
    if (d.reason != cache::BypassReason::generations_unsynced && d.reason != cache::BypassReason::disabled) {
      bypass_memo_ = BypassMemo{c,
                                worker_.snapshot_ptr(),
                                std::string(facts.role),
                                std::string(facts.search_path),
                                facts.may_have_temp_tables,
                                catalog_version,
                                d.reason};
    }
    return CacheAttempt::forward;
  }
  // The statement, never its name: the unnamed and a named form share one entry (keyed_statement()).
  auto keyed = keyed_statement(*req, sql, named != nullptr ? &named->param_types : nullptr);
  if (!keyed) return CacheAttempt::forward;
  cache::KeyInput base;
  base.shape = keyed->entry_shape;
  base.database = request_.database;
  base.role = facts.role;
  base.search_path = facts.search_path;
  const std::vector<cache::Setting> settings = result_settings();  // base.settings views it
  base.settings = settings;
  base.statement = keyed->statement;
  base.params_region = protocol::Bytes(reinterpret_cast<const uint8_t*>(keyed->params.data()), keyed->params.size());
  cache_lookup_ = cache::make_lookup(d, base, wc->names());
  cache_shape_ = req->shape;
  cache_entry_shape_ = keyed->entry_shape;
  cache_started_ = Clock::now();
  uint64_t seq = ++cache_seq_;
  Worker* w = &worker_;
  uint64_t id = id_;
  bool sent = wc->store().lookup(
      wc->names().generations, cache_lookup_.generations, cache_lookup_.redis_key,
      [w, id, seq](cache::GetStatus st, std::vector<uint64_t> gens, std::string value, std::optional<uint64_t> floor) {
        if (ClientConn* client = w->client_by_id(id)) {
          client->on_cache_lookup(seq, st, std::move(gens), std::move(value), floor);
        }
      });
  if (!sent) {  // Redis down or saturated: a miss, and nothing could be stored either
    ++stats.classes[cache_lookup_.class_name].misses;
    return CacheAttempt::forward;
  }
  cache_step_ = CacheStep::lookup;
  return CacheAttempt::pending;
}

// The generations and the stored value, read together. A value read under other generations is stale.
void ClientConn::on_cache_lookup(uint64_t seq, cache::GetStatus status, std::vector<uint64_t> gens, std::string value,
                                 std::optional<uint64_t> replica_floor) {
  if (cache_step_ != CacheStep::lookup || seq != cache_seq_ || closing()) return;
  cache_step_ = CacheStep::none;
  if (!reading()) start_reading();
  auto& stats = worker_.metrics().cache;
  auto& cls = stats.classes[cache_lookup_.class_name];
  const conf::Config& config = *worker_.snapshot().config;
  cache::redis::WorkerCache* wc = worker_.result_cache();
  cache_checked_ = true;  // whatever happens next, this request is not looked up again
  if (status == cache::GetStatus::error || wc == nullptr) {
    ++cls.misses;
    process_session();
    return;
  }
  cache_fingerprint_ = cache::generations_fingerprint(cache_lookup_, gens);
  cache_replica_floor_ = replica_floor;
  if (status == cache::GetStatus::hit) {
    auto entry = cache::decode_entry(std::string_view(value), cache_entry_shape_, config.proxy.max_message_bytes);
    if (!entry.ok()) {
      ++stats.corrupt;
    } else if (entry->meta.generations == cache_fingerprint_ && serve_from_cache(entry->messages)) {
      ++cls.hits;
      cache_checked_ = false;
      if (!closing() && rbuf_.size() > 0) process_session();
      return;
    }
  }
  ++cls.misses;
  cache_inflight_ = cache::inflight_key(cache_lookup_, cache_fingerprint_);
  switch (wc->inflight().join(cache_inflight_, id_, Clock::now())) {
    case cache::Inflight::Role::fall_through:
      ++stats.wait_fallthroughs;
      break;
    case cache::Inflight::Role::wait:
      ++stats.waits;
      cache_step_ = CacheStep::waiting;
      return;
    case cache::Inflight::Role::leader:
      // To Postgres; the reply is captured for Redis and for whoever waits on this key.
      cache_leader_ = true;
      cache_step_ = CacheStep::capturing;
      cache_read_replay_.reset();  // note_cache_read_target() tells once a server is bound
      capture_.emplace(cache_shape_, config.cache.max_result_bytes);
      capture_started_ = false;
      break;
  }
  process_session();
}

void ClientConn::on_cache_wait_over(const std::string* messages) {
  if (cache_step_ != CacheStep::waiting || closing()) return;
  cache_step_ = CacheStep::none;
  if (!reading()) start_reading();
  auto& stats = worker_.metrics().cache;
  if (messages != nullptr && serve_from_cache(*messages)) {
    cache_checked_ = false;
    if (!closing() && rbuf_.size() > 0) process_session();
    return;
  }
  ++stats.wait_fallthroughs;
  cache_checked_ = true;
  process_session();
}

// Answers the buffered request with `messages` (the stored reply of its shape), as Postgres would.
bool ClientConn::serve_from_cache(std::string_view messages) {
  const conf::Config& config = *worker_.snapshot().config;
  const BufferedRequest request = decode_buffered_request(rbuf_.data(), config.proxy.max_message_bytes);
  auto req = scan_cacheable_request(request);
  if (!req || req->shape != cache_shape_) return false;
  std::string sql(req->sql);
  if (req->parse && !req->parse->name.empty()) {
    if (!statements_.remember(req->parse->name, req->sql, req->parse->param_types())) return false;
  } else if (!req->parse && req->shape != cache::ReplyShape::simple) {
    const PreparedStatement* ps = statements_.find(req->bind.statement);
    if (ps == nullptr) return false;
    sql = ps->sql;
  }
  write_cache_hit_prefix(*req, outbox());
  outbox().append(messages);
  protocol::write_ready_for_query(outbox(), 'I');
  rbuf_.consume(req->bytes);
  last_activity_ = Clock::now();
  flush();
  auto took = Clock::now() - cache_started_;
  auto& hot = worker_.metrics();
  hot.query_duration[static_cast<size_t>(Target::cache)].observe(std::chrono::duration<double>(took).count());
  ++hot.queries_by_target[static_cast<size_t>(Target::cache)];
  uint64_t rows = 0;  // DataRows replayed
  for (protocol::Bytes rest(reinterpret_cast<const uint8_t*>(messages.data()), messages.size()); !rest.empty();) {
    auto r = protocol::split_frame(rest, config.proxy.max_message_bytes);
    const auto* f = std::get_if<protocol::Frame>(&r);
    if (f == nullptr) break;
    rows += f->type == 'D';
    rest = rest.subspan(f->size);
  }
  worker_.record_digest(sql, std::chrono::duration_cast<std::chrono::microseconds>(took), rows, false, true);
  return true;
}

void ClientConn::finish_cache_leader(const std::string* messages) {
  if (!cache_leader_) return;
  cache_leader_ = false;
  cache::redis::WorkerCache* wc = worker_.result_cache();
  if (wc == nullptr) return;
  std::vector<uint64_t> waiters = wc->inflight().finish(cache_inflight_);
  for (uint64_t id : waiters) {
    if (ClientConn* c = worker_.client_by_id(id)) c->on_cache_wait_over(messages);
  }
}

void ClientConn::observe_reply(char type, protocol::Bytes whole, size_t outbox_offset) {
  if (cache_step_ == CacheStep::capturing && capture_) {
    bool preamble = !capture_started_ && cache_shape_ != cache::ReplyShape::simple && (type == '1' || type == '2');
    if (!preamble) {
      capture_started_ = true;
      capture_->feed(type, whole);
    }
  }
  switch (type) {
    case 'C': {
      std::string_view tag = command_tag(whole);
      reply_last_rollback_ = tag == "ROLLBACK";
      if (tag == "COMMIT") reply_saw_commit_ = true;
      if (tag == "COMMIT PREPARED") {  // what it wrote was noted by another session: assume anything
        reply_saw_commit_ = true;
        cache_writes_.assign(1, std::string(cache::kAllTables));
      }
      break;
    }
    case 'E':
      reply_saw_error_ = true;
      break;
    case 'Z': {
      char status = whole.size() >= 6 ? static_cast<char>(whole[5]) : 'I';
      if (cache_step_ == CacheStep::capturing) end_capture(status);
      on_commit_observed(status, outbox_offset);
      break;
    }
    default:
      break;
  }
}

void ClientConn::end_capture(char status) {
  cache_step_ = CacheStep::none;
  auto& stats = worker_.metrics().cache.classes[cache_lookup_.class_name];
  cache::redis::WorkerCache* wc = worker_.result_cache();
  if (!capture_ || capture_->state() != cache::CaptureState::complete || status != 'I' || wc == nullptr) {
    ++stats.not_stored;
    capture_.reset();
    finish_cache_leader(nullptr);
    return;
  }
  std::string messages = capture_->take();
  capture_.reset();
  if (!replica_read_storable()) {
    // A replica answered before replaying every write whose bump the lookup saw: the client gets
    // what it asked a replica for, but storing it would serve that past to everyone (also to the
    // writer) until the TTL ends. Waiters run their own query: they may need the primary.
    ++stats.replica_behind;
    finish_cache_leader(nullptr);
    return;
  }
  cache::EntryMeta meta;
  meta.shape = cache_entry_shape_;
  meta.class_name = cache_lookup_.class_name;
  meta.created_at_ms = unix_millis();
  meta.ttl_ms = static_cast<uint32_t>(cache_lookup_.ttl.count());
  meta.generations = cache_fingerprint_;  // the generations read before the query ran
  if (wc->store().set(cache_lookup_.redis_key, cache::encode_entry(meta, messages), cache_lookup_.ttl)) {
    ++stats.stores;
  } else {
    ++stats.not_stored;
  }
  finish_cache_leader(&messages);
}

void ClientConn::note_cache_read_target() {
  if (cache_step_ != CacheStep::capturing) return;
  cache_read_replay_.reset();
  if (pool_ == nullptr || !pool_->is_replica()) return;
  // The monitor's last view: replay positions only grow, so a view taken before the query runs is a
  // lower bound of what the replica had replayed when it answered. Unknown counts as nothing replayed.
  auto view = worker_.replica_view();
  size_t i = static_cast<size_t>(pool_->target_index());
  cache_read_replay_ = i < view.size() ? view[i].replay_lsn : 0;
}

// No stale store: a primary's answer always reflects every committed write; a replica's only when it
// had replayed past the commit LSN of every table read (unknown LSN = not storable).
bool ClientConn::replica_read_storable() const {
  if (!cache_read_replay_) return true;
  return cache_replica_floor_.has_value() && *cache_read_replay_ >= *cache_replica_floor_;
}

void ClientConn::abort_capture() {
  if (cache_step_ != CacheStep::capturing) return;
  cache_step_ = CacheStep::none;
  capture_.reset();
  ++worker_.metrics().cache.classes[cache_lookup_.class_name].not_stored;
  finish_cache_leader(nullptr);
}

void ClientConn::note_cache_writes(std::string_view sql) {
  if (!cache_observe_) return;
  auto c = worker_.classify(sql);
  for (const auto& st : c->statements) {
    if (st.kind == router::Kind::ddl && cache_writes_.empty()) cache_writes_.emplace_back(cache::kAllTables);
    cache_ddl_ = cache_ddl_ || st.kind == router::Kind::ddl;
  }
  // Nothing to bump (tables_to_bump() would return none): no need for the session's facts.
  if (!c->flags.writes_unknown_tables && c->tables_written.empty()) return;
  cache::redis::WorkerCache* wc = worker_.result_cache();
  if (wc == nullptr) return;
  // Cascading foreign keys, partitions, triggers and rules write more than the statement names
  // (WriteDependencies::expand); the answer is memoised per worker.
  const std::vector<std::string>& tables =
      wc->write_tables().tables(c, cache_facts(), worker_.process().write_dependencies());
  if (tables.empty()) return;
  if (!cache_writes_.empty() && cache_writes_.front() == cache::kAllTables) return;
  for (const auto& t : tables) {
    auto it = std::lower_bound(cache_writes_.begin(), cache_writes_.end(), t);
    if (it == cache_writes_.end() || *it != t) cache_writes_.insert(it, t);
  }
  if (cache_writes_.size() > kMaxPendingWrites || std::binary_search(cache_writes_.begin(), cache_writes_.end(),
                                                                     std::string(cache::kAllTables))) {
    cache_writes_.assign(1, std::string(cache::kAllTables));
  }
}

// A ReadyForQuery reached the outbox at `outbox_offset`. Decides whether the transaction's writes
// committed (COMMIT, or a statement outside a transaction that ended without error) or not (ROLLBACK,
// a failed implicit transaction); bumps and holds the client's output from this ReadyForQuery on.
void ClientConn::on_commit_observed(char status, size_t outbox_offset) {
  bool saw_commit = reply_saw_commit_, saw_error = reply_saw_error_, rollback = reply_last_rollback_;
  reply_saw_commit_ = reply_saw_error_ = reply_last_rollback_ = false;
  if (cache_writes_.empty()) return;
  bool ended = status == 'I';
  bool committed = saw_commit || (ended && !saw_error && !rollback);
  if (!committed) {
    if (ended) {  // rolled back: nothing to invalidate
      cache_writes_.clear();
      cache_ddl_ = false;
    }
    return;
  }
  std::vector<std::string> tables = std::move(cache_writes_);
  cache_writes_.clear();
  if (cache_ddl_) {  // a committed DDL may have added a foreign key, a partition or a trigger
    cache_ddl_ = false;
    worker_.process().refresh_write_dependencies();
  }
  cache::redis::WorkerCache* wc = worker_.result_cache();
  if (wc == nullptr) return;
  const conf::Config& config = *worker_.snapshot().config;
  auto& stats = worker_.metrics().cache;
  ++stats.bumps;
  for (const std::string& t : tables) {
    if (t == cache::kAllTables) {
      for (const auto& cls : config.cache.classes) ++stats.classes[cls.name].invalidations;
    } else if (const conf::CacheClass* cls = config.cache.class_for_table(t)) {
      ++stats.classes[cls->name].invalidations;
    }
  }
  if (pending_bumps_++ == 0) hold_output_from(outbox_offset);
  // The bump carries the commit LSN when the LSN probe will learn it (a primary server of a
  // transaction pool, routing on): the client's ReadyForQuery is held meanwhile anyway. Only at the
  // release point (nothing more in flight: the probe runs at once after this reply) or when the probe
  // was sent right behind this request (send_lsn_probe_behind); a commit followed by more of the batch,
  // or by an open transaction, is bumped now without an LSN.
  bool lsn_probe_follows = status == 'I' && server_ != nullptr &&
                           (server_->at_release_point() || routing_.lsn_probe_running()) && pool_ != nullptr &&
                           !pool_->is_replica() && pool_->settings().pool_mode == conf::PoolMode::transaction &&
                           worker_.routing_enabled();
  if (lsn_probe_follows) {
    if (!cache_commit_tables_.empty()) --pending_bumps_;  // one hold, one bump for the binding's commits
    for (auto& t : tables) {
      auto it = std::lower_bound(cache_commit_tables_.begin(), cache_commit_tables_.end(), t);
      if (it == cache_commit_tables_.end() || *it != t) cache_commit_tables_.insert(it, std::move(t));
    }
    return;
  }
  send_bump(std::move(tables), std::nullopt);
}

void ClientConn::send_bump(std::vector<std::string> tables, std::optional<uint64_t> commit_lsn) {
  cache::redis::WorkerCache* wc = worker_.result_cache();
  if (wc == nullptr) {
    on_bump_done();
    return;
  }
  Worker* w = &worker_;
  uint64_t id = id_;
  bool nested = bumping_now_;
  bumping_now_ = true;
  wc->sync().bump(std::move(tables), commit_lsn, [w, id](bool) {
    if (ClientConn* c = w->client_by_id(id)) c->on_bump_done();
  });
  bumping_now_ = nested;
}

// The LSN probe answered (or the binding ends without its row): bump the binding's committed tables.
void ClientConn::send_commit_bump(std::optional<uint64_t> commit_lsn) {
  if (cache_commit_tables_.empty()) return;
  std::vector<std::string> tables = std::move(cache_commit_tables_);
  cache_commit_tables_.clear();
  bool nested = bumping_now_;
  bumping_now_ = true;  // inside the server's reply processing, which flushes and carries on itself
  send_bump(std::move(tables), commit_lsn);
  bumping_now_ = nested;
}

void ClientConn::on_bump_done() {
  if (pending_bumps_ == 0 || --pending_bumps_ > 0) return;
  release_output();
  // A bump done at once (Redis down) runs inside the server's reply processing, which flushes and
  // carries on by itself; a later one resumes the client's input, which waited (process_session).
  if (bumping_now_ || closing()) return;
  flush();  // sends what no other hold (a read-your-writes floor being recorded) keeps
  if (!reading()) start_reading();
  if (rbuf_.size() > 0 && (state_ == State::idle || state_ == State::active)) process_session();
}

void ClientConn::leave_cache() {
  cache::redis::WorkerCache* wc = worker_.result_cache();
  if (wc == nullptr) return;
  if (cache_step_ == CacheStep::waiting) wc->inflight().leave(cache_inflight_, id_);
  cache_step_ = CacheStep::none;
  capture_.reset();
  finish_cache_leader(nullptr);
  if (!cache_commit_tables_.empty()) {  // committed; the LSN probe will not answer this client now
    wc->sync().bump(std::move(cache_commit_tables_), nullptr);
    cache_commit_tables_.clear();
  }
  if (!cache_writes_.empty()) {
    // Gone mid-transaction: a COMMIT may have reached the server before we knew. Invalidate anyway.
    wc->sync().bump(std::move(cache_writes_), nullptr);
    cache_writes_.clear();
  }
}

}  // namespace pgs::proxy
