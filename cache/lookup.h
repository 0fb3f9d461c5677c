// Glue for the proxy: the key of a cacheable statement from its decision, the session's key inputs
// and this worker's generation map, so that the generations (including kAllTables) are never
// forgotten. Pure.
#pragma once

#include <chrono>
#include <string>

#include "cache/generations.h"
#include "cache/key.h"
#include "cache/policy.h"

namespace pgs::cache {

struct Lookup {
  CacheKey key;
  std::string redis_key;         // names.result_key(key)
  std::chrono::milliseconds ttl{0};
  std::string class_name;
};

// `base` holds everything but the generations (they come from decision.tables and `gens`).
// Precondition: decision.cacheable.
Lookup make_lookup(const CacheDecision& decision, const GenerationMap& gens, KeyInput base, const RedisNames& names);

}  // namespace pgs::cache
