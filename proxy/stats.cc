#include "proxy/stats.h"

namespace pgs::proxy {

std::string_view target_name(Target t) {
  static constexpr std::string_view kNames[] = {
#define PGS_X(e, n) n,
      PGS_TARGETS(PGS_X)
#undef PGS_X
  };
  return kNames[static_cast<size_t>(t)];
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
  }
  for (size_t i = 0; i < bypass.size(); ++i) bypass[i] += other.bypass[i];
  redis_errors += other.redis_errors;
  corrupt += other.corrupt;
  waits += other.waits;
  wait_fallthroughs += other.wait_fallthroughs;
  bumps += other.bumps;
}

}  // namespace pgs::proxy
