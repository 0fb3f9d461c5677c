// What a worker publishes about itself for the admin console and /metrics: plain data, copied under a
// mutex once per tick (pools, counters, histograms) and once a second (client and server rows).
// Readers (admin sessions on any worker, the HTTP thread) only ever see these copies.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "cache/policy.h"
#include "proxy/auth/auth_cache.h"
#include "proxy/cache_session/cache_stats.h"
#include "proxy/session/session_tracker.h"

namespace pgs::proxy {

// Where a statement ran. X(enumerator, metric label).
#define PGS_TARGETS(X) X(primary, "primary") X(replica, "replica") X(cache, "cache")
enum class Target : uint8_t {
#define PGS_X(e, n) e,
  PGS_TARGETS(PGS_X)
#undef PGS_X
};
inline constexpr size_t kTargetCount = 3;
std::string_view target_name(Target t);

// Fixed-bucket latency histogram in seconds (Prometheus-style cumulative on rendering).
struct Histogram {
  // The union of the exported bucket bounds (proxy/obs/metrics_table.h: latency and wait buckets), so
  // that every exported cumulative count is exact (tests/admin checks the table against this list).
  static constexpr std::array<double, 20> kBounds = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                     0.01,    0.025,  0.05,    0.1,    0.25,  0.5,    1,
                                                     2.5,     5,      10,      30,     60,    120};
  std::array<uint64_t, kBounds.size() + 1> buckets{};  // last = +Inf; not cumulative here
  double sum = 0;
  uint64_t count = 0;
  void observe(double seconds);
  void merge(const Histogram& other);
};

// Why a login was refused (pgsidecar_login_failures_total{reason}), from the SQLSTATE the client got.
#define PGS_LOGIN_FAILURES(X)                                                                      \
  X(password, "password") X(not_allowed, "not_allowed") X(unknown_database, "unknown_database")   \
  X(too_many_clients, "too_many_clients") X(timeout, "timeout") X(protocol, "protocol")           \
  X(shutdown, "shutdown") X(other, "other")
enum class LoginFailure : uint8_t {
#define PGS_X(e, n) e,
  PGS_LOGIN_FAILURES(PGS_X)
#undef PGS_X
};
inline constexpr size_t kLoginFailureCount = 0
#define PGS_X(e, n) +1
    PGS_LOGIN_FAILURES(PGS_X)
#undef PGS_X
    ;
std::string_view login_failure_name(LoginFailure f);
// 28P01 password, 28000 not_allowed, 3D000 unknown_database, 53300 too_many_clients, 57P0x shutdown,
// 08P01 protocol (timeout when the message says client_login_timeout), anything else other.
LoginFailure login_failure_of(std::string_view sqlstate, std::string_view message);

// Why a connection was closed for a protocol violation (pgsidecar_protocol_errors_total{reason}).
enum class ProtocolError : uint8_t { invalid_startup, invalid_message, unsupported_message };
inline constexpr std::array<std::string_view, 3> kProtocolErrorNames = {"invalid_startup", "invalid_message",
                                                                        "unsupported_message"};

struct PoolStats {
  std::string database;
  std::string user;
  std::string node;  // "primary" or the replica's name: the servers this pool connects to
  std::string pool_mode;
  int size_limit = 0;       // this worker's share of pool_size
  int cl_active = 0;        // logged-in clients not waiting: bound to a server, or idle (PgBouncer's)
  int cl_waiting = 0;       // clients queued for a server
  int cl_idle = 0;          // of cl_active, those with no server (idle between transactions)
  int sv_active = 0;        // servers bound to a client
  int sv_idle = 0;          // servers idle in the pool
  int sv_being_canceled = 0;  // at a release point, held until the cancels sent to them are resolved
  int sv_login = 0;         // servers connecting or logging in
  int sv_total = 0;
  double maxwait_seconds = 0;  // longest current wait
  uint64_t xact_count = 0;
  uint64_t query_count = 0;
  uint64_t wait_count = 0;
  double xact_seconds = 0;
  double wait_seconds = 0;
  Histogram wait;
  void merge(const PoolStats& other);  // another worker's share of the same pool: sums, the longest wait
};

