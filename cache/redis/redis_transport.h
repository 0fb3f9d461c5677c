// RedisTransport: one connection to Redis on a libuv loop, plaintext or TLS (issue 13 item 4: hiredis
// 0.14 has no TLS, so the proxy owns the transport and uses only hiredis's reply reader). A uv_tcp_t;
// with TLS, a memory-BIO session (tls/tls.h) between the socket and the RESP bytes; replies parsed by
// hiredis's redisReader. Requests are batched: what is sent during one loop iteration goes out in one
// write (one TLS record) just before the loop polls again.
//
// With TLS, nothing is written before the handshake is done and the server's certificate was accepted
// (on_open): a server that cannot prove itself never sees a command, AUTH included.
//
// Lifetime: open() returns an object that frees itself once close() was called and libuv released its
// handles; after close() no event is delivered. Close it from anywhere, its own events included.
// Thread affinity: the loop's thread.
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "cache/redis/conn_options.h"
#include "tls/tls.h"

struct redisReader;
struct redisReply;

namespace pgs::cache::redis {

enum class TransportFailure : uint8_t { io, tls, protocol };

class RedisTransport {
 public:
  class Events {
   public:
    virtual void on_open() = 0;  // connected (and TLS established): requests may be sent
    // One reply, valid during the call. The callee may close() the transport.
    virtual void on_reply(const redisReply* reply) = 0;
    // The connection failed or was lost; `why` as the system, OpenSSL or the parser said it. The
    // transport is already closed (no further event).
    virtual void on_failure(TransportFailure kind, const std::string& why) = 0;

   protected:
    ~Events() = default;
  };

  static constexpr size_t kMaxReplyBytes = redis::kMaxReplyBytes;  // conn_options.h

  // Starts connecting to host:port (an IP address, or a name resolved on libuv's thread pool). Null with
  // `error` when it cannot even start.
  static RedisTransport* open(uv_loop_t* loop, const std::string& host, uint16_t port, const TransportTls& tls,
                              Events* events, std::string& error);
  void close() noexcept;

  // The buffer a request is appended to (RESP), sent at the end of this loop iteration. Only after on_open.
  std::string& outbox() { return tls_ ? plain_out_ : wire_out_; }
  void flush_soon();  // after appending to outbox()

 private:
  RedisTransport(uv_loop_t* loop, Events* events);
  ~RedisTransport();
  bool start(const std::string& host, uint16_t port, const TransportTls& tls, std::string& error);
  void connect_to(const sockaddr* addr);
  void fail(TransportFailure kind, const std::string& why);
  void flush();
  void on_read(const char* data, size_t n);
  bool feed_plain(const char* data, size_t n);
  void drain_replies();
  void release_one();

  static void on_resolved(uv_getaddrinfo_t* req, int status, addrinfo* res) noexcept;
  static void on_connected(uv_connect_t* req, int status) noexcept;
  static void on_alloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf) noexcept;
  static void on_read_cb(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) noexcept;
  static void on_written(uv_write_t* req, int status) noexcept;
  static void on_prepare(uv_prepare_t* handle) noexcept;
  static void on_closed(uv_handle_t* handle) noexcept;

  uv_loop_t* loop_;
  Events* events_;  // null once closed
  uv_tcp_t tcp_;
  uv_prepare_t prepare_;
  uv_getaddrinfo_t resolve_;
  uv_connect_t connect_;
  uv_write_t write_;
  int holds_ = 0;  // handles and requests libuv still holds; freed at zero after close()
  bool tcp_open_ = false;
  bool resolving_ = false;
  bool writing_now_ = false;
  bool opened_ = false;
  uint16_t port_ = 0;
  std::unique_ptr<tls::TlsSession> tls_;
  redisReader* reader_ = nullptr;
  std::string plain_out_;  // TLS only: requests not yet encrypted
  std::string wire_out_;   // bytes for the socket, not yet written
  std::string writing_;    // bytes of the write in flight
  std::unique_ptr<char[]> read_buf_;
  std::unique_ptr<char[]> plain_buf_;  // TLS only: decrypted bytes
};

}  // namespace pgs::cache::redis
