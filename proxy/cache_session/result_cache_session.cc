// ResultCacheSession: see result_cache_session.h and cache/README.md.
#include "proxy/cache_session/result_cache_session.h"

#include <algorithm>

#include "cache/entry.h"
#include "cache/key.h"
#include "protocol/writer.h"

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

// The settings a result may depend on. Every custom setting (a dotted name: app.tenant) the session
// holds is part of the key: a view, a function or a default may read it with current_setting().
std::vector<cache::Setting> result_settings(const GucMap& gucs) {
  std::vector<cache::Setting> settings;
  for (std::string_view name : cache::kResultSettings) {
    if (const std::string* v = gucs.get(name)) settings.emplace_back(name, *v);
  }
  for (const auto& [name, value] : gucs.items()) {
    if (name.find('.') != std::string::npos) settings.emplace_back(name, value);
  }
  return settings;
}

// Adds `t` to the sorted, unique `into`.
void insert_sorted(std::vector<std::string>& into, std::string&& t) {
  auto it = std::lower_bound(into.begin(), into.end(), t);
  if (it == into.end() || *it != t) into.insert(it, std::move(t));
}

}  // namespace

// Lookups happen with no server bound: outside any transaction. The row-level security facts are the
// worker's copy of the catalog and the client's database as the catalog names it.
cache::SessionFacts ResultCacheSession::facts_of(const CacheClient& client) const {
  cache::SessionFacts f;
  f.in_transaction = false;
  f.role = client.user;
  if (const std::string* role = client.gucs->get("role"); role != nullptr && *role != "none" && !role->empty()) {
    f.role = *role;
  }
  if (const std::string* path = client.gucs->get("search_path")) f.search_path = *path;
  f.may_have_temp_tables = client.may_have_temp_tables;
  return f;
}

bool ResultCacheSession::bypass_memo_applies(const router::Classification* c, const cache::SessionFacts& facts,
                                             uint64_t catalog_version, CacheSources& sources) const {
  return bypass_memo_.classification.get() == c && bypass_memo_.snapshot.get() == sources.snapshot_id() &&
         facts.generations_synced && bypass_memo_.catalog_version == catalog_version &&
         bypass_memo_.role == facts.role && bypass_memo_.search_path == facts.search_path &&
         bypass_memo_.temp_tables == facts.may_have_temp_tables;
}

CacheStep ResultCacheSession::begin_lookup(const BufferedRequest& request, const ClientStatements& statements,
                                           const CacheClient& client, const conf::Config& config,
                                           std::chrono::steady_clock::time_point started, CacheSources& sources) {
  auto req = scan_cacheable_request(request);
  if (!req) return CacheStep::forward;
  std::string_view sql = req->sql;
  const PreparedStatement* named = nullptr;
  if (!req->parse && req->shape != cache::ReplyShape::simple) {
    named = statements.find(req->bind.statement);
    if (named == nullptr) return CacheStep::forward;  // the unnamed statement of an earlier batch, or unknown
    sql = named->sql;
  } else if (req->parse && statements.find(req->parse->name) != nullptr) {
    return CacheStep::forward;  // a duplicate name: the server says 42P05
  }
  CacheStats& stats = sources.stats();
  auto c = sources.classify(sql);
  cache::SessionFacts facts = facts_of(client);
  facts.generations_synced = sources.ready();
  uint64_t catalog_version = sources.catalog_version();  // read first: never newer than the facts
  facts.row_security = sources.row_security();
  facts.database = client.server_dbname;
  // Clients repeat their statements: a bypass decided for this very classification, session, config
  // and catalog is not decided again (decide() resolves table names, which allocates). The catalog
  // decides row-level security and which schema an unqualified name is in.
  if (bypass_memo_applies(c.get(), facts, catalog_version, sources)) {
    ++stats.bypass[static_cast<size_t>(bypass_memo_.reason)];
    return CacheStep::forward;
  }
  cache::CacheDecision d = cache::decide(*c, facts, config.cache);
  if (!d.cacheable) {
    ++stats.bypass[static_cast<size_t>(d.reason)];
    if (d.reason != cache::BypassReason::generations_unsynced && d.reason != cache::BypassReason::disabled) {
      bypass_memo_ = BypassMemo{c,
                                sources.hold_snapshot(),
                                std::string(facts.role),
                                std::string(facts.search_path),
                                facts.may_have_temp_tables,
                                catalog_version,
                                d.reason};
    }
    return CacheStep::forward;
  }
  // The statement, never its name: the unnamed and a named form share one entry (keyed_statement()).
  auto keyed = keyed_statement(*req, sql, named != nullptr ? &named->param_types : nullptr);
  if (!keyed) return CacheStep::forward;
  cache::KeyInput base;
  base.shape = keyed->entry_shape;
  base.database = client.database;
  base.role = facts.role;
  base.search_path = facts.search_path;
  const std::vector<cache::Setting> settings = result_settings(*client.gucs);  // base.settings views it
  base.settings = settings;
  base.statement = keyed->statement;
  base.params_region = protocol::Bytes(reinterpret_cast<const uint8_t*>(keyed->params.data()), keyed->params.size());
  lookup_ = cache::make_lookup(d, base, sources.names());
  shape_ = req->shape;
  entry_shape_ = keyed->entry_shape;
  started_ = started;
  if (!sources.lookup(lookup_, ++seq_)) {  // Redis down or saturated: a miss, and nothing could be stored
    ++stats.classes[lookup_.class_name].misses;
    return CacheStep::forward;
  }
  step_ = Step::lookup;
  return CacheStep::pending;
}

