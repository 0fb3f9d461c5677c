// Leading-comment hints, read without the parser.
#include <cctype>
#include <charconv>
#include <string>

#include "router/classify.h"
#include "router/sql_scan.h"

namespace pgs::router {
namespace {

using detail::iequals;

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// "30s", "500ms", "5m", "1h", "30" (seconds). Positive values only.
std::optional<std::chrono::milliseconds> parse_ttl(std::string_view v) {
  uint64_t n = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc{} || n == 0 || n > 10'000'000) return std::nullopt;
  std::string_view unit(end, static_cast<size_t>(v.data() + v.size() - end));
  uint64_t ms = 0;
  if (unit.empty() || iequals(unit, "s")) {
    ms = n * 1000;
  } else if (iequals(unit, "ms")) {
    ms = n;
  } else if (iequals(unit, "m") || iequals(unit, "min")) {
    ms = n * 60'000;
  } else if (iequals(unit, "h")) {
    ms = n * 3'600'000;
  } else {
    return std::nullopt;
  }
  return std::chrono::milliseconds(ms);
}

// "cache ttl=30s class=users": the words after "cache".
bool parse_cache_options(std::string_view rest, Hint& h) {
  h.cache = true;
  while (!(rest = trim(rest)).empty()) {
    size_t sp = rest.find_first_of(" \t\r\n");
    std::string_view word = rest.substr(0, sp);
    rest = sp == std::string_view::npos ? std::string_view{} : rest.substr(sp);
    size_t eq = word.find('=');
    if (eq == std::string_view::npos) return false;
    std::string_view key = word.substr(0, eq), val = word.substr(eq + 1);
    if (iequals(key, "ttl")) {
      h.cache_ttl = parse_ttl(val);
      if (!h.cache_ttl) return false;
    } else if (iequals(key, "class") && !val.empty()) {
      h.cache_class = std::string(val);
    } else {
      return false;
    }
  }
  return true;
}

bool parse_directive(std::string_view d, Hint& h) {
  if (iequals(d, "primary")) {
    h.route = RouteHint::primary;
  } else if (iequals(d, "replica")) {
    h.route = RouteHint::replica;
  } else if (iequals(d, "no cache") || iequals(d, "nocache") || iequals(d, "no_cache")) {
    h.no_cache = true;
  } else if (d.size() >= 5 && iequals(d.substr(0, 5), "cache") &&
             (d.size() == 5 || std::isspace(static_cast<unsigned char>(d[5])))) {
    return parse_cache_options(d.substr(5), h);
  } else {
    return false;
  }
  return true;
}

}  // namespace

Hint parse_hints(std::string_view sql) {
  Hint h;
  constexpr std::string_view kPrefix = "pgsidecar:";
  for (std::string_view body : detail::leading_comments(sql)) {
    body = trim(body);
    if (body.size() < kPrefix.size() || !iequals(body.substr(0, kPrefix.size()), kPrefix)) continue;
    body.remove_prefix(kPrefix.size());
    while (!body.empty()) {
      size_t sep = body.find_first_of(",;");
      std::string_view d = trim(body.substr(0, sep));
      body = sep == std::string_view::npos ? std::string_view{} : body.substr(sep + 1);
      if (!d.empty() && !parse_directive(d, h)) h.malformed = true;
    }
  }
  if (h.no_cache) h.cache = false;
  return h;
}

std::optional<RouteHint> parse_route_hint(std::string_view value) {
  value = trim(value);
  if (value.size() >= 2 && value.front() == '\'' && value.back() == '\'') value = value.substr(1, value.size() - 2);
  if (iequals(value, "primary")) return RouteHint::primary;
  if (iequals(value, "replica")) return RouteHint::replica;
  if (value.empty() || iequals(value, "auto") || iequals(value, "default")) return RouteHint::none;
  return std::nullopt;
}

}  // namespace pgs::router
