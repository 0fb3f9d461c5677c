#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <map>

#include "conf/units.h"
#include "conf/validate.h"

namespace pgs::conf::detail {
namespace {

std::string lowercase(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

bool ip_literal(const std::string& host) {
  unsigned char buf[16];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

bool plain_identifier(std::string_view s) {
  return !s.empty() && s.size() <= 63 && std::all_of(s.begin(), s.end(), [](unsigned char c) {
           return std::isalnum(c) || c == '_' || c == '$';
         });
}

// "schema.table", both parts plain identifiers (the classifier reports tables schema-qualified).
bool qualified_table(std::string_view s) {
  size_t dot = s.find('.');
  if (dot == std::string_view::npos) return false;
  return plain_identifier(s.substr(0, dot)) && plain_identifier(s.substr(dot + 1));
}

void check_class_tables(CacheClass& cls, const std::string& path, std::map<std::string, std::string>& owner,
                        Diagnostics& diag) {
  for (size_t t = 0; t < cls.tables.size(); ++t) {
    std::string key = path + ".tables[" + std::to_string(t) + "]";
    int line = diag.line_of(path + ".tables");
    cls.tables[t] = lowercase(cls.tables[t]);
    const std::string& table = cls.tables[t];
    if (!qualified_table(table)) {
      diag.error(key, line, "\"" + table + "\" must be a schema-qualified table name, e.g. \"core.users\"");
      continue;
    }
    auto [it, fresh] = owner.emplace(table, cls.name);
    if (!fresh) {
      diag.error(key, line, "table \"" + table + "\" is already in cache class \"" + it->second + "\"");
    }
  }
}

}  // namespace

// [cache] redis_cluster: seeds are IP literals with a port (the cache connects without a resolver).
void check_redis_cluster(const CacheConfig& cache, Diagnostics& diag) {
  if (!cache.redis_cluster) return;
  if (cache.redis_nodes.empty()) {
    diag.error("cache.redis_nodes", diag.line_of("cache.redis_cluster"),
               "redis_cluster = true needs at least one seed node, e.g. [\"127.0.0.1:7000\"]");
  }
  for (size_t i = 0; i < cache.redis_nodes.size(); ++i) {
    std::optional<HostPort> hp = parse_host_port(cache.redis_nodes[i]);
    if (!hp || !ip_literal(hp->host)) {
      diag.error("cache.redis_nodes[" + std::to_string(i) + "]", diag.line_of("cache.redis_nodes"),
                 "\"" + cache.redis_nodes[i] + "\" must be \"ip:port\" with an IP address (\"127.0.0.1:7000\", \"[::1]:7000\")");
    }
  }
}

void check_cache(CacheConfig& cache, Diagnostics& diag) {
  check_redis_cluster(cache, diag);
  std::map<std::string, std::string> class_line_key;
  std::map<std::string, std::string> table_owner;
  for (size_t i = 0; i < cache.classes.size(); ++i) {
    CacheClass& cls = cache.classes[i];
    std::string path = "cache.classes[" + std::to_string(i) + "]";
    if (cls.name.empty()) {
      if (diag.line_of(path + ".name") == 0) diag.error(path + ".name", diag.line_of(path), "is required");
    } else if (auto [it, fresh] = class_line_key.emplace(cls.name, path + ".name"); !fresh) {
      diag.error(path + ".name", diag.line_of(path + ".name"),
                 "duplicate cache class \"" + cls.name + "\" (first at line " +
                     std::to_string(diag.line_of(it->second)) + ")");
    }
    if (diag.line_of(path + ".ttl") == 0) diag.error(path + ".ttl", diag.line_of(path), "is required");
    if (cls.tables.empty()) {
      int line = diag.line_of(path + ".tables");
      diag.error(path + ".tables", line != 0 ? line : diag.line_of(path), "must list at least one table");
    }
    check_class_tables(cls, path, table_owner, diag);
  }
}

void check_routing(RoutingConfig& routing, Diagnostics& diag) {
  const std::string key = "routing.replica_safe_functions";
  for (size_t i = 0; i < routing.replica_safe_functions.size(); ++i) {
    std::string& fn = routing.replica_safe_functions[i];
    fn = lowercase(fn);
    size_t dot = fn.find('.');
    bool ok = dot == std::string::npos ? plain_identifier(fn)
                                       : plain_identifier(fn.substr(0, dot)) && plain_identifier(fn.substr(dot + 1));
    if (!ok) {
      diag.error(key + "[" + std::to_string(i) + "]", diag.line_of(key),
                 "\"" + fn + "\" must be a function name, optionally schema-qualified (\"pg_catalog.now\")");
    }
  }
}

void check_observability(ObservabilityConfig& o, Diagnostics& diag) {
  if (o.metrics_listen.empty()) {
    o.metrics_host.clear();
    o.metrics_port = 0;
    return;
  }
  auto hp = parse_host_port(o.metrics_listen);
  if (!hp) {
    diag.error("observability.metrics_listen", diag.line_of("observability.metrics_listen"),
               "expected \"host:port\" (or \"[ipv6]:port\", or \"\" to disable), got \"" + o.metrics_listen + "\"");
    return;
  }
  o.metrics_host = hp->host;
  o.metrics_port = hp->port;
}

}  // namespace pgs::conf::detail
