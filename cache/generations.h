// GenerationMap: this worker's view of the per-table generation counters kept in Redis (hash
// `<ns>gens`, bumped at COMMIT of a write, announced on channel `<ns>gen` as "table generation").
// Pure and single-threaded: one per worker, fed by GenerationSync (cache/redis/) on that worker's loop.
//
// Generations only move forward here: a value lower than the one known is ignored, so a late pub/sub
// message or an HGETALL racing with a bump never brings back an older key. A table never bumped has
// generation 0; every key includes the generation of each table read and of kAllTables, so a bump
// always changes the keys that depend on it.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "cache/key.h"

namespace pgs::cache {

class GenerationMap {
 public:
  uint64_t get(std::string_view table) const;
  // Raises `table` to `generation` if higher; returns true when it changed.
  bool apply(std::string_view table, uint64_t generation);
  // A pub/sub payload "table generation" (table names have no spaces: the last space splits).
  // False (nothing applied) for a malformed message.
  bool apply_message(std::string_view payload);
  size_t size() const { return gens_.size(); }
  uint64_t updates() const { return updates_; }  // apply() calls that changed something

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, uint64_t, Hash, std::equal_to<>> gens_;
  uint64_t updates_ = 0;
};

// "table generation" -> (table, generation); nullopt when malformed.
std::optional<std::pair<std::string_view, uint64_t>> parse_generation_message(std::string_view payload);

// Commit LSNs (issue 12; cache/README.md "No stale store"). Next to the generations hash, the hash
// `lsn_hash_name(generations hash)` holds, per table, "generation lsn": the primary's WAL position
// (pg_current_wal_lsn() after the commit) at or past every write whose bump made that generation,
// written by the same bump script. A result a replica answered may be stored only if the replica had
// replayed up to the largest such LSN of the tables read. The entry counts only when its generation
// is the table's current one: a bump without an LSN (an older sidecar, a probe that failed, a session
// pool) leaves it behind, and then the table's LSN is unknown.
std::string lsn_hash_name(std::string_view generations_hash);

// "generation lsn" -> (generation, lsn); nullopt when malformed.
std::optional<std::pair<uint64_t, uint64_t>> parse_lsn_entry(std::string_view entry);

// The LSN a replica must have replayed for a result read under `generations` to be stored: the max of
// the tables' commit LSNs. `entries[i]` is table i's entry (nullopt: absent). A table never bumped
// (generation 0, no entry) needs nothing; an entry missing, malformed or of another generation makes
// the answer unknown (nullopt: never store a replica's answer). Sizes differ: unknown.
std::optional<uint64_t> replica_floor(std::span<const uint64_t> generations,
                                      std::span<const std::optional<std::string>> entries);

}  // namespace pgs::cache
