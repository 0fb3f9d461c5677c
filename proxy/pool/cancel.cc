#include "proxy/pool/cancel.h"

#include <openssl/rand.h>

#include <cstring>

#include "protocol/writer.h"
#include "proxy/core/log.h"

namespace pgs::proxy {
namespace {

class CancelSender {
 public:
  CancelSender(uv_loop_t* loop, CancelDone done) : done_(std::move(done)) {
    uv_tcp_init(loop, &tcp_);
    uv_timer_init(loop, &timer_);
    tcp_.data = this;
    timer_.data = this;
    connect_.data = this;
    write_.data = this;
  }

  void start(const sockaddr* addr, std::chrono::milliseconds deadline) {
    uv_timer_start(&timer_, &CancelSender::timer_cb, static_cast<uint64_t>(deadline.count()), 0);
    if (uv_tcp_connect(&connect_, &tcp_, addr, &CancelSender::connect_cb) != 0) finish(CancelOutcome::not_sent);
  }

  std::string& packet() { return packet_; }

 private:
  static void close_cb(uv_handle_t* h) noexcept {
    auto* self = static_cast<CancelSender*>(h->data);
    if (++self->closed_ == 2) delete self;
  }
  static void timer_cb(uv_timer_t* t) noexcept {
    auto* self = static_cast<CancelSender*>(t->data);
    LOG_WARN("cancel: the server did not close the cancel connection in time");
    self->finish(CancelOutcome::unknown);
  }
  static void connect_cb(uv_connect_t* req, int status) noexcept {
    auto* self = static_cast<CancelSender*>(req->data);
    if (self->finished_) return;
    if (status != 0) {
      LOG_WARN(std::string("cancel: could not connect to server: ") + uv_strerror(status));
      self->finish(CancelOutcome::not_sent);
      return;
    }
    uv_buf_t b = uv_buf_init(self->packet_.data(), static_cast<unsigned>(self->packet_.size()));
    if (uv_write(&self->write_, reinterpret_cast<uv_stream_t*>(&self->tcp_), &b, 1, &CancelSender::write_cb) != 0) {
      self->finish(CancelOutcome::not_sent);
    }
  }
  static void write_cb(uv_write_t* req, int status) noexcept {
    auto* self = static_cast<CancelSender*>(req->data);
    if (self->finished_) return;
    if (status != 0) {
      self->finish(CancelOutcome::unknown);
      return;
    }
    // Postgres answers nothing: the next event is the close (EOF) once the backend was signalled.
    if (uv_read_start(reinterpret_cast<uv_stream_t*>(&self->tcp_), &CancelSender::alloc_cb,
                      &CancelSender::read_cb) != 0) {
      self->finish(CancelOutcome::unknown);
    }
  }
  static void alloc_cb(uv_handle_t* h, size_t, uv_buf_t* buf) noexcept {
    auto* self = static_cast<CancelSender*>(h->data);
    *buf = uv_buf_init(self->scratch_, sizeof self->scratch_);
  }
  static void read_cb(uv_stream_t* s, ssize_t n, const uv_buf_t*) noexcept {
    auto* self = static_cast<CancelSender*>(s->data);
    if (n >= 0) return;  // nothing is expected; whatever arrives is dropped
    // A reset after the packet was read is a close too (the child exits without reading more).
    bool closed = n == UV_EOF || n == UV_ECONNRESET;
    self->finish(closed ? CancelOutcome::delivered : CancelOutcome::unknown);
  }

  void finish(CancelOutcome outcome) {
    if (finished_) return;
    finished_ = true;
    uv_timer_stop(&timer_);
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), &CancelSender::close_cb);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), &CancelSender::close_cb);
    if (done_) {
      CancelDone done = std::move(done_);
      done(outcome);
    }
  }

  uv_tcp_t tcp_{};
  uv_timer_t timer_{};
  uv_connect_t connect_{};
  uv_write_t write_{};
  std::string packet_;
  CancelDone done_;
  char scratch_[64];
  bool finished_ = false;
  int closed_ = 0;
};

}  // namespace

bool random_cancel_secret(int32_t& secret, RandomFill fill) {
  if (fill == nullptr) fill = &RAND_bytes;
  unsigned char raw[sizeof secret];
  secret = 0;
  if (fill(raw, static_cast<int>(sizeof raw)) != 1) return false;
  std::memcpy(&secret, raw, sizeof secret);
  return true;
}

void send_cancel_request(uv_loop_t* loop, const std::string& host, uint16_t port, int32_t pid, int32_t secret,
                         std::chrono::milliseconds deadline, CancelDone done) {
  sockaddr_storage addr{};
  if (uv_ip4_addr(host.c_str(), port, reinterpret_cast<sockaddr_in*>(&addr)) != 0 &&
      uv_ip6_addr(host.c_str(), port, reinterpret_cast<sockaddr_in6*>(&addr)) != 0) {
    LOG_WARN("cancel: invalid server address " + host);
    if (done) done(CancelOutcome::not_sent);
    return;
  }
  auto* s = new CancelSender(loop, std::move(done));
  protocol::write_cancel_request(s->packet(), pid, secret);
  s->start(reinterpret_cast<const sockaddr*>(&addr), deadline);
}

}  // namespace pgs::proxy
