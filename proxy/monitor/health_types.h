// Plain data of the replica health/lag monitor: what it is given (MonitorOptions, MonitorNode) and what
// it publishes (HealthSnapshot). No libpq here, so workers can include it cheaply.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pgs::monitor {

using Lsn = uint64_t;  // pg_lsn as an integer; 0 = none / unknown (same as router::Lsn)
using Millis = std::chrono::milliseconds;

// One Postgres server to watch. host may be a name, an IP address or a Unix socket directory; a name
// is resolved by libpq synchronously (getaddrinfo) on the monitor thread, at each connect (so a failover
// that moves the name is followed), not on a worker's loop: a DNS server that does not answer delays that
// round by the resolver's own timeouts (resolv.conf), never the proxy's traffic.
struct MonitorNode {
  std::string name;  // label for logs and metrics ("primary", "replica1")
  std::string host = "127.0.0.1";
  uint16_t port = 5432;
  uint32_t weight = 1;  // replicas: load-balancing weight, passed through to router::ReplicaSnapshot
  // This node's libpq TLS keywords (sslmode, sslrootcert: its server_tls), added to the conninfo.
  std::vector<std::pair<std::string, std::string>> tls_conninfo;
};

// How the monitor logs in and what it calls healthy. The lead maps the config to this struct.
struct MonitorOptions {
  std::string user;      // a role with pg_monitor (dev: pgsidecar / pgsidecar-dev)
  std::string password;  // empty: libpq's own sources (PGPASSWORD, .pgpass) apply
  std::string dbname = "postgres";
  Millis interval{1000};         // a check round starts this often (> 0); [routing].health_check_interval
  // While nobody asked for fresh positions (HealthMonitor::want_fresh) within the last idle_interval,
  // rounds start this often instead; <= interval: always `interval`. [routing].health_check_idle_interval
  Millis idle_interval{0};
  Millis check_timeout{1000};    // connect + query deadline of one round, all nodes in parallel (> 0)
  Millis max_lag{10000};         // replay delay above this: replica unhealthy; 0 = no limit
  uint64_t max_lag_bytes = 16u << 20;  // WAL bytes behind the primary above this: unhealthy; 0 = no limit
  int rise = 2;  // consecutive good checks that bring a node that was down back up (>= 1)
  int fall = 1;  // consecutive bad checks that take a node that was up out (>= 1)
  Millis reconnect_backoff_max{5000};  // reconnect delay doubles from one interval up to this
  std::string application_name = "pgsidecar-monitor";
  // Further libpq keywords (sslmode, sslrootcert, ...), passed as given.
  std::vector<std::pair<std::string, std::string>> extra_conninfo;
};

// Why a node is (un)healthy after its last check. X-macro: one list makes the enum and its names.
#define PGS_MONITOR_REASONS(X)                                                                      \
  X(unknown)          /* not checked yet */                                                         \
  X(ok)                                                                                             \
  X(unreachable)      /* connect or login failed, or the connection broke */                        \
  X(timeout)          /* no answer within check_timeout */                                          \
  X(query_failed)     /* connected, but the probe statement failed (permissions?) */                \
  X(backoff)          /* down, waiting before the next reconnect attempt */                         \
  X(not_in_recovery)  /* a replica that is not a standby (promoted?) */                             \
  X(in_recovery)      /* the primary is a standby */                                                \
  X(lagging_bytes)    /* lag_bytes > max_lag_bytes */                                               \
  X(lagging_time)     /* lag > max_lag */

enum class Reason : uint8_t {
#define PGS_X(e) e,
  PGS_MONITOR_REASONS(PGS_X)
#undef PGS_X
};
inline constexpr std::array kReasonNames = {
#define PGS_X(e) std::string_view{#e},
    PGS_MONITOR_REASONS(PGS_X)
#undef PGS_X
};
inline constexpr std::string_view reason_name(Reason r) { return kReasonNames[static_cast<size_t>(r)]; }

// One node as of the last round. LSN and lag fields are 0 when unknown or not applicable, and keep
// the values of the last successful check while the node is unreachable.
struct NodeHealth {
  MonitorNode node;
  bool is_primary = false;   // configured role (the primary slot), not what the server says
  bool healthy = false;      // after hysteresis: the primary may take writes, a replica may take reads
  bool reachable = false;    // the last check connected and ran the probe
  bool in_recovery = false;  // pg_is_in_recovery() at the last successful check
  bool replay_paused = false;  // pg_is_wal_replay_paused() (replicas)
  Reason reason = Reason::unknown;  // verdict of the last check (ok even while rise is still counting)
  std::string error;         // libpq's message of the last failure ("" when the last check was ok)
  Lsn current_lsn = 0;       // primary: pg_current_wal_lsn()
  Lsn replay_lsn = 0;        // replica: pg_last_wal_replay_lsn()
  Lsn receive_lsn = 0;       // replica: pg_last_wal_receive_lsn()
  uint64_t lag_bytes = 0;    // replica: primary LSN - replay LSN (see compute_lag)
  Millis lag{0};             // replica: replay delay; 0 when everything received is replayed
  uint32_t consecutive_ok = 0;        // good checks in a row (hysteresis)
  uint32_t consecutive_failures = 0;  // bad checks in a row
  std::chrono::steady_clock::time_point checked_at{};  // end of the last check (epoch = never)
  // Replica: no later than the last time it was seen to have replayed up to the primary's LSN read in
  // the same round (epoch = never). WAL it has not replayed now was written after that, so its replay
  // delay is at most the time since (compute_lag's replay age overstates it after an idle primary).
  std::chrono::steady_clock::time_point caught_up_at{};
};

// Immutable once published; readers share it through std::shared_ptr<const HealthSnapshot>.
struct HealthSnapshot {
  uint64_t generation = 0;     // completed rounds; 0 = nothing checked yet (all replicas unhealthy)
  std::chrono::steady_clock::time_point taken_at{};
  bool primary_reachable = false;  // the last round reached the primary (raw, no hysteresis)
  Lsn primary_lsn = 0;         // primary LSN of the last round that read one (this round, if reachable)
  NodeHealth primary;
  std::vector<NodeHealth> replicas;  // same order as given to the monitor (= router replica index)
};

}  // namespace pgs::monitor
