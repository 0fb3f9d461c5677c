// The metrics/health HTTP endpoints of the proxy: /metrics, /healthz, /readyz, /digests on
// obs::HttpServer (Beast, its own thread). The Process owns one and starts it after its workers.
//
// Threading: the sources are called on the HTTP thread, one request at a time; they must only read
// thread-safe state (Process::stats() copies, atomics).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "conf/config.h"
#include "proxy/admin/prom_metrics.h"
#include "proxy/core/stats.h"
#include "proxy/obs/endpoints.h"
#include "proxy/obs/http_server.h"

namespace pgs::proxy::admin {

struct ObservabilitySources {
  std::function<std::vector<WorkerStats>()> stats;          // required
  std::function<obs::Readiness()> readiness;                // unset: ready unless told otherwise
  std::function<ProcessFacts()> process;                    // reload counts; uptime is filled in here
  std::function<obs::HttpResponse(std::string_view)> digests;  // unset: 200 "[]"
};

class ObservabilityServer {
 public:
  ObservabilityServer(const conf::ObservabilityConfig& config, ObservabilitySources sources);
  ~ObservabilityServer();  // stop()
  ObservabilityServer(const ObservabilityServer&) = delete;
  ObservabilityServer& operator=(const ObservabilityServer&) = delete;

  // Binds metrics_host:metrics_port and starts the thread. "" on success (also when metrics_listen is
  // empty: nothing is started), else the reason; the proxy should refuse to start then.
  std::string start();
  void stop();  // idempotent; never from a handler
  uint16_t port() const;  // bound port, 0 when not running

 private:
  obs::HttpResponse metrics();
  obs::HttpResponse readyz();

  conf::ObservabilityConfig config_;
  ObservabilitySources sources_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  std::unique_ptr<obs::HttpServer> http_;
};

// True when a Postgres server answers at host:port (libpq PQpingParams: it accepts connections, no
// login needed). Blocks up to timeout_seconds (libpq counts at least 2): never on the HTTP thread
// (/readyz reads a ReachabilityProbe, reachability.h, which runs this on its own thread).
bool postgres_reachable(const std::string& host, uint16_t port, int timeout_seconds = 2);

}  // namespace pgs::proxy::admin
