#include "proxy/server_conn.h"

#include <netinet/in.h>

#include <cstring>

#include "protocol/backend.h"
#include "protocol/writer.h"
#include "proxy/client_conn.h"
#include "proxy/log.h"
#include "proxy/pool.h"
#include "proxy/worker.h"

namespace pgs::proxy {

namespace pb = protocol::backend;
using protocol::Frame;

namespace {
// Server messages can be large (a 100 MB bytea in one DataRow): DataRow and CopyData are streamed through
// once their header is known instead of being buffered whole. Everything we inspect must fit this cap.
constexpr uint32_t kMaxServerMessage = 1u << 30;
constexpr size_t kStreamThreshold = 256 * 1024;
}  // namespace

ServerConn::ServerConn(Pool& pool, uint64_t id)
    : Stream(pool.worker().loop()), pool_(pool), id_(id), created_at_(Clock::now()), state_since_(created_at_) {
  pool_.worker().server_opened();
}

void ServerConn::set_state(State s) {
  state_ = s;
  state_since_ = Clock::now();
}

void ServerConn::connect() {
  sockaddr_storage addr{};
  const PoolTarget& t = pool_.target();
  int rc = uv_ip4_addr(t.host.c_str(), t.port, reinterpret_cast<sockaddr_in*>(&addr));
  if (rc != 0) rc = uv_ip6_addr(t.host.c_str(), t.port, reinterpret_cast<sockaddr_in6*>(&addr));
  if (rc != 0) {
    fail("invalid server address " + t.host);
    return;
  }
  connect_req_.data = this;
  rc = uv_tcp_connect(&connect_req_, tcp(), reinterpret_cast<const sockaddr*>(&addr), &ServerConn::connect_cb);
  if (rc != 0) fail(std::string("connect: ") + uv_strerror(rc));
}

void ServerConn::connect_cb(uv_connect_t* req, int status) noexcept {
  static_cast<ServerConn*>(req->data)->on_connected(status);
}

void ServerConn::on_connected(int status) {
  if (closing()) return;
  if (status != 0) {
    fail(std::string("could not connect to server: ") + uv_strerror(status));
    return;
  }
  uv_tcp_nodelay(tcp(), 1);
  set_state(State::login);
  const PoolTarget& t = pool_.target();
  protocol::write_startup(outbox(), {{"user", t.user}, {"database", t.server_dbname}});
  flush();
  start_reading();
}

void ServerConn::fail(const std::string& reason) {
  if (closing()) return;
  if (state_ == State::connecting || state_ == State::login) {
    pool_.on_server_login_failed(this, reason);
  } else if (client_ != nullptr) {
    ClientConn* c = client_;
    client_ = nullptr;
    c->on_server_lost(reason);
  }
  LOG_DEBUG("server " + std::to_string(id_) + " closed: " + reason);
  set_state(State::closing);
  close();
}

void ServerConn::terminate() {
  if (closing()) return;
  set_state(State::closing);
  protocol::write_terminate(outbox());
  close_after_flush();
}

void ServerConn::on_read_error(int status) {
  fail(status == UV_EOF ? "server closed the connection" : std::string("read error: ") + uv_strerror(status));
}

void ServerConn::on_write_progress() {
  if (client_ != nullptr) client_->on_server_drained();
}

void ServerConn::on_closed() {
  pool_.on_server_closed(this);
  Worker& w = pool_.worker();
  delete this;
  w.server_closed();
}

void ServerConn::on_data() {
  switch (state_) {
    case State::login: {
      while (!closing() && state_ == State::login) {
        auto r = protocol::split_frame(rbuf_.data(), 1u << 20);
        if (std::holds_alternative<protocol::NeedMore>(r)) return;
        if (auto* bad = std::get_if<protocol::Invalid>(&r)) {
          fail(std::string("invalid message from server during login: ") + std::string(bad->reason));
          return;
        }
        const Frame& f = std::get<Frame>(r);
        bool ok = handle_login_message(f);
        rbuf_.consume(f.size);
        if (!ok) return;
      }
      if (state_ == State::idle) process_idle();
      return;
    }
    case State::idle:
      process_idle();
      return;
    case State::active:
    case State::resetting:
      process_active();
      return;
    default:
      return;
  }
}

// ---- login ----

bool ServerConn::handle_login_message(const Frame& f) {
  switch (f.type) {
    case 'R':
      return handle_auth_request(f);
    case 'S': {
      auto ps = pb::ParameterStatus::decode(f.body);
      if (ps.ok()) {
        defaults_.set(ps->name, ps->value);
        login_params_.emplace_back(std::string(ps->name), std::string(ps->value));
      }
      return true;
    }
    case 'K': {
      auto k = pb::BackendKeyData::decode(f.body);
      if (k.ok()) {
        backend_pid_ = k->pid;
        backend_secret_ = k->secret;
      }
      return true;
    }
    case 'E': {
      auto e = pb::ErrorFields::decode(f.body);
      fail(e.ok() ? std::string(e->message) + " (SQLSTATE " + std::string(e->sqlstate) + ")"
                  : "server refused the login");
      return false;
    }
    case 'N':
    case 'v':
      return true;
    case 'Z': {
      // The welcome parameters, spelled as the server reports them ("DateStyle", "TimeZone").
      set_state(State::idle);
      pool_.record_welcome(login_params_);
      login_params_.clear();
      login_params_.shrink_to_fit();
      pool_.on_server_ready(this);
      return false;  // stop the login loop; leftover bytes are handled by the idle reader
    }
    default:
      fail(std::string("unexpected message during server login: ") + f.type);
      return false;
  }
}

bool ServerConn::handle_auth_request(const Frame& f) {
  auto auth = pb::Authentication::decode(f.body);
  if (!auth.ok()) {
    fail("malformed authentication request from server");
    return false;
  }
  const std::string& password = pool_.target().server_password;
  switch (static_cast<pb::AuthCode>(auth->code)) {
    case pb::AuthCode::ok:
      return true;
    case pb::AuthCode::cleartext:
      protocol::write_password(outbox(), password);
      break;
    case pb::AuthCode::md5: {
      if (auth->data.size() != 4) {
        fail("malformed md5 salt from server");
        return false;
      }
      protocol::write_password(outbox(),
                               protocol::md5_password_response(pool_.target().user, password, auth->data.data()));
      break;
    }
    case pb::AuthCode::sasl: {
      bool has_scram = false;
      for (auto m : auth->mechanisms()) has_scram |= (m == "SCRAM-SHA-256");
      if (!has_scram) {
        fail("server offers no supported SASL mechanism");
        return false;
      }
      scram_ = std::make_unique<protocol::scram::ClientExchange>(password, protocol::scram::random_nonce());
      protocol::write_sasl_initial_response(outbox(), "SCRAM-SHA-256", scram_->client_first());
      break;
    }
    case pb::AuthCode::sasl_continue: {
      if (!scram_) {
        fail("unexpected SASLContinue");
        return false;
      }
      auto final_msg = scram_->on_server_first(protocol::as_string_view(auth->data));
      if (!final_msg.ok()) {
        fail("SCRAM exchange with server failed: " + std::string(final_msg.error().detail));
        return false;
      }
      protocol::write_sasl_response(outbox(), final_msg.value());
      break;
    }
    case pb::AuthCode::sasl_final: {
      if (!scram_ || !scram_->on_server_final(protocol::as_string_view(auth->data)).ok()) {
        fail("server SCRAM signature did not verify");
        return false;
      }
      return true;
    }
    default:
      fail("server asks for an unsupported authentication method " + std::to_string(auth->code));
      return false;
  }
  flush();
  return true;
}

// ---- idle in the pool ----

void ServerConn::process_idle() {
  // An idle server should say nothing; a NOTICE or ParameterStatus is harmless, an ErrorResponse
  // (FATAL: terminating connection due to administrator command) means it is going away.
  while (!closing()) {
    auto r = protocol::split_frame(rbuf_.data(), 1u << 20);
    if (std::holds_alternative<protocol::NeedMore>(r)) return;
    if (std::holds_alternative<protocol::Invalid>(r)) {
      fail("invalid message from idle server");
      return;
    }
    const Frame& f = std::get<Frame>(r);
    char type = f.type;
    rbuf_.consume(f.size);
    if (type == 'E') {
      fail("idle server sent an error");
      return;
    }
    if (type != 'N' && type != 'S' && type != 'A') {
      fail(std::string("unexpected message from idle server: ") + type);
      return;
    }
  }
}

// ---- bound to a client ----

void ServerConn::attach(ClientConn* client, const std::string& sync_sql, GucMap applied_after) {
  client_ = client;
  set_state(State::active);
  sync_failed_ = false;
  if (!sync_sql.empty()) {
    protocol::write_query(outbox(), sync_sql);
    ++swallow_ready_;
    pending_applied_ = std::move(applied_after);
  }
  start_reading();
}

void ServerConn::detach() {
  client_ = nullptr;
  passthrough_remaining_ = 0;
  if (state_ == State::active) set_state(State::idle);
  start_reading();  // an idle server is still read: it may say it is going away
}

void ServerConn::note_client_message(char type) {
  switch (type) {
    case 'Q':
    case 'F':
      ++pending_ready_;
      break;
    case 'S':
      ++pending_ready_;
      unsynced_ = false;
      break;
    case 'P':
    case 'B':
    case 'D':
    case 'E':
    case 'C':
    case 'H':
      unsynced_ = true;
      break;
    default:
      break;
  }
}

void ServerConn::reset_and_release() {
  set_state(State::resetting);
  client_ = nullptr;
  protocol::write_query(outbox(), "DISCARD ALL");
  ++swallow_ready_;
  pending_applied_ = GucMap{};
  flush();
  start_reading();
}

void ServerConn::process_active() {
  while (!closing()) {
    protocol::Bytes data = rbuf_.data();
    if (passthrough_remaining_ > 0) {
      if (data.empty()) break;
      size_t n = std::min(passthrough_remaining_, data.size());
      if (client_ != nullptr) client_->outbox().append(reinterpret_cast<const char*>(data.data()), n);
      rbuf_.consume(n);
      passthrough_remaining_ -= n;
      continue;
    }
    auto r = protocol::split_frame(data, kMaxServerMessage);
    if (auto* more = std::get_if<protocol::NeedMore>(&r)) {
      // A large DataRow/CopyData whose header we have: forward what is here and the rest as it comes.
      bool streamable = data.size() >= 5 && (data[0] == 'D' || data[0] == 'd') && swallow_ready_ == 0;
      if (streamable && data.size() >= kStreamThreshold && client_ != nullptr) {
        client_->outbox().append(reinterpret_cast<const char*>(data.data()), data.size());
        passthrough_remaining_ = more->at_least - data.size();
        rbuf_.consume(data.size());
        continue;
      }
      break;
    }
    if (std::holds_alternative<protocol::Invalid>(r)) {
      fail("invalid message from server");
      return;
    }
    const Frame& f = std::get<Frame>(r);
    bool keep_going = handle_active_frame(f);
    rbuf_.consume(f.size);
    if (!keep_going) return;
  }
  if (closing()) return;
  ClientConn* c = client_;
  if (state_ == State::resetting) return;
  if (c == nullptr) return;
  c->on_server_bytes();
  // Backpressure: stop reading the server while the client has too much queued.
  if (client_ != nullptr && client_->queued_bytes() >
                                pool_.worker().snapshot().config->proxy.client_buffer_high_water) {
    stop_reading();
  }
  if (client_ != nullptr && at_release_point()) client_->on_server_at_release_point();
}

bool ServerConn::handle_active_frame(const Frame& f) {
  if (swallow_ready_ > 0) {  // replies to our own sync / reset statement
    switch (f.type) {
      case 'S': {
        auto ps = pb::ParameterStatus::decode(f.body);
        if (!ps.ok()) return true;
        // The server's spelling ("ISO, MDY" for "ISO") becomes what we record as applied.
        if (is_tracked_setting(ps->name) && pending_applied_.get(ps->name) != nullptr) {
          pending_applied_.set(ps->name, ps->value);
        }
        if (client_ != nullptr) client_->on_parameter_status(ps->name, ps->value);
        return true;  // applied_ is set from pending_applied_ once the statement succeeded
      }
      case 'E': {
        sync_failed_ = true;
        if (client_ != nullptr) client_->outbox().append(protocol::as_string_view(f.whole));
        return true;
      }
      case 'Z': {
        --swallow_ready_;
        if (sync_failed_) {
          ClientConn* c = client_;
          client_ = nullptr;
          if (c != nullptr) c->fail("08P01", "could not apply the session's settings on a server connection");
          fail("sync statement failed");
          return false;
        }
        applied_ = pending_applied_;
        if (state_ == State::resetting) {
          applied_ = GucMap{};
          set_state(State::idle);
          pool_.on_server_ready(this);
          return false;
        }
        return true;
      }
      default:
        return true;  // CommandComplete, RowDescription, DataRow of the set_config SELECT
    }
  }
  if (client_ == nullptr) {
    fail("server sent data with no client attached");
    return false;
  }
  if (f.type != 'S') client_->outbox().append(protocol::as_string_view(f.whole));
  switch (f.type) {
    case 'Z': {
      auto rfq = pb::ReadyForQuery::decode(f.body);
      if (!rfq.ok()) {
        fail("malformed ReadyForQuery from server");
        return false;
      }
      tx_status_ = rfq->status;
      if (pending_ready_ > 0) --pending_ready_;
      return true;
    }
    case 'S': {
      // The client changed a reported setting itself (SET TimeZone ...): it is now the client's wish
      // and this server's applied state. The client hears of it through on_parameter_status.
      auto ps = pb::ParameterStatus::decode(f.body);
      if (!ps.ok()) {
        fail("malformed ParameterStatus from server");
        return false;
      }
      if (is_tracked_setting(ps->name)) applied_.set(ps->name, ps->value);
      client_->on_parameter_status(ps->name, ps->value);
      return true;
    }
    default:
      return true;
  }
}

}  // namespace pgs::proxy
