// The monitor's decisions as pure functions: reading the probe row, computing lag, judging a node and
// the up/down hysteresis, and folding one round of probe results into the next snapshot. No libpq,
// no clocks read here (the caller passes `now`), so every rule is table-testable.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/monitor/health_types.h"

namespace pgs::monitor {

// The statement run on every node, primary or replica. Functions that fail outside recovery (or inside
// it) sit behind CASE, which Postgres evaluates lazily for volatile functions. Columns:
//  0 pg_is_in_recovery()  1 pg_current_wal_lsn() (primary only)  2 pg_last_wal_replay_lsn()
//  3 pg_last_wal_receive_lsn()  4 ms since pg_last_xact_replay_timestamp()  5 pg_is_wal_replay_paused()
inline constexpr std::string_view kProbeSql =
    "SELECT pg_is_in_recovery(),"
    " CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn() END,"
    " pg_last_wal_replay_lsn(), pg_last_wal_receive_lsn(),"
    " (extract(epoch FROM now() - pg_last_xact_replay_timestamp()) * 1000)::float8,"
    " CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() ELSE false END";
inline constexpr size_t kProbeColumns = 6;

// What one check of one node found.
struct ProbeResult {
  bool reached = false;                // connected and the probe returned its row
  Reason failure = Reason::unreachable;  // when !reached: unreachable, timeout, query_failed or backoff
  std::string error;                   // when !reached: why (libpq's message, trimmed)
  bool in_recovery = false;
  bool replay_paused = false;
  std::optional<Lsn> current_lsn;      // primary
  std::optional<Lsn> replay_lsn;       // standby
  std::optional<Lsn> receive_lsn;      // standby with a WAL receiver
  std::optional<double> replay_age_ms; // now() - last replayed commit's timestamp (may be negative: clocks)
};

// The probe row as text values (nullopt = SQL NULL). nullopt when a value is malformed.
using ProbeRow = std::array<std::optional<std::string_view>, kProbeColumns>;
std::optional<ProbeResult> probe_from_row(const ProbeRow& row);

struct Lag {
  uint64_t bytes = 0;
  Millis time{0};
};
// Replica lag. bytes = head - replay, where head = max(primary_lsn, receive LSN): the primary's LSN as
// last seen (it may be a round old when the primary is unreachable) and never less than what the
// replica itself has received. time = now() - last replayed commit time, but 0 once the replica has
// replayed all it received (receive <= replay; <= because a restarted WAL receiver reports the start
// of its segment) or reached primary_lsn: an idle primary commits nothing, so the timestamp ages
// without any lag. Negative ages (clock skew) count as 0.
Lag compute_lag(const ProbeResult& replica, Lsn primary_lsn);

struct LagLimits {
  uint64_t max_lag_bytes = 0;  // 0 = no limit
  Millis max_lag{0};           // 0 = no limit
};
// The verdict of one check: ok, or the first reason it is not.
Reason judge_primary(const ProbeResult& probe);
Reason judge_replica(const ProbeResult& probe, const Lag& lag, const LagLimits& limits);

// Hysteresis: a node that was never checked takes its first verdict at once; an up node goes down
// after `fall` consecutive bad checks, a down node comes back after `rise` consecutive good ones.
struct HealthState {
  bool checked = false;
  bool healthy = false;
  uint32_t ok_streak = 0;
  uint32_t fail_streak = 0;
};
HealthState step_health(HealthState state, bool check_ok, int rise, int fall);

// Folds one round into the next snapshot: `primary` and `replicas` are this round's probe results in
// the order of prev.primary / prev.replicas; the generation is prev's + 1; taken_at = now.
HealthSnapshot apply_round(const HealthSnapshot& prev, const ProbeResult& primary,
                           std::span<const ProbeResult> replicas, const MonitorOptions& options,
                           std::chrono::steady_clock::time_point now);

// A snapshot of generation 0 for these nodes: nothing checked, nothing healthy.
HealthSnapshot initial_snapshot(const MonitorNode& primary, std::span<const MonitorNode> replicas);

// Nodes whose `healthy` changed between two snapshots, or that got their first verdict in `next`.
// Indices: -1 = primary, i >= 0 = replicas[i].
std::vector<int> changed_nodes(const HealthSnapshot& prev, const HealthSnapshot& next);

}  // namespace pgs::monitor
