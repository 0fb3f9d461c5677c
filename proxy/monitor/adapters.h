// Glue between the monitor and its neighbours, so the proxy lead maps types in one call:
// config -> MonitorOptions / MonitorNode, HealthSnapshot -> router::ReplicaSnapshot for route().
#pragma once

#include <string>
#include <vector>

#include "conf/config.h"
#include "proxy/monitor/health_types.h"
#include "router/route.h"

namespace pgs::monitor {

MonitorNode node_from_endpoint(const conf::ServerEndpoint& endpoint);

// interval, max_lag and max_lag_bytes from [routing]; the monitor login from the caller (the config
// has no monitor user yet). check_timeout = the interval within [kMinCheckTimeout, 1 s]: a slow node
// cannot stretch a round much, yet a short interval (fresh replay positions for read-your-writes)
// still leaves a (re)connect with SCRAM time to finish — at 10 ms every check timed out.
inline constexpr Millis kMinCheckTimeout{250};
MonitorOptions options_from_routing(const conf::RoutingConfig& routing, std::string user, std::string password,
                                    std::string dbname);

// One router::ReplicaSnapshot per snapshot replica, same order (the router's replica index): healthy,
// replay_lsn, lag_bytes, lag, weight and lagging (reachable standby beyond the lag limits, so the router
// reports replica_lagging rather than no_replica); `outstanding` is 0 for the worker to fill with its own count.
// The second form reuses `out`'s storage (no allocation once it has grown).
std::vector<router::ReplicaSnapshot> to_route_replicas(const HealthSnapshot& snapshot);
void to_route_replicas(const HealthSnapshot& snapshot, std::vector<router::ReplicaSnapshot>& out);

}  // namespace pgs::monitor
