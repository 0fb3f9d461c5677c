#include "router/route.h"

#include <algorithm>
#include <vector>

namespace pgs::router {

StatementSummary summarize(const Classification& c) {
  StatementSummary s;
  s.kind = c.kind;
  s.read_only = c.read_only;
  s.writes = c.writes();
  for (const auto& st : c.statements) s.writes = s.writes || st.writes();
  s.parse_error = c.flags.parse_error;
  s.oversized = c.flags.oversized;
  bool readable = c.kind == Kind::select || c.kind == Kind::values || c.kind == Kind::table ||
                  c.kind == Kind::show || c.kind == Kind::explain;
  s.replica_capable = readable && !s.writes && !c.flags.any_row_lock() && !c.flags.session_state &&
                      !c.flags.writes_temp && !s.parse_error && !s.oversized;
  s.hint = c.hint.route;
  s.begins_transaction = !c.statements.empty() && c.statements.front().kind == Kind::begin;
  s.serializable = c.flags.serializable;
  s.statements = static_cast<uint32_t>(std::max<size_t>(c.statements.size(), 1));
  return s;
}

void combine_statements(StatementSummary& acc, const StatementSummary& next) {
  if (acc.statements == 1 && acc.kind == Kind::begin && !acc.serializable && next.kind == Kind::set_transaction &&
      next.read_only) {
    acc.kind = Kind::begin_read_only;  // BEGIN; SET TRANSACTION READ ONLY
    acc.read_only = true;
    acc.begins_transaction = false;
  }
  acc.read_only = acc.read_only && next.read_only;
  acc.writes = acc.writes || next.writes;
  acc.replica_capable = acc.replica_capable && next.replica_capable;
  acc.parse_error = acc.parse_error || next.parse_error;
  acc.oversized = acc.oversized || next.oversized;
  acc.serializable = acc.serializable || next.serializable;
  if (acc.hint == RouteHint::none) acc.hint = next.hint;
  acc.statements += next.statements;
}

namespace {

Decision primary(Reason r) { return Decision{kPrimary, r}; }

bool lag_ok(const ReplicaSnapshot& r, const RouteOptions& o, std::chrono::milliseconds age) {
  if (o.max_lag_bytes != 0 && r.lag_bytes > o.max_lag_bytes) return false;
  if (o.max_lag.count() != 0 && r.lag + age > o.max_lag) return false;
  return true;
}

// least_outstanding: lowest outstanding/weight (compared by cross-multiplying); ties rotate with the
// counter so equal replicas share the load.
int least_outstanding(const std::vector<int>& c, std::span<const ReplicaSnapshot> rs, uint64_t counter) {
  std::vector<int> best;
  for (int i : c) {
    if (best.empty()) {
      best.push_back(i);
      continue;
    }
    const auto& a = rs[i];
    const auto& b = rs[best.front()];
    uint64_t lhs = uint64_t{a.outstanding} * b.weight, rhs = uint64_t{b.outstanding} * a.weight;
    if (lhs < rhs) best.assign(1, i);
    else if (lhs == rhs) best.push_back(i);
  }
  return best[counter % best.size()];
}

int weighted(const std::vector<int>& c, std::span<const ReplicaSnapshot> rs, uint64_t counter) {
  uint64_t total = 0;
  for (int i : c) total += rs[i].weight;
  uint64_t pos = counter % total;
  for (int i : c) {
    if (pos < rs[i].weight) return i;
    pos -= rs[i].weight;
  }
  return c.back();
}

Decision pick_replica(const RouteInput& in, const RouteOptions& o, Reason ok) {
  if (in.replicas.empty()) return primary(Reason::no_replica);
  std::vector<int> candidates;
  Reason why = Reason::no_replica;  // the filter that removed the last candidate
  for (size_t i = 0; i < in.replicas.size(); ++i) {
    const ReplicaSnapshot& r = in.replicas[i];
    if (r.weight == 0 || (!r.healthy && !r.lagging)) continue;
    if (r.lagging || !lag_ok(r, o, in.replicas_age)) {
      if (why == Reason::no_replica) why = Reason::replica_lagging;
      continue;
    }
    if (o.consistency == ConsistencyMode::session && in.session.lsn_floor != 0 &&
        r.replay_lsn < in.session.lsn_floor) {
      why = Reason::lsn_floor;
      continue;
    }
    candidates.push_back(static_cast<int>(i));
  }
  if (candidates.empty()) return primary(why);
  int chosen = 0;
  switch (o.policy) {
    case LoadBalance::least_outstanding: chosen = least_outstanding(candidates, in.replicas, in.counter); break;
    case LoadBalance::round_robin: chosen = candidates[in.counter % candidates.size()]; break;
    case LoadBalance::weighted: chosen = weighted(candidates, in.replicas, in.counter); break;
  }
  return Decision{chosen, ok};
}

}  // namespace

Decision route(const RouteInput& in, const RouteOptions& o) {
  const SessionView& s = in.session;
  const StatementSummary& st = in.statement;
  if (s.bound_target) return Decision{*s.bound_target, s.pinned ? Reason::pinned : Reason::in_transaction};
  if (s.in_transaction && !s.transaction_read_only) return primary(Reason::in_transaction);
  if (st.begins_transaction) return primary(Reason::in_transaction);
  if (o.consistency == ConsistencyMode::primary) return primary(Reason::consistency_primary);
  RouteHint hint = st.hint != RouteHint::none ? st.hint : s.route_hint;
  if (hint == RouteHint::primary) return primary(Reason::hint_primary);
  if (st.parse_error) return primary(Reason::parse_error);
  if (st.oversized) return primary(Reason::oversized);
  if (st.writes) return primary(Reason::write);
  if (st.kind == Kind::begin_read_only && !o.read_only_transactions_on_replicas) {
    return primary(Reason::not_read_only);
  }
  if (st.read_only) return pick_replica(in, o, hint == RouteHint::replica ? Reason::hint_replica : Reason::read_only);
  if (hint == RouteHint::replica && st.replica_capable) return pick_replica(in, o, Reason::hint_replica);
  return primary(Reason::not_read_only);
}

}  // namespace pgs::router
