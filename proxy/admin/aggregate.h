// Process-wide view of the per-worker statistics: what SHOW and /metrics report.
// Pure functions over the copies Process::stats() returns.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "proxy/core/stats.h"

namespace pgs::proxy::admin {

// Sums every counter, merges every histogram, takes the max of maxwait, and merges pools with the
// same (database, user) across workers (pools sorted by database, then user). Client and server rows
// are concatenated, sorted by id. errors_by_class is summed per class.
WorkerStats aggregate(const std::vector<WorkerStats>& workers);

// "10.1.2.3:5432" -> {"10.1.2.3", "5432"}; "[::1]:5432" -> {"::1", "5432"}; no port -> {addr, ""}.
std::pair<std::string, std::string> split_addr(std::string_view addr);

}  // namespace pgs::proxy::admin
