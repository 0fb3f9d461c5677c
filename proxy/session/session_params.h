// Session settings (GUCs) of clients and servers, and the SQL that brings a server to a client's
// settings. Pure: no libuv, no sockets. Names are GUC names folded to lower case (GUC lookup in Postgres
// is case-insensitive); values are the text the server would accept in set_config().
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <optional>
#include <variant>
#include <vector>

#include "protocol/frontend.h"
#include "protocol/result.h"

namespace pgs::proxy {

// A small ordered map (a client has a handful of settings; a vector beats a hash map here).
class GucMap {
 public:
  void set(std::string_view name, std::string_view value);  // name is folded to lower case
  const std::string* get(std::string_view name) const;
  bool erase(std::string_view name);
  bool empty() const { return items_.empty(); }
  const std::vector<std::pair<std::string, std::string>>& items() const { return items_; }
  bool operator==(const GucMap& other) const { return items_ == other.items_; }

 private:
  std::vector<std::pair<std::string, std::string>> items_;  // sorted by name
};

std::string fold_guc_name(std::string_view name);
// Letters, digits, '_' and '.' only, 1..63 bytes: what we accept as a setting name from a client.
bool valid_guc_name(std::string_view name);

// What a client asked for in its startup packet.
struct StartupRequest {
  std::string user;
  std::string database;
  std::string application_name;           // also present in gucs
  GucMap gucs;                             // every setting, `options` -c/-- pairs included
  std::vector<std::string> protocol_options;  // `_pq_.*` names we do not support (NegotiateProtocolVersion)
  bool replication = false;                // replication connections cannot be pooled
};

// Errors carry the SQLSTATE the client should see.
struct StartupError {
  std::string sqlstate;
  std::string message;
};

// Parses parameters of a protocol 3.x Startup message. `options` is split like the server does
// (whitespace separated, backslash escapes the next character; "-c name=value" or "--name=value").
std::variant<StartupRequest, StartupError> parse_startup_request(const protocol::frontend::Startup& startup);

// The statement that moves a server from `applied` (settings explicitly set on it; others are at their
// defaults, given by `defaults`) to `desired`. Empty when nothing differs.
std::string build_sync_sql(const GucMap& desired, const GucMap& applied, const GucMap& defaults);

// build_sync_sql(desired, applied, defaults).empty(), without building anything: one walk over the three
// sorted maps. It runs at every server assignment, where the answer is nearly always "in sync".
bool settings_in_sync(const GucMap& desired, const GucMap& applied, const GucMap& defaults);

// After the sync statement succeeded: what the server has applied now.
GucMap applied_after_sync(const GucMap& desired, const GucMap& defaults);

// Settings the server reports with ParameterStatus that a client can change with SET and that we
// therefore track per client and per server. Others (server_version, is_superuser, in_hot_standby ...)
// are only passed on to the client.
bool is_tracked_setting(std::string_view name);

// Quotes a string literal for standard_conforming_strings = on ('' doubles quotes).
std::string quote_literal(std::string_view s);

}  // namespace pgs::proxy
