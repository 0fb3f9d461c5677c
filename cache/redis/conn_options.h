// What a Redis connection needs to know, for the libuv clients (RedisConn, RedisTransport) and the
// blocking ones (BlockingRedis, BlockingCluster) alike: address, deadlines, AUTH and TLS. Plain data, no
// libuv, so that a program without a libuv loop (the app's rate limiter) can fill it in.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "tls/tls.h"

namespace pgs::cache::redis {

using std::chrono::milliseconds;

// A buffered, unanswered reply larger than this is a protocol failure (bounds what Redis can make us hold).
inline constexpr size_t kMaxReplyBytes = 1024ull * 1024 * 1024;

// TLS to Redis ([cache] redis_tls): a context (null: plaintext) and the server's name for SNI and, with
// peer.verify_host, the certificate check. `error`: TLS was asked for but its context could not be made;
// such a connection is never attempted (never plaintext instead).
struct TransportTls {
  std::shared_ptr<const tls::TlsContext> context;
  tls::TlsPeer peer;
  std::string error;
  bool enabled() const { return context != nullptr || !error.empty(); }
};

struct ConnOptions {
  std::string host = "127.0.0.1";  // an IP address, or a name (resolved on libuv's thread pool)
  uint16_t port = 6379;
  milliseconds timeout{50};          // default deadline per request ([cache].redis_timeout)
  milliseconds connect_timeout{1000};
  milliseconds backoff_min{100};     // first reconnect delay; doubles per failure up to backoff_max
  milliseconds backoff_max{5000};
  size_t max_inflight = 256;         // requests sent and unanswered (timed-out ones included)
  // A request that timed out and is still unanswered this long after its deadline means Redis is
  // stuck (stopped, overloaded): the connection is dropped and reconnected.
  milliseconds stuck_after{1000};
  // AUTH after every connect when `password` is set ([cache] redis_user / redis_password): with a
  // user, an ACL login (Redis 6+); without, the default user's password. Until Redis accepts it the
  // connection counts as connecting (commands are refused: every lookup a miss); a refusal is counted,
  // kept in last_error(), and retried after the backoff.
  std::string user;
  std::string password;
  // TLS ([cache] redis_tls): the handshake (and the certificate check) is part of connecting, under
  // connect_timeout; a failure is counted (tls_failures) and kept in last_error(), and retried after the
  // backoff. Nothing, AUTH included, is sent before it succeeded.
  TransportTls tls;
};

}  // namespace pgs::cache::redis
