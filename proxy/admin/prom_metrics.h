// /metrics from the proxy's aggregated WorkerStats, rendered through pgs_obs's metric table and
// exposition (one source of names, help and types).
//
// Histograms: the proxy's Histogram (proxy/stats.h) has its own bounds, a superset of every table
// bound it is exported under; each of its buckets is counted under the smallest table bound >= its
// own upper bound (the +Inf bucket under +Inf), so every exported cumulative count is exact.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "proxy/core/stats.h"
#include "proxy/monitor/health_types.h"
#include "proxy/obs/endpoints.h"
#include "proxy/stream/stream_invalidator.h"

namespace pgs::proxy::admin {

struct ProcessFacts {
  uint64_t reloads_ok = 0;
  uint64_t reloads_failed = 0;
  double uptime_seconds = 0;
  uint64_t slow_queries = 0;
  uint64_t slow_log_dropped = 0;
  uint64_t catalog_reads = 0;  // complete reads of the cache's write dependencies
  std::optional<StreamStats> stream;  // the cache's invalidation stream, when configured
  std::shared_ptr<const monitor::HealthSnapshot> health;  // null: no replica configured
};

// /readyz facts from the health monitor's snapshot (may be null) and a primary check. Replica lag is
// unknown (-1) until a replica was checked once.
obs::Readiness readiness_from(const monitor::HealthSnapshot* health, bool primary_reachable, bool draining);

// The Prometheus text exposition (format 0.0.4) of every worker's statistics.
std::string render_metrics(const std::vector<WorkerStats>& workers, const ProcessFacts& facts);

}  // namespace pgs::proxy::admin
