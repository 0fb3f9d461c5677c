// A thin, exception-free layer over one libpq connection: parameterised statements in text format,
// results as owned row sets, errors as values with their SQLSTATE. Not thread-safe: one PgConn is
// used by one thread at a time (the pool hands it out).
#pragma once

#include <libpq-fe.h>

#include <boost/json.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "app/outcome.h"

namespace pgs::app {

struct DbError {
  enum class Kind {
    unavailable,   // cannot connect, connection lost, pool exhausted: HTTP 503
    unique,        // 23505: HTTP 409
    bad_input,     // 22xxx data exceptions, 23514 check, 23502 not null: HTTP 400
    missing_ref,   // 23503 foreign key: HTTP 400/404 depending on the caller
    no_partition,  // 23514 "no partition of relation ... found for row": HTTP 400
    other,         // anything else: HTTP 500
  };
  Kind kind = Kind::other;
  std::string sqlstate;
  std::string message;
};

// One statement parameter, sent in text format; nullopt is SQL NULL.
using Param = std::optional<std::string>;
inline Param param(std::string_view s) { return std::string(s); }
inline Param param(std::int64_t v) { return std::to_string(v); }
inline Param param(int v) { return std::to_string(v); }
inline Param param_bool(bool v) { return std::string(v ? "true" : "false"); }

// The rows of one successful statement. Owns the PGresult.
class Rows {
 public:
  explicit Rows(PGresult* res) : res_(res, &PQclear) {}
  int size() const { return PQntuples(res_.get()); }
  bool empty() const { return size() == 0; }
  int affected() const;  // rows touched by INSERT/UPDATE/DELETE
  bool is_null(int row, int col) const { return PQgetisnull(res_.get(), row, col) != 0; }
  std::string_view text(int row, int col) const;
  std::int64_t int64(int row, int col) const;  // 0 if NULL or not a number
  // Column name -> JSON value mapped by type OID: ints and floats become numbers, bool, json(b) is
  // parsed, timestamptz becomes ISO 8601, NULL becomes null, everything else a string.
  boost::json::object row_json(int row) const;
  boost::json::array all_json() const;

 private:
  std::unique_ptr<PGresult, decltype(&PQclear)> res_;
};

class PgConn {
 public:
  // Connects synchronously. `conninfo` is a libpq key=value string or URI; connect_timeout and
  // application_name get defaults unless the conninfo sets them.
  static Outcome<std::unique_ptr<PgConn>, DbError> connect(const std::string& conninfo);
  ~PgConn();
  PgConn(const PgConn&) = delete;
  PgConn& operator=(const PgConn&) = delete;

  // Runs one statement with parameters. With `prepared` on (see set_prepared), the statement is
  // prepared once per connection under a generated name (PQprepare) and then executed by name.
  Outcome<Rows, DbError> exec(std::string_view sql, const std::vector<Param>& params = {});
  // Runs a script (several statements, no parameters) through the simple protocol.
  Outcome<Rows, DbError> exec_script(std::string_view sql);
  // Connection lost or in an unknown transaction state: the pool must drop it.
  bool broken() const;
  bool in_transaction() const;
  void set_prepared(bool on) { prepared_ = on; }

 private:
  explicit PgConn(PGconn* conn) : conn_(conn) {}
  Outcome<Rows, DbError> finish(PGresult* res);
  Outcome<std::string, DbError> statement_name(std::string_view sql, int nparams);

  PGconn* conn_;
  bool prepared_ = false;
  std::unordered_map<std::string, std::string> statements_;  // sql -> prepared statement name
};

// Classifies a libpq error (SQLSTATE may be empty when the connection itself failed).
DbError make_db_error(const std::string& sqlstate, const std::string& message, bool connection_ok);

}  // namespace pgs::app
