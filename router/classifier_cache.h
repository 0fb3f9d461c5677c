// Memoised classify(): one per worker thread (no locks; not thread-safe by design).
//
// Key: XXH3-64 of the text; the text itself is stored and compared, so a collision is a miss, never a
// wrong answer. Bounded LRU: at most max_entries entries holding at most max_total_text_bytes of SQL
// text; texts longer than max_text_bytes are classified but not stored. The returned shared_ptr keeps
// its Classification alive after eviction.
//
// Shapes: texts that differ only in numeric constants (`... WHERE aid = 41` and `... = 97`, sent by
// simple-protocol clients with their values inline) share one classification when nothing in it can
// depend on a number: one statement that parsed, a plain read or write (SELECT, VALUES, TABLE,
// INSERT, UPDATE, DELETE), no function call, no session change. Such a classification is stored under
// the text's shape only (sql_scan.h numeric_shape), and a text with numeric constants is looked up by
// its shape first, then by its exact text, then parsed. The shape key includes the text's length, so
// the shared classification's location/length fields are exact (texts whose constants differ in
// length get one entry per length: a handful per statement).
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "router/classify.h"

namespace pgs::router {

class ClassifierCache {
 public:
  struct Stats {
    uint64_t hits = 0;
    uint64_t misses = 0;
    uint64_t evictions = 0;
    uint64_t uncached = 0;  // classified but too long to store
    uint64_t shape_hits = 0;  // of the misses, answered by the text's shape (no parse)
    uint64_t repeats = 0;     // of the hits, the text asked for just before (no hashing)
  };

  explicit ClassifierCache(size_t max_entries = 4096, ClassifyOptions options = {},
                           size_t max_text_bytes = 16 * 1024, size_t max_total_text_bytes = 8u << 20);

  std::shared_ptr<const Classification> classify(std::string_view sql);

  // New options (config reload): drops every entry, since they were classified with the old ones.
  void reset(ClassifyOptions options);
  void clear();

  size_t size() const { return index_.size(); }
  size_t text_bytes() const { return text_bytes_; }
  size_t max_entries() const { return max_entries_; }
  const Stats& stats() const { return stats_; }
  const ClassifyOptions& options() const { return options_; }

 private:
  struct Entry {
    uint64_t hash;
    bool shape;  // `text` is a numeric shape, not a statement text
    std::string text;
    std::shared_ptr<const Classification> value;
  };
  using List = std::list<Entry>;  // most recently used first

  std::shared_ptr<const Classification> classify_uncached(std::string_view sql);
  void insert(uint64_t hash, bool shape, std::string_view text, std::shared_ptr<const Classification> value);
  std::shared_ptr<const Classification> find(uint64_t hash, bool shape, std::string_view text);
  void erase(List::iterator it);

  size_t max_entries_;
  size_t max_text_bytes_;
  size_t max_total_text_bytes_;
  size_t text_bytes_ = 0;
  ClassifyOptions options_;
  List lru_;
  std::unordered_map<uint64_t, List::iterator> index_;
  Stats stats_;
  std::string shape_;  // scratch for numeric_shape
  // The text asked for last and its answer: one request's text is classified by several readers in
  // turn (the cache, routing, session tracking), and pgbench-like texts differ only in their
  // constants, which the exact-text index misses. Kept within max_text_bytes; cleared with the rest.
  std::string last_text_;
  std::shared_ptr<const Classification> last_value_;
};

}  // namespace pgs::router
