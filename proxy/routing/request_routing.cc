#include "proxy/routing/request_routing.h"

#include <algorithm>

#include "router/classify.h"

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

bool is_request_end(char type) { return type == 'Q' || type == 'S'; }  // a Query, or a batch's Sync
}  // namespace

RoutingPolicy RoutingPolicy::from(const conf::RoutingConfig& routing, bool enabled) {
  return RoutingPolicy{.enabled = enabled,
                       .session_consistency = routing.consistency == conf::Consistency::session,
                       .floor_per_user = routing.read_your_writes == conf::ReadYourWrites::user};
}

router::RouteOptions route_options(const conf::RoutingConfig& routing) {
  router::RouteOptions options;
  options.consistency = consistency_of(routing.consistency);
  options.policy = policy_of(routing.load_balance);
  options.max_lag_bytes = routing.max_replica_lag_bytes;
  options.max_lag = routing.max_replica_lag;
  return options;
}

void raise_floor(std::atomic<uint64_t>& floor, router::Lsn lsn) {
  uint64_t cur = floor.load(std::memory_order_relaxed);
  while (cur < lsn && !floor.compare_exchange_weak(cur, lsn, std::memory_order_release)) {
  }
}

std::optional<router::Decision> RequestRouting::route(const RoutingPolicy& policy, const router::RouteOptions& options,
                                                      bool session_pooling, RouteSources& sources) {
  may_write_ = true;
  drop_replica_request();
  if (!policy.enabled) return std::nullopt;
  if (session_pooling) {
    // The server is the client's session (its SETs, temp tables, prepared statements, its own writes),
    // so everything runs there: on the primary, hints included.
    return router::Decision{router::kPrimary, router::Reason::session_pooling};
  }
  const BatchFacts facts = sources.scan_request();
  router::RouteInput in;
  in.statement = facts.complete ? facts.summary : router::StatementSummary{};  // unknown: a write
  if (const std::string* hint = sources.route_hint_setting()) {
    if (auto h = router::parse_route_hint(*hint)) in.session.route_hint = *h;
  }
  in.session.lsn_floor = lsn_floor_;
  if (policy.floor_per_user) in.session.lsn_floor = std::max(lsn_floor_, sources.shared_lsn_floor());
  in.replicas = sources.replicas();
  in.replicas_age = sources.replicas_age();
  in.counter = sources.next_counter();
  router::Decision d = router::route(in, options);
  may_write_ = !facts.complete || facts.summary.writes;
  if (!d.primary() && !sources.replica_usable(d.target)) {
    d = router::Decision{router::kPrimary, router::Reason::no_replica};  // this role cannot log in there
  }
  replica_request_kept_ = !d.primary();
  return d;
}

std::string RequestRouting::on_server_bound(bool on_replica) {
  requests_ = 0;
  flushed_since_bind_ = false;
  wrote_ = may_write_ && !on_replica;
  std::string replay = std::move(pending_replay_);
  pending_replay_.clear();
  return replay;
}

void RequestRouting::note_request_sent(bool on_replica) {
  // A second request in the same binding: the first one left a transaction open, whose later statements
  // were not routed (route.h rule 1) and may write.
  if (++requests_ > 1 && !on_replica) wrote_ = true;
}

void RequestRouting::on_forwarded(const protocol::Frame& f, bool on_replica) {
  keep_for_retry(f);
  keep_for_replica_retry(f);
  if (is_request_end(f.type)) note_request_sent(on_replica);
}

void RequestRouting::on_forwarded_unbuffered(char type, bool on_replica) {
  batch_complete_ = false;
  batch_capturable_ = false;
  last_batch_.clear();
  drop_replica_request();
  if (type == 'Q') note_request_sent(on_replica);
}

void RequestRouting::keep_for_retry(const protocol::Frame& f) {
  // Only an extended-protocol batch has a plan that can go stale; COPY data and function calls are not
  // sent twice.
  if (f.type == 'Q' || f.type == 'F' || f.type == 'd' || f.type == 'c' || f.type == 'f') return;
  if (batch_complete_) {  // the first message of the next batch
    last_batch_.clear();
    batch_complete_ = false;
    batch_capturable_ = true;
  }
  if (batch_capturable_) {
    if (last_batch_.size() + f.size > max_replay_bytes_) {
      batch_capturable_ = false;
      last_batch_.clear();
    } else {
      last_batch_.append(protocol::as_string_view(f.whole));
    }
  }
  if (f.type == 'S') batch_complete_ = true;
}

