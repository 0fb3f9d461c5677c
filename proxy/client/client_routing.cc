// ClientConn, part 4: read/write routing (issue 4) — which pool the next request goes to, read-your-writes
// floors, and re-running a read on the primary when its replica fails before answering.
#include "protocol/frame.h"
#include "protocol/writer.h"
#include "proxy/client/client_conn.h"
#include "proxy/core/log.h"
#include "proxy/core/process.h"
#include "proxy/core/worker.h"
#include "proxy/pool/pool.h"
#include "proxy/request/batch_scan.h"
#include "proxy/server/server_conn.h"
#include "router/lsn.h"
#include "router/route.h"

namespace pgs::proxy {

namespace {
router::ConsistencyMode consistency_of(conf::Consistency c) {
  switch (c) {
    case conf::Consistency::eventual:
      return router::ConsistencyMode::eventual;
    case conf::Consistency::primary:
      return router::ConsistencyMode::primary;
    default:
      return router::ConsistencyMode::session;
  }
}

router::LoadBalance policy_of(conf::LoadBalance p) {
  switch (p) {
    case conf::LoadBalance::round_robin:
      return router::LoadBalance::round_robin;
    case conf::LoadBalance::weighted:
      return router::LoadBalance::weighted;
    default:
      return router::LoadBalance::least_outstanding;
  }
}
// pgsidecar_routing_decisions_total{target, reason}: one per request routed outside a transaction (the
// statements of a transaction follow its first request, see route.h).
void count_decision(Worker& worker, const router::Decision& d) {
  auto& counts = worker.metrics().routing_decisions[d.primary() ? 0 : 1];
  size_t reason = static_cast<size_t>(d.reason);
  if (reason < counts.size()) ++counts[reason];
}
}  // namespace

Pool* ClientConn::choose_pool(const BufferedRequest& request) {
  batch_may_write_ = true;
  replica_batch_.clear();
  replica_batch_ok_ = false;
  if (!worker_.routing_enabled()) return primary_pool_;
  if (primary_pool_ != nullptr && primary_pool_->settings().pool_mode == conf::PoolMode::session) {
    // Session pooling: the server is the client's session (its SETs, temp tables, prepared statements,
    // its own writes), so everything runs there — on the primary, hints included.
    count_decision(worker_, router::Decision{router::kPrimary, router::Reason::session_pooling});
    return primary_pool_;
  }
  const conf::Config& config = *worker_.snapshot().config;
  BatchFacts facts = scan_batch(
      request, [this](std::string_view sql) { return worker_.classify(sql); },
      [this](std::string_view name) -> const std::string* {
        const PreparedStatement* ps = statements_.find(name);
        return ps != nullptr ? &ps->sql : nullptr;
      });
  router::RouteInput in;
  in.statement = facts.summary;
  if (!facts.complete) in.statement = router::StatementSummary{};  // unknown: a write
  if (const std::string* hint = request_.gucs.get("pgsidecar.route")) {
    if (auto h = router::parse_route_hint(*hint)) in.session.route_hint = *h;
  }
  in.session.lsn_floor = lsn_floor_;
  if (config.routing.read_your_writes == conf::ReadYourWrites::user) {
    uint64_t shared = worker_.process().lsn_floor(request_.database, request_.user).load(std::memory_order_acquire);
    in.session.lsn_floor = std::max(lsn_floor_, shared);
  }
  in.replicas = worker_.replica_view();
  in.counter = worker_.next_route_counter();
  router::RouteOptions options;
  options.consistency = consistency_of(config.routing.consistency);
  options.policy = policy_of(config.routing.load_balance);
  options.max_lag_bytes = config.routing.max_replica_lag_bytes;
  options.max_lag = config.routing.max_replica_lag;
  router::Decision d = router::route(in, options);
  batch_may_write_ = !facts.complete || facts.summary.writes;
  Pool* p = d.primary() ? nullptr : worker_.pool_for(request_.database, request_.user, d.target);
  if (!d.primary() && (p == nullptr || p->recently_refused())) {
    d = router::Decision{router::kPrimary, router::Reason::no_replica};  // this role cannot log in there
  }
  count_decision(worker_, d);
  if (d.primary()) return primary_pool_;
  replica_batch_ok_ = true;
  return p;
}


void ClientConn::reroute_to_primary() {
  if (state_ != State::waiting || primary_pool_ == nullptr) return;
  pool_ = primary_pool_;
  replica_batch_.clear();
  replica_batch_ok_ = false;
  Clock::time_point waiting_since = state_since_;
  set_state(State::waiting);  // to the end of the primary pool's waiting list
  state_since_ = waiting_since;  // still the same wait (query_wait_timeout, maxwait)
  pool_->request_server(this);
}

void ClientConn::release_lsn_hold() {
  if (!lsn_hold_) return;
  lsn_hold_ = false;
  release_output();
}

void ClientConn::on_server_lost(const std::string& message, bool between_requests) {
  release_lsn_hold();
  abort_capture();
  cache_lsn_probe_sent_ = false;
  send_commit_bump(std::nullopt);  // committed (the server said so); its LSN is unknown now
  if (!cache_writes_.empty() && worker_.result_cache() != nullptr) {
    // Whether the transaction committed is unknown (a COMMIT may have been in flight): invalidate.
    worker_.result_cache()->sync().bump(std::move(cache_writes_), nullptr);
    cache_writes_.clear();
  }
  bool pinned_state = tracker_.pinned() || !tracker_.probe_settings().empty();
  bool session_mode = pool_ != nullptr && pool_->settings().pool_mode == conf::PoolMode::session;
  server_ = nullptr;
  sql_sync_running_ = false;  // a held request is sent afresh to the next server
  sql_synced_ = false;
  statements_.on_server_gone();
  if (between_requests && !pinned_state && !session_mode && !shutting_down_) {
    // Nothing was running on it and the client has no state there: carry on with the next server.
    // Its last reply may still sit in the outbox (the server's goodbye came in the same read).
    flush();
    set_state(State::idle);
    if (rbuf_.size() > 0) process_session();
    return;
  }
  bool retry = pool_ != nullptr && pool_->is_replica() && !flushed_since_bind_ && replica_batch_ok_ &&
               !replica_batch_.empty() && !pinned_state;
  if (!retry) {
    fail("08006", "pgsidecar: server connection lost: " + message);
    return;
  }
  // Nothing of the reply reached the client: run the same read on the primary instead.
  LOG_INFO("replica failed (" + message + "): re-running a read on the primary");
  worker_.mark_replica_down(pool_->target_index());
  ++worker_.metrics().replica_retries;
  outbox().clear();  // held replies of the failed attempt
  pending_replay_ = std::move(replica_batch_);
  replica_batch_.clear();
  replica_batch_ok_ = false;
  pool_ = primary_pool_;
  set_state(State::waiting);
  pool_->request_server(this);
}

// Sends the request saved from a failed replica to the server just bound, as if it came now.
void ClientConn::replay_batch() {
  std::string bytes = std::move(pending_replay_);
  pending_replay_.clear();
  forward_saved_request(bytes);
}

// After a transaction that may have written on the primary: note the primary's WAL position, so this
// client's (and its pool's) reads go to a replica only once it has replayed that far, and so the
// cache's bump of its committed tables carries it (their commit LSN: cache/README.md).
void ClientConn::start_lsn_probe_if_needed(bool& started) {
  started = false;
  if (cache_lsn_probe_sent_) {  // the last probe ended without a row: bump without the LSN
    cache_lsn_probe_sent_ = false;
    send_commit_bump(std::nullopt);
  }
  if (pool_ == nullptr || pool_->is_replica() || !worker_.routing_enabled()) {
    send_commit_bump(std::nullopt);
    return;
  }
  bool for_routing = wrote_ && worker_.snapshot().config->routing.consistency == conf::Consistency::session;
  bool for_cache = commit_bump_waits_for_lsn();
  if (!for_routing && !for_cache) return;
  wrote_ = false;
  cache_lsn_probe_sent_ = for_cache;
  probe_kind_ = ProbeKind::lsn;
  server_->start_probe("SELECT pg_catalog.pg_current_wal_lsn()");
  started = true;
}

bool ClientConn::hold_reply_until_lsn_recorded() const {
  if (!wrote_ || server_ == nullptr || pool_ == nullptr || pool_->is_replica() || !server_->at_release_point()) {
    return false;
  }
  // Only transaction pooling runs the LSN probe (on_server_at_release_point): a session-mode reply
  // held for it would never be sent.
  if (pool_->settings().pool_mode != conf::PoolMode::transaction) return false;
  const conf::RoutingConfig& routing = worker_.snapshot().config->routing;
  return worker_.routing_enabled() && routing.consistency == conf::Consistency::session &&
         routing.read_your_writes == conf::ReadYourWrites::user;
}

void ClientConn::on_lsn_row(const std::vector<std::optional<std::string>>& values) {
  std::optional<router::Lsn> lsn;
  if (values.size() == 1 && values[0]) lsn = router::parse_lsn(*values[0]);
  if (cache_lsn_probe_sent_) {
    cache_lsn_probe_sent_ = false;
    send_commit_bump(lsn ? std::optional<uint64_t>(*lsn) : std::nullopt);
  }
  if (!lsn || worker_.snapshot().config->routing.consistency != conf::Consistency::session) return;
  lsn_floor_ = std::max(lsn_floor_, *lsn);
  auto& shared = worker_.process().lsn_floor(request_.database, request_.user);
  uint64_t cur = shared.load(std::memory_order_relaxed);
  while (cur < *lsn && !shared.compare_exchange_weak(cur, *lsn, std::memory_order_release)) {
  }
}

}  // namespace pgs::proxy
