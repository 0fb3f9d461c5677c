// AuthCache: what auth_query answered, per (database, user), with its TTL, and the lookups in flight with
// the clients that wait for them. Pure: no I/O, no clock of its own (the caller passes `now`), no
// libuv or libpq; AuthQuery (auth_query.h) runs the lookups and hands the answers back here.
//
// - A found verifier is kept `ttl`, an unknown user (no row, NULL or a secret that is no SCRAM verifier)
//   `negative_ttl`; a failed lookup (the server down, the query refused) is not kept: the next login
//   tries again. At most `max_entries` answers (the least recently used is dropped).
// - Concurrent logins of one (database, user) share one lookup: the first starts it, the others join.
// - At most `max_pending` lookups are queued or running; beyond that a login is refused (Begin::full),
//   so a flood of logins with made-up names costs bounded memory and bounded server connections.
// Thread affinity: one worker's loop (one cache per worker, no locks).
#pragma once

#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "proxy/login/user_secrets.h"

namespace pgs::proxy {

struct AuthAnswer {
  enum class Kind : uint8_t {
    found,    // `secrets` holds the verifier
    unknown,  // no such user, or no usable SCRAM verifier: the login fails like a wrong password
    failed,   // the lookup itself failed: the login is refused with `sqlstate` (08006 or 28000)
  };
  Kind kind = Kind::unknown;
  std::shared_ptr<const UserSecrets> secrets;  // found
  const char* sqlstate = "";                   // failed
  std::string error;                           // failed: why (for the log)
};

// What a worker's auth_query did, by outcome of each client's lookup() (exported as
// pgsidecar_auth_query_lookups_total{result}).
struct AuthQueryCounts {
  uint64_t cache_hits = 0;  // answered from the cache (a found, unknown or failed answer within its TTL)
  uint64_t joined = 0;      // waited for a lookup another client had started
  uint64_t refused = 0;     // too many lookups in progress (53300)
  uint64_t found = 0;       // lookups run on the server that returned a SCRAM verifier
  uint64_t unknown = 0;     // ... that returned no row, NULL or an unusable secret (login fails as 28P01)
  uint64_t failed = 0;      // ... that failed themselves (connection, timeout, error): 08006 / 28000
};

// The answer for one lookup's first row: a SCRAM verifier is found, anything else (NULL, md5, a
// cleartext password, garbage) is unknown.
AuthAnswer answer_from_secret(const char* passwd);

class AuthCache {
 public:
  using Clock = std::chrono::steady_clock;
  struct Options {
    std::chrono::milliseconds ttl{60000};
    std::chrono::milliseconds negative_ttl{5000};
    size_t max_entries = 10000;
    size_t max_pending = 100;
  };
  enum class Begin : uint8_t {
    hit,     // `answer` is cached and fresh: use it now
    start,   // the caller must start the lookup (and call complete() once it ends); it waits for it
    joined,  // a lookup of the same key is in flight: the caller waits for it
    full,    // too many lookups pending: refuse the login
  };
  struct BeginResult {
    Begin what = Begin::full;
    AuthAnswer answer;  // hit
  };

  explicit AuthCache(Options options) : options_(options) {}
  void set_options(Options options);  // takes effect for new answers; trims to max_entries

  static std::string key(std::string_view database, std::string_view user);
  // A login of `key` by `waiter` (a client id).
  BeginResult begin(const std::string& key, uint64_t waiter, Clock::time_point now);
  // The lookup of `key` ended: keeps the answer (found, unknown) and returns its waiters, in order.
  std::vector<uint64_t> complete(const std::string& key, const AuthAnswer& answer, Clock::time_point now);
  void clear();  // drops every answer (lookups in flight stay; their answers are still kept)

  size_t entries() const { return entries_.size(); }
  size_t pending() const { return pending_.size(); }

 private:
  struct Entry {
    AuthAnswer answer;
    Clock::time_point expires;
    std::list<std::string>::iterator lru;  // position in lru_ (front = most recent)
  };
  void erase(std::unordered_map<std::string, Entry>::iterator it);
  void trim();

  Options options_;
  std::unordered_map<std::string, Entry> entries_;
  std::list<std::string> lru_;
  std::unordered_map<std::string, std::vector<uint64_t>> pending_;  // key -> waiting clients
};

}  // namespace pgs::proxy
