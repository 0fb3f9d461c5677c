// /metrics from the proxy's aggregated WorkerStats, rendered through pgs_obs's metric table and
// exposition (one source of names, help and types).
//
// Histograms: the proxy's Histogram (proxy/stats.h) has its own bounds; each of its buckets is
// counted under the smallest table bound >= its own upper bound (the +Inf bucket under +Inf). So
// every exported cumulative count is a true count of observations <= that bound, exact at bounds
// both sets share (all of Histogram::kBounds for the latency metrics) and a lower bound elsewhere.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "proxy/stats.h"

namespace pgs::proxy::admin {

struct ProcessFacts {
  uint64_t reloads_ok = 0;
  uint64_t reloads_failed = 0;
  double uptime_seconds = 0;
};

// The Prometheus text exposition (format 0.0.4) of every worker's statistics.
std::string render_metrics(const std::vector<WorkerStats>& workers, const ProcessFacts& facts);

}  // namespace pgs::proxy::admin
