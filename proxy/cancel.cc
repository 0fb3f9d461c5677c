#include "proxy/cancel.h"

#include <openssl/rand.h>

#include <cstring>

#include "protocol/writer.h"
#include "proxy/log.h"

namespace pgs::proxy {
namespace {

struct CancelSender {
  uv_tcp_t tcp{};
  uv_connect_t connect{};
  uv_write_t write{};
  std::string packet;

  static void close_cb(uv_handle_t* h) noexcept { delete static_cast<CancelSender*>(h->data); }
  void finish() { uv_close(reinterpret_cast<uv_handle_t*>(&tcp), &CancelSender::close_cb); }
  static void write_cb(uv_write_t* req, int) noexcept { static_cast<CancelSender*>(req->data)->finish(); }
  static void connect_cb(uv_connect_t* req, int status) noexcept {
    auto* self = static_cast<CancelSender*>(req->data);
    if (status != 0) {
      LOG_WARN(std::string("cancel: could not connect to server: ") + uv_strerror(status));
      self->finish();
      return;
    }
    uv_buf_t b = uv_buf_init(self->packet.data(), static_cast<unsigned>(self->packet.size()));
    self->write.data = self;
    if (uv_write(&self->write, reinterpret_cast<uv_stream_t*>(&self->tcp), &b, 1, &CancelSender::write_cb) != 0) {
      self->finish();
    }
  }
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

void send_cancel_request(uv_loop_t* loop, const std::string& host, uint16_t port, int32_t pid, int32_t secret) {
  sockaddr_storage addr{};
  if (uv_ip4_addr(host.c_str(), port, reinterpret_cast<sockaddr_in*>(&addr)) != 0 &&
      uv_ip6_addr(host.c_str(), port, reinterpret_cast<sockaddr_in6*>(&addr)) != 0) {
    LOG_WARN("cancel: invalid server address " + host);
    return;
  }
  auto* s = new CancelSender{};
  protocol::write_cancel_request(s->packet, pid, secret);
  uv_tcp_init(loop, &s->tcp);
  s->tcp.data = s;
  s->connect.data = s;
  if (uv_tcp_connect(&s->connect, &s->tcp, reinterpret_cast<const sockaddr*>(&addr), &CancelSender::connect_cb) != 0) {
    s->finish();
  }
}

}  // namespace pgs::proxy
