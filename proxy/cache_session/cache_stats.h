// What the result cache counts on one worker (issue 5): written by each client's ResultCacheSession on
// its worker's thread, copied whole with the worker's other metrics (proxy/core/stats.h) and exported by
// admin/prom_metrics.cc.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>

#include "cache/policy.h"

namespace pgs::proxy {

// Result cache (issue 5), per TTL class (the config's classes and "hint"; bounded by the config).
struct CacheClassStats {
  uint64_t hits = 0;
  uint64_t misses = 0;          // looked up, not found (or Redis failed): the query ran on Postgres
  uint64_t stores = 0;          // misses whose result was sent to Redis
  uint64_t not_stored = 0;      // misses whose result could not be stored (error, notice, too large...)
  uint64_t invalidations = 0;   // generation bumps of this class's tables
  uint64_t evictions = 0;       // entries Redis evicted (maxmemory), counted by worker 0 only
  // Misses a replica answered before replaying the newest write of the tables read (or with that
  // write's LSN unknown): served, not stored (issue 12, "no stale store").
  uint64_t replica_behind = 0;
};

struct CacheStats {
  int workers_enabled = 0;  // workers with the cache on
  int workers_ready = 0;    // ... whose generation map is in sync with Redis (else lookups bypass)
  std::map<std::string, CacheClassStats> classes;
  std::array<uint64_t, cache::kBypassReasonNames.size()> bypass{};  // by cache::BypassReason
  uint64_t redis_errors = 0;       // GET/SET/bump commands that failed, timed out or were refused
  uint64_t redis_commands = 0;     // commands the worker's Redis connections sent (ConnStats::requests)
  uint64_t corrupt = 0;            // stored values that failed validation (served as misses)
  uint64_t waits = 0;              // misses that waited for an identical in-flight query
  uint64_t wait_fallthroughs = 0;  // waits that ran their own query (leader failed, timeout, too many)
  uint64_t bumps = 0;              // committed write transactions that bumped generations
  void merge(const CacheStats& other);
};

}  // namespace pgs::proxy
