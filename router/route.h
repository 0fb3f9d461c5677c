// route(): where one statement (or transaction start) runs. Pure: a function of the statement's
// classification, the client's session and a snapshot of replica health the caller took.
//
// Rules, in order (the first that applies decides):
//  1. The client already holds a server (pinned session state, or inside a transaction): stay there.
//  2. In a read-write transaction, or starting one (the request begins with BEGIN / START TRANSACTION
//     without READ ONLY): primary, reason in_transaction.
//  3. consistency = primary: primary.
//  4. Route hint (statement comment first, else SET pgsidecar.route): primary -> primary.
//  5. Parse error / oversized: primary. Writes (or may write): primary.
//  6. Not provably read-only: primary, unless the hint says replica and the statement writes nothing
//     and takes no row locks and changes no session state (replica_capable).
//  7. A replica, among the healthy ones within max lag (its measured lag plus the age of the measure:
//     a replica not probed for a while is not assumed to have kept up) and (consistency = session) at
//     or past the client's LSN floor, chosen by the load-balance policy; none left: primary, with the
//     reason of the filter that removed the last candidate (no_replica, replica_lagging, lsn_floor). A
//     replica the monitor reports as lagging (ReplicaSnapshot::lagging) counts as lagging, not as down.
// BEGIN READ ONLY counts as read-only (rule 7): the whole transaction may then run on a replica. So does
// BEGIN directly followed by SET TRANSACTION READ ONLY in the same request (one Query string, or one
// extended-protocol batch up to Sync): classify() and combine_statements() make that a begin_read_only.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "router/classification.h"
#include "router/lsn.h"

namespace pgs::router {

#define PGS_ROUTER_REASONS(X)                                                             \
  X(read_only) X(hint_primary) X(hint_replica) X(in_transaction) X(pinned) X(write)       \
  X(lsn_floor) X(replica_lagging) X(no_replica) X(not_read_only) X(parse_error)           \
  X(oversized) X(consistency_primary) X(session_pooling)

enum class Reason : uint8_t {
#define PGS_X(e) e,
  PGS_ROUTER_REASONS(PGS_X)
#undef PGS_X
};

// Names for metrics labels and logs; kAllReasons lists every value once (declare counters from it).
inline constexpr std::array kReasonNames = {
#define PGS_X(e) std::string_view{#e},
    PGS_ROUTER_REASONS(PGS_X)
#undef PGS_X
};
inline constexpr std::array kAllReasons = {
#define PGS_X(e) Reason::e,
    PGS_ROUTER_REASONS(PGS_X)
#undef PGS_X
};
inline constexpr std::string_view reason_name(Reason r) { return kReasonNames[static_cast<size_t>(r)]; }

enum class ConsistencyMode : uint8_t { session, eventual, primary };
enum class LoadBalance : uint8_t { least_outstanding, round_robin, weighted };

inline constexpr int kPrimary = -1;

// What route() needs from a Classification (cheap to copy; see summarize()).
struct StatementSummary {
  Kind kind = Kind::other;
  bool read_only = false;
  bool writes = true;            // StatementClass::writes()
  bool replica_capable = false;  // writes nothing, no row locks, no session state: a replica hint is OK
  bool parse_error = false;
  bool oversized = false;
  RouteHint hint = RouteHint::none;  // from the leading comment
  bool begins_transaction = false;   // the first statement is BEGIN / START TRANSACTION (read-write)
  bool serializable = false;         // some statement asks for SERIALIZABLE (a hot standby refuses it)
  uint32_t statements = 1;           // how many statements were combined into this summary
};
StatementSummary summarize(const Classification& c);

// Adds the next statement of the same request (an extended-protocol batch) to `acc`: read-only only if
// both are, a write if either is, the first hint wins. A lone BEGIN followed by SET TRANSACTION READ
// ONLY becomes a read-only transaction start (begin_read_only), as classify() does within one string.
void combine_statements(StatementSummary& acc, const StatementSummary& next);

struct SessionView {
  bool in_transaction = false;        // last ReadyForQuery was 'T' or 'E'
  bool transaction_read_only = false; // the open transaction was started READ ONLY
  std::optional<int> bound_target;    // server the client holds now (kPrimary or replica index)
  bool pinned = false;                // bound_target is held for session state (LISTEN, temp table...)
  RouteHint route_hint = RouteHint::none;  // SET pgsidecar.route
  Lsn lsn_floor = 0;                  // primary LSN of the client's last committed write (0 = none)
};

struct ReplicaSnapshot {
  bool healthy = false;
  Lsn replay_lsn = 0;
  uint64_t lag_bytes = 0;
  std::chrono::milliseconds lag{0};
  uint32_t outstanding = 0;  // queries or transactions in flight on it (this worker's view)
  uint32_t weight = 1;       // 0 = takes no reads
  bool lagging = false;      // reachable standby, but the monitor's last check found it beyond max lag
};

struct RouteInput {
  StatementSummary statement;
  SessionView session;
  std::span<const ReplicaSnapshot> replicas;
  // Time since the monitor measured `replicas`: a replica's replay delay now is at most its measured lag
  // plus this (it may have replayed nothing since), and max_lag is held against that bound.
  std::chrono::milliseconds replicas_age{0};
  uint64_t counter = 0;  // increments per decision (round robin, weighted, tie breaking)
};

struct RouteOptions {
  ConsistencyMode consistency = ConsistencyMode::session;
  LoadBalance policy = LoadBalance::least_outstanding;
  uint64_t max_lag_bytes = 16u << 20;          // 0 = no limit
  std::chrono::milliseconds max_lag{10000};    // 0 = no limit
  bool read_only_transactions_on_replicas = true;  // BEGIN READ ONLY may go to a replica
};

struct Decision {
  int target = kPrimary;  // kPrimary or an index into RouteInput::replicas
  Reason reason = Reason::not_read_only;
  bool primary() const { return target == kPrimary; }
};

Decision route(const RouteInput& in, const RouteOptions& options);

}  // namespace pgs::router
