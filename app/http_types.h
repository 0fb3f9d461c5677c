// The request and response as the handlers see them: no Beast types, so handlers and the router are
// plain functions of values and can be called from tests or any thread.
#pragma once

#include <boost/json.hpp>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace pgs::app {

struct User {
  std::int64_t id = 0;
  std::string email;
  std::string name;
};

struct Request {
  std::string method;                          // "GET", "POST", ...
  std::string path;                            // without the query string, percent-decoded
  std::map<std::string, std::string> query;    // decoded; the last value of a repeated key wins
  std::string authorization;                   // the raw Authorization header, may be empty
  std::string content_type;
  std::string body;
  std::string remote_ip;
  std::vector<std::string> path_params;        // filled by the router: the {id} segments in order
  std::optional<User> user;                    // filled by authentication
};

struct Response {
  int status = 200;
  std::string body;                            // JSON text
  std::vector<std::pair<std::string, std::string>> headers;
};

// A JSON response with `status`.
Response json_response(int status, const boost::json::value& body);
// {"error": code, "message": message}: every error the API returns has this shape.
Response error_response(int status, std::string_view code, std::string_view message);

}  // namespace pgs::app