// The generations and the stored value, read together. A value read under other generations is stale.
CacheStep ResultCacheSession::on_lookup(uint64_t seq, cache::GetStatus status, const std::vector<uint64_t>& gens,
                                        const std::string& value, std::optional<uint64_t> replica_floor,
                                        const conf::Config& config, CacheSources& sources,
                                        std::string_view* messages) {
  if (step_ != Step::lookup || seq != seq_) return CacheStep::ignore;
  step_ = Step::none;
  looked_up_ = true;  // whatever happens next, this request is not looked up again
  CacheStats& stats = sources.stats();
  if (status == cache::GetStatus::error || !sources.available()) {
    ++stats.classes[lookup_.class_name].misses;
    return CacheStep::forward;
  }
  fingerprint_ = cache::generations_fingerprint(lookup_, gens);
  replica_floor_ = replica_floor;
  if (status == cache::GetStatus::hit) {
    auto entry = cache::decode_entry(std::string_view(value), entry_shape_, config.proxy.max_message_bytes);
    if (!entry.ok()) {
      ++stats.corrupt;
    } else if (entry->meta.generations == fingerprint_) {
      *messages = entry->messages;
      serving_after_wait_ = false;
      return CacheStep::serve;
    }
  }
  return after_miss(config, sources);
}

CacheStep ResultCacheSession::after_miss(const conf::Config& config, CacheSources& sources) {
  CacheStats& stats = sources.stats();
  ++stats.classes[lookup_.class_name].misses;
  inflight_ = cache::inflight_key(lookup_, fingerprint_);
  switch (sources.join(inflight_)) {
    case cache::Inflight::Role::fall_through:
      ++stats.wait_fallthroughs;
      break;
    case cache::Inflight::Role::wait:
      ++stats.waits;
      step_ = Step::waiting;
      return CacheStep::pending;
    case cache::Inflight::Role::leader:
      // To Postgres; the reply is captured for Redis and for whoever waits on this key.
      leader_ = true;
      step_ = Step::capturing;
      read_replay_.reset();  // note_read_target() tells once a server is bound
      capture_.emplace(shape_, config.cache.max_result_bytes);
      capture_started_ = false;
      break;
  }
  return CacheStep::forward;
}

CacheStep ResultCacheSession::on_wait_over(const std::string* messages, CacheSources& sources) {
  if (step_ != Step::waiting) return CacheStep::ignore;
  step_ = Step::none;
  if (messages != nullptr) {
    serving_after_wait_ = true;
    return CacheStep::serve;
  }
  ++sources.stats().wait_fallthroughs;
  looked_up_ = true;
  return CacheStep::forward;
}

CacheStep ResultCacheSession::on_served(bool written, const conf::Config& config, CacheSources& sources) {
  if (written) {
    if (!serving_after_wait_) ++sources.stats().classes[lookup_.class_name].hits;
    looked_up_ = false;
    return CacheStep::served;
  }
  if (!serving_after_wait_) return after_miss(config, sources);
  ++sources.stats().wait_fallthroughs;
  looked_up_ = true;
  return CacheStep::forward;
}

// Answers the buffered request with `messages` (the stored reply of its shape), as Postgres would.
size_t ResultCacheSession::write_hit(const BufferedRequest& buffered, std::string_view messages,
                                     ClientStatements& statements, std::string& out, std::string* sql) const {
  auto req = scan_cacheable_request(buffered);
  if (!req || req->shape != shape_) return 0;
  sql->assign(req->sql);
  if (req->parse && !req->parse->name.empty()) {
    if (!statements.remember(req->parse->name, req->sql, req->parse->param_types())) return 0;
  } else if (!req->parse && req->shape != cache::ReplyShape::simple) {
    const PreparedStatement* ps = statements.find(req->bind.statement);
    if (ps == nullptr) return 0;
    sql->assign(ps->sql);
  }
  write_cache_hit_prefix(*req, out);
  out.append(messages);
  protocol::write_ready_for_query(out, 'I');
  return req->bytes;
}

