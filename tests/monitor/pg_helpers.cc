#include "tests/monitor/pg_helpers.h"

#include <thread>

namespace pgs::monitor::test {

std::string superuser_conninfo(uint16_t port) {
  return "host=127.0.0.1 port=" + std::to_string(port) +
         " dbname=flopods user=postgres password=postgres-dev sslmode=disable application_name=pgs-monitor-test";
}

std::string app_conninfo(uint16_t port) {
  return "host=127.0.0.1 port=" + std::to_string(port) +
         " dbname=flopods user=flopods password=flopods-dev sslmode=disable application_name=pgs-monitor-test";
}

Conn connect(const std::string& conninfo, std::chrono::seconds wait) {
  auto deadline = std::chrono::steady_clock::now() + wait;
  for (;;) {
    Conn c(PQconnectdb(conninfo.c_str()), &PQfinish);
    if (PQstatus(c.get()) == CONNECTION_OK || std::chrono::steady_clock::now() > deadline) return c;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // poll interval, bounded by the deadline
  }
}

std::string scalar(PGconn* c, const std::string& sql, bool* ok) {
  std::unique_ptr<PGresult, decltype(&PQclear)> r(PQexec(c, sql.c_str()), &PQclear);
  bool good = PQresultStatus(r.get()) == PGRES_TUPLES_OK || PQresultStatus(r.get()) == PGRES_COMMAND_OK;
  if (ok != nullptr) *ok = good;
  if (!good || PQntuples(r.get()) < 1 || PQnfields(r.get()) < 1) return "";
  return PQgetvalue(r.get(), 0, 0);
}

}  // namespace pgs::monitor::test
