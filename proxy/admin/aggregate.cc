#include "proxy/admin/aggregate.h"

#include <algorithm>
#include <map>
#include <tuple>

namespace pgs::proxy::admin {

namespace {

void merge_pool(PoolStats& into, const PoolStats& p) {
  into.size_limit += p.size_limit;
  into.cl_active += p.cl_active;
  into.cl_waiting += p.cl_waiting;
  into.cl_idle += p.cl_idle;
  into.sv_active += p.sv_active;
  into.sv_idle += p.sv_idle;
  into.sv_being_canceled += p.sv_being_canceled;
  into.sv_login += p.sv_login;
  into.sv_total += p.sv_total;
  into.maxwait_seconds = std::max(into.maxwait_seconds, p.maxwait_seconds);
  into.xact_count += p.xact_count;
  into.query_count += p.query_count;
  into.wait_count += p.wait_count;
  into.xact_seconds += p.xact_seconds;
  into.wait_seconds += p.wait_seconds;
  into.wait.merge(p.wait);
}

void merge_totals(WorkerStats& into, const WorkerStats& w) {
  into.clients_accepted += w.clients_accepted;
  into.clients_refused += w.clients_refused;
  into.login_failures += w.login_failures;
  for (size_t i = 0; i < into.login_failures_by.size(); ++i) into.login_failures_by[i] += w.login_failures_by[i];
  into.protocol_errors += w.protocol_errors;
  for (size_t i = 0; i < into.protocol_errors_by.size(); ++i) into.protocol_errors_by[i] += w.protocol_errors_by[i];
  into.transactions += w.transactions;
  into.queries += w.queries;
  into.server_connects += w.server_connects;
  into.server_connect_failures += w.server_connect_failures;
  into.cancels_forwarded += w.cancels_forwarded;
  into.session_probes += w.session_probes;
  into.bytes_received += w.bytes_received;
  into.bytes_sent += w.bytes_sent;
  into.client_count += w.client_count;
  for (size_t i = 0; i < into.pinned_clients.size(); ++i) into.pinned_clients[i] += w.pinned_clients[i];
  for (size_t t = 0; t < kTargetCount; ++t) {
    into.query_duration[t].merge(w.query_duration[t]);
    into.transaction_duration[t].merge(w.transaction_duration[t]);
    into.queries_by_target[t] += w.queries_by_target[t];
  }
  for (const auto& [cls, n] : w.errors_by_class) into.errors_by_class[cls] += n;
  for (size_t t = 0; t < into.routing_decisions.size(); ++t) {
    for (size_t r = 0; r < into.routing_decisions[t].size(); ++r) into.routing_decisions[t][r] += w.routing_decisions[t][r];
  }
  into.replica_retries += w.replica_retries;
  into.classified_hits += w.classified_hits;
  into.classified_shape_hits += w.classified_shape_hits;
  into.classified_parsed += w.classified_parsed;
  into.cache.merge(w.cache);
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
      merge_pool(it->second, p);
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