struct ClientRow {
  uint64_t id = 0;
  int worker = 0;
  std::string user, database, state, addr, application_name;
  double connected_seconds = 0;
  double state_seconds = 0;
  uint64_t server_id = 0;  // 0: none
  std::string pinned;      // comma-separated pin reasons, "" if not pinned
};

struct ServerRow {
  uint64_t id = 0;
  int worker = 0;
  std::string user, database, state, role, addr;
  int32_t backend_pid = 0;
  double connected_seconds = 0;
  double state_seconds = 0;
  uint64_t client_id = 0;  // 0: none
  uint64_t prepared_statements = 0;
};

// Everything one worker counts, in one struct that only its thread writes. publish_stats() copies it
// whole (under the stats mutex, adding the live connections' bytes) and aggregate() adds the workers'
// copies with merge(). Every field is exported on /metrics (admin/prom_metrics.cc), some also in SHOW.
struct WorkerMetrics {
  uint64_t clients_accepted = 0;
  std::array<uint64_t, kLoginFailureCount> login_failures{};              // by LoginFailure
  std::array<uint64_t, kProtocolErrorNames.size()> protocol_errors{};    // by ProtocolError
  uint64_t server_connects = 0;          // server connections opened
  uint64_t server_connect_failures = 0;  // ... that failed to connect or log in
  uint64_t servers_failed_check = 0;     // idle servers dropped at hand-over: they had sent something or closed
  uint64_t cancels_forwarded = 0;        // CancelRequests sent on to Postgres
  uint64_t session_probes = 0;           // session-state probes run (default-deny: state not provable)
  uint64_t replica_retries = 0;          // reads re-run on the primary after their replica failed
  // LSN probes: [0] sent behind the request that ends the transaction, [1] at the release point.
  std::array<uint64_t, 2> lsn_probes{};
  std::array<int64_t, kPinReasonCount> pinned_clients{};  // gauge, by PinReason
  std::array<Histogram, kTargetCount> query_duration;
  std::array<Histogram, kTargetCount> transaction_duration;
  std::array<uint64_t, kTargetCount> queries_by_target{};
  std::map<std::string, uint64_t> errors_by_class;  // SQLSTATE class (2 chars) -> count; at most 100 + "other"
  // Routing decisions: [0] primary, [1] replica, by router::Reason index (router::kReasonNames).
  std::array<std::array<uint64_t, 16>, 2> routing_decisions{};
  // Statement classifications (router::ClassifierCache): by text, by numeric shape, parsed. Filled in
  // at publication from the worker's classifier.
  uint64_t classified_hits = 0, classified_shape_hits = 0, classified_parsed = 0;
  AuthQueryCounts auth_query;   // filled in at publication from the worker's AuthQuery
  uint64_t auth_query_cached = 0;  // gauge: answers its cache holds
  CacheStats cache;  // redis_errors, evictions and readiness filled in at publication
  uint64_t bytes_received = 0, bytes_sent = 0;  // clients' bytes: closed ones here, live ones added at publication

  void count_error(std::string_view sqlstate);
  void count_protocol_error(ProtocolError e) { ++protocol_errors[static_cast<size_t>(e)]; }
  void count_login_failure(LoginFailure f) { ++login_failures[static_cast<size_t>(f)]; }
  void merge(const WorkerMetrics& other);
};

struct WorkerStats {
  int worker = 0;
  std::vector<PoolStats> pools;
  std::vector<ClientRow> clients;
  std::vector<ServerRow> servers;
  WorkerMetrics metrics;
  int client_count = 0;
};

}  // namespace pgs::proxy
