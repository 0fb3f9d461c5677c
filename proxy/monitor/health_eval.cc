#include "proxy/monitor/health_eval.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "router/lsn.h"

namespace pgs::monitor {
namespace {

std::optional<bool> parse_bool(std::string_view s) {
  if (s == "t") return true;
  if (s == "f") return false;
  return std::nullopt;
}

std::optional<double> parse_double(std::string_view s) {
  double v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

// A nullable LSN column: true when absent or well-formed (then stored in *out).
bool read_lsn(const std::optional<std::string_view>& col, std::optional<Lsn>* out) {
  if (!col) return true;
  auto lsn = router::parse_lsn(*col);
  if (!lsn) return false;
  *out = *lsn;
  return true;
}

NodeHealth judged_node(const NodeHealth& prev, const ProbeResult& probe, Reason verdict,
                       const MonitorOptions& options, std::chrono::steady_clock::time_point now) {
  NodeHealth n = prev;
  bool ok = verdict == Reason::ok;
  HealthState s{prev.checked_at != std::chrono::steady_clock::time_point{}, prev.healthy,
                prev.consecutive_ok, prev.consecutive_failures};
  s = step_health(s, ok, options.rise, options.fall);
  n.healthy = s.healthy;
  n.consecutive_ok = s.ok_streak;
  n.consecutive_failures = s.fail_streak;
  n.reason = verdict;
  n.reachable = probe.reached;
  n.checked_at = now;
  if (probe.reached) {
    n.error.clear();
    n.in_recovery = probe.in_recovery;
    n.replay_paused = probe.replay_paused;
    n.current_lsn = probe.current_lsn.value_or(0);
    n.replay_lsn = probe.replay_lsn.value_or(0);
    n.receive_lsn = probe.receive_lsn.value_or(0);
  } else if (!probe.error.empty()) {
    n.error = probe.error;  // a backoff round keeps the last real error
  }
  return n;
}

}  // namespace

std::optional<ProbeResult> probe_from_row(const ProbeRow& row) {
  ProbeResult r;
  r.reached = true;
  r.failure = Reason::ok;
  auto rec = row[0] ? parse_bool(*row[0]) : std::nullopt;
  if (!rec) return std::nullopt;
  r.in_recovery = *rec;
  if (!read_lsn(row[1], &r.current_lsn) || !read_lsn(row[2], &r.replay_lsn) ||
      !read_lsn(row[3], &r.receive_lsn)) {
    return std::nullopt;
  }
  if (row[4]) {
    r.replay_age_ms = parse_double(*row[4]);
    if (!r.replay_age_ms) return std::nullopt;
  }
  if (row[5]) {
    auto paused = parse_bool(*row[5]);
    if (!paused) return std::nullopt;
    r.replay_paused = *paused;
  }
  return r;
}

Lag compute_lag(const ProbeResult& replica, Lsn primary_lsn) {
  Lag lag;
  Lsn replay = replica.replay_lsn.value_or(0);
  Lsn head = std::max(primary_lsn, replica.receive_lsn.value_or(0));
  lag.bytes = head > replay ? head - replay : 0;
  bool replayed_all_received = replica.receive_lsn && *replica.receive_lsn <= replay;
  bool reached_primary = primary_lsn != 0 && replay >= primary_lsn;
  if (replayed_all_received || reached_primary || !replica.replay_age_ms) return lag;
  double ms = std::max(0.0, *replica.replay_age_ms);
  lag.time = Millis(static_cast<int64_t>(std::min(ms, 1e15)));
  return lag;
}

Reason judge_primary(const ProbeResult& probe) {
  if (!probe.reached) return probe.failure;
  if (probe.in_recovery) return Reason::in_recovery;
  return Reason::ok;
}

Reason judge_replica(const ProbeResult& probe, const Lag& lag, const LagLimits& limits) {
  if (!probe.reached) return probe.failure;
  if (!probe.in_recovery) return Reason::not_in_recovery;
  if (limits.max_lag_bytes != 0 && lag.bytes > limits.max_lag_bytes) return Reason::lagging_bytes;
  if (limits.max_lag.count() != 0 && lag.time > limits.max_lag) return Reason::lagging_time;
  return Reason::ok;
}

HealthState step_health(HealthState s, bool check_ok, int rise, int fall) {
  uint32_t need_up = static_cast<uint32_t>(std::max(rise, 1));
  uint32_t need_down = static_cast<uint32_t>(std::max(fall, 1));
  s.ok_streak = check_ok ? s.ok_streak + 1 : 0;
  s.fail_streak = check_ok ? 0 : s.fail_streak + 1;
  if (!s.checked) {
    s.checked = true;
    s.healthy = check_ok;
  } else if (s.healthy && s.fail_streak >= need_down) {
    s.healthy = false;
  } else if (!s.healthy && s.ok_streak >= need_up) {
    s.healthy = true;
  }
  return s;
}

HealthSnapshot apply_round(const HealthSnapshot& prev, const ProbeResult& primary,
                           std::span<const ProbeResult> replicas, const MonitorOptions& options,
                           std::chrono::steady_clock::time_point now) {
  HealthSnapshot next;
  next.generation = prev.generation + 1;
  next.taken_at = now;
  next.primary_reachable = primary.reached;
  // This round's value when there is one, even if lower (a re-created cluster starts over); else the last.
  next.primary_lsn = primary.current_lsn.value_or(prev.primary_lsn);
  next.primary = judged_node(prev.primary, primary, judge_primary(primary), options, now);
  LagLimits limits{options.max_lag_bytes, options.max_lag};
  next.replicas.reserve(prev.replicas.size());
  for (size_t i = 0; i < prev.replicas.size(); ++i) {
    ProbeResult none;
    none.error = "no probe result";
    const ProbeResult& probe = i < replicas.size() ? replicas[i] : none;
    Lag lag = compute_lag(probe, next.primary_lsn);
    // Caught up with this round's primary LSN: the probes ran at most check_timeout before `now`.
    auto caught_up_at = prev.replicas[i].caught_up_at;
    if (probe.reached && primary.current_lsn && probe.replay_lsn && *probe.replay_lsn >= *primary.current_lsn) {
      caught_up_at = now - std::chrono::duration_cast<std::chrono::steady_clock::duration>(options.check_timeout);
    }
    if (lag.time.count() > 0 && caught_up_at != std::chrono::steady_clock::time_point{}) {
      lag.time = std::min(lag.time, std::chrono::duration_cast<Millis>(now - caught_up_at));
    }
    NodeHealth n = judged_node(prev.replicas[i], probe, judge_replica(probe, lag, limits), options, now);
    n.caught_up_at = caught_up_at;
    if (probe.reached) {
      n.lag_bytes = lag.bytes;
      n.lag = lag.time;
    }
    next.replicas.push_back(std::move(n));
  }
  return next;
}

HealthSnapshot initial_snapshot(const MonitorNode& primary, std::span<const MonitorNode> replicas) {
  HealthSnapshot s;
  s.primary.node = primary;
  s.primary.is_primary = true;
  for (const MonitorNode& r : replicas) {
    NodeHealth n;
    n.node = r;
    s.replicas.push_back(std::move(n));
  }
  return s;
}

std::vector<int> changed_nodes(const HealthSnapshot& prev, const HealthSnapshot& next) {
  auto changed = [](const NodeHealth& a, const NodeHealth& b) {
    bool first = a.checked_at == std::chrono::steady_clock::time_point{} &&
                 b.checked_at != std::chrono::steady_clock::time_point{};
    return first || a.healthy != b.healthy;
  };
  std::vector<int> out;
  if (changed(prev.primary, next.primary)) out.push_back(-1);
  for (size_t i = 0; i < prev.replicas.size() && i < next.replicas.size(); ++i) {
    if (changed(prev.replicas[i], next.replicas[i])) out.push_back(static_cast<int>(i));
  }
  return out;
}

}  // namespace pgs::monitor
