#include "app/api.h"

#include "app/auth.h"
#include "app/log.h"

namespace pgs::app {

Response db_error_response(const DbError& e) {
  using K = DbError::Kind;
  switch (e.kind) {
    case K::unavailable: return error_response(503, "database_unavailable", "the database is unavailable");
    case K::unique: return error_response(409, "conflict", e.message);
    case K::bad_input:
    case K::no_partition:
    case K::missing_ref: return error_response(400, "bad_request", e.message);
    case K::other: break;
  }
  log::error("database error " + e.sqlstate + ": " + e.message);
  return error_response(500, "internal", "internal error");
}

Api::Api(Services services) : services_(services) {
  add_health_routes(router_, services_);
  add_user_routes(router_, services_);
  add_workspace_routes(router_, services_);
  add_flow_routes(router_, services_);
  add_execution_routes(router_, services_);
  add_notification_routes(router_, services_);
  add_document_routes(router_, services_);
}

namespace {

void add_rate_headers(Response& r, const RateDecision& d, int window) {
  if (!d.enforced) return;
  r.headers.emplace_back("RateLimit-Limit", std::to_string(d.limit));
  r.headers.emplace_back("RateLimit-Remaining", std::to_string(d.remaining));
  r.headers.emplace_back("RateLimit-Reset", std::to_string(d.reset_seconds));
  r.headers.emplace_back("RateLimit-Policy", std::to_string(d.limit) + ";w=" + std::to_string(window));
  if (!d.allowed) r.headers.emplace_back("Retry-After", std::to_string(d.reset_seconds));
}

Response unauthorized(std::string_view code, std::string_view message) {
  Response r = error_response(401, code, message);
  r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"flopods\"");
  return r;
}

}  // namespace

Response Api::handle(Request& req) {
  const Router::Match match = router_.match(req.method, req.path);
  if (match.route != nullptr && !match.route->rate_limited) {
    req.path_params = match.params;
    return match.route->handler(req);
  }
  // Authenticate first when a token is offered: the rate limit key depends on who is asking.
  bool bad_token = false;
  if (!req.authorization.empty()) {
    const auto token = bearer_token(req.authorization);
    if (token) {
      auto user = authenticate(services_.db, *token);
      if (!user) return db_error_response(user.error());
      req.user = *user;
    }
    bad_token = !req.user;
  }
  const ApiOptions& o = services_.options;
  const RateDecision d = req.user ? services_.limiter.check("user:" + std::to_string(req.user->id), o.user_per_window)
                                  : services_.limiter.check("ip:" + req.remote_ip, o.anonymous_per_window);
  Response r;
  if (!d.allowed) {
    r = error_response(429, "rate_limited", "too many requests, retry later");
  } else if (match.route == nullptr) {
    r = match.allow.empty() ? error_response(404, "not_found", "no such endpoint")
                            : error_response(405, "method_not_allowed", "allowed: " + match.allow);
    if (!match.allow.empty()) r.headers.emplace_back("Allow", match.allow);
  } else if (match.route->needs_user && !req.user) {
    r = bad_token ? unauthorized("invalid_token", "the token is malformed, unknown, revoked or expired")
                  : unauthorized("missing_token", "an Authorization: Bearer token is required");
  } else {
    req.path_params = match.params;
    r = match.route->handler(req);
  }
  add_rate_headers(r, d, services_.limiter.options().window_seconds);
  return r;
}

}  // namespace pgs::app
