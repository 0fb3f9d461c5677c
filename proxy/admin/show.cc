#include "proxy/admin/show.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>

#include "proxy/admin/aggregate.h"

namespace pgs::proxy::admin {

namespace {

using Cell = std::optional<std::string>;

std::string num(uint64_t v) { return std::to_string(v); }
std::string num(int64_t v) { return std::to_string(v); }
std::string num(int v) { return std::to_string(v); }
std::string micros(double seconds) { return std::to_string(static_cast<uint64_t>(std::llround(std::max(0.0, seconds) * 1e6))); }

// "2026-11-26 19:47:52 UTC" for now - ago (PgBouncer prints local timestamps; UTC is unambiguous).
std::string timestamp(WallClock::time_point now, double ago_seconds) {
  auto at = now - std::chrono::duration_cast<WallClock::duration>(std::chrono::duration<double>(ago_seconds));
  std::time_t t = WallClock::to_time_t(at);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

std::string hex_ptr(uint64_t id) {
  if (id == 0) return "";
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(id));
  return buf;
}

}  // namespace

Table show_pools(const WorkerStats& all) {
  Table t{{"database", "user", "cl_active", "cl_waiting", "cl_idle", "sv_active", "sv_idle", "sv_used",
           "sv_login", "maxwait", "maxwait_us", "pool_mode", "pool_size", "node", "sv_being_canceled"},
          {},
          {}};
  for (const PoolStats& p : all.pools) {
    int used = std::max(0, p.sv_total - p.sv_active - p.sv_idle - p.sv_login - p.sv_being_canceled);
    auto whole = static_cast<uint64_t>(std::floor(std::max(0.0, p.maxwait_seconds)));
    auto frac = static_cast<uint64_t>(std::llround((std::max(0.0, p.maxwait_seconds) - whole) * 1e6));
    t.rows.push_back({p.database, p.user, num(p.cl_active), num(p.cl_waiting), num(p.cl_idle),
                      num(p.sv_active), num(p.sv_idle), num(used), num(p.sv_login), num(whole),
                      num(std::min<uint64_t>(frac, 999999)), p.pool_mode, num(p.size_limit), p.node,
                      num(p.sv_being_canceled)});
  }
  return t;
}

Table show_stats(const WorkerStats& all) {
  Table t{{"database", "total_xact_count", "total_query_count", "total_received", "total_sent",
           "total_xact_time", "total_query_time", "total_wait_time", "total_wait_count", "avg_xact_time",
           "avg_query_time", "avg_wait_time"},
          {},
          {}};
  struct Db {
    uint64_t xacts = 0, queries = 0, waits = 0;
    double xact_s = 0, wait_s = 0;
  };
  std::vector<std::pair<std::string, Db>> dbs;
  Db total;
  for (const PoolStats& p : all.pools) {
    if (dbs.empty() || dbs.back().first != p.database) dbs.push_back({p.database, {}});
    for (Db* d : {&dbs.back().second, &total}) {
      d->xacts += p.xact_count;
      d->queries += p.query_count;
      d->waits += p.wait_count;
      d->xact_s += p.xact_seconds;
      d->wait_s += p.wait_seconds;
    }
  }
  auto avg = [](double s, uint64_t n) { return n == 0 ? std::string("0") : micros(s / static_cast<double>(n)); };
  for (const auto& [name, d] : dbs) {
    t.rows.push_back({name, num(d.xacts), num(d.queries), std::nullopt, std::nullopt, micros(d.xact_s),
                      std::nullopt, micros(d.wait_s), num(d.waits), avg(d.xact_s, d.xacts), std::nullopt,
                      avg(d.wait_s, d.waits)});
  }
  double query_s = 0;
  uint64_t query_n = 0;
  for (const Histogram& h : all.metrics.query_duration) {
    query_s += h.sum;
    query_n += h.count;
  }
  t.rows.push_back({"*", num(total.xacts), num(total.queries), num(all.metrics.bytes_received), num(all.metrics.bytes_sent),
                    micros(total.xact_s), micros(query_s), micros(total.wait_s), num(total.waits),
                    avg(total.xact_s, total.xacts), avg(query_s, query_n), avg(total.wait_s, total.waits)});
  return t;
}

Table show_clients(const WorkerStats& all, WallClock::time_point now) {
  Table t{{"type", "user", "database", "state", "addr", "port", "connect_time", "request_time", "wait",
           "wait_us", "ptr", "link", "application_name", "worker", "pinned"},
          {},
          {}};
  for (const ClientRow& c : all.clients) {
    auto [addr, port] = split_addr(c.addr);
    bool waiting = c.state.find("wait") != std::string::npos;
    double wait = waiting ? std::max(0.0, c.state_seconds) : 0.0;
    auto whole = static_cast<uint64_t>(std::floor(wait));
    t.rows.push_back({"C", c.user, c.database, c.state, addr, port, timestamp(now, c.connected_seconds),
                      timestamp(now, c.state_seconds), num(whole),
                      num(std::min<uint64_t>(999999, static_cast<uint64_t>(std::llround((wait - whole) * 1e6)))),
                      hex_ptr(c.id), hex_ptr(c.server_id), c.application_name, num(c.worker), c.pinned});
  }
  return t;
}

Table show_servers(const WorkerStats& all, WallClock::time_point now) {
  Table t{{"type", "user", "database", "state", "addr", "port", "connect_time", "request_time", "ptr",
           "link", "remote_pid", "role", "worker", "prepared_statements"},
          {},
          {}};
  for (const ServerRow& s : all.servers) {
    auto [addr, port] = split_addr(s.addr);
    t.rows.push_back({"S", s.user, s.database, s.state, addr, port, timestamp(now, s.connected_seconds),
                      timestamp(now, s.state_seconds), hex_ptr(s.id), hex_ptr(s.client_id),
                      num(static_cast<int64_t>(s.backend_pid)), s.role, num(s.worker),
                      num(s.prepared_statements)});
  }
  return t;
}

Table show_config(const conf::Config& config) {
  Table t{{"key", "value"}, {}, {}};
  for (auto& [k, v] : conf::config_rows(config)) t.rows.push_back({k, v});
  return t;
}

Table show_version(const std::string& version) { return Table{{"version"}, {{version}}, {}}; }

const std::vector<std::pair<std::string, std::string>>& command_list() {
  static const std::vector<std::pair<std::string, std::string>> kList = {
      {"SHOW POOLS", "clients and servers per (database, user, node) pool"},
      {"SHOW STATS", "transaction/query/wait totals per database; row '*' = process totals"},
      {"SHOW CLIENTS", "one row per client connection"},
      {"SHOW SERVERS", "one row per server connection"},
      {"SHOW CONFIG", "the running configuration (secrets redacted)"},
      {"SHOW VERSION", "the proxy version"},
      {"SHOW HELP", "this list"},
      {"SHOW REPLICAS", "primary and replica health and lag from the health monitor"},
      {"SHOW CACHE", "result cache per TTL class: hits, misses, stores, invalidations, evictions; bypasses, Redis errors"},
      {"SHOW DIGESTS", "per-fingerprint statistics: calls, latency percentiles, rows, errors, cache hits (top 100)"},
      {"RELOAD", "re-read the config file; an invalid file is an ERROR and the old config stays"},
      {"PAUSE", "hold new transactions until RESUME"},
      {"RESUME", "release paused clients"},
      {"SHUTDOWN", "drain and stop the process (as SIGTERM)"},
  };
  return kList;
}

Table show_help() {
  Table t{{"command", "description"}, {}, {}};
  for (const auto& [c, d] : command_list()) t.rows.push_back({c, d});
  return t;
}

Table show_replicas(const conf::Config& config, const monitor::HealthSnapshot* health) {
  Table t{{"name", "host", "port", "weight", "state", "healthy", "lag_bytes", "lag_seconds"}, {}, {}};
  if (health != nullptr) {
    auto row = [&](const monitor::NodeHealth& n, bool replica) {
      bool checked = n.checked_at != std::chrono::steady_clock::time_point{};
      Cell lag_b = replica && checked ? Cell(num(n.lag_bytes)) : std::nullopt;
      Cell lag_s = replica && checked ? Cell(std::to_string(std::chrono::duration<double>(n.lag).count())) : std::nullopt;
      t.rows.push_back({n.node.name, n.node.host, num(static_cast<int>(n.node.port)), num(static_cast<int>(n.node.weight)),
                        std::string(monitor::reason_name(n.reason)), n.healthy ? "t" : "f", lag_b, lag_s});
    };
    row(health->primary, false);
    for (const auto& n : health->replicas) row(n, true);
    return t;
  }
  t.notice = "pgsidecar: no replica health available (no replica configured, or the monitor is not running)";
  for (const auto& r : config.replicas) {
    t.rows.push_back({r.name, r.host, num(static_cast<int>(r.port)), num(r.weight), "unknown", std::nullopt,
                      std::nullopt, std::nullopt});
  }
  return t;
}

// One row per TTL class (hits .. invalidations), then one row per total that belongs to no class
// ("(bypass: reason)", "(redis errors)", ...) with only `count` set.
Table show_cache(const WorkerStats& all) {
  const CacheStats& c = all.metrics.cache;
  Table t{{"class", "hits", "misses", "hit_ratio", "stores", "skipped", "invalidations", "evictions", "count"},
          {},
          ""};
  if (c.workers_enabled == 0) {
    t.notice = "pgsidecar: the result cache is off ([cache] enabled = false)";
    return t;
  }
  if (c.workers_ready < c.workers_enabled) {
    t.notice = "pgsidecar: the cache is not in sync with Redis on every worker: lookups bypass it meanwhile";
  }
  using Cell = std::optional<std::string>;
  auto u = [](uint64_t v) { return Cell(std::to_string(v)); };
  for (const auto& [name, k] : c.classes) {
    uint64_t lookups = k.hits + k.misses;
    char ratio[32];
    std::snprintf(ratio, sizeof ratio, "%.3f", lookups == 0 ? 0.0 : static_cast<double>(k.hits) / lookups);
    t.rows.push_back({name, u(k.hits), u(k.misses), std::string(ratio), u(k.stores), u(k.not_stored),
                      u(k.invalidations), u(k.evictions), std::nullopt});
  }
  auto total = [&](std::string label, uint64_t n) {
    t.rows.push_back({std::move(label), std::nullopt, std::nullopt, std::nullopt, std::nullopt, std::nullopt,
                      std::nullopt, std::nullopt, u(n)});
  };
  for (size_t r = 0; r < c.bypass.size(); ++r) {
    if (c.bypass[r] != 0) total("(bypass: " + std::string(cache::kBypassReasonNames[r]) + ")", c.bypass[r]);
  }
  total("(waits served)", c.waits - std::min(c.waits, c.wait_fallthroughs));
  total("(waits fell through)", c.wait_fallthroughs);
  total("(corrupt entries)", c.corrupt);
  total("(redis errors)", c.redis_errors);
  total("(redis commands)", c.redis_commands);
  total("(commits that invalidated)", c.bumps);
  uint64_t behind = 0;
  for (const auto& [name, k] : c.classes) behind += k.replica_behind;
  total("(not stored: replica behind)", behind);
  return t;
}

Table show_digests(const std::optional<std::vector<std::vector<std::string>>>& rows) {
  Table t{{"fingerprint", "query", "calls", "total_ms", "mean_ms", "p50_ms", "p95_ms", "p99_ms", "rows",
           "errors", "cache_hits"},
          {},
          rows ? "" : "pgsidecar: statement digests are off ([observability] digest_top_n = 0)"};
  if (!rows) return t;
  for (const auto& r : *rows) t.rows.emplace_back(r.begin(), r.end());
  return t;
}

}  // namespace pgs::proxy::admin
