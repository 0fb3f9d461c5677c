#include "proxy/core/stats.h"

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

void CacheStats::merge(const CacheStats& other) {
  workers_enabled += other.workers_enabled;
  workers_ready += other.workers_ready;
  for (const auto& [name, c] : other.classes) {
    CacheClassStats& into = classes[name];
    into.hits += c.hits;
    into.misses += c.misses;
    into.stores += c.stores;
    into.not_stored += c.not_stored;
    into.invalidations += c.invalidations;
    into.evictions += c.evictions;
    into.replica_behind += c.replica_behind;
  }
  for (size_t i = 0; i < bypass.size(); ++i) bypass[i] += other.bypass[i];
  redis_errors += other.redis_errors;
  corrupt += other.corrupt;
  waits += other.waits;
  wait_fallthroughs += other.wait_fallthroughs;
  bumps += other.bumps;
}

}  // namespace pgs::proxy
