// Per-fingerprint statement digests (like pg_stat_statements, seen from the proxy).
//
// A DigestTable is owned by one thread (a worker) and bounded: at most `capacity` fingerprints.
// When a new fingerprint arrives in a full table, the least-called tenth (at least one entry; ties:
// least recently seen first) is evicted at once, which keeps eviction amortised O(1) per insert.
// Workers hand their table to the DigestHub periodically (publish() moves it and leaves the worker
// an empty one), and the hub merges it into the process-wide table that /digests and SHOW DIGESTS
// read. The hub's table is bounded by the same rule.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "proxy/obs/latency_histogram.h"

namespace pgs::obs {

struct DigestOptions {
  size_t capacity = 1000;         // fingerprints kept (top-N by calls); >= 1
  size_t max_query_bytes = 2048;  // normalized text kept per fingerprint
};

struct DigestEntry {
  uint64_t fingerprint = 0;
  std::string query;  // normalized text of the first statement seen with this fingerprint
  uint64_t calls = 0;
  uint64_t rows = 0;
  uint64_t errors = 0;
  uint64_t cache_hits = 0;
  double total_us = 0;
  LatencyHistogram latency;
  uint64_t last_seen = 0;  // table-local recency tick (eviction tie-break)

  double total_ms() const { return total_us / 1000.0; }
  double mean_ms() const { return calls ? total_us / 1000.0 / static_cast<double>(calls) : 0; }
  double percentile_ms(double q) const { return latency.quantile(q) / 1000.0; }
};

class DigestTable {
 public:
  explicit DigestTable(DigestOptions options = {});

  // One finished statement. `duration` is as seen by the proxy; `cache_hit` means served from the
  // result cache.
  void record(uint64_t fingerprint, std::string_view normalized_query, std::chrono::microseconds duration,
              uint64_t rows, bool error, bool cache_hit);
  // record() for a fingerprint the table holds already (its query text is not needed then); false,
  // recording nothing, when it holds none.
  bool record_if_present(uint64_t fingerprint, std::chrono::microseconds duration, uint64_t rows, bool error,
                         bool cache_hit);
  // Adds `other`'s entries into this table (same fingerprint: counts and histograms add up).
  void merge(const DigestTable& other);

  const DigestEntry* find(uint64_t fingerprint) const;
  // Entries by total time descending (then calls descending, then fingerprint), at most `limit`.
  std::vector<const DigestEntry*> top(size_t limit) const;

  size_t size() const { return entries_.size(); }
  size_t capacity() const { return options_.capacity; }
  uint64_t evictions() const { return evictions_; }
  const DigestOptions& options() const { return options_; }
  void clear();

 private:
  DigestEntry& slot(uint64_t fingerprint, std::string_view query);
  void make_room();

  DigestOptions options_;
  std::unordered_map<uint64_t, DigestEntry> entries_;
  uint64_t tick_ = 0;
  uint64_t evictions_ = 0;
};

// {"capacity":..,"size":..,"evictions":..,"digests":[{fingerprint, query, calls, total_ms, mean_ms,
// min_ms, max_ms, p50_ms, p95_ms, p99_ms, rows, errors, cache_hits}, ...]} sorted as top().
std::string digests_json(const DigestTable& table, size_t limit);

// Admin console (SHOW DIGESTS): column names, and rows of text values in that order.
const std::vector<std::string>& digest_columns();
std::vector<std::vector<std::string>> digest_rows(const DigestTable& table, size_t limit);

// "limit=N" from a query string, clamped to [1, max]; `fallback` when absent or not a number.
size_t digest_limit_from_query(std::string_view query, size_t fallback, size_t max);

// The process-wide digest table. Thread-safe.
class DigestHub {
 public:
  explicit DigestHub(DigestOptions options = {});

  // Merges a worker's table and leaves it empty (same options), ready for the next interval.
  void publish(DigestTable& worker_table);
  DigestTable snapshot() const;
  std::string json(size_t limit) const;
  std::vector<std::vector<std::string>> rows(size_t limit) const;
  void reset();

 private:
  mutable std::mutex mu_;
  DigestTable table_;
};

}  // namespace pgs::obs
