// The monitor suite's names for the libpq helpers of tests/support (pgs_test_support): connections
// to the dev nodes as the superuser or the app user, retried while the services start.
#pragma once

#include <libpq-fe.h>

#include <chrono>
#include <string>

#include "tests/support/dev_env.h"
#include "tests/support/pg.h"

namespace pgs::monitor::test {

using Conn = ::pgs::test::Pg;  // get() is the PGconn*
using ::pgs::test::kPrimaryPort;
using ::pgs::test::kReplicaPort;

// Superuser (tests only) or the app user on the given dev port, database flopods.
inline std::string superuser_conninfo(uint16_t port) {
  ::pgs::test::ConnSpec s = ::pgs::test::superuser_spec(port, ::pgs::test::kDatabase);
  s.extra["application_name"] = "pgs-monitor-test";
  return s.str();
}
inline std::string app_conninfo(uint16_t port) {
  ::pgs::test::ConnSpec s;
  s.port = port;
  s.extra["application_name"] = "pgs-monitor-test";
  return s.str();
}

// Connects, retrying until `wait` passes (the dev services may still be starting). Check PQstatus.
inline Conn connect(const std::string& conninfo, std::chrono::seconds wait = std::chrono::seconds(30)) {
  return ::pgs::test::connect_within(conninfo, wait);
}

// Runs `sql`; the first value of the first row, or "" with *ok = false on error.
inline std::string scalar(PGconn* c, const std::string& sql, bool* ok = nullptr) {
  ::pgs::test::PgResult r(PQexec(c, sql.c_str()));
  bool good = r.status() == PGRES_TUPLES_OK || r.status() == PGRES_COMMAND_OK;
  if (ok != nullptr) *ok = good;
  if (!good || r.rows() < 1 || PQnfields(r.get()) < 1) return "";
  return r.value(0, 0);
}

}  // namespace pgs::monitor::test
