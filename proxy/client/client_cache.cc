// ClientConn, part 5: the result cache (issue 5; cache/README.md), carried out. ResultCacheSession
// (cache_session/result_cache_session.h) decides whether a request is looked up, what a hit writes,
// who leads a stampede, whether a captured miss is stored, what a commit bumps and when the client's
// output is held for it; this file reaches Redis and the worker for it (WorkerCacheSources), writes the
// hits, holds and releases the output and resumes the client's input.
#include "proxy/client/client_conn.h"
#include "proxy/core/process.h"
#include "proxy/core/worker.h"
#include "proxy/pool/pool.h"
#include "proxy/session/session_code.h"

namespace pgs::proxy {

namespace {

// The worker's cache (cache::redis::WorkerCache, null until [cache] was enabled) and what the worker
// knows, for one event of one client.
class WorkerCacheSources final : public CacheSources {
 public:
  WorkerCacheSources(Worker& worker, uint64_t client_id)
      : worker_(worker), wc_(worker.result_cache()), client_id_(client_id) {}

  CacheStats& stats() override { return worker_.metrics().cache; }
  std::shared_ptr<const router::Classification> classify(std::string_view sql) override {
    return worker_.classify(sql);
  }
  const void* snapshot_id() override { return &worker_.snapshot(); }
  std::shared_ptr<const void> hold_snapshot() override { return worker_.snapshot_ptr(); }
  uint64_t catalog_version() override { return worker_.process().catalog_version(); }
  const cache::RowSecurityFacts* row_security() override { return worker_.session_code(); }
  std::shared_ptr<const cache::WriteDependencies> write_dependencies() override {
    return worker_.process().write_dependencies();
  }
  void refresh_write_dependencies() override { worker_.process().refresh_write_dependencies(); }
  void want_fresh_replica_positions() override { worker_.process().want_fresh_health(); }

  bool available() override { return wc_ != nullptr; }
  bool ready() override { return wc_->ready(); }
  const cache::RedisNames& names() override { return wc_->names(); }
  bool lookup(const cache::Lookup& l, uint64_t seq) override {
    Worker* w = &worker_;
    uint64_t id = client_id_;
    return wc_->store().lookup(
        l.generations_hash, l.generations, l.redis_key,
        [w, id, seq](cache::GetStatus st, std::vector<uint64_t> gens, std::string value,
                     std::optional<uint64_t> floor) {
          if (ClientConn* client = w->client_by_id(id)) {
            client->on_cache_lookup(seq, st, std::move(gens), std::move(value), floor);
          }
        });
  }
  bool store(const std::string& key, std::string value, std::chrono::milliseconds ttl) override {
    return wc_->store().set(key, std::move(value), ttl);
  }
  cache::Inflight::Role join(const cache::CacheKey& key) override {
    return wc_->inflight().join(key, client_id_, Clock::now());
  }
  void finish_lead(const cache::CacheKey& key, const std::string* messages) override {
    for (uint64_t id : wc_->inflight().finish(key)) {
      if (ClientConn* c = worker_.client_by_id(id)) c->on_cache_wait_over(messages);
    }
  }
  void leave_wait(const cache::CacheKey& key) override { wc_->inflight().leave(key, client_id_); }
  void bump(std::vector<std::string> tables, std::optional<uint64_t> commit_lsn, bool confirm) override {
    Worker* w = &worker_;
    uint64_t id = client_id_;
    if (wc_ == nullptr) {  // nothing to confirm
      if (ClientConn* c = confirm ? w->client_by_id(id) : nullptr) c->on_bump_done();
      return;
    }
    if (!confirm) {
      wc_->sync().bump(std::move(tables), nullptr);
      return;
    }
    wc_->sync().bump(std::move(tables), commit_lsn, [w, id](bool) {
      if (ClientConn* c = w->client_by_id(id)) c->on_bump_done();
    });
  }
  const std::vector<std::string>& write_tables(const std::shared_ptr<const router::Classification>& c,
                                              const cache::SessionFacts& facts) override {
    // With the invalidation stream on, a table no class names is left to the stream: this sidecar
    // never caches it, a sidecar whose classes name it (a fleet configured otherwise, a reload in
    // progress) gets the stream's bump within its bound, as for a write made straight to the primary,
    // and the commit neither waits for Redis nor publishes to every sidecar. Without the stream every
    // written table is bumped here, as the only invalidation there is.
    const std::shared_ptr<const conf::Config>& config = worker_.snapshot().config;
    std::shared_ptr<const conf::CacheConfig> only_classes_of;
    if (config->cache.invalidation_stream) only_classes_of = {config, &config->cache};
    return wc_->write_tables().tables(c, facts, worker_.process().write_dependencies(), only_classes_of);
  }

