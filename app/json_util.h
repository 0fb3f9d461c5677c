// Validation of untrusted input: request bodies, JSON fields, ids and query parameters. Every
// function returns the value or a message fit for a 400 response; nothing throws.
#pragma once

#include <boost/json.hpp>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "app/outcome.h"

namespace pgs::app {

using Invalid = std::string;  // why the input was rejected (sent back to the client)

// The body must be one JSON object (depth and size are bounded by the HTTP layer and the parser).
Outcome<boost::json::object, Invalid> parse_object(std::string_view body);
// Rejects keys outside `allowed` (a typo must not be silently ignored).
std::optional<Invalid> check_keys(const boost::json::object& obj, std::initializer_list<std::string_view> allowed);

// Absent or null -> nullopt; present with the wrong type or out of bounds -> Invalid.
Outcome<std::optional<std::string>, Invalid> opt_string(const boost::json::object& obj, std::string_view key,
                                                        std::size_t min_len, std::size_t max_len);
Outcome<std::optional<std::int64_t>, Invalid> opt_int(const boost::json::object& obj, std::string_view key,
                                                      std::int64_t min, std::int64_t max);
// An object or array field, serialised back to JSON text (for a jsonb parameter).
Outcome<std::optional<std::string>, Invalid> opt_json(const boost::json::object& obj, std::string_view key);

// A resource id in a path: decimal, 1..2^63-1, no sign, no leading zeros, no junk.
std::optional<std::int64_t> parse_id(std::string_view text);
// ?limit=: absent -> fallback; otherwise an integer in 1..max.
Outcome<int, Invalid> parse_limit(const std::map<std::string, std::string>& query, int fallback, int max);

// Percent-decoding of a path or query component ('+' is a space only in queries).
std::optional<std::string> url_decode(std::string_view in, bool plus_is_space);
// Splits "a=1&b=2" into decoded pairs; nullopt on a malformed escape.
std::optional<std::map<std::string, std::string>> parse_query(std::string_view qs);

}  // namespace pgs::app
