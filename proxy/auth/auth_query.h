// AuthQuery: a worker's auth_query (conf: [proxy] auth_user, auth_query, ...). A client whose user has no
// secret in [[users]] asks it for the user's SCRAM verifier: answered from the cache (AuthCache) at once,
// or later, when the lookup it started or joined ends (AuthLookup: libpq on the worker's loop, never
// blocking it). At most auth_query_connections lookups run at once, the rest wait in a bounded queue.
// Thread affinity: the worker's loop.
#pragma once

#include <uv.h>

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "conf/config.h"
#include "proxy/auth/auth_cache.h"
#include "proxy/auth/auth_lookup.h"

namespace pgs::proxy {

class AuthQuery {
 public:
  // Hands a lookup's answer to a waiting client (by id; a client that left is skipped by the callee).
  using Deliver = std::function<void(uint64_t client, const AuthAnswer&)>;
  AuthQuery(uv_loop_t* loop, HostResolver& resolver, Deliver deliver);
  ~AuthQuery();

  // The live config (at start and each reload): new options; a change of whom or what the lookup asks
  // empties the cache.
  void apply_config(const conf::Config& config);
  // The verifier of `user` for a client of `database` (its server name): the answer now, or nullopt
  // when the client must wait for `deliver`. A refusal (too many lookups) is a failed answer.
  std::optional<AuthAnswer> lookup(const std::string& database, const std::string& user, uint64_t client);
  void shutdown();  // abandons every lookup (their waiters are not told; they are being closed)
  size_t cached() const { return cache_.entries(); }
  size_t pending() const { return cache_.pending(); }
  const AuthQueryCounts& counts() const { return counts_; }

 private:
  struct Queued {
    std::string key, dbname, user;
  };
  void start_next();
  void on_done(const std::string& key, AuthAnswer answer);

  uv_loop_t* loop_;
  HostResolver& resolver_;
  Deliver deliver_;
  AuthCache cache_{AuthCache::Options{}};
  AuthLookupTarget target_;  // dbname empty: the client's
  std::string identity_;     // user, password, query, dbname, server: a change clears the cache
  int max_running_ = 1;
  std::deque<Queued> queue_;
  std::unordered_map<std::string, std::unique_ptr<AuthLookup>> running_;  // by cache key
  AuthQueryCounts counts_;
};

}  // namespace pgs::proxy