void RequestRouting::keep_for_replica_retry(const protocol::Frame& f) {
  if (!replica_request_kept_) return;
  if (replica_request_.size() + f.size > max_replay_bytes_) {
    drop_replica_request();
  } else {
    replica_request_.append(protocol::as_string_view(f.whole));
  }
}

std::string RequestRouting::take_retry_batch() {
  std::string bytes = std::move(last_batch_);
  last_batch_.clear();
  batch_complete_ = true;
  return bytes;
}

ReplyStep RequestRouting::on_server_bytes(const ReplyFacts& reply, const RoutingPolicy& policy) {
  // A read on a replica keeps its reply until it is complete (or large): if the replica dies first, the
  // read is re-run on the primary and the client never sees the failed attempt.
  if (reply.bound && reply.on_replica && replica_request_kept_ && reply.replies_pending > 0 &&
      reply.outbox_bytes < reply.keep_limit) {
    return ReplyStep::keep;
  }
  ReplyStep step = ReplyStep::flush;
  if (hold_for_probe_behind_ && !lsn_hold_ && reply.bound && !reply.on_replica) {
    hold_for_probe_behind_ = false;  // the probe sent behind the request has not answered yet
    lsn_hold_ = true;
    step = ReplyStep::hold_for_lsn;
  }
  // read_your_writes = "user": the end of a transaction that may have written reaches the client only
  // after its LSN is recorded, so another connection of the same user that hears of the commit reads it.
  // Only transaction pooling runs the LSN probe (at the release point): a session-mode reply held for it
  // would never be sent.
  if (!lsn_hold_ && wrote_ && reply.bound && !reply.on_replica && reply.at_release_point &&
      reply.transaction_pooling && policy.enabled && policy.session_consistency && policy.floor_per_user) {
    lsn_hold_ = true;
    step = ReplyStep::hold_for_lsn;
  }
  if (reply.outbox_bytes > 0) flushed_since_bind_ = true;
  return step;
}

bool RequestRouting::retry_on_primary(bool on_replica, bool pinned_state) {
  if (!on_replica || flushed_since_bind_ || !replica_request_kept_ || replica_request_.empty() || pinned_state) {
    return false;
  }
  pending_replay_ = std::move(replica_request_);
  drop_replica_request();
  return true;
}

LsnProbe RequestRouting::lsn_probe_at_release(const RoutingPolicy& policy, bool on_primary, bool cache_wants_lsn) {
  if (!on_primary || !policy.enabled) return LsnProbe::unavailable;
  const bool for_routing = wrote_ && policy.session_consistency;
  if (!for_routing && !cache_wants_lsn) return LsnProbe::not_needed;
  wrote_ = false;
  lsn_probe_ = true;
  return LsnProbe::start;
}

LsnProbe RequestRouting::lsn_probe_behind_request(const RoutingPolicy& policy, bool transaction_pooling,
                                                  bool cache_wants_lsn) {
  // Only where the release point would probe (a transaction pool's primary server, routing on).
  if (!policy.enabled || !transaction_pooling || lsn_probe_) return LsnProbe::not_needed;
  const bool for_routing = wrote_ && policy.session_consistency;
  if (!for_routing && !cache_wants_lsn) return LsnProbe::not_needed;
  wrote_ = false;
  lsn_probe_ = true;
  hold_for_probe_behind_ = for_routing && policy.floor_per_user;  // as on_server_bytes() at the release point
  return LsnProbe::start;
}

LsnRow RequestRouting::on_lsn_row(const std::vector<std::optional<std::string>>& values, const RoutingPolicy& policy) {
  LsnRow row;
  lsn_probe_ = false;
  if (values.size() == 1 && values[0]) row.lsn = router::parse_lsn(*values[0]);
  if (row.lsn && policy.session_consistency) {
    lsn_floor_ = std::max(lsn_floor_, *row.lsn);
    row.raise_shared_floor = true;
  }
  row.release_output = end_lsn_hold();  // also when the row came in the same read as the reply
  return row;
}

bool RequestRouting::end_lsn_hold() {
  const bool held = lsn_hold_;
  lsn_hold_ = false;
  hold_for_probe_behind_ = false;
  return held;
}

}  // namespace pgs::proxy
