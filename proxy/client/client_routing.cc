// ClientConn, part 4: read/write routing (issue 4), carried out. RequestRouting (routing/request_routing.h)
// decides which pool the next request goes to, what is kept to be re-run on the primary when its replica
// fails before answering, and when the primary's WAL position is read for the read-your-writes floor;
// this file finds the pools, binds and probes the servers, and holds or releases the client's output.
#include <cctype>

#include "proxy/client/client_conn.h"
#include "proxy/core/log.h"
#include "proxy/core/process.h"
#include "proxy/core/worker.h"
#include "proxy/pool/pool.h"
#include "proxy/request/batch_scan.h"
#include "proxy/routing/request_routing.h"
#include "proxy/server/server_conn.h"
#include "proxy/session/statement_text.h"

namespace pgs::proxy {

namespace {
// pgsidecar_routing_decisions_total{target, reason}: one per request routed outside a transaction (the
// statements of a transaction follow its first request, see route.h).
void count_decision(Worker& worker, const router::Decision& d) {
  auto& counts = worker.metrics().routing_decisions[d.primary() ? 0 : 1];
  size_t reason = static_cast<size_t>(d.reason);
  if (reason < counts.size()) ++counts[reason];
}

// What routing reads from the worker, asked for only when the decision needs it.
class WorkerRouteSources final : public RouteSources {
 public:
  WorkerRouteSources(Worker& worker, const StartupRequest& client, const ClientStatements& statements,
                     const BufferedRequest& request)
      : worker_(worker), client_(client), statements_(statements), request_(request) {}

  BatchFacts scan_request() override {
    return scan_batch(
        request_, [this](std::string_view sql) { return worker_.classify(sql); },
        [this](std::string_view name) -> const std::string* {
          const PreparedStatement* ps = statements_.find(name);
          return ps != nullptr ? &ps->sql : nullptr;
        });
  }
  const std::string* route_hint_setting() override { return client_.gucs.get("pgsidecar.route"); }
  router::Lsn shared_lsn_floor() override {
    return worker_.process().lsn_floor(client_.database, client_.user).load(std::memory_order_acquire);
  }
  std::span<const router::ReplicaSnapshot> replicas() override { return worker_.replica_view(); }
  std::chrono::milliseconds replicas_age() override { return worker_.replica_view_age(); }
  uint64_t next_counter() override { return worker_.next_route_counter(); }
  bool replica_usable(int target) override {
    replica_pool_ = worker_.pool_for(client_.database, client_.user, target);
    return replica_pool_ != nullptr && !replica_pool_->recently_refused();
  }
  Pool* replica_pool() const { return replica_pool_; }  // of the last replica_usable()

