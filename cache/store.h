// The narrow interface between the proxy and the place cached results live (STYLE.md 9). The Redis
// implementation is cache/redis/redis_store.h; tests may use an in-memory one.
//
// Threading: a Store belongs to one worker thread (its loop); call it only from there.
// Failure model: every failure is a miss for the caller (plus a counter); nothing here throws.
#pragma once

#include <chrono>
#include <functional>
#include <string>

namespace pgs::cache {

enum class GetStatus : uint8_t {
  hit,        // value holds the stored bytes (still to be checked with decode_entry)
  miss,       // no such key
  error,      // Redis error reply, connection lost or the per-request timeout passed
};

class Store {
 public:
  // Called exactly once, later, from the worker's loop: never from inside get() itself.
  using GetCallback = std::function<void(GetStatus status, std::string value)>;

  virtual ~Store() = default;
  // Starts a lookup. False when refused at once (not connected, too many requests in flight): treat it
  // as a miss; the callback is then never called.
  virtual bool get(const std::string& key, GetCallback done) = 0;
  // Stores `value` under `key` for `ttl` (SET key value PX ttl), fire and forget. False when refused.
  virtual bool set(const std::string& key, std::string value, std::chrono::milliseconds ttl) = 0;
};

}  // namespace pgs::cache
