#include "proxy/server/server_conn.h"

#include <netinet/in.h>

#include <cstring>
#include <string>

#include "protocol/backend.h"
#include "protocol/server_login.h"
#include "protocol/writer.h"
#include "proxy/client/client_conn.h"
#include "proxy/core/log.h"
#include "proxy/core/worker.h"
#include "proxy/pool/pool.h"

namespace pgs::proxy {

namespace pb = protocol::backend;
using protocol::Frame;

ServerConn::ServerConn(Pool& pool, uint64_t id)
    : Stream(pool.worker().loop()),
      pool_(pool),
      id_(id),
      created_at_(Clock::now()),
      state_since_(created_at_),
      statements_(static_cast<size_t>(pool.worker().snapshot().config->session.max_prepared_statements)) {
  pool_.worker().server_opened();
  set_state(State::connecting);
}

void ServerConn::set_state(State s) {
  state_ = s;
  state_since_ = Clock::now();
  pool_.servers(s).push_back(this);
}

ServerConn::~ServerConn() {
  if (resolve_ticket_ != 0) pool_.worker().resolver().cancel(resolve_ticket_);
  ConnList<ServerConn>::unlink(this);
}

void ServerConn::connect() {
  set_buffer_release_bytes(pool_.worker().snapshot().config->proxy.buffer_release_bytes);
  tls_context_ = pool_.worker().snapshot().server_tls_for(pool_.target_index());
  const PoolTarget& t = pool_.target();
  // 0: answered at once (an address, a fresh answer); on_resolved ran and may have failed this server.
  if (uint64_t ticket = pool_.worker().resolver().resolve(t.host, t.port, [this](const Resolution& r) { on_resolved(r); });
      ticket != 0) {
    resolve_ticket_ = ticket;
  }
}

std::string ServerConn::connect_stage() const {
  if (state_ == State::login) return "logging in";
  if (resolve_ticket_ != 0) return "resolving the host \"" + pool_.target().host + "\"";
  return "connecting to " + address_text(peer_);
}

void ServerConn::on_resolved(const Resolution& r) {
  resolve_ticket_ = 0;
  if (closing() || state_ != State::connecting) return;
  if (r.addresses.empty()) {
    fail("cannot resolve the host \"" + pool_.target().host + "\" of server " + pool_.target().name + ": " + r.error);
    return;
  }
  addresses_ = r.addresses;
  next_address_ = 0;
  connect_next();
}

void ServerConn::connect_next() {
  peer_ = addresses_[next_address_++];
  connect_req_.data = this;
  int rc = uv_tcp_connect(&connect_req_, tcp(), reinterpret_cast<const sockaddr*>(&peer_), &ServerConn::connect_cb);
  if (rc != 0) on_connected(rc);
}

void ServerConn::connect_cb(uv_connect_t* req, int status) noexcept {
  static_cast<ServerConn*>(req->data)->on_connected(status);
}

void ServerConn::on_reopened() {
  if (state_ != State::connecting) return;
  connect_next();
}

void ServerConn::on_connected(int status) {
  if (closing()) return;
  if (status != 0) {
    const PoolTarget& t = pool_.target();
    connect_errors_ += (connect_errors_.empty() ? "" : "; ") + address_text(peer_) + ": " + uv_strerror(status);
    if (next_address_ < addresses_.size()) {  // the next address, at once, on a new socket
      reopen();
      return;
    }
    fail("could not connect to server " + t.name + " (" + t.host + ":" + std::to_string(t.port) +
         "): " + connect_errors_);
    return;
  }
  uv_tcp_nodelay(tcp(), 1);
  cancel_target_ = CancelTarget{};
  cancel_target_.address = peer_;
  cancel_target_.host = pool_.target().host;
  set_state(State::login);
  begin_login();
  start_reading();
}

void ServerConn::fail(const std::string& reason) {
  if (closing()) return;
  if (state_ == State::connecting || state_ == State::login) {
    pool_.on_server_login_failed(this, reason);
  } else if (client_ != nullptr) {
    ClientConn* c = client_;
    client_ = nullptr;
    c->on_server_lost(reason, at_release_point());
  }
  LOG_DEBUG("server " + std::to_string(id_) + " closed: " + reason);
  set_state(State::closing);
  close();
}

void ServerConn::terminate() {
  if (closing()) return;
  const bool before_startup = state_ == State::connecting || tls_phase_ != TlsPhase::none;
  set_state(State::closing);
  if (before_startup) {  // not connected, or TLS not up yet: nothing to say
    close();
    return;
  }
  protocol::write_terminate(outbox());
  close_after_flush();
}

void ServerConn::on_read_error(int status) {
  if (status == UV_EPROTO && !tls_error().empty()) {
    const std::string why = "TLS with the server failed: " + std::string(tls_error());
    if (!retry_without_tls(why)) fail(why);
    return;
  }
  if (tls_phase_ == TlsPhase::handshake && retry_without_tls("the server closed the connection during the TLS handshake")) {
    return;
  }
  fail(status == UV_EOF ? "server closed the connection" : std::string("read error: ") + uv_strerror(status));
}

void ServerConn::on_write_error(int status) {
  fail(std::string("write error: ") + uv_strerror(status));
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
      if (tls_phase_ == TlsPhase::answer && !on_ssl_answer()) return;
      if (tls_phase_ != TlsPhase::none) return;  // the handshake: nothing is said before it ends
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
    case State::being_canceled:  // at a release point: nothing of ours is in flight
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
  // Refused outright: a cleartext request unless allowed, an Ok in the middle of SCRAM (issue 13).
  auto scram_progress = !scram_                       ? protocol::ScramProgress::none
                        : scram_->server_verified() ? protocol::ScramProgress::verified
                                                    : protocol::ScramProgress::started;
  if (auto why = protocol::refuse_server_auth(auth->code, scram_progress, {pool_.target().allow_cleartext});
      !why.empty()) {
    fail(std::string(why));
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
      if (!start_scram(password)) return false;
      protocol::write_sasl_initial_response(outbox(), "SCRAM-SHA-256", scram_->client_first());
      break;
    }
    case pb::AuthCode::sasl_continue: {
      if (!scram_) {
        fail("unexpected SASLContinue");
        return false;
      }
      auto final_msg = scram_->on_server_first(protocol::as_string_view(auth->data));
      if (!final_msg.ok() && final_msg.error().code == Errc::mismatch) {
        fail("the server's SCRAM secret for user \"" + pool_.target().user +
             "\" differs from the one the proxy authenticated against");
        return false;
      }
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

// With a password for the user, the proxy proves it; without one, it passes through the keys a client
// of this user proved at its own SCRAM login (Worker::client_keys), as PgBouncer does.
bool ServerConn::start_scram(const std::string& password) {
  const std::string nonce = protocol::scram::random_nonce();
  if (!password.empty()) {
    scram_ = std::make_unique<protocol::scram::ClientExchange>(password, nonce);
    return true;
  }
  const protocol::scram::ClientKeys* keys = pool_.worker().client_keys(pool_.target().user);
  if (keys == nullptr) {
    fail("no password for user \"" + pool_.target().user +
         "\" and no client of it has logged in with SCRAM since the proxy started (SCRAM pass-through)");
    return false;
  }
  scram_ = std::make_unique<protocol::scram::ClientExchange>(*keys, nonce);
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

}  // namespace pgs::proxy
