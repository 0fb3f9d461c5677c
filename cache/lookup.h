// Glue for the proxy: where a cacheable statement's result lives in Redis, and which table
// generations decide whether a stored result may be served. Pure.
//
// Read protocol (one Redis round trip, consistent across sidecars): the proxy reads the current
// generation of every table the statement reads (and of kAllTables) together with the stored value,
// in one script (RedisStore::lookup). The value carries the fingerprint of the generations it was
// read under (EntryMeta::generations); it is served only if that equals the fingerprint of the
// generations just read. Because the script runs after any bump whose reply a writer has already
// seen, a write confirmed through any sidecar is never followed by a stale hit anywhere — the local
// generation map (pub/sub) cannot promise that, since Redis may deliver the PUBLISH to a subscriber
// after the bump's reply reached the writer.
#pragma once

#include <chrono>
#include <span>
#include <string>
#include <vector>

#include "cache/key.h"
#include "cache/policy.h"

namespace pgs::cache {

struct Lookup {
  CacheKey slot;                         // every key input but the generations
  std::string redis_key;                 // names.result_key(slot, class_name)
  std::string generations_hash;          // names.generations_for(slot): read with the value (same slot)
  std::vector<std::string> generations;  // decision.tables then kAllTables: read with the value
  std::chrono::milliseconds ttl{0};
  std::string class_name;
};

// `base.generations` is ignored (generations are not part of the slot). Precondition: cacheable.
Lookup make_lookup(const CacheDecision& decision, KeyInput base, const RedisNames& names);

// Fingerprint of `values`, the current generations of lookup.generations (same order; 0 = never
// bumped). Stored in the entry; equal fingerprints mean the entry was read under these generations.
uint64_t generations_fingerprint(const Lookup& lookup, std::span<const uint64_t> values);

// The key concurrent misses share (Inflight): the slot under one set of generations, so a miss that
// saw newer generations never waits for a query that started under older ones.
CacheKey inflight_key(const Lookup& lookup, uint64_t fingerprint);

}  // namespace pgs::cache