 private:
  Worker& worker_;
  cache::redis::WorkerCache* wc_;
  uint64_t client_id_;
};

}  // namespace

CacheClient ClientConn::cache_client() const {
  CacheClient c;
  c.user = request_.user;
  c.database = request_.database;
  if (primary_pool_ != nullptr) c.server_dbname = primary_pool_->target().server_dbname;
  c.gucs = &request_.gucs;
  c.may_have_temp_tables = session_state_.pinned_for(PinReason::temp_table);
  return c;
}

bool ClientConn::cache_enabled() const {
  return worker_.result_cache() != nullptr && worker_.snapshot().config->cache.enabled;
}

ClientConn::CacheAttempt ClientConn::try_cache(const BufferedRequest& request) {
  cache_.set_observing(cache_enabled());
  if (!cache_.observes_replies() || closing()) return CacheAttempt::forward;
  WorkerCacheSources sources(worker_, id_);
  CacheStep step = cache_.begin_lookup(request, statements_, cache_client(), *worker_.snapshot().config,
                                       Clock::now(), sources);
  return step == CacheStep::pending ? CacheAttempt::pending : CacheAttempt::forward;
}

// The generations and the stored value, read together.
void ClientConn::on_cache_lookup(uint64_t seq, cache::GetStatus status, std::vector<uint64_t> gens, std::string value,
                                 std::optional<uint64_t> replica_floor) {
  if (closing()) return;
  WorkerCacheSources sources(worker_, id_);
  std::string_view messages;
  act_on_cache(cache_.on_lookup(seq, status, gens, value, replica_floor, *worker_.snapshot().config, sources,
                                &messages),
               messages);
}

void ClientConn::on_cache_wait_over(const std::string* messages) {
  if (closing()) return;
  WorkerCacheSources sources(worker_, id_);
  act_on_cache(cache_.on_wait_over(messages, sources), messages != nullptr ? *messages : std::string_view());
}

void ClientConn::act_on_cache(CacheStep step, std::string_view messages) {
  if (step == CacheStep::ignore) return;
  if (!reading()) start_reading();
  if (step == CacheStep::serve) {
    WorkerCacheSources sources(worker_, id_);
    step = cache_.on_served(serve_from_cache(messages), *worker_.snapshot().config, sources);
  }
  switch (step) {
    case CacheStep::served:
      if (!closing() && rbuf_.size() > 0) process_session();
      return;
    case CacheStep::forward:
      process_session();
      return;
    default:  // pending: a leader resumes this client
      return;
  }
}

// Answers the buffered request with `messages` (the stored reply of its shape), as Postgres would.
bool ClientConn::serve_from_cache(std::string_view messages) {
  const conf::Config& config = *worker_.snapshot().config;
  const BufferedRequest request = decode_buffered_request(rbuf_.data(), config.proxy.max_message_bytes);
  std::string sql;
  size_t bytes = cache_.write_hit(request, messages, statements_, outbox(), &sql);
  if (bytes == 0) return false;
  rbuf_.consume(bytes);
  last_activity_ = Clock::now();
  flush();
  auto took = Clock::now() - cache_.lookup_started();
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

void ClientConn::observe_reply(char type, protocol::Bytes whole, size_t outbox_offset) {
  // At a ReadyForQuery: the bump of a commit carries the commit LSN when the LSN probe will learn it (a
  // primary server of a transaction pool, routing on): only at the release point (nothing more in flight:
  // the probe runs at once after this reply) or when the probe was sent right behind this request
  // (send_lsn_probe_behind).
  const bool lsn_probe_follows = type == 'Z' && server_ != nullptr &&
                                 (server_->at_release_point() || routing_.lsn_probe_running()) && pool_ != nullptr &&
                                 !pool_->is_replica() &&
                                 pool_->settings().pool_mode == conf::PoolMode::transaction &&
                                 worker_.routing_enabled();
  WorkerCacheSources sources(worker_, id_);
  CacheReplyAction a = cache_.on_reply(type, whole, lsn_probe_follows, *worker_.snapshot().config, sources);
  if (a.hold_output) hold_output_from(outbox_offset);
  if (a.bump) cache_.send_bump(std::move(*a.bump), std::nullopt, sources);
}

void ClientConn::abort_capture() {
  WorkerCacheSources sources(worker_, id_);
  cache_.abort_capture(sources);
}

void ClientConn::note_cache_writes(std::string_view sql) {
  if (!cache_.observes_replies()) return;
  WorkerCacheSources sources(worker_, id_);
  cache_.note_writes(sql, cache_client(), sources);
}

void ClientConn::note_unnamed_bound() {
  if (!cache_.observes_replies()) return;
  WorkerCacheSources sources(worker_, id_);
  cache_.note_unnamed_bound(cache_client(), sources);
}

void ClientConn::send_commit_bump(std::optional<uint64_t> commit_lsn) {
  WorkerCacheSources sources(worker_, id_);
  cache_.send_commit_bump(commit_lsn, sources);
}

void ClientConn::on_cache_lsn_probe_done(std::optional<uint64_t> commit_lsn) {
  WorkerCacheSources sources(worker_, id_);
  cache_.on_lsn_probe_done(commit_lsn, sources);
}

void ClientConn::on_bump_done() {
  switch (cache_.on_bump_done()) {
    case BumpDone::none:
      return;
    case BumpDone::release:
      release_output();
      return;
    case BumpDone::resume:
      release_output();
      break;
  }
  if (closing()) return;
  flush();  // sends what no other hold (a read-your-writes floor being recorded) keeps
  if (!reading()) start_reading();
  if (rbuf_.size() > 0 && (state_ == State::idle || state_ == State::active)) process_session();
}

// A server was bound: where the captured miss (if any) is read, for the store decision. The monitor's
// last view: replay positions only grow, so a view taken before the query runs is a lower bound of what
// the replica had replayed when it answered. Unknown counts as nothing replayed.
void ClientConn::note_cache_read_target() {
  if (!cache_.capturing()) return;
  if (pool_ == nullptr || !pool_->is_replica()) {
    cache_.note_read_target(std::nullopt);
    return;
  }
  auto view = worker_.replica_view();
  size_t i = static_cast<size_t>(pool_->target_index());
  cache_.note_read_target(i < view.size() ? view[i].replay_lsn : 0);
}

void ClientConn::cache_on_server_lost() {
  WorkerCacheSources sources(worker_, id_);
  cache_.on_server_lost(sources);
}

void ClientConn::leave_cache() {
  WorkerCacheSources sources(worker_, id_);
  cache_.leave(sources);
}

}  // namespace pgs::proxy
