#include "proxy/core/stats.h"

#include <algorithm>

namespace pgs::proxy {

std::string_view target_name(Target t) {
  static constexpr std::string_view kNames[] = {
#define PGS_X(e, n) n,
      PGS_TARGETS(PGS_X)
#undef PGS_X
  };
  return kNames[static_cast<size_t>(t)];
}

std::string_view login_failure_name(LoginFailure f) {
  static constexpr std::string_view kNames[] = {
#define PGS_X(e, n) n,
      PGS_LOGIN_FAILURES(PGS_X)
#undef PGS_X
  };
  return kNames[static_cast<size_t>(f)];
}

LoginFailure login_failure_of(std::string_view sqlstate, std::string_view message) {
  if (sqlstate == "28P01") return LoginFailure::password;
  if (sqlstate == "28000") return LoginFailure::not_allowed;
  if (sqlstate == "3D000") return LoginFailure::unknown_database;
  if (sqlstate == "53300") return LoginFailure::too_many_clients;
  if (sqlstate.starts_with("57P0")) return LoginFailure::shutdown;
  if (sqlstate == "08P01") {
    return message.find("client_login_timeout") != std::string_view::npos ? LoginFailure::timeout
                                                                          : LoginFailure::protocol;
  }
  return LoginFailure::other;
}

void Histogram::observe(double seconds) {
  size_t i = 0;
  while (i < kBounds.size() && seconds > kBounds[i]) ++i;
  ++buckets[i];
  sum += seconds;
  ++count;
}

void Histogram::merge(const Histogram& other) {
  for (size_t i = 0; i < buckets.size(); ++i) buckets[i] += other.buckets[i];
  sum += other.sum;
  count += other.count;
}

namespace {
template <typename T, size_t N>
void add_all(std::array<T, N>& into, const std::array<T, N>& from) {
  for (size_t i = 0; i < N; ++i) into[i] += from[i];
}
void add_all(std::array<Histogram, kTargetCount>& into, const std::array<Histogram, kTargetCount>& from) {
  for (size_t i = 0; i < kTargetCount; ++i) into[i].merge(from[i]);
}
}  // namespace

void PoolStats::merge(const PoolStats& p) {
  size_limit += p.size_limit;
  cl_active += p.cl_active;
  cl_waiting += p.cl_waiting;
  cl_idle += p.cl_idle;
  sv_active += p.sv_active;
  sv_idle += p.sv_idle;
  sv_being_canceled += p.sv_being_canceled;
  sv_login += p.sv_login;
  sv_total += p.sv_total;
  maxwait_seconds = std::max(maxwait_seconds, p.maxwait_seconds);
  xact_count += p.xact_count;
  query_count += p.query_count;
  wait_count += p.wait_count;
  xact_seconds += p.xact_seconds;
  wait_seconds += p.wait_seconds;
  wait.merge(p.wait);
}

void WorkerMetrics::count_error(std::string_view sqlstate) {
  std::string cls(sqlstate.substr(0, 2));
  if (cls.size() != 2) cls = "??";
  if (errors_by_class.size() >= 100 && errors_by_class.count(cls) == 0) cls = "other";
  ++errors_by_class[cls];
}

void WorkerMetrics::merge(const WorkerMetrics& o) {
  clients_accepted += o.clients_accepted;
  add_all(login_failures, o.login_failures);
  add_all(protocol_errors, o.protocol_errors);
  server_connects += o.server_connects;
  server_connect_failures += o.server_connect_failures;
  servers_failed_check += o.servers_failed_check;
  cancels_forwarded += o.cancels_forwarded;
  session_probes += o.session_probes;
  replica_retries += o.replica_retries;
  add_all(lsn_probes, o.lsn_probes);
  add_all(pinned_clients, o.pinned_clients);
  add_all(query_duration, o.query_duration);
  add_all(transaction_duration, o.transaction_duration);
  add_all(queries_by_target, o.queries_by_target);
  for (const auto& [cls, n] : o.errors_by_class) errors_by_class[cls] += n;
  for (size_t t = 0; t < routing_decisions.size(); ++t) add_all(routing_decisions[t], o.routing_decisions[t]);
  classified_hits += o.classified_hits;
  classified_shape_hits += o.classified_shape_hits;
  classified_parsed += o.classified_parsed;
  auth_query.cache_hits += o.auth_query.cache_hits;
  auth_query.joined += o.auth_query.joined;
  auth_query.refused += o.auth_query.refused;
  auth_query.found += o.auth_query.found;
  auth_query.unknown += o.auth_query.unknown;
  auth_query.failed += o.auth_query.failed;
  auth_query_cached += o.auth_query_cached;
  cache.merge(o.cache);
  bytes_received += o.bytes_received;
  bytes_sent += o.bytes_sent;
}

}  // namespace pgs::proxy
