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

}  // namespace pgs::cache
