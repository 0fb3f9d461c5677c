#include "cache/redis/redis_transport.h"

#include <hiredis/hiredis.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

namespace pgs::cache::redis {
namespace {

constexpr size_t kReadBytes = 64 * 1024;
constexpr size_t kKeepBufferBytes = 256 * 1024;  // a buffer grown past this by a large request is released

std::string uv_error(const char* what, int code) { return std::string(what) + ": " + uv_strerror(code); }

void release_if_large(std::string& buffer) {
  if (buffer.capacity() > kKeepBufferBytes) {
    std::string().swap(buffer);
  } else {
    buffer.clear();
  }
}

}  // namespace

RedisTransport::RedisTransport(uv_loop_t* loop, Events* events) : loop_(loop), events_(events) {
  tcp_.data = prepare_.data = resolve_.data = connect_.data = write_.data = this;
}

RedisTransport::~RedisTransport() {
  if (reader_ != nullptr) redisReaderFree(reader_);
}

RedisTransport* RedisTransport::open(uv_loop_t* loop, const std::string& host, uint16_t port, const TransportTls& tls,
                                     Events* events, std::string& error) {
  auto* t = new RedisTransport(loop, events);
  if (!t->start(host, port, tls, error)) {
    t->close();
    return nullptr;
  }
  return t;
}

bool RedisTransport::start(const std::string& host, uint16_t port, const TransportTls& tls, std::string& error) {
  if (tls.enabled() && tls.context == nullptr) {
    error = tls.error;  // TLS was asked for and cannot be had: never plaintext instead
    return false;
  }
  reader_ = redisReaderCreate();
  read_buf_ = std::make_unique<char[]>(kReadBytes);
  if (reader_ == nullptr) {
    error = "out of memory";
    return false;
  }
  if (tls.context != nullptr) {
    tls_ = std::make_unique<tls::TlsSession>(tls.context, tls.peer);
    plain_buf_ = std::make_unique<char[]>(kReadBytes);
    if (!tls_->error().empty()) {
      error = tls_->error();
      return false;
    }
  }
  if (int rc = uv_prepare_init(loop_, &prepare_); rc < 0) {
    error = uv_error("uv_prepare_init", rc);
    return false;
  }
  ++holds_;
  if (int rc = uv_tcp_init(loop_, &tcp_); rc < 0) {
    error = uv_error("uv_tcp_init", rc);
    return false;
  }
  ++holds_;
  tcp_open_ = true;
  port_ = port;
  sockaddr_storage addr{};
  auto* v4 = reinterpret_cast<sockaddr_in*>(&addr);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&addr);
  if (uv_ip4_addr(host.c_str(), port, v4) == 0 || uv_ip6_addr(host.c_str(), port, v6) == 0) {
    connect_to(reinterpret_cast<const sockaddr*>(&addr));
    return true;
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  std::string service = std::to_string(port);
  if (int rc = uv_getaddrinfo(loop_, &resolve_, &RedisTransport::on_resolved, host.c_str(), service.c_str(), &hints);
      rc < 0) {
    error = uv_error(("cannot resolve " + host).c_str(), rc);
    return false;
  }
  ++holds_;
  resolving_ = true;
  return true;
}

void RedisTransport::close() noexcept {
  events_ = nullptr;
  if (holds_ == 0) {  // nothing of libuv's to wait for (open() failed early)
    delete this;
    return;
  }
  if (uv_is_closing(reinterpret_cast<uv_handle_t*>(&prepare_)) != 0) return;
  if (resolving_) uv_cancel(reinterpret_cast<uv_req_t*>(&resolve_));  // its callback still runs
  uv_close(reinterpret_cast<uv_handle_t*>(&prepare_), &RedisTransport::on_closed);
  if (tcp_open_) uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), &RedisTransport::on_closed);
}

void RedisTransport::release_one() {
  if (--holds_ == 0 && events_ == nullptr) delete this;
}

void RedisTransport::on_closed(uv_handle_t* handle) noexcept { static_cast<RedisTransport*>(handle->data)->release_one(); }

void RedisTransport::fail(TransportFailure kind, const std::string& why) {
  Events* events = events_;
  if (events == nullptr) return;
  close();  // frees nothing yet: libuv holds the handles until the loop runs again
  events->on_failure(kind, why);
}

void RedisTransport::on_resolved(uv_getaddrinfo_t* req, int status, addrinfo* res) noexcept {
  auto* t = static_cast<RedisTransport*>(req->data);
  t->resolving_ = false;
  if (t->events_ != nullptr) {
    if (status < 0 || res == nullptr) {
      t->fail(TransportFailure::io, uv_error("cannot resolve the Redis host", status < 0 ? status : UV_EAI_NONAME));
    } else {
      t->connect_to(res->ai_addr);
    }
  }
  uv_freeaddrinfo(res);
  t->release_one();
}

void RedisTransport::connect_to(const sockaddr* addr) {
  uv_tcp_nodelay(&tcp_, 1);
  if (int rc = uv_tcp_connect(&connect_, &tcp_, addr, &RedisTransport::on_connected); rc < 0) {
    fail(TransportFailure::io, uv_error("connect", rc));
  }
}