void ResultCacheSession::finish_lead(const std::string* messages, CacheSources& sources) {
  if (!leader_) return;
  leader_ = false;
  if (!sources.available()) return;
  sources.finish_lead(inflight_, messages);
}

CacheReplyAction ResultCacheSession::on_reply(char type, protocol::Bytes whole, bool lsn_probe_follows,
                                              const conf::Config& config, CacheSources& sources) {
  if (step_ == Step::capturing && capture_) {
    bool preamble = !capture_started_ && shape_ != cache::ReplyShape::simple && (type == '1' || type == '2');
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
        writes_.assign(1, std::string(cache::kAllTables));
      }
      break;
    }
    case 'E':
      reply_saw_error_ = true;
      break;
    case 'Z': {
      char status = whole.size() >= 6 ? static_cast<char>(whole[5]) : 'I';
      if (step_ == Step::capturing) end_capture(status, sources);
      return on_ready_for_query(status, lsn_probe_follows, config, sources);
    }
    default:
      break;
  }
  return {};
}

void ResultCacheSession::end_capture(char status, CacheSources& sources) {
  step_ = Step::none;
  CacheClassStats& stats = sources.stats().classes[lookup_.class_name];
  if (!capture_ || capture_->state() != cache::CaptureState::complete || status != 'I' || !sources.available()) {
    ++stats.not_stored;
    capture_.reset();
    finish_lead(nullptr, sources);
    return;
  }
  std::string messages = capture_->take();
  capture_.reset();
  if (!replica_read_storable()) {
    // A replica answered before replaying every write whose bump the lookup saw: the client gets what
    // it asked a replica for, but storing it would serve that past to everyone (also to the writer)
    // until the TTL ends. Waiters run their own query: they may need the primary.
    ++stats.replica_behind;
    sources.want_fresh_replica_positions();
    finish_lead(nullptr, sources);
    return;
  }
  cache::EntryMeta meta;
  meta.shape = entry_shape_;
  meta.class_name = lookup_.class_name;
  meta.created_at_ms = unix_millis();
  meta.ttl_ms = static_cast<uint32_t>(lookup_.ttl.count());
  meta.generations = fingerprint_;  // the generations read before the query ran
  if (sources.store(lookup_.redis_key, cache::encode_entry(meta, messages), lookup_.ttl)) {
    ++stats.stores;
  } else {
    ++stats.not_stored;
  }
  finish_lead(&messages, sources);
}

// No stale store: a primary's answer always reflects every committed write; a replica's only when it
// had replayed past the commit LSN of every table read (unknown LSN = not storable).
bool ResultCacheSession::replica_read_storable() const {
  if (!read_replay_) return true;
  return replica_floor_.has_value() && *read_replay_ >= *replica_floor_;
}

void ResultCacheSession::abort_capture(CacheSources& sources) {
  if (step_ != Step::capturing) return;
  step_ = Step::none;
  capture_.reset();
  ++sources.stats().classes[lookup_.class_name].not_stored;
  finish_lead(nullptr, sources);
}

void ResultCacheSession::note_writes(std::string_view sql, const CacheClient& client, CacheSources& sources) {
  if (!observe_) return;
  auto c = sources.classify(sql);
  for (const auto& st : c->statements) {
    if (st.kind == router::Kind::ddl && writes_.empty()) writes_.emplace_back(cache::kAllTables);
    ddl_ = ddl_ || st.kind == router::Kind::ddl;
  }
  // Nothing to bump (tables_to_bump() would return none): no need for the session's facts.
  if (!c->flags.writes_unknown_tables && c->tables_written.empty()) return;
  if (!sources.available()) return;
  // Cascading foreign keys, partitions, triggers and rules write more than the statement names
  // (WriteDependencies::expand); the answer is memoised per worker.
  const std::vector<std::string>& tables = sources.write_tables(c, facts_of(client));
  if (tables.empty()) return;
  if (!writes_.empty() && writes_.front() == cache::kAllTables) return;
  for (const auto& t : tables) {
    auto it = std::lower_bound(writes_.begin(), writes_.end(), t);
    if (it == writes_.end() || *it != t) writes_.insert(it, t);
  }
  if (writes_.size() > kMaxPendingWrites ||
      std::binary_search(writes_.begin(), writes_.end(), std::string_view(cache::kAllTables))) {
    writes_.assign(1, std::string(cache::kAllTables));
  }
}

void ResultCacheSession::note_unknown_writes() {
  if (!observe_) return;
  writes_.assign(1, std::string(cache::kAllTables));
  ddl_ = true;  // it may have been DDL too: re-read the write dependencies after the commit
}

