// CacheStats (cache_stats.h): adding up the workers' copies.
#include "proxy/cache_session/cache_stats.h"

namespace pgs::proxy {

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
  redis_commands += other.redis_commands;
  corrupt += other.corrupt;
  waits += other.waits;
  wait_fallthroughs += other.wait_fallthroughs;
  bumps += other.bumps;
}

}  // namespace pgs::proxy
