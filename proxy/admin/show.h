// The result sets of the console's SHOW commands, as text tables (pure; encoded by admin_console.cc).
// Column names follow PgBouncer where a counterpart exists; times in PgBouncer's units (maxwait in
// seconds + maxwait_us, total_*_time and avg_*_time in microseconds).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "conf/config.h"
#include "proxy/core/stats.h"
#include "proxy/monitor/health_types.h"

namespace pgs::proxy::admin {

struct Table {
  std::vector<std::string> columns;
  std::vector<std::vector<std::optional<std::string>>> rows;  // nullopt = NULL
  std::string notice;  // sent as a NoticeResponse before the rows when not empty
};

using WallClock = std::chrono::system_clock;

// `all` is aggregate() of every worker's copy.
Table show_pools(const WorkerStats& all);
// One row per database, then a row with database "*" carrying the process totals (bytes and query
// time are only known process-wide, so they are NULL in the per-database rows).
Table show_stats(const WorkerStats& all);
Table show_clients(const WorkerStats& all, WallClock::time_point now);
Table show_servers(const WorkerStats& all, WallClock::time_point now);
Table show_config(const conf::Config& config);
Table show_version(const std::string& version);
Table show_help();
// Primary and replicas from the health monitor's snapshot; without one (no replica configured, or no
// hook), the configured replicas with state "unknown" and a notice.
Table show_replicas(const conf::Config& config, const monitor::HealthSnapshot* health);
Table show_cache(const WorkerStats& all);
// rows: nullopt when digests are off ([observability] digest_top_n = 0).
Table show_digests(const std::optional<std::vector<std::vector<std::string>>>& rows);

// The commands, for HELP and the unknown-command hint.
const std::vector<std::pair<std::string, std::string>>& command_list();

}  // namespace pgs::proxy::admin
