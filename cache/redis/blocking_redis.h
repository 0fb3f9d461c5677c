// BlockingRedis: a Redis client for a thread of its own (the invalidation stream's, proxy/stream), with
// what RedisConn has: TLS (tls/tls.h: the same memory-BIO session, over a socket read and written with
// poll and a deadline), AUTH after every connect, hiredis's reply reader, and a deadline on every wait.
// Nothing is sent before the TLS handshake succeeded. A failure drops the connection; the next connect()
// starts afresh.
// Thread affinity: one thread at a time.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "cache/redis/conn_options.h"

struct redisReader;
struct redisReply;

namespace pgs::cache::redis {

class BlockingRedis {
 public:
  using Reply = std::unique_ptr<redisReply, void (*)(void*)>;

  // Uses host, port, tls, user and password; connect_timeout bounds connect + TLS + AUTH, timeout each
  // command.
  explicit BlockingRedis(ConnOptions options);
  ~BlockingRedis();
  BlockingRedis(const BlockingRedis&) = delete;
  BlockingRedis& operator=(const BlockingRedis&) = delete;

  // Connects unless connected: TCP, then TLS, then AUTH. False when any failed (see last_error()).
  bool connect();
  bool connected() const { return fd_ >= 0; }
  // One command. nullopt when the connection failed or no reply came in time: the connection is dropped.
  std::optional<Reply> command(std::span<const std::string_view> args);
  void drop();
  // Why the last connect() or command() failed (the system, OpenSSL, Redis's AUTH refusal).
  const std::string& last_error() const { return last_error_; }

 private:
  using Deadline = std::chrono::steady_clock::time_point;
  bool open_socket(Deadline deadline);
  bool handshake(Deadline deadline);
  bool send_all(std::string_view bytes, Deadline deadline);
  bool send_plain(std::string_view bytes, Deadline deadline);
  bool receive(Deadline deadline);  // feeds what arrives (decrypted) to the reader
  std::optional<Reply> exchange(std::span<const std::string_view> args, Deadline deadline);
  bool fail(std::string why);

  ConnOptions options_;
  int fd_ = -1;
  std::unique_ptr<tls::TlsSession> tls_;
  redisReader* reader_ = nullptr;
  std::string out_;  // a request, then its ciphertext
  std::string last_error_;
};

}  // namespace pgs::cache::redis