 private:
  Worker& worker_;
  const StartupRequest& client_;
  const ClientStatements& statements_;
  const BufferedRequest& request_;
  Pool* replica_pool_ = nullptr;
};
}  // namespace

RoutingPolicy ClientConn::routing_policy() const {
  return RoutingPolicy::from(worker_.snapshot().config->routing, worker_.routing_enabled());
}

bool ClientConn::on_primary() const { return pool_ != nullptr && !pool_->is_replica(); }

Pool* ClientConn::choose_pool(const BufferedRequest& request) {
  const bool session_pooling =
      primary_pool_ != nullptr && primary_pool_->settings().pool_mode == conf::PoolMode::session;
  WorkerRouteSources sources(worker_, request_, statements_, request);
  std::optional<router::Decision> d = routing_.route(
      routing_policy(), route_options(worker_.snapshot().config->routing), session_pooling, sources);
  if (!d) return primary_pool_;
  count_decision(worker_, *d);
  // No replica has been seen past this client's writes yet, or none within max lag as last measured
  // (plus the time since): ask the monitor to look again soon.
  if (d->reason == router::Reason::lsn_floor || d->reason == router::Reason::replica_lagging) {
    worker_.process().want_fresh_health();
  }
  return d->primary() ? primary_pool_ : sources.replica_pool();
}

void ClientConn::reroute_to_primary() {
  if (state_ != State::waiting || primary_pool_ == nullptr) return;
  pool_ = primary_pool_;
  routing_.on_rerouted_to_primary();
  Clock::time_point waiting_since = state_since_;
  set_state(State::waiting);  // to the end of the primary pool's waiting list
  state_since_ = waiting_since;  // still the same wait (query_wait_timeout, maxwait)
  pool_->request_server(this);
}

void ClientConn::end_lsn_hold() {
  if (routing_.end_lsn_hold()) release_output();
}

void ClientConn::on_server_lost(const std::string& message, bool between_requests) {
  end_lsn_hold();
  cache_on_server_lost();  // ends a capture; bumps what committed and what may have (a COMMIT in flight)
  bool pinned_state = session_state_.holds_server_state();
  bool session_mode = pool_ != nullptr && pool_->settings().pool_mode == conf::PoolMode::session;
  server_ = nullptr;
  sql_gate_.on_server_lost();  // a held request is sent afresh to the next server
  statements_.on_server_gone();
  if (between_requests && !pinned_state && !session_mode && !shutting_down_) {
    // Nothing was running on it and the client has no state there: carry on with the next server.
    // Its last reply may still sit in the outbox (the server's goodbye came in the same read).
    flush();
    set_state(State::idle);
    if (rbuf_.size() > 0) process_session();
    return;
  }
  if (!routing_.retry_on_primary(pool_ != nullptr && pool_->is_replica(), pinned_state)) {
    fail("08006", "pgsidecar: server connection lost: " + message);
    return;
  }
  // Nothing of the reply reached the client: run the same read on the primary instead.
  LOG_INFO("replica failed (" + message + "): re-running a read on the primary");
  worker_.mark_replica_down(pool_->target_index());
  ++worker_.metrics().replica_retries;
  outbox().clear();  // held replies of the failed attempt
  pool_ = primary_pool_;  // on_server_assigned() sends the read again

  set_state(State::waiting);
  pool_->request_server(this);
}

// After a transaction that may have written on the primary: note the primary's WAL position, so this
// client's (and its pool's) reads go to a replica only once it has replayed that far, and so the
// cache's bump of its committed tables carries it (their commit LSN: cache/README.md).
bool ClientConn::start_lsn_probe_if_needed() {
  on_cache_lsn_probe_done(std::nullopt);  // the last probe ended without a row: bump without the LSN
  const bool for_cache = cache_.commit_bump_waits_for_lsn();
  switch (routing_.lsn_probe_at_release(routing_policy(), on_primary(), for_cache)) {
    case LsnProbe::unavailable:
      send_commit_bump(std::nullopt);
      return false;
    case LsnProbe::not_needed:
      return false;
    case LsnProbe::start:
      break;
  }
  cache_.on_lsn_probe_started(for_cache);
  ++worker_.metrics().lsn_probes[1];
  server_->start_probe("SELECT pg_catalog.pg_current_wal_lsn()");
  return true;
}

namespace {
// The text begins with COMMIT or END (any case) as a whole word: worth classifying to prove that it ends
// the transaction. Leading comments are not skipped: such a COMMIT is probed at the release point.
bool starts_with_commit_word(std::string_view sql) {
  size_t i = 0;
  while (i < sql.size() && (sql[i] == ' ' || sql[i] == '\t' || sql[i] == '\n' || sql[i] == '\r')) ++i;
  for (std::string_view word : {std::string_view("commit"), std::string_view("end")}) {
    if (sql.size() - i < word.size()) continue;
    bool same = true;
    for (size_t k = 0; k < word.size() && same; ++k) same = ascii_lower(sql[i + k]) == word[k];
    size_t after = i + word.size();
    if (same && (after == sql.size() || (!std::isalnum(static_cast<unsigned char>(sql[after])) && sql[after] != '_'))) {
      return true;
    }
  }
  return false;
}
}  // namespace

// A simple Query that ends a transaction that may have written takes the LSN probe along in the same
// write (RequestRouting::lsn_probe_behind_request): one round trip to the primary less per write
// transaction. Proven here, or the probe waits for the release point as before:
// - transaction pooling on the primary, nothing else in flight on the server and nothing more buffered
//   from the client, so the probe runs right after this statement and nothing of the client's after it;
// - the statement is one COMMIT/END of an open transaction ('T'; not AND CHAIN, which opens another), or
//   one INSERT/UPDATE/DELETE/MERGE outside any ('I'), so the probe runs outside any transaction.
void ClientConn::send_lsn_probe_behind(const protocol::Frame& f, std::string_view sql) {
  if (server_ == nullptr || pool_ == nullptr || pool_->is_replica() || !transaction_pooling() ||
      server_->pending_ready() != 1 || rbuf_.size() != f.size || !worker_.routing_enabled()) {
    return;
  }
  const char status = server_->transaction_status();
  if (status == 'T' && !starts_with_commit_word(sql)) return;
  if (status != 'T' && status != 'I') return;
  auto c = worker_.classify(sql);
  if (c->statements.size() != 1 || !c->error.empty()) return;
  if (status == 'T') {
    static constexpr std::string_view kChain[] = {"chain"};
    static const KeywordSet kChainWord(kChain);
    if (c->kind != router::Kind::commit || kChainWord.found_in(sql)) return;
  } else if (c->kind != router::Kind::insert && c->kind != router::Kind::update && c->kind != router::Kind::delete_ &&
             c->kind != router::Kind::merge) {
    return;
  }
  const bool for_cache = cache_.writes_pending() || cache_.commit_bump_waits_for_lsn();
  if (routing_.lsn_probe_behind_request(routing_policy(), true, for_cache) != LsnProbe::start) return;
  cache_.on_lsn_probe_started(for_cache);
  ++worker_.metrics().lsn_probes[0];
  server_->start_probe("SELECT pg_catalog.pg_current_wal_lsn()");
}

void ClientConn::on_lsn_row(const std::vector<std::optional<std::string>>& values) {
  const LsnRow row = routing_.on_lsn_row(values, routing_policy());
  on_cache_lsn_probe_done(row.lsn ? std::optional<uint64_t>(*row.lsn) : std::nullopt);
  if (row.raise_shared_floor) raise_floor(worker_.process().lsn_floor(request_.database, request_.user), *row.lsn);
  if (row.release_output) release_output();  // flushed with the probe's reply (on_server_bytes)
}

}  // namespace pgs::proxy
