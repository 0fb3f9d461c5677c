#include "cache/lookup.h"

#define XXH_STATIC_LINKING_ONLY  // XXH3_state_t on the stack
#include <xxhash.h>

namespace pgs::cache {

Lookup make_lookup(const CacheDecision& decision, KeyInput base, const RedisNames& names) {
  base.generations = {};
  Lookup out;
  out.slot = make_key(base);
  out.redis_key = names.result_key(out.slot, decision.class_name);
  out.generations_hash = names.generations_for(out.slot);
  out.generations.reserve(decision.tables.size() + 1);
  out.generations = decision.tables;
  out.generations.emplace_back(kAllTables);
  out.ttl = decision.ttl;
  out.class_name = decision.class_name;
  return out;
}

uint64_t generations_fingerprint(const Lookup& lookup, std::span<const uint64_t> values) {
  // Names and values, length-prefixed, in order: distinct inputs never hash the same bytes.
  XXH3_state_t st;
  XXH3_state_t* state = &st;
  XXH3_64bits_reset(state);
  for (size_t i = 0; i < lookup.generations.size(); ++i) {
    const std::string& name = lookup.generations[i];
    uint64_t len = name.size();
    uint64_t value = i < values.size() ? values[i] : 0;
    XXH3_64bits_update(state, &len, sizeof len);
    XXH3_64bits_update(state, name.data(), name.size());
    XXH3_64bits_update(state, &value, sizeof value);
  }
  return XXH3_64bits_digest(state);
}

CacheKey inflight_key(const Lookup& lookup, uint64_t fingerprint) {
  uint64_t in[3] = {lookup.slot.high, lookup.slot.low, fingerprint};
  XXH128_hash_t h = XXH3_128bits(in, sizeof in);
  return CacheKey{h.high64, h.low64};
}

}  // namespace pgs::cache
