#include "proxy/pool/cancel.h"

#include <openssl/rand.h>

#include <cstring>

#include "protocol/server_login.h"
#include "protocol/writer.h"
#include "proxy/core/log.h"
#include "proxy/net/resolver.h"
#include "proxy/net/stream.h"
#include "proxy/net/tls.h"

namespace pgs::proxy {
namespace {

// One cancel connection: a Stream, so that TLS (memory BIOs over the libuv socket) is the same code as the
// server connections'. Two handles (the stream, the deadline timer): deleted once both are closed.
class CancelConn final : public Stream {
 public:
  CancelConn(uv_loop_t* loop, CancelTarget target, CancelDone done)
      : Stream(loop), target_(std::move(target)), done_(std::move(done)) {
    uv_timer_init(loop, &timer_);
    timer_.data = this;
    connect_.data = this;
  }

  void start(int32_t pid, int32_t secret, std::chrono::milliseconds deadline) {
    protocol::write_cancel_request(packet_, pid, secret);
    uv_timer_start(&timer_, &CancelConn::timer_cb, static_cast<uint64_t>(deadline.count()), 0);
    const auto* addr = reinterpret_cast<const sockaddr*>(&target_.address);
    if (target_.address.ss_family != AF_INET && target_.address.ss_family != AF_INET6) {
      finish(CancelOutcome::not_sent, "no server address");
    } else if (int rc = uv_tcp_connect(&connect_, tcp(), addr, &CancelConn::connect_cb); rc != 0) {
      finish(CancelOutcome::not_sent, std::string("could not connect to server: ") + uv_strerror(rc));
    }
  }

 protected:
  void on_data() override {
    if (phase_ != Phase::ssl_answer) {  // nothing is expected; whatever arrives is dropped
      rbuf_.clear();
      return;
    }
    switch (protocol::read_ssl_answer(rbuf_.data())) {
      case protocol::SslAnswer::need_more:
        return;
      case protocol::SslAnswer::tls:
        rbuf_.consume(1);
        phase_ = Phase::handshake;
        if (!start_tls_client(target_.tls, TlsPeer{target_.host, target_.verify_host})) {
          finish(CancelOutcome::not_sent, "cannot start TLS: " + std::string(tls_error()));
        }
        return;
      case protocol::SslAnswer::plaintext:
        if (!target_.plaintext_ok) {
          finish(CancelOutcome::not_sent, "the server does not accept TLS now (it answered N): not sent in plaintext");
          return;
        }
        rbuf_.consume(1);
        send_packet();
        return;
      default:
        finish(CancelOutcome::not_sent, "invalid answer to the TLS request");
        return;
    }
  }
  void on_tls_ready() override { send_packet(); }
  void on_read_error(int status) override {
    if (phase_ != Phase::sent) {
      std::string why = !tls_error().empty() ? "TLS failed: " + std::string(tls_error())
                                             : std::string("connection lost before the packet: ") + uv_strerror(status);
      finish(CancelOutcome::not_sent, why);
      return;
    }
    // Postgres answers nothing: the close (EOF, or a reset: the child exits without reading more, or the
    // TLS session's close_notify) is the sign that the backend was signalled.
    bool closed = status == UV_EOF || status == UV_ECONNRESET || (status == UV_EPROTO && tls_closed_by_peer());
    finish(closed ? CancelOutcome::delivered : CancelOutcome::unknown,
           closed ? std::string() : std::string("read error: ") + uv_strerror(status));
  }
  void on_write_error(int status) override {
    finish(phase_ == Phase::sent ? CancelOutcome::unknown : CancelOutcome::not_sent,
           std::string("write error: ") + uv_strerror(status));
  }
  void on_closed() override { handle_closed(); }

 private:
  enum class Phase : uint8_t { connecting, ssl_answer, handshake, sent };

  static void connect_cb(uv_connect_t* req, int status) noexcept {
    auto* self = static_cast<CancelConn*>(req->data);
    if (self->finished_) return;
    if (status != 0) {
      self->finish(CancelOutcome::not_sent, std::string("could not connect to server: ") + uv_strerror(status));
      return;
    }
    if (self->target_.tls != nullptr) {
      self->phase_ = Phase::ssl_answer;
      protocol::write_ssl_request(self->outbox());
      self->flush();
    } else {
      self->send_packet();
    }
    if (!self->finished_) self->start_reading();
  }
  static void timer_cb(uv_timer_t* t) noexcept {
    auto* self = static_cast<CancelConn*>(t->data);
    // Written and no close: it may still land. Not written (the connect or the handshake hung): it cannot.
    self->finish(self->phase_ == Phase::sent ? CancelOutcome::unknown : CancelOutcome::not_sent,
                 "the server did not close the cancel connection in time");
  }
  static void timer_close_cb(uv_handle_t* h) noexcept { static_cast<CancelConn*>(h->data)->handle_closed(); }

  void send_packet() {
    phase_ = Phase::sent;
    outbox().append(packet_);
    flush();
  }
  void handle_closed() {
    if (++closed_ == 2) delete this;
  }
  void finish(CancelOutcome outcome, const std::string& why) {
    if (finished_) return;
    finished_ = true;
    if (!why.empty()) LOG_WARN("cancel to " + target_.host + " (" + address_text(target_.address) + "): " + why);
    uv_timer_stop(&timer_);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), &CancelConn::timer_close_cb);
    close();
    if (done_) {
      CancelDone done = std::move(done_);
      done(outcome);
    }
  }

  CancelTarget target_;
  CancelDone done_;
  std::string packet_;
  uv_timer_t timer_{};
  uv_connect_t connect_{};
  Phase phase_ = Phase::connecting;
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

void send_cancel_request(uv_loop_t* loop, const CancelTarget& target, int32_t pid, int32_t secret,
                         std::chrono::milliseconds deadline, CancelDone done) {
  auto* c = new CancelConn(loop, target, std::move(done));  // deletes itself once its handles are closed
  c->start(pid, secret, deadline);
}

}  // namespace pgs::proxy
