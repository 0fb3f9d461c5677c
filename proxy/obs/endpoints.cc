#include "proxy/obs/endpoints.h"

#include <boost/json.hpp>

#include "proxy/obs/json_text.h"

namespace pgs::obs {

HttpResponse digests_response(const DigestHub& hub, std::string_view query) {
  constexpr size_t kDefaultLimit = 50, kMaxLimit = 1000;
  return HttpResponse{200, "application/json", hub.json(digest_limit_from_query(query, kDefaultLimit, kMaxLimit))};
}

HttpResponse readiness_response(const Readiness& r) {
  const bool ready = r.primary_reachable && !r.draining;
  boost::json::array replicas;
  for (const ReplicaReadiness& rep : r.replicas) {
    boost::json::object o;
    o["name"] = sanitize_utf8(rep.name);
    o["healthy"] = rep.healthy;
    if (rep.lag_bytes >= 0) {
      o["lag_bytes"] = rep.lag_bytes;
    } else {
      o["lag_bytes"] = nullptr;
    }
    if (rep.lag_seconds >= 0) {
      o["lag_seconds"] = rep.lag_seconds;
    } else {
      o["lag_seconds"] = nullptr;
    }
    replicas.push_back(std::move(o));
  }
  boost::json::object root;
  root["ready"] = ready;
  root["primary"] = r.primary_reachable ? "up" : "down";
  root["redis"] = sanitize_utf8(r.redis);
  root["draining"] = r.draining;
  root["replicas"] = std::move(replicas);
  return HttpResponse{ready ? 200u : 503u, "application/json", boost::json::serialize(root)};
}

}  // namespace pgs::obs
