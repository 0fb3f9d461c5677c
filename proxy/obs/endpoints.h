// Ready-made HTTP handler bodies for the proxy: the proxy owns the data (digest hub, health monitor)
// and wires these into HttpHandlers. Each function is pure apart from reading the thread-safe hub.
// /metrics has no handler here: the proxy renders it from its workers' WorkerMetrics
// (proxy/admin/prom_metrics.cc) with render_prometheus (exposition.h).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/obs/digest.h"
#include "proxy/obs/http_server.h"

namespace pgs::obs {

// 200 with digests_json() of `hub`; "?limit=N" (default 50, at most 1000) picks the top N.
HttpResponse digests_response(const DigestHub& hub, std::string_view query);

struct ReplicaReadiness {
  std::string name;
  bool healthy = false;
  int64_t lag_bytes = -1;     // -1 = unknown
  double lag_seconds = -1;    // -1 = unknown
};

// What /readyz reports. The proxy fills it from its health monitor (a snapshot, not live state).
struct Readiness {
  bool primary_reachable = false;
  bool draining = false;         // shutting down: not ready, so a load balancer stops sending clients
  std::string redis = "disabled";  // "up" | "down" | "disabled"
  std::vector<ReplicaReadiness> replicas;
};

// 200 when the primary is reachable and the proxy is not draining, else 503. Redis down and unhealthy
// replicas do not make the proxy unready (cache misses and primary reads still serve every client).
// Body: {"ready":bool,"primary":"up"|"down","redis":"...","draining":bool,
//        "replicas":[{"name","healthy","lag_bytes","lag_seconds"}]} (unknown lag = null).
HttpResponse readiness_response(const Readiness& r);

}  // namespace pgs::obs
