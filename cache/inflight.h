// Inflight: stampede control for one worker. Pure: the caller passes the time and owns the waiters
// (identified by a caller-chosen id, e.g. a client connection id).
//
// The first miss on a key becomes the leader: it queries Postgres and, when its reply is complete (or
// has failed), calls finish(key) and hands its result to the waiters it returns. Later misses on the
// same key wait (join() == wait) up to max_waiters per key and max_wait each; beyond that they fall
// through to Postgres. expire(now) returns the waiters whose wait ran out: they fall through too.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

#include "cache/key.h"

namespace pgs::cache {

class Inflight {
 public:
  using Clock = std::chrono::steady_clock;
  enum class Role : uint8_t { leader, wait, fall_through };

  struct Options {
    size_t max_waiters_per_key = 64;
    size_t max_keys = 10000;  // keys being fetched at once; beyond: fall_through (no leader recorded)
    std::chrono::milliseconds max_wait{1000};
  };

  Inflight() : Inflight(Options{}) {}
  explicit Inflight(Options options) : options_(options) {}

  // A miss on `key` by `waiter`. leader: fetch and call finish(); wait: you are queued; fall_through:
  // query Postgres yourself and do not call finish().
  Role join(const CacheKey& key, uint64_t waiter, Clock::time_point now);
  // The leader is done (stored, failed or gone): the waiters still queued, in arrival order.
  std::vector<uint64_t> finish(const CacheKey& key);
  // A waiter that went away (client closed) before finish(): removed; true if it was queued.
  bool leave(const CacheKey& key, uint64_t waiter);
  // Waiters queued longer than max_wait, removed from their keys: they fall through.
  std::vector<uint64_t> expire(Clock::time_point now);
  // The earliest time expire() could return someone (arm a timer for it); nullopt when nobody waits.
  std::optional<Clock::time_point> next_deadline() const;

  size_t keys() const { return table_.size(); }
  size_t waiters() const;

 private:
  struct Waiter {
    uint64_t id;
    Clock::time_point deadline;
  };
  struct Entry {
    std::vector<Waiter> waiters;
  };
  Options options_;
  std::unordered_map<CacheKey, Entry, CacheKeyHash> table_;
};

}  // namespace pgs::cache
