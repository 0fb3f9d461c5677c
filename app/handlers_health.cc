// GET /healthz: liveness. GET /api/v1/health: readiness, checking the database (through whatever
// --db points at, normally the proxy), Redis and the proxy's /readyz. No token, no rate limit (load
// balancers poll them). 200 when the database and the proxy are fine ("degraded" if only Redis is
// down: rate limiting fails open), 503 otherwise.
#include <chrono>

#include "app/handlers_common.h"
#include "app/http_probe.h"

namespace pgs::app {
namespace json = boost::json;

namespace {

// Integer microseconds: Boost.JSON would print a double as 6.5133249E1.
std::int64_t us_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count();
}

json::object check_database(DbPool& db) {
  const auto t0 = std::chrono::steady_clock::now();
  auto rows = db.read("SELECT 1");
  json::object o{{"ok", rows.ok()}, {"latency_us", us_since(t0)}};
  if (!rows) o["error"] = rows.error().message;
  return o;
}

json::object check_redis(RateLimiter& limiter) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::string problem = limiter.ping();
  json::object o{{"ok", problem.empty()}, {"latency_us", us_since(t0)}};
  if (!problem.empty()) o["error"] = problem;
  return o;
}

json::object check_proxy(const std::string& url) {
  if (url.empty()) return json::object{{"ok", true}, {"skipped", true}};
  const auto t0 = std::chrono::steady_clock::now();
  auto res = http_get(url, std::chrono::milliseconds(1000));
  const bool ok = res && res->status == 200;
  json::object o{{"ok", ok}, {"latency_us", us_since(t0)}, {"url", url}};
  if (!res) {
    o["error"] = res.error();
  } else if (!ok) {
    o["status"] = res->status;
    o["error"] = res->body;
  }
  return o;
}

}  // namespace

void add_health_routes(Router& router, Services& s) {
  // Liveness only: the process answers HTTP. No dependency is touched (probes may poll it often).
  router.add(
      "GET", "/healthz", [](Request&) { return json_response(200, json::object{{"status", "ok"}}); },
      /*needs_user=*/false, /*rate_limited=*/false);
  router.add(
      "GET", "/api/v1/health",
      [&s](Request&) {
        json::object db = check_database(s.db), redis = check_redis(s.limiter),
                     proxy = check_proxy(s.options.readyz_url);
        const bool serving = db["ok"].as_bool() && proxy["ok"].as_bool();
        const char* status = !serving ? "unavailable" : redis["ok"].as_bool() ? "ok" : "degraded";
        json::object body{{"status", status},
                          {"checks", json::object{{"database", db}, {"redis", redis}, {"proxy", proxy}}}};
        return json_response(serving ? 200 : 503, body);
      },
      /*needs_user=*/false, /*rate_limited=*/false);
}

}  // namespace pgs::app
