#include "tests/routing/routing_support.h"

#include <cstdlib>
#include <sstream>

#include "tests/support/raw_client.h"

namespace pgs::it::routing {

ProxyOptions routing_options(const std::vector<ReplicaEntry>& replicas, const std::string& routing_keys) {
  ProxyOptions o;
  std::ostringstream t;
  for (const auto& r : replicas) {
    t << "\n[[replicas]]\nname = \"" << r.name << "\"\nhost = \"127.0.0.1\"\nport = " << r.port
      << "\nweight = " << r.weight << "\n";
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

std::string metrics_page(const Proxy& proxy) {
  if (proxy.direct() || proxy.metrics_port() == 0) return "";
  try {
    RawConn c(kHost, proxy.metrics_port());
    c.send("GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    return c.drain(Millis(5000)).bytes;
  } catch (const std::exception&) {
    return "";
  }
}

namespace {
double decisions_in(const std::string& page, const std::string& target, const std::string& reason) {
  if (page.find("HTTP/1.") != 0) return -1;
  std::string series = "pgsidecar_routing_decisions_total{target=\"" + target + "\",reason=\"" + reason + "\"} ";
  size_t at = page.find("\n" + series);
  if (at == std::string::npos) return 0;
  return std::strtod(page.c_str() + at + 1 + series.size(), nullptr);
}
}  // namespace

double routing_decisions(const Proxy& proxy, const std::string& target, const std::string& reason) {
  return decisions_in(metrics_page(proxy), target, reason);
}

std::string wait_decisions(const Proxy& proxy, const std::vector<DecisionCount>& wanted, Millis deadline) {
  std::string last;
  bool ok = wait_until(
      [&] {
        std::string page = metrics_page(proxy);
        last.clear();
        bool all = true;
        for (const auto& w : wanted) {
          double n = decisions_in(page, w.target, w.reason);
          if (n < w.want) all = false;
          last += " " + w.target + "/" + w.reason + "=" + std::to_string(static_cast<long>(n)) + " want " +
                  std::to_string(static_cast<long>(w.want));
        }
        return all;
      },
      deadline, Millis(100));
  return ok ? "" : last;
}

}  // namespace pgs::it::routing
