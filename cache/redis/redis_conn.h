// One Redis connection on a caller's libuv loop (RedisTransport: plaintext or TLS, hiredis's reply
// reader), with what the cache needs around it: a deadline per request (late replies are ignored), a
// bound on requests in flight, reconnect with exponential backoff, AUTH, and no exception or error ever
// escaping into libuv.
//
// Thread affinity: the loop's thread only. One RedisConn per worker and purpose (store, generation
// commands, subscription).
// Lifetime: destroying it closes the connection at once (pending callbacks are dropped, never called)
// and closes its timers; the loop must run once more afterwards so libuv can release handles.
// Do not destroy a RedisConn from inside one of its own callbacks.
#pragma once

#include <uv.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "cache/redis/conn_options.h"
#include "cache/redis/redis_transport.h"
#include "cache/redis/timer.h"

struct redisReply;

namespace pgs::cache::redis {

enum class ReplyError : uint8_t { none, timeout, disconnected };

struct ConnStats {
  uint64_t requests = 0;         // accepted by command()
  uint64_t replies = 0;          // delivered in time
  uint64_t timeouts = 0;
  uint64_t late_replies = 0;     // arrived after their deadline (ignored)
  uint64_t failed = 0;           // connection lost or dropped before the reply
  uint64_t refused_busy = 0;     // command() refused: max_inflight reached
  uint64_t refused_down = 0;     // command() refused: not connected
  uint64_t connects = 0;
  uint64_t connect_failures = 0;
  uint64_t disconnects = 0;      // established connections lost or dropped
  uint64_t auth_failures = 0;    // AUTH refused (wrong user or password) or unanswered
  uint64_t tls_failures = 0;     // TLS handshake failed (certificate not verified, no TLS on the port)
};

class RedisConn : private RedisTransport::Events {
 public:
  // `reply` is valid during the call only; null when error != none. Called exactly once, from the
  // loop, never from inside command().
  using ReplyCallback = std::function<void(const redisReply* reply, ReplyError error)>;
  using PushCallback = std::function<void(const redisReply* reply)>;

  RedisConn(uv_loop_t* loop, ConnOptions options);
  ~RedisConn();
  RedisConn(const RedisConn&) = delete;
  RedisConn& operator=(const RedisConn&) = delete;

  void start();  // connects now, and reconnects after every loss until destroyed
  bool connected() const { return state_ == State::connected; }

  // Sends one command (binary-safe arguments). False when refused (not connected, or max_inflight
  // reached): the callback is then never called.
  bool command(std::span<const std::string_view> args, ReplyCallback done, milliseconds timeout = milliseconds{0});
  // SUBSCRIBE: every reply on the channel (the subscribe confirmation, then each message) goes to
  // `push`. It lasts for this connection; subscribe again from on_connect after a reconnect.
  bool subscribe(std::string_view channel, PushCallback push);
  // Closes the current connection (in-flight requests fail) and reconnects after the backoff.
  void drop();

  std::function<void()> on_connect;     // after every successful (re)connect
  std::function<void()> on_disconnect;  // after an established connection was lost or dropped

  const ConnStats& stats() const { return stats_; }
  // The last AUTH refusal (as Redis said it) or TLS failure (as OpenSSL said it); cleared once logged in.
  const std::string& last_error() const { return last_error_; }
  const ConnOptions& options() const { return options_; }
  size_t inflight() const { return pending_.size(); }

 private:
  enum class State : uint8_t { idle, connecting, authenticating, connected, waiting };  // connecting: TCP and TLS
  struct Pending {
    RedisConn* conn;
    ReplyCallback done;
    uint64_t deadline_ms;   // uv_now() based
    bool finished = false;  // callback already called (timed out)
    std::list<Pending*>::iterator where;
  };

  void on_open() override;
  void on_reply(const redisReply* reply) override;
  void on_failure(TransportFailure kind, const std::string& why) override;
  void on_auth_reply(const redisReply* reply);
  void established();
  bool send(std::span<const std::string_view> args);
  void close_transport();
  void fail_pending();

  void connect_now();
  void schedule_reconnect();
  void on_timer();
  void check_deadlines();
  void arm_deadline_timer();
  void handle_reply(Pending* p, const redisReply* reply);
  void lost_connection();
  static void deliver(const ReplyCallback& cb, const redisReply* reply, ReplyError error) noexcept;

  uv_loop_t* loop_;
  ConnOptions options_;
  State state_ = State::idle;
  RedisTransport* transport_ = nullptr;  // frees itself after close()
  bool closing_ = false;
  milliseconds backoff_;
  std::list<Pending*> pending_;  // in send order (Redis answers in order)
  PushCallback push_;
  uint64_t armed_for_ms_ = 0;  // when deadline_timer_ fires (uv_now based)
  Timer deadline_timer_;
  Timer reconnect_timer_;  // backoff wait, or the connect deadline while connecting
  ConnStats stats_;
  std::string last_error_;
};

}  // namespace pgs::cache::redis