// A ReadyForQuery. Decides whether the transaction's writes committed (COMMIT, or a statement outside a
// transaction that ended without error) or not (ROLLBACK, a failed implicit transaction); a commit
// bumps and holds the client's output from this ReadyForQuery on.
CacheReplyAction ResultCacheSession::on_ready_for_query(char status, bool lsn_probe_follows,
                                                        const conf::Config& config, CacheSources& sources) {
  bool saw_commit = reply_saw_commit_, saw_error = reply_saw_error_, rollback = reply_last_rollback_;
  reply_saw_commit_ = reply_saw_error_ = reply_last_rollback_ = false;
  if (writes_.empty()) return {};
  bool ended = status == 'I';
  bool committed = saw_commit || (ended && !saw_error && !rollback);
  if (!committed) {
    if (ended) {  // rolled back: nothing to invalidate
      writes_.clear();
      ddl_ = false;
    }
    return {};
  }
  std::vector<std::string> tables = std::move(writes_);
  writes_.clear();
  if (ddl_) {  // a committed DDL may have added a foreign key, a partition or a trigger
    ddl_ = false;
    sources.refresh_write_dependencies();
  }
  if (!sources.available()) return {};
  CacheStats& stats = sources.stats();
  ++stats.bumps;
  for (const std::string& t : tables) {
    if (t == cache::kAllTables) {
      for (const auto& cls : config.cache.classes) ++stats.classes[cls.name].invalidations;
    } else if (const conf::CacheClass* cls = config.cache.class_for_table(t)) {
      ++stats.classes[cls->name].invalidations;
    }
  }
  CacheReplyAction action;
  action.hold_output = pending_bumps_++ == 0;
  // The bump carries the commit LSN when the LSN probe will learn it: the client's ReadyForQuery is
  // held meanwhile anyway. A commit followed by more of the batch, or by an open transaction, is
  // bumped now without an LSN.
  if (lsn_probe_follows && status == 'I') {
    if (!commit_tables_.empty()) --pending_bumps_;  // one hold, one bump for the binding's commits
    for (auto& t : tables) insert_sorted(commit_tables_, std::move(t));
    return action;
  }
  action.bump = std::move(tables);
  return action;
}

void ResultCacheSession::send_bump(std::vector<std::string> tables, std::optional<uint64_t> commit_lsn,
                                   CacheSources& sources) {
  if (!sources.available()) {  // nothing to confirm: CacheSources::bump answers at once
    sources.bump(std::move(tables), commit_lsn, true);
    return;
  }
  bool nested = bumping_now_;
  bumping_now_ = true;
  sources.bump(std::move(tables), commit_lsn, true);
  bumping_now_ = nested;
}

void ResultCacheSession::send_commit_bump(std::optional<uint64_t> commit_lsn, CacheSources& sources) {
  if (commit_tables_.empty()) return;
  std::vector<std::string> tables = std::move(commit_tables_);
  commit_tables_.clear();
  bool nested = bumping_now_;
  bumping_now_ = true;  // inside the server's reply processing, which flushes and carries on itself
  send_bump(std::move(tables), commit_lsn, sources);
  bumping_now_ = nested;
}

void ResultCacheSession::on_lsn_probe_done(std::optional<uint64_t> lsn, CacheSources& sources) {
  if (!lsn_probe_sent_) return;
  lsn_probe_sent_ = false;
  send_commit_bump(lsn, sources);
}

BumpDone ResultCacheSession::on_bump_done() {
  if (pending_bumps_ == 0 || --pending_bumps_ > 0) return BumpDone::none;
  // A bump done at once (Redis down) runs inside the server's reply processing, which flushes and
  // carries on by itself; a later one resumes the client's input, which waited.
  return bumping_now_ ? BumpDone::release : BumpDone::resume;
}

void ResultCacheSession::bump_without_answer(std::vector<std::string>& tables, CacheSources& sources) {
  if (tables.empty()) return;
  sources.bump(std::move(tables), std::nullopt, false);
  tables.clear();
}

void ResultCacheSession::on_server_lost(CacheSources& sources) {
  abort_capture(sources);
  lsn_probe_sent_ = false;
  send_commit_bump(std::nullopt, sources);  // committed (the server said so); its LSN is unknown now
  // Whether the transaction committed is unknown (a COMMIT may have been in flight): invalidate.
  if (sources.available()) bump_without_answer(writes_, sources);
}

void ResultCacheSession::leave(CacheSources& sources) {
  if (!sources.available()) return;
  if (step_ == Step::waiting) sources.leave_wait(inflight_);
  step_ = Step::none;
  capture_.reset();
  finish_lead(nullptr, sources);
  bump_without_answer(commit_tables_, sources);  // committed; the LSN probe will not answer this client now
  bump_without_answer(writes_, sources);  // gone mid-transaction: a COMMIT may have reached the server
}

}  // namespace pgs::proxy
