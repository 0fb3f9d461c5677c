#include "tests/support/pg.h"

#include <poll.h>

#include <cstdlib>
#include <mutex>
#include <stdexcept>

namespace pgs::test {
namespace {

// A libpq conninfo value: single-quoted with \ and ' escaped.
std::string quote_conninfo(const std::string& v) {
  std::string out = "'";
  for (char c : v) {
    if (c == '\\' || c == '\'') out += '\\';
    out += c;
  }
  return out + "'";
}

}  // namespace

std::string ConnSpec::str() const {
  std::map<std::string, std::string> kv = extra;
  kv["host"] = host;
  kv["port"] = std::to_string(port);
  kv["dbname"] = dbname;
  kv["user"] = user;
  if (password) kv["password"] = *password;
  kv.try_emplace("sslmode", "disable");
  kv.try_emplace("gssencmode", "disable");
  kv.try_emplace("connect_timeout", "10");
  std::string out;
  for (const auto& [k, v] : kv) out += k + "=" + quote_conninfo(v) + " ";
  return out;
}

ConnSpec superuser_spec(uint16_t port, const std::string& dbname) {
  ConnSpec s;
  s.port = port;
  s.dbname = dbname;
  s.user = kSuperUser;
  s.password = kSuperPassword;
  return s;
}

bool PgResult::ok() const {
  switch (status()) {
    case PGRES_COMMAND_OK:
    case PGRES_TUPLES_OK:
    case PGRES_COPY_IN:
    case PGRES_COPY_OUT:
    case PGRES_SINGLE_TUPLE:
    case PGRES_PIPELINE_SYNC:
      return true;
    default:
      return false;
  }
}

std::string PgResult::sqlstate() const {
  const char* s = r_ ? PQresultErrorField(r_.get(), PG_DIAG_SQLSTATE) : nullptr;
  return s != nullptr ? s : "";
}

std::string PgResult::error() const {
  return r_ ? PQresultErrorMessage(r_.get()) : "no result (connection lost?)";
}

std::string PgResult::value(int row, int col) const {
  if (row >= rows() || col >= PQnfields(r_.get())) throw std::runtime_error("no such cell");
  return PQgetvalue(r_.get(), row, col);
}

Pg::Pg(const std::string& conninfo) : conn_(PQconnectdb(conninfo.c_str())) {}

PgResult Pg::exec(const std::string& sql) { return PgResult(PQexec(conn_.get(), sql.c_str())); }

PgResult Pg::exec_params(const std::string& sql, const std::vector<std::string>& params) {
  std::vector<const char*> values;
  for (const auto& p : params) values.push_back(p.c_str());
  return PgResult(PQexecParams(conn_.get(), sql.c_str(), static_cast<int>(values.size()), nullptr,
                               values.data(), nullptr, nullptr, 0));
}

std::vector<PgResult> Pg::exec_all(const std::string& sql) {
  std::vector<PgResult> out;
  if (PQsendQuery(conn_.get(), sql.c_str()) != 1) {
    out.emplace_back(PQmakeEmptyPGresult(conn_.get(), PGRES_FATAL_ERROR));
    return out;
  }
  while (PGresult* r = PQgetResult(conn_.get())) out.emplace_back(r);
  return out;
}

std::optional<PgResult> Pg::exec_within(const std::string& sql, Millis deadline) {
  PGconn* c = conn_.get();
  auto end = Clock::now() + deadline;
  if (PQsendQuery(c, sql.c_str()) != 1) return PgResult(PQmakeEmptyPGresult(c, PGRES_FATAL_ERROR));
  std::optional<PgResult> last;
  while (true) {
    while (!PQisBusy(c)) {
      PGresult* r = PQgetResult(c);
      if (r == nullptr) return last;
      last.emplace(r);
    }
    int left = ms_left(end);
    pollfd p{PQsocket(c), POLLIN, 0};
    if (left <= 0 || poll(&p, 1, left) == 0) break;
    if (PQconsumeInput(c) != 1) return PgResult(PQmakeEmptyPGresult(c, PGRES_FATAL_ERROR));
  }
  conn_.reset();
  return std::nullopt;
}

std::string Pg::scalar(const std::string& sql) {
  PgResult r = exec(sql);
  if (!r.ok() || r.rows() < 1) {
    throw std::runtime_error("query failed: " + sql + ": [" + r.sqlstate() + "] " + r.error());
  }
  return r.value(0, 0);
}

void Pg::must(const std::string& sql) {
  PgResult r = exec(sql);
  if (!r.ok()) throw std::runtime_error("failed: " + sql + ": [" + r.sqlstate() + "] " + r.error());
}

Pg connect_within(const std::string& conninfo, Millis deadline, Millis interval) {
  std::optional<Pg> last;
  wait_until(
      [&] {
        last.emplace(conninfo);
        return last->ok();
      },
      deadline, interval);
  return std::move(*last);
}

Pg superuser(const std::string& dbname) {
  ConnSpec s = superuser_spec(kPrimaryPort, dbname);
  s.extra["connect_timeout"] = "5";
  s.extra["application_name"] = "pgs-it-superuser";
  return Pg(s);
}

void require_dev_services() {
  static std::once_flag once;
  static std::string failure;
  std::call_once(once, [] {
    const char* env = std::getenv("PGS_IT_SERVICES_WAIT");
    Millis wait(1000 * std::stoi(env != nullptr && *env != '\0' ? env : "120"));
    std::string last;
    bool up = wait_until(
        [&] {
          Pg pg = superuser();
          last = pg.error();
          return pg.ok();
        },
        wait, Millis(500));
    if (!up) {
      failure = "dev services not reachable (primary 127.0.0.1:15432 as postgres); run ./dev up. "
                "Last error: " + last;
    }
  });
  if (!failure.empty()) throw std::runtime_error(failure);
}

bool wait_query_running(const std::string& needle, Millis deadline, uint16_t port) {
  Pg su(superuser_spec(port));
  if (!su.ok()) return false;
  return wait_until(
      [&] {
        PgResult r = su.exec_params(
            "SELECT 1 FROM pg_stat_activity WHERE state = 'active' AND query LIKE $1 AND pid <> pg_backend_pid()",
            {"%" + needle + "%"});
        return r.ok() && r.rows() > 0;
      },
      deadline);
}

long statement_calls(uint16_t port, const std::string& needle) {
  Pg pg(superuser_spec(port, kDatabase));
  if (!pg.ok()) throw std::runtime_error("superuser login on :" + std::to_string(port) + ": " + pg.error());
  PgResult r = pg.exec_params(
      "SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_statements WHERE strpos(query, $1) > 0", {needle});
  if (!r.ok()) throw std::runtime_error("pg_stat_statements on :" + std::to_string(port) + ": " + r.error());
  return std::stol(r.value(0, 0));
}

void ensure_database(const std::string& name) {
  Pg su = superuser();
  if (!su.ok()) throw std::runtime_error("superuser connect: " + su.error());
  PgResult r = su.exec_params("SELECT 1 FROM pg_database WHERE datname = $1", {name});
  if (!r.ok()) throw std::runtime_error(r.error());
  if (r.rows() == 0) su.must("CREATE DATABASE \"" + name + "\" OWNER flopods");
}

RunResult run_psql(const std::string& conninfo, const std::string& script,
                   const std::vector<std::string>& extra_args, Millis timeout) {
  std::vector<std::string> argv = {"psql", "-X", "-d", conninfo};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  return run_program(argv, {{"PGSSLMODE", "disable"}, {"PGCONNECT_TIMEOUT", "10"}}, timeout,
                     script);
}

}  // namespace pgs::test
