#include "proxy/monitor/adapters.h"

#include <algorithm>

namespace pgs::monitor {

MonitorNode node_from_endpoint(const conf::ServerEndpoint& endpoint) {
  MonitorNode n;
  n.name = endpoint.name;
  n.host = endpoint.host;
  n.port = endpoint.port;
  n.weight = static_cast<uint32_t>(std::max(endpoint.weight, 0));
  conf::LibpqTls tls = conf::libpq_tls(endpoint);
  n.tls_conninfo.emplace_back("sslmode", tls.sslmode);
  if (!tls.sslrootcert.empty()) n.tls_conninfo.emplace_back("sslrootcert", tls.sslrootcert);
  return n;
}

MonitorOptions options_from_routing(const conf::RoutingConfig& routing, std::string user, std::string password,
                                    std::string dbname) {
  MonitorOptions o;
  o.user = std::move(user);
  o.password = std::move(password);
  o.dbname = std::move(dbname);
  o.interval = routing.health_check_interval.count() > 0 ? routing.health_check_interval : Millis{1000};
  o.idle_interval = routing.health_check_idle_interval;
  o.check_timeout = std::clamp(o.interval, kMinCheckTimeout, Millis{1000});
  o.max_lag = routing.max_replica_lag;
  o.max_lag_bytes = routing.max_replica_lag_bytes;
  return o;
}

void to_route_replicas(const HealthSnapshot& snapshot, std::vector<router::ReplicaSnapshot>& out) {
  out.resize(snapshot.replicas.size());
  for (size_t i = 0; i < snapshot.replicas.size(); ++i) {
    const NodeHealth& n = snapshot.replicas[i];
    router::ReplicaSnapshot& r = out[i];
    r.healthy = n.healthy;
    // Reachable and in recovery but behind the lag limits: the router says "replica_lagging", not "down".
    r.lagging = n.reachable && n.in_recovery && (n.reason == Reason::lagging_bytes || n.reason == Reason::lagging_time);
    r.replay_lsn = n.replay_lsn;
    r.lag_bytes = n.lag_bytes;
    r.lag = n.lag;
    r.outstanding = 0;
    r.weight = n.node.weight;
  }
}

std::vector<router::ReplicaSnapshot> to_route_replicas(const HealthSnapshot& snapshot) {
  std::vector<router::ReplicaSnapshot> out;
  to_route_replicas(snapshot, out);
  return out;
}

}  // namespace pgs::monitor