void RedisTransport::on_connected(uv_connect_t* req, int status) noexcept {
  auto* t = static_cast<RedisTransport*>(req->data);
  if (t->events_ == nullptr) return;
  if (status < 0) {
    t->fail(TransportFailure::io, uv_error("connect", status));
    return;
  }
  if (int rc = uv_read_start(reinterpret_cast<uv_stream_t*>(&t->tcp_), &RedisTransport::on_alloc,
                             &RedisTransport::on_read_cb);
      rc < 0) {
    t->fail(TransportFailure::io, uv_error("read", rc));
    return;
  }
  if (t->tls_ == nullptr) {
    t->opened_ = true;
    t->events_->on_open();
    return;
  }
  if (t->tls_->start_handshake() != tls::TlsSession::Status::ok) {
    t->fail(TransportFailure::tls, t->tls_->error());
    return;
  }
  t->tls_->take_output(t->wire_out_);  // the ClientHello
  t->flush();
}

void RedisTransport::on_alloc(uv_handle_t* handle, size_t /*suggested*/, uv_buf_t* buf) noexcept {
  auto* t = static_cast<RedisTransport*>(handle->data);
  *buf = uv_buf_init(t->read_buf_.get(), kReadBytes);
}

void RedisTransport::on_read_cb(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) noexcept {
  auto* t = static_cast<RedisTransport*>(stream->data);
  if (t->events_ == nullptr) return;
  if (nread < 0) {
    t->fail(TransportFailure::io, nread == UV_EOF ? "Redis closed the connection"
                                                  : uv_error("read", static_cast<int>(nread)));
  } else if (nread > 0) {
    t->on_read(buf->base, static_cast<size_t>(nread));
  }
}

void RedisTransport::on_read(const char* data, size_t n) {
  if (tls_ == nullptr) {
    if (feed_plain(data, n)) drain_replies();
    return;
  }
  tls_->feed(reinterpret_cast<const uint8_t*>(data), n);
  for (;;) {
    size_t written = 0;
    if (tls_->read_plain(reinterpret_cast<uint8_t*>(plain_buf_.get()), kReadBytes, written) !=
        tls::TlsSession::Status::ok) {
      fail(TransportFailure::tls, tls_->error());
      return;
    }
    if (written > 0 && !feed_plain(plain_buf_.get(), written)) return;
    if (written < kReadBytes) break;
  }
  tls_->take_output(wire_out_);  // handshake messages, alerts
  if (!wire_out_.empty()) flush();
  if (events_ == nullptr) return;
  if (!opened_ && tls_->handshake_done()) {
    opened_ = true;
    events_->on_open();
  }
  drain_replies();
}

bool RedisTransport::feed_plain(const char* data, size_t n) {
  if (redisReaderFeed(reader_, data, n) != REDIS_OK) {
    fail(TransportFailure::protocol, reader_->errstr);
    return false;
  }
  if (reader_->len - reader_->pos > kMaxReplyBytes) {
    fail(TransportFailure::protocol, "a Redis reply larger than 1 GiB");
    return false;
  }
  return true;
}

void RedisTransport::drain_replies() {
  while (events_ != nullptr) {
    void* reply = nullptr;
    if (redisReaderGetReply(reader_, &reply) != REDIS_OK) {
      fail(TransportFailure::protocol, std::string("unreadable reply: ") + reader_->errstr);
      return;
    }
    if (reply == nullptr) return;
    if (!opened_) {  // Redis speaks first only to say it will not serve us
      freeReplyObject(reply);
      fail(TransportFailure::protocol, "Redis sent a reply before any request");
      return;
    }
    events_->on_reply(static_cast<const redisReply*>(reply));
    freeReplyObject(reply);
  }
}

void RedisTransport::flush_soon() {
  if (events_ != nullptr && !writing_now_) uv_prepare_start(&prepare_, &RedisTransport::on_prepare);
}

void RedisTransport::on_prepare(uv_prepare_t* handle) noexcept { static_cast<RedisTransport*>(handle->data)->flush(); }

void RedisTransport::flush() {
  if (events_ == nullptr) return;
  if (tls_ != nullptr && !plain_out_.empty()) {
    if (tls_->write_plain(plain_out_) != tls::TlsSession::Status::ok) {
      fail(TransportFailure::tls, tls_->error());
      return;
    }
    release_if_large(plain_out_);
    tls_->take_output(wire_out_);
  }
  uv_prepare_stop(&prepare_);
  if (writing_now_ || wire_out_.empty()) return;
  writing_.swap(wire_out_);
  uv_buf_t buf = uv_buf_init(writing_.data(), static_cast<unsigned>(writing_.size()));
  if (int rc = uv_write(&write_, reinterpret_cast<uv_stream_t*>(&tcp_), &buf, 1, &RedisTransport::on_written);
      rc < 0) {
    fail(TransportFailure::io, uv_error("write", rc));
    return;
  }
  writing_now_ = true;
}

void RedisTransport::on_written(uv_write_t* req, int status) noexcept {
  auto* t = static_cast<RedisTransport*>(req->data);
  t->writing_now_ = false;
  if (t->events_ == nullptr) return;
  if (status < 0) {
    t->fail(TransportFailure::io, uv_error("write", status));
    return;
  }
  release_if_large(t->writing_);
  if (!t->wire_out_.empty() || !t->plain_out_.empty()) t->flush();
}

}  // namespace pgs::cache::redis
