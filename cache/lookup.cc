#include "cache/lookup.h"

namespace pgs::cache {

Lookup make_lookup(const CacheDecision& decision, const GenerationMap& gens, KeyInput base, const RedisNames& names) {
  std::vector<TableGeneration> generations = gens.for_tables(decision.tables);
  base.generations = generations;
  Lookup out;
  out.key = make_key(base);
  out.redis_key = names.result_key(out.key);
  out.ttl = decision.ttl;
  out.class_name = decision.class_name;
  return out;
}

}  // namespace pgs::cache
