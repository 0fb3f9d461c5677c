// The table of endpoints: method + path pattern ("/api/v1/flows/{id}") -> handler. Matching is by
// whole path segments; "{...}" segments are captured in order into Request::path_params.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "app/http_types.h"

namespace pgs::app {

using Handler = std::function<Response(Request&)>;

struct Route {
  std::string method;
  std::vector<std::string> segments;  // "{id}" marks a captured segment
  bool needs_user = true;             // false: no token required (health)
  bool rate_limited = true;           // false: exempt (health probes)
  Handler handler;
};

class Router {
 public:
  void add(std::string method, std::string_view pattern, Handler handler, bool needs_user = true,
           bool rate_limited = true);

  struct Match {
    const Route* route = nullptr;       // null: no route for this method and path
    std::vector<std::string> params;
    std::string allow;                  // methods that do match the path ("GET, PATCH"), for 405
  };
  Match match(std::string_view method, std::string_view path) const;

 private:
  std::vector<Route> routes_;
};

std::vector<std::string> split_path(std::string_view path);

}  // namespace pgs::app
