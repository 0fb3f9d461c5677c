// Cache keys: XXH3-128 over everything that can change the bytes of a result. Pure.
//
// Hashed, each field length-prefixed so that no two different inputs can concatenate to the same
// bytes: format version, reply shape, database, role, search_path, the result-affecting settings
// (sorted by name), the statement text, the Bind parameter region and result formats (extended), and
// any table generations given (the proxy's Redis slots give none: lookup.h). Two roles never share an
// entry.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "protocol/byte_reader.h"

namespace pgs::cache {

// What the reply to the request looks like; a hit replays exactly the stored messages of that shape.
//   simple:                 Query -> RowDescription, DataRow*, CommandComplete (then ReadyForQuery)
//   extended_described:     Bind, Describe(portal), Execute -> RowDescription|NoData, DataRow*, CommandComplete
//   extended:               Bind, Execute -> DataRow*, CommandComplete
// (ParseComplete, BindComplete and ReadyForQuery are never stored: the proxy writes them on a hit.)
enum class ReplyShape : uint8_t { simple = 1, extended_described = 2, extended = 3 };

// Settings whose value changes the text (or binary) form of results: the caller passes the client's
// values of those it tracks (missing ones hash as absent, which is still a stable key).
inline constexpr std::string_view kResultSettings[] = {
    "timezone",          "datestyle",   "intervalstyle", "client_encoding",   "extra_float_digits",
    "bytea_output",      "lc_monetary", "lc_numeric",    "lc_time",           "standard_conforming_strings",
    "xmlbinary",         "xmloption",   "row_security",  "default_text_search_config",
};

using Setting = std::pair<std::string_view, std::string_view>;  // (name, value); names compared as given

struct TableGeneration {
  std::string_view table;  // "schema.table" or kAllTables
  uint64_t generation = 0;
};

struct KeyInput {
  ReplyShape shape = ReplyShape::simple;
  std::string_view database;
  std::string_view role;
  std::string_view search_path;
  std::span<const Setting> settings;         // any order; sorted (by name, then value) before hashing
  std::string_view statement;                // SQL text exactly as sent (Query or Parse)
  protocol::Bytes params_region;             // the Bind's arguments, canonical (extended), else empty
  std::span<const int16_t> result_formats;   // the Bind's result format codes (extended), else empty
  // Table generations to fold into the key (any order). make_lookup() leaves it empty: the Redis slot
  // does not depend on generations, entries carry them instead (lookup.h).
  std::span<const TableGeneration> generations;
};

struct CacheKey {
  uint64_t high = 0;
  uint64_t low = 0;
  bool operator==(const CacheKey&) const = default;
  std::string hex() const;  // 32 lowercase hex digits, high first
};

struct CacheKeyHash {
  size_t operator()(const CacheKey& k) const { return static_cast<size_t>(k.low ^ (k.high * 0x9e3779b97f4a7c15ull)); }
};

CacheKey make_key(const KeyInput& in);

// The namespace of every Redis name this cache uses: `<prefix>pgsc:v1:`. The prefix is
// [cache].key_prefix (lets several fleets share one Redis; tests use a per-run prefix).
//
// With `partitions` > 0 (Redis Cluster, [cache] redis_cluster_partitions; cache/README.md "Redis
// Cluster") the names are cut into that many partitions, each with a hash tag of its own
// (partition_tags()): partition p's result keys, generations hash, commit LSN hash and channel all carry
// `{tag_p}`, so that a lookup's script and a bump's script each touch one slot. A result key belongs to
// partition key.low mod partitions. `generations` and `channel` are then partition 0's.
struct RedisNames {
  explicit RedisNames(std::string_view prefix = {}, size_t partitions = 0);
  // Single Redis: <ns>r:<class>:<32 hex>; cluster: <ns>{tag}:r:<class>:<32 hex>. The class in the name
  // lets an eviction be counted against it.
  std::string result_key(const CacheKey& key, std::string_view class_name) const;
  // The class named in a result key of this namespace; "" when `key` is not one.
  std::string_view class_of(std::string_view key) const;
  // 0 for a single Redis; else the number of partitions.
  size_t partitions() const { return tags.size(); }
  size_t partition_of(const CacheKey& key) const { return tags.empty() ? 0 : key.low % tags.size(); }
  // The generations hash (and, cluster, bump channel) of partition p (< max(1, partitions())).
  const std::string& generations_of(size_t p) const { return tags.empty() ? generations : partition_gens[p]; }
  const std::string& channel_of(size_t p) const { return tags.empty() ? channel : partition_channels[p]; }
  // A key of the invalidation stream (lease, heartbeat): <ns><name>, or in a cluster <ns>{tag_0}:<name>
  // (the lease script reads two of them: one slot).
  std::string stream_key(std::string_view name) const {
    return tags.empty() ? base + std::string(name) : base + "{" + tags[0] + "}:" + std::string(name);
  }
  // The generations hash to read with `key`'s result entry (same partition, same slot).
  const std::string& generations_for(const CacheKey& key) const { return generations_of(partition_of(key)); }
  std::string base;         // <prefix>pgsc:v1:
  std::string generations;  // <ns>gens     hash: table -> generation (cluster: <ns>{tag_0}:gens)
  std::string channel;      // <ns>gen      pub/sub: "table generation" (cluster: <ns>{tag_0}:gen)
  std::vector<std::string> tags;  // cluster only: tag of each partition
  std::vector<std::string> partition_gens, partition_channels;
};

}  // namespace pgs::cache
