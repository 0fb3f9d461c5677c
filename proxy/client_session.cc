// ClientConn, part 3: the pooled session — binding servers, forwarding, releasing, failing.
#include "protocol/frontend.h"
#include "protocol/writer.h"
#include "proxy/client_conn.h"
#include "proxy/log.h"
#include "proxy/pool.h"
#include "proxy/server_conn.h"
#include "proxy/worker.h"

namespace pgs::proxy {

namespace pf = protocol::frontend;
using protocol::Frame;

void ClientConn::process_session() {
  const auto& proxy_conf = worker_.snapshot().config->proxy;
  while (!closing() && (state_ == State::idle || state_ == State::active)) {
    auto r = protocol::split_frame(rbuf_.data(), proxy_conf.max_message_bytes);
    if (std::holds_alternative<protocol::NeedMore>(r)) break;
    if (auto* bad = std::get_if<protocol::Invalid>(&r)) {
      worker_.counters().protocol_errors.fetch_add(1, std::memory_order_relaxed);
      fail("08P01", "invalid message from client: " + std::string(bad->reason));
      return;
    }
    const Frame& f = std::get<Frame>(r);
    if (!pf::is_known_type(f.type)) {
      worker_.counters().protocol_errors.fetch_add(1, std::memory_order_relaxed);
      fail("08P01", std::string("unsupported frontend message type 0x") + "0123456789abcdef"[(f.type >> 4) & 0xf] +
                        "0123456789abcdef"[f.type & 0xf]);
      return;
    }
    if (f.type == 'X') {  // Terminate
      detach_server(true);
      set_state(State::closing);
      close();
      return;
    }
    if (f.type == 'p') {
      fail("08P01", "unexpected password message after authentication");
      return;
    }
    if (state_ == State::idle) {
      // The first message of a transaction: get a server. The frame stays buffered until then.
      set_state(State::waiting);
      pool_->request_server(this);
      return;  // on_server_assigned() resumes here
    }
    if (!forward_frame(f)) return;
    rbuf_.consume(f.size);
  }
  if (server_ != nullptr && !closing()) {
    server_->flush();
    // Backpressure towards the client: a COPY flood stops while the server's queue is full.
    if (server_ != nullptr && server_->queued_bytes() > proxy_conf.client_buffer_high_water) stop_reading();
  }
}

bool ClientConn::forward_frame(const Frame& f) {
  server_->outbox().append(protocol::as_string_view(f.whole));
  server_->note_client_message(f.type);
  if (f.type == 'Q' || f.type == 'E') worker_.counters().queries.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void ClientConn::on_server_assigned(ServerConn* server) {
  server_ = server;
  set_state(State::active);
  std::string sync_sql = build_sync_sql(request_.gucs, server->applied(), server->defaults());
  GucMap applied_after;
  if (!sync_sql.empty()) applied_after = applied_after_sync(request_.gucs, server->defaults());
  server->attach(this, sync_sql, std::move(applied_after));
  if (!reading()) start_reading();
  process_session();
}

void ClientConn::on_server_bytes() { flush(); }

void ClientConn::on_write_progress() {
  // The client drained below the low-water mark: let the server's bytes flow again.
  if (server_ != nullptr && queued_bytes() < worker_.snapshot().config->proxy.client_buffer_high_water / 2) {
    server_->resume_reading();
  }
}

void ClientConn::on_server_drained() {
  if (state_ != State::active || server_ == nullptr) return;
  if (server_->queued_bytes() < worker_.snapshot().config->proxy.client_buffer_high_water / 2) {
    if (!reading()) start_reading();
    process_session();
  }
}

void ClientConn::on_server_at_release_point() {
  if (server_ == nullptr) return;
  bool session_mode = pool_->settings().pool_mode == conf::PoolMode::session;
  if (session_mode && !shutting_down_) return;  // session mode keeps the server until the client leaves
  worker_.counters().transactions.fetch_add(1, std::memory_order_relaxed);
  ServerConn* s = server_;
  server_ = nullptr;
  set_state(State::idle);
  if (session_mode) {
    s->detach();
    s->reset_and_release();
  } else {
    pool_->release(s, true);
  }
  if (shutting_down_) {
    fail("57P01", "terminating connection due to administrator command");
    return;
  }
  if (rbuf_.size() > 0) process_session();
}

void ClientConn::on_server_lost(const std::string& message) {
  server_ = nullptr;
  fail("08006", "pgsidecar: server connection lost: " + message);
}

void ClientConn::on_parameter_status(std::string_view name, std::string_view value) {
  if (is_tracked_setting(name)) request_.gucs.set(name, value);
  const std::string* told = reported_.get(name);
  if (told != nullptr && *told == value) return;
  reported_.set(name, value);
  protocol::write_parameter_status(outbox(), name, value);
}

void ClientConn::detach_server(bool client_gone) {
  (void)client_gone;
  if (state_ == State::waiting || state_ == State::login_wait) {
    if (pool_ != nullptr) pool_->forget_client(this);
  }
  if (server_ == nullptr) return;
  ServerConn* s = server_;
  server_ = nullptr;
  bool session_mode = pool_->settings().pool_mode == conf::PoolMode::session;
  if (s->at_release_point()) {
    if (session_mode) {
      s->detach();
      s->reset_and_release();
    } else {
      pool_->release(s, true);
    }
    return;
  }
  // Mid-transaction or mid-query: never hand this server to anyone. Cancel what runs, then close;
  // the backend rolls back and drops its locks when it sees the connection end.
  if (s->running_query()) worker_.send_cancel(pool_->target(), s->backend_pid(), s->backend_secret());
  pool_->release(s, false);
}

void ClientConn::begin_shutdown() {
  shutting_down_ = true;
  switch (state_) {
    case State::active:
      return;  // closes at the end of its transaction (on_server_at_release_point)
    case State::closing:
      return;
    default:
      fail("57P01", "terminating connection due to administrator command");
  }
}

}  // namespace pgs::proxy
