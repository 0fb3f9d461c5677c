#include "proxy/admin/http_endpoints.h"

#include <libpq-fe.h>

#include <utility>

#include "proxy/obs/metrics.h"

namespace pgs::proxy::admin {

ObservabilityServer::ObservabilityServer(const conf::ObservabilityConfig& config, ObservabilitySources sources)
    : config_(config), sources_(std::move(sources)) {}

ObservabilityServer::~ObservabilityServer() { stop(); }

std::string ObservabilityServer::start() {
  if (config_.metrics_listen.empty()) return "";
  obs::HttpHandlers handlers;
  handlers.metrics = [this](std::string_view) { return metrics(); };
  handlers.readyz = [this](std::string_view) { return readyz(); };
  handlers.digests = [this](std::string_view q) {
    if (sources_.digests) return sources_.digests(q);
    return obs::HttpResponse{200, "application/json", "[]\n"};
  };
  http_ = std::make_unique<obs::HttpServer>(
      obs::HttpOptions{.host = config_.metrics_host,
                       .port = config_.metrics_port,
                       .read_timeout = config_.http_read_timeout},
      std::move(handlers));
  std::string error = http_->start();
  if (!error.empty()) http_.reset();
  return error;
}

void ObservabilityServer::stop() {
  if (http_) http_->stop();
  http_.reset();
}

uint16_t ObservabilityServer::port() const { return http_ ? http_->port() : 0; }

obs::HttpResponse ObservabilityServer::metrics() {
  ProcessFacts facts = sources_.process ? sources_.process() : ProcessFacts{};
  facts.uptime_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  std::vector<WorkerStats> stats = sources_.stats ? sources_.stats() : std::vector<WorkerStats>{};
  return {200, std::string(obs::kPrometheusContentType), render_metrics(stats, facts)};
}

obs::HttpResponse ObservabilityServer::readyz() {
  obs::Readiness r;
  if (sources_.readiness) {
    r = sources_.readiness();
  } else {
    r.primary_reachable = true;
  }
  return obs::readiness_response(r);
}

bool postgres_reachable(const std::string& host, uint16_t port, int timeout_seconds) {
  std::string port_text = std::to_string(port);
  std::string timeout = std::to_string(timeout_seconds < 1 ? 1 : timeout_seconds);
  // Named, so that a DBA can tell the proxy's pings in the server's log from anyone else's.
  const char* keys[] = {"host", "port", "connect_timeout", "sslmode", "dbname", "application_name", nullptr};
  const char* values[] = {host.c_str(), port_text.c_str(), timeout.c_str(), "disable", "postgres", "pgsidecar-ping",
                          nullptr};
  PGPing ping = PQpingParams(keys, values, 0);
  return ping == PQPING_OK;  // REJECT: starting up or shutting down, not ready
}

}  // namespace pgs::proxy::admin
