#include "app/json_util.h"

#include <charconv>

#include "app/http_types.h"

namespace pgs::app {

namespace json = boost::json;

Response json_response(int status, const json::value& body) {
  Response r;
  r.status = status;
  r.body = json::serialize(body);
  return r;
}

Response error_response(int status, std::string_view code, std::string_view message) {
  return json_response(status, json::object{{"error", code}, {"message", message}});
}

Outcome<json::object, Invalid> parse_object(std::string_view body) {
  if (body.empty()) return Invalid("request body must be a JSON object");
  json::parse_options opts;
  opts.max_depth = 32;
  boost::system::error_code ec;
  json::value v = json::parse(body, ec, {}, opts);
  if (ec) return Invalid("malformed JSON: " + ec.message());
  if (!v.is_object()) return Invalid("request body must be a JSON object");
  return std::move(v.as_object());
}

std::optional<Invalid> check_keys(const json::object& obj, std::initializer_list<std::string_view> allowed) {
  for (const auto& kv : obj) {
    bool known = false;
    for (auto a : allowed) known = known || kv.key() == a;
    if (!known) return Invalid("unknown field: " + std::string(kv.key()));
  }
  return std::nullopt;
}

Outcome<std::optional<std::string>, Invalid> opt_string(const json::object& obj, std::string_view key,
                                                        std::size_t min_len, std::size_t max_len) {
  const json::value* v = obj.if_contains(key);
  if (v == nullptr || v->is_null()) return std::optional<std::string>();
  if (!v->is_string()) return Invalid(std::string(key) + " must be a string");
  const json::string& s = v->as_string();
  if (s.size() < min_len || s.size() > max_len) {
    return Invalid(std::string(key) + " must be " + std::to_string(min_len) + " to " + std::to_string(max_len) +
                   " bytes long");
  }
  return std::optional<std::string>(std::string(s));
}

Outcome<std::optional<std::int64_t>, Invalid> opt_int(const json::object& obj, std::string_view key,
                                                      std::int64_t min, std::int64_t max) {
  const json::value* v = obj.if_contains(key);
  if (v == nullptr || v->is_null()) return std::optional<std::int64_t>();
  std::int64_t n = 0;
  if (v->is_int64()) {
    n = v->as_int64();
  } else if (v->is_uint64() && v->as_uint64() <= static_cast<std::uint64_t>(INT64_MAX)) {
    n = static_cast<std::int64_t>(v->as_uint64());
  } else {
    return Invalid(std::string(key) + " must be an integer");
  }
  if (n < min || n > max) {
    return Invalid(std::string(key) + " must be between " + std::to_string(min) + " and " + std::to_string(max));
  }
  return std::optional<std::int64_t>(n);
}

Outcome<std::optional<std::string>, Invalid> opt_json(const json::object& obj, std::string_view key) {
  const json::value* v = obj.if_contains(key);
  if (v == nullptr || v->is_null()) return std::optional<std::string>();
  if (!v->is_object() && !v->is_array()) return Invalid(std::string(key) + " must be an object or an array");
  return std::optional<std::string>(json::serialize(*v));
}

std::optional<std::int64_t> parse_id(std::string_view text) {
  if (text.empty() || text.size() > 19 || text[0] == '0') return std::nullopt;
  std::int64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v <= 0) return std::nullopt;
  return v;
}

Outcome<int, Invalid> parse_limit(const std::map<std::string, std::string>& query, int fallback, int max) {
  const auto it = query.find("limit");
  if (it == query.end()) return fallback;
  const auto v = parse_id(it->second);
  if (!v || *v > max) return Invalid("limit must be an integer between 1 and " + std::to_string(max));
  return static_cast<int>(*v);
}

namespace {
int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

std::optional<std::string> url_decode(std::string_view in, bool plus_is_space) {
  std::string out;
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return std::nullopt;  // a '%' needs two hex digits after it
      const int hi = hex_digit(in[i + 1]), lo = hex_digit(in[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out.push_back(plus_is_space && c == '+' ? ' ' : c);
    }
  }
  return out;
}

std::optional<std::map<std::string, std::string>> parse_query(std::string_view qs) {
  std::map<std::string, std::string> out;
  while (!qs.empty()) {
    const auto amp = qs.find('&');
    const std::string_view pair = qs.substr(0, amp);
    qs = amp == std::string_view::npos ? std::string_view() : qs.substr(amp + 1);
    if (pair.empty()) continue;
    const auto eq = pair.find('=');
    auto key = url_decode(pair.substr(0, eq), true);
    auto value = url_decode(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1), true);
    if (!key || !value) return std::nullopt;
    out[*key] = std::move(*value);
  }
  return out;
}

}  // namespace pgs::app
