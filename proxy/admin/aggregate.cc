#include "proxy/admin/aggregate.h"

#include <algorithm>
#include <map>
#include <tuple>

namespace pgs::proxy::admin {

namespace {

void merge_totals(WorkerStats& into, const WorkerStats& w) {
  into.metrics.merge(w.metrics);
  into.client_count += w.client_count;
}

}  // namespace

WorkerStats aggregate(const std::vector<WorkerStats>& workers) {
  WorkerStats out;
  out.worker = -1;
  // One row per (database, user, node): a replica's pool is not the primary's.
  std::map<std::tuple<std::string, std::string, std::string>, PoolStats> pools;
  for (const WorkerStats& w : workers) {
    merge_totals(out, w);
    for (const PoolStats& p : w.pools) {
      auto [it, fresh] = pools.try_emplace({p.database, p.user, p.node});
      if (fresh) {
        it->second.database = p.database;
        it->second.user = p.user;
        it->second.node = p.node;
        it->second.pool_mode = p.pool_mode;
      }
      it->second.merge(p);
    }
    out.clients.insert(out.clients.end(), w.clients.begin(), w.clients.end());
    out.servers.insert(out.servers.end(), w.servers.begin(), w.servers.end());
  }
  for (auto& [key, p] : pools) out.pools.push_back(std::move(p));
  std::sort(out.clients.begin(), out.clients.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  std::sort(out.servers.begin(), out.servers.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  return out;
}

std::pair<std::string, std::string> split_addr(std::string_view addr) {
  if (!addr.empty() && addr.front() == '[') {
    size_t close = addr.find(']');
    if (close == std::string_view::npos) return {std::string(addr), ""};
    std::string host(addr.substr(1, close - 1));
    if (close + 1 < addr.size() && addr[close + 1] == ':') return {host, std::string(addr.substr(close + 2))};
    return {host, ""};
  }
  size_t colon = addr.rfind(':');
  if (colon == std::string_view::npos || addr.find(':') != colon) return {std::string(addr), ""};
  return {std::string(addr.substr(0, colon)), std::string(addr.substr(colon + 1))};
}

}  // namespace pgs::proxy::admin
