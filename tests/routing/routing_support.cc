#include "tests/routing/routing_support.h"

#include <sstream>

namespace pgs::it::routing {

ProxyOptions routing_options(const std::vector<ReplicaEntry>& replicas, const std::string& routing_keys) {
  ProxyOptions o;
  std::ostringstream t;
  for (const auto& r : replicas) {
    t << "\n[[replicas]]\nname = \"" << r.name << "\"\nhost = \"127.0.0.1\"\nport = " << r.port << "\n";
  }
  t << "\n[routing]\nmonitor_user = \"pgsidecar\"\nmonitor_password = \"pgsidecar-dev\"\n"
    << "monitor_dbname = \"flopods\"\nhealth_check_interval = \"100ms\"\n"
    << routing_keys << "\n";
  o.extra_toml = t.str();
  return o;
}

std::string node_of(Pg& pg, const std::string& sql) {
  PgResult r = pg.exec(sql);
  if (!r.ok()) return "error: [" + r.sqlstate() + "] " + r.error();
  if (r.rows() < 1) return "error: no rows";
  return r.value(0, 0) == "t" ? "replica" : "primary";
}

bool wait_node(Pg& pg, const std::string& want, Millis deadline, const std::string& sql) {
  return wait_until([&] { return node_of(pg, sql) == want; }, deadline, Millis(20));
}

long statement_calls(uint16_t port, const std::string& needle) {
  ConnSpec s;
  s.port = port;
  s.dbname = kDatabase;
  s.user = kSuperUser;
  s.password = kSuperPassword;
  Pg pg(s);
  if (!pg.ok()) throw std::runtime_error("superuser login on :" + std::to_string(port) + ": " + pg.error());
  PgResult r = pg.exec_params(
      "SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_statements WHERE strpos(query, $1) > 0", {needle});
  if (!r.ok()) throw std::runtime_error("pg_stat_statements on :" + std::to_string(port) + ": " + r.error());
  return std::stol(r.value(0, 0));
}

}  // namespace pgs::it::routing
