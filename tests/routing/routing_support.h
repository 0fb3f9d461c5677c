// Shared helpers of the routing suites: a proxy config with replicas and a [routing] table, and
// "which node answered" checks through pg_is_in_recovery().
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tests/integration/harness.h"

namespace pgs::it::routing {

struct ReplicaEntry {
  std::string name;
  uint16_t port = 0;
  int weight = 1;  // [[replicas]] weight (load_balance = "weighted")
};

// ProxyOptions with `replicas` as [[replicas]] and a [routing] table: the dev monitor login, a fast
// health check (100ms), then `routing_keys` (extra "key = value" lines of [routing]).
ProxyOptions routing_options(const std::vector<ReplicaEntry>& replicas, const std::string& routing_keys = "");

// Runs `sql` (first column must be pg_is_in_recovery()) and returns "replica", "primary", or
// "error: [SQLSTATE] message".
std::string node_of(Pg& pg, const std::string& sql = "SELECT pg_is_in_recovery()");

// Polls node_of(pg, sql) until it equals `want` ("replica" / "primary"); false at the deadline.
bool wait_node(Pg& pg, const std::string& want, Millis deadline,
               const std::string& sql = "SELECT pg_is_in_recovery()");

// The proxy's own view of its nodes, for a failure message: every row of the admin console's SHOW
// REPLICAS (column=value, one node per line), or why it could not be read.
std::string show_replicas(const Proxy& proxy);

// statement_calls(port, needle) (pg_stat_statements on a node) is tests/support/pg.h; the proxy's
// /metrics page is scrape_metrics(proxy) (tests/integration/harness.h).

// pgsidecar_routing_decisions_total{target, reason} from the proxy's /metrics (0 when the series is
// absent: the proxy writes only counters that moved; -1 when /metrics cannot be read).
double routing_decisions(const Proxy& proxy, const std::string& target, const std::string& reason);

// Waits (deadline) until every listed routing_decisions counter is at least `want`; workers publish their
// counters about once a second. Returns "" when reached, else the counters seen last ("t/r=N want M").
struct DecisionCount {
  std::string target, reason;
  double want = 0;
};
std::string wait_decisions(const Proxy& proxy, const std::vector<DecisionCount>& wanted, Millis deadline);

}  // namespace pgs::it::routing
