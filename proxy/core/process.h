// The process: loads the config, runs the workers, turns signals into actions.
// SIGHUP reloads (an invalid file keeps the old config), SIGTERM drains, SIGINT stops at once.
#pragma once

#include <uv.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "proxy/admin/admin_console.h"
#include "proxy/admin/http_endpoints.h"
#include "proxy/admin/reachability.h"
#include "proxy/core/secrets.h"
#include "proxy/core/stats.h"
#include "proxy/monitor/health_types.h"
#include "proxy/obs/digest.h"
#include "proxy/obs/slow_log.h"

namespace pgs::proxy {

class Worker;
class CatalogWatcher;
class StreamInvalidator;
struct StreamStats;
class SessionCodeCatalog;
}  // namespace pgs::proxy
namespace pgs::cache {
class LiveUntil;
class WriteDependencies;
}
namespace pgs::monitor {
class HealthMonitor;
}
namespace pgs::proxy {

class Process {
 public:
  explicit Process(std::string config_path);
  ~Process();
  // Loads the config, starts the workers, returns the exit code once they have all stopped.
  int run();

  // ---- any thread ----
  std::shared_ptr<const Snapshot> snapshot() const;
  // Client admission across workers (max_client_conn is process-wide).
  bool try_admit_client();
  void release_client();
  // Beyond max_client_conn: a connection that may only cancel (fd_limit.h kCancelReserveConnections).
  bool try_admit_cancel_only();
  void release_cancel_only();
  int client_count() const { return clients_.load(std::memory_order_relaxed); }
  void route_cancel(int32_t pid, int32_t secret);
  void on_worker_exit();  // from a worker thread, as its loop ends
  std::vector<WorkerStats> stats() const;
  const admin::AdminHooks& admin_hooks() const { return admin_hooks_; }
  // Reloads the config file now (SIGHUP, admin RELOAD). False, with the errors in `message`, if invalid.
  bool reload(std::string& message);
  void set_paused(bool paused);

  // ---- read/write routing (issue 4) ----
  // Replica health, or nullptr when no replica is configured. Any thread; cheap.
  std::shared_ptr<const monitor::HealthSnapshot> health() const;
  uint64_t health_generation() const;
  // A read waits for fresher replica positions (sent to the primary by its LSN floor), or a replica just
  // failed: the monitor probes at health_check_interval for a while (HealthMonitor::want_fresh). Any thread.
  void want_fresh_health() const;
  // Read-your-writes floor of a (database, user): the primary's WAL position after its last committed
  // write through this sidecar. Shared by every connection of the pair (an app's pool of connections is
  // one session for this purpose). The reference lives as long as the process.
  // ---- result cache (issue 5) ----
  // What else a write to a table may write (catalog: cascades, partitions, triggers, rules); nullptr
  // when the cache is off or no login could read the catalog. Any thread; a lock and a refcount.
  std::shared_ptr<const cache::WriteDependencies> write_dependencies() const;
  uint64_t catalog_loads() const;  // complete catalog reads so far
  // Which relations run user code (null before the first read); catalog_version() changes with it.
  std::shared_ptr<const SessionCodeCatalog> session_code() const;
  uint64_t catalog_version() const;
  void refresh_write_dependencies();  // re-read soon (a DDL committed through this sidecar); any thread
  // The invalidation stream (stream_invalidator.h): until when cached results may be served (null: no
  // stream configured, nothing to wait for). Lives as long as the process.
  const cache::LiveUntil* stream_live() const;
  // ---- slow-query log and digests (issue 6) ----
  void log_slow(obs::SlowQueryRecord record);           // any thread; never blocks
  void publish_digests(obs::DigestTable& worker_table);  // any thread; empties the table
  uint64_t slow_queries() const { return slow_queries_.load(std::memory_order_relaxed); }
  // Slow-query records the log's writer queue had no room for (dropped, never waited for).
  uint64_t slow_log_dropped() const { return slow_log_dropped_.load(std::memory_order_relaxed); }

  std::atomic<uint64_t>& lsn_floor(const std::string& database, const std::string& user);  // every worker's latest published copy
  int worker_count() const { return static_cast<int>(workers_.size()); }
  uint64_t reloads_ok() const { return reloads_ok_; }
  uint64_t reloads_failed() const { return reloads_failed_; }

  // Workers encode their index in the cancel key's pid: bits 22..29.
  static constexpr int kCancelWorkerShift = 22;

 private:
  void install_admin_hooks();
  void start_query_sinks();
  bool start_workers();
  admin::ObservabilitySources observability_sources(admin::ReachabilityProbe& primary_probe);
  static void signal_cb(uv_signal_t* h, int signum) noexcept;
  void shutdown(bool immediate);

  std::string config_path_;
  mutable std::mutex snapshot_mutex_;
  std::shared_ptr<const Snapshot> snapshot_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::atomic<int> clients_{0};
  std::atomic<int> cancel_only_{0};
  std::atomic<uint64_t> reloads_ok_{0};
  std::atomic<uint64_t> reloads_failed_{0};
  uv_loop_t loop_{};
  uv_signal_t sighup_{}, sigterm_{}, sigint_{};
  uv_async_t worker_exit_async_{};
  uv_async_t shutdown_async_{};  // admin SHUTDOWN, from any worker thread
  std::atomic<int> workers_running_{0};
  std::mutex exit_mutex_;
  static void worker_exit_cb(uv_async_t* h) noexcept;
  std::atomic<bool> stopping_{false};  // read by the HTTP thread (/readyz)
  admin::AdminHooks admin_hooks_;
  std::unique_ptr<monitor::HealthMonitor> monitor_;
  std::unique_ptr<CatalogWatcher> catalog_;
  std::unique_ptr<StreamInvalidator> stream_;
  std::unique_ptr<obs::SlowLog> slow_log_;
  std::unique_ptr<obs::DigestHub> digest_hub_;
  std::atomic<uint64_t> slow_queries_{0};
  std::atomic<uint64_t> slow_log_dropped_{0};
  std::mutex floors_mutex_;
  std::map<std::pair<std::string, std::string>, std::unique_ptr<std::atomic<uint64_t>>> floors_;
};

}  // namespace pgs::proxy
