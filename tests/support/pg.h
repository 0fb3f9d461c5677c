// libpq helpers for tests: a conninfo builder with the dev defaults, a connection and a result that
// own their libpq handles, and the few queries many suites ask the dev servers (as the superuser).
// Helpers that "must" succeed throw std::runtime_error with the SQLSTATE and message; none of them
// waits without a deadline.
#pragma once

#include <libpq-fe.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/dev_env.h"
#include "tests/support/process.h"
#include "tests/support/wait.h"

namespace pgs::test {

// key=value conninfo; values are quoted. sslmode=disable, gssencmode=disable and connect_timeout=10
// unless given in `extra`.
struct ConnSpec {
  std::string host = kHost;
  uint16_t port = kPrimaryPort;
  std::string dbname = kDatabase;
  std::string user = kUser;
  std::optional<std::string> password = std::string(kPassword);
  std::map<std::string, std::string> extra;  // application_name, options, sslmode ...
  std::string str() const;
};

// The superuser (postgres) on the dev node at `port`.
ConnSpec superuser_spec(uint16_t port = kPrimaryPort, const std::string& dbname = "postgres");

struct PGresultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using PgResultPtr = std::unique_ptr<PGresult, PGresultDeleter>;

// One result: status, error fields, values.
class PgResult {
 public:
  explicit PgResult(PGresult* r) : r_(r) {}
  bool ok() const;  // COMMAND_OK or TUPLES_OK (or COPY_* states)
  ExecStatusType status() const { return PQresultStatus(r_.get()); }
  std::string sqlstate() const;  // "" when none
  std::string error() const;
  int rows() const { return PQntuples(r_.get()); }
  int columns() const { return PQnfields(r_.get()); }
  std::string value(int row, int col) const;
  bool is_null(int row, int col) const { return PQgetisnull(r_.get(), row, col) != 0; }
  PGresult* get() const { return r_.get(); }

 private:
  PgResultPtr r_;
};

// A libpq connection. Construction connects (blocking, bounded by connect_timeout); check ok().
class Pg {
 public:
  explicit Pg(const std::string& conninfo);
  explicit Pg(const ConnSpec& spec) : Pg(spec.str()) {}
  bool ok() const { return conn_ && PQstatus(conn_.get()) == CONNECTION_OK; }
  std::string error() const { return conn_ ? PQerrorMessage(conn_.get()) : "no connection"; }
  PGconn* get() const { return conn_.get(); }
  PgResult exec(const std::string& sql);
  PgResult exec_params(const std::string& sql, const std::vector<std::string>& params);
  // Every result of one query (PQsendQuery + PQgetResult until NULL). Unlike exec(), which keeps
  // only the last result, this also shows a server's FATAL ErrorResponse that preceded a close.
  std::vector<PgResult> exec_all(const std::string& sql);
  // exec() with a deadline (non-blocking libpq + poll): nullopt when no complete answer arrived
  // in time; the connection is then closed (its state is unknown).
  std::optional<PgResult> exec_within(const std::string& sql, Millis deadline);
  // First column of the first row; throws (with SQLSTATE and message) on error or no rows.
  std::string scalar(const std::string& sql);
  // Throws unless the command succeeds.
  void must(const std::string& sql);
  void close() { conn_.reset(); }

 private:
  struct Deleter {
    void operator()(PGconn* c) const { PQfinish(c); }
  };
  std::unique_ptr<PGconn, Deleter> conn_;
};

// Connects, retrying until it works or `deadline` passes (the dev services may still be starting);
// the last attempt is returned either way: check ok().
Pg connect_within(const std::string& conninfo, Millis deadline, Millis interval = Millis(100));

// Superuser on the primary (to inspect pg_stat_activity / pg_locks, create databases).
Pg superuser(const std::string& dbname = "postgres");

// Waits (once per process, deadline PGS_IT_SERVICES_WAIT seconds, default 120) until the primary
// accepts the superuser; throws with a clear message otherwise.
void require_dev_services();

// Waits (deadline) until the superuser sees an active backend, on the node at `port`, whose query
// contains `needle` (a marker comment): a query is running, so a cancel has something to cancel.
bool wait_query_running(const std::string& needle, Millis deadline, uint16_t port = kPrimaryPort);

// Sum of pg_stat_statements.calls on the node at `port` (superuser, database flopods) for statements
// whose text contains `needle`. Throws when it cannot be read.
long statement_calls(uint16_t port, const std::string& needle);

// Creates database `name` owned by flopods if missing (as superuser).
void ensure_database(const std::string& name);

// psql -X -q (no psqlrc) against `conninfo`, script on stdin; env PGSSLMODE=disable.
RunResult run_psql(const std::string& conninfo, const std::string& script,
                   const std::vector<std::string>& extra_args = {}, Millis timeout = Millis(30000));

}  // namespace pgs::test
