// The request pipeline in front of the endpoints: authentication (Bearer token), rate limiting
// (per user with a token, per IP without), routing, and the RateLimit headers on the way out.
#pragma once

#include <string>

#include "app/db_pool.h"
#include "app/http_types.h"
#include "app/rate_limiter.h"
#include "app/router.h"

namespace pgs::app {

struct ApiOptions {
  int anonymous_per_window = 60;   // requests per window per client IP without a token; <= 0: off
  int user_per_window = 200;       // requests per window per authenticated user; <= 0: off
  std::string readyz_url;          // the proxy's /readyz, checked by /api/v1/health; empty: skipped
};

// Everything a handler may use. Shared by all handler threads; each member is thread-safe.
struct Services {
  DbPool& db;
  RateLimiter& limiter;
  ApiOptions options;
};

class Api {
 public:
  explicit Api(Services services);
  Api(const Api&) = delete;  // the routes hold references to services_
  Api& operator=(const Api&) = delete;
  // Thread-safe; blocks on the database and Redis (call it from a handler thread, not an I/O one).
  Response handle(Request& request);

 private:
  Services services_;
  Router router_;
};

// Registration of each resource's endpoints (handlers_*.cc).
void add_health_routes(Router& router, Services& s);
void add_user_routes(Router& router, Services& s);
void add_workspace_routes(Router& router, Services& s);
void add_flow_routes(Router& router, Services& s);
void add_execution_routes(Router& router, Services& s);
void add_notification_routes(Router& router, Services& s);
void add_document_routes(Router& router, Services& s);

// The HTTP status for a database error, with a JSON body (503 unavailable, 409 unique, 400 input).
Response db_error_response(const DbError& e);

}  // namespace pgs::app
