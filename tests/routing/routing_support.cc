#include "tests/routing/routing_support.h"

#include <sstream>

namespace pgs::it::routing {

ProxyOptions routing_options(const std::vector<ReplicaEntry>& replicas, const std::string& routing_keys) {
  ProxyOptions o;
  std::ostringstream t;
  for (const auto& r : replicas) {
    t << "\n[[replicas]]\nname = \"" << r.name << "\"\nhost = \"127.0.0.1\"\nport = " << r.port
      << "\nweight = " << r.weight << "\n";
  }
  t << "\n[routing]\n" << monitor_toml() << "health_check_interval = \"100ms\"\n"
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

std::string show_replicas(const Proxy& proxy) {
  Pg admin(proxy.spec(kAdminUser, kAdminPassword, kAdminDatabase));
  if (!admin.ok()) return "SHOW REPLICAS: no admin login: " + admin.error();
  PgResult r = admin.exec("SHOW REPLICAS");
  if (!r.ok()) return "SHOW REPLICAS: " + r.error();
  std::string out;
  for (int row = 0; row < r.rows(); ++row) {
    for (int col = 0; col < r.columns(); ++col) out += std::string(PQfname(r.get(), col)) + "=" + r.value(row, col) + " ";
    out += "\n";
  }
  return out;
}

namespace {
double decisions_in(const std::string& page, const std::string& target, const std::string& reason) {
  if (page.empty()) return -1;
  double n = metric_value(page, "pgsidecar_routing_decisions_total",
                          "target=\"" + target + "\",reason=\"" + reason + "\"");
  return n < 0 ? 0 : n;
}
}  // namespace

double routing_decisions(const Proxy& proxy, const std::string& target, const std::string& reason) {
  return decisions_in(scrape_metrics(proxy), target, reason);
}

std::string wait_decisions(const Proxy& proxy, const std::vector<DecisionCount>& wanted, Millis deadline) {
  std::string last;
  bool ok = wait_until(
      [&] {
        std::string page = scrape_metrics(proxy);
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
