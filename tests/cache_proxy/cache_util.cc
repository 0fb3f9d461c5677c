#include "tests/cache_proxy/cache_util.h"

#include <unistd.h>

#include <atomic>
#include <sstream>
#include <stdexcept>

namespace pgs::it::cache_proxy {

void create_table(const std::string& name, int rows) {
  Pg c{ConnSpec{}};
  if (!c.ok()) throw std::runtime_error("create_table: " + c.error());
  c.must("DROP TABLE IF EXISTS public." + name);
  c.must("CREATE TABLE public." + name + " (id int PRIMARY KEY, v text)");
  c.must("INSERT INTO public." + name + " SELECT g, 'v' || g FROM generate_series(1, " + std::to_string(rows) +
         ") g");
}

void drop_table(const std::string& name) {
  Pg c{ConnSpec{}};
  if (c.ok()) c.exec("DROP TABLE IF EXISTS public." + name);
}

ProxyOptions cache_options(uint16_t redis_port, const std::string& prefix, const std::vector<std::string>& classes,
                           int workers) {
  ProxyOptions o;
  o.workers = workers;
  o.pool_size = 4;
  std::ostringstream c;
  c << "enabled = true\nredis_host = \"127.0.0.1\"\nredis_port = " << redis_port << "\nkey_prefix = \"" << prefix
    << "\"\nredis_timeout = \"200ms\"\n";
  o.cache_toml = c.str();
  std::ostringstream x;
  for (const std::string& spec : classes) {
    auto a = spec.find(':');
    auto b = spec.find(':', a + 1);
    x << "\n[[cache.classes]]\nname = \"" << spec.substr(0, a) << "\"\nttl = \"" << spec.substr(a + 1, b - a - 1)
      << "\"\ntables = [\"" << spec.substr(b + 1) << "\"]\n";
  }
  o.extra_toml = x.str();
  return o;
}

bool wait_catalog_read(const Proxy& p) {
  return wait_until([&] {
    return metric_value(scrape_metrics(p), "pgsidecar_cache_catalog_reads_total", "") >= 1;
  }, Millis(10000), Millis(20));
}

long statement_calls(const std::string& needle) {
  Pg su = superuser(kDatabase);
  if (!su.ok()) throw std::runtime_error("statement_calls: " + su.error());
  PgResult r = su.exec_params(
      "SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_statements WHERE query LIKE '%' || $1 || '%' "
      "AND query NOT LIKE '%pg_stat_statements%'",
      {needle});
  if (!r.ok() || r.rows() != 1) throw std::runtime_error("statement_calls: " + r.error());
  return std::stol(r.value(0, 0));
}

std::string unique_prefix() {
  static std::atomic<int> counter{0};
  return "pgsc-e2e-" + std::to_string(getpid()) + "-" + std::to_string(counter++) + ":";
}

std::string stream_toml(const std::string& slot) {
  return "invalidation_stream = true\nstream_slot = \"" + slot + "\"\nstream_user = \"" + kAdminUser +
         "\"\nstream_password = \"" + kAdminPassword + "\"\nstream_max_delay = \"1s\"\n";
}

std::string direct_write_reaches(Pg& c, const std::string& table) {
  const std::string sql = "SELECT id, v FROM public." + table + " WHERE id = 1";
  const bool cached = wait_until([&] {
    long before = statement_calls(table);
    return c.scalar(sql) != "" && statement_calls(table) == before;
  }, Millis(10000), Millis(20));
  if (!cached) return "row 1 was never cached";
  {
    Pg su = superuser(kDatabase);
    if (!su.ok()) return su.error();
    su.must("UPDATE public." + table + " SET v = 'direct' WHERE id = 1");
  }
  std::string seen;
  const bool reached = wait_until([&] {
    PgResult r = c.exec(sql);
    seen = r.ok() && r.rows() == 1 ? r.value(0, 1) : "";
    return seen == "direct";
  }, Millis(5000), Millis(10));
  return reached ? "" : "still " + seen;
}

void drop_stream_slots(const std::string& slot) {
  Pg su = superuser(kDatabase);
  su.exec("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name LIKE '" + slot +
          "%' AND NOT active");
}

}  // namespace pgs::it::cache_proxy
