// Protocol-level named prepared statements under transaction pooling (issue 3).
// A client's statement name maps to a proxy-wide name derived from the statement itself (its text and
// parameter types), so one Parse on a server serves every client that prepares the same statement.
// Pure: no libuv, no sockets.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace pgs::proxy {

struct PreparedStatement {
  std::string server_name;            // "pgsidecar_" + 32 hex digits of XXH3-128(sql, param types)
  std::string sql;
  std::vector<uint32_t> param_types;
  bool touches_session = false;       // may change session state (SET, LISTEN, ...): probe after use
  bool names_sql_prepared = false;    // may name a SQL-level prepared statement (EXECUTE q): see sql_prepared.h
  // The worker's catalog version (Worker::session_code_version) under which the statement was proven to
  // run no code the proxy cannot see; 0 = not proven. Only the owning worker's thread touches it.
  mutable uint64_t neutral_under_catalog = 0;
};
using PreparedRef = std::shared_ptr<const PreparedStatement>;

PreparedRef make_prepared(std::string_view sql, const std::vector<uint32_t>& param_types,
                          bool touches_session = false);

// The statements a server connection has prepared, bounded, least recently used first out.
class ServerStatements {
 public:
  explicit ServerStatements(size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {}
  bool contains(const std::string& name) const { return index_.count(name) != 0; }
  void touch(const std::string& name);
  // Adds `name`; returns the least recently used name to Close on the server if over capacity.
  std::optional<std::string> insert(const std::string& name);
  void erase(const std::string& name);
  void clear();
  size_t size() const { return index_.size(); }
  void set_capacity(size_t capacity) { capacity_ = capacity == 0 ? 1 : capacity; }
  // Forgets every name `held` does not list (the server no longer has them: they are prepared again
  // at their next use).
  void keep_only(const std::vector<std::string>& held);

 private:
  size_t capacity_;
  std::list<std::string> lru_;  // front = most recently used
  std::unordered_map<std::string, std::list<std::string>::iterator> index_;
};

// Statement names starting with "pgsidecar_" belong to the proxy (server-side names of clients'
// statements, shared by every client of a pool): a client may not prepare, execute, bind, describe,
// close or deallocate them directly — that would run or replace another client's statement.
inline constexpr std::string_view kReservedStatementPrefix = "pgsidecar_";
inline bool is_reserved_statement_name(std::string_view name) { return name.starts_with(kReservedStatementPrefix); }
// What a client's Bind/Describe of a reserved name is sent as: a name nothing ever prepares, so the
// server answers 26000 as for any statement the client does not have.
inline constexpr std::string_view kNoSuchStatement = "pgsidecar_reserved";

}  // namespace pgs::proxy
