// The admin console: `psql -p 6432 -d pgsidecar` as a user with admin = true. Simple-query protocol only.
// SHOW POOLS | STATS | CLIENTS | SERVERS | REPLICAS | CACHE | DIGESTS | CONFIG | VERSION | HELP,
// RELOAD, PAUSE, RESUME, SHUTDOWN. Columns follow PgBouncer's names where one exists.
// Thread affinity: called on the worker thread that owns the admin client; it only reads the copies the
// hooks return and asks the process to act through them.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/core/secrets.h"
#include "proxy/core/stats.h"
#include "proxy/monitor/health_types.h"

namespace pgs::proxy::admin {

struct AdminHooks {
  std::function<std::vector<WorkerStats>()> stats;
  std::function<std::shared_ptr<const Snapshot>()> snapshot;
  std::function<bool(std::string& message)> reload;  // true when the new config is live
  std::function<void(bool paused)> set_paused;       // PAUSE (true) / RESUME (false)
  std::function<void()> shutdown;                    // SHUTDOWN: as SIGTERM
  std::string version;
  // SHOW DIGESTS: the top `limit` rows (obs::digest_columns() order); unset when digests are off.
  std::function<std::vector<std::vector<std::string>>(size_t limit)> digest_rows;
  // Replica health for SHOW REPLICAS; unset or null: configured replicas listed with state "unknown".
  std::function<std::shared_ptr<const monitor::HealthSnapshot>()> health;
};

// Runs one Query message's text (several ';'-separated commands allowed). Returns the reply messages
// (RowDescription + DataRow* + CommandComplete per command, or an ErrorResponse that ends the
// batch), without the final ReadyForQuery.
std::string execute(std::string_view sql, const AdminHooks& hooks);

}  // namespace pgs::proxy::admin
