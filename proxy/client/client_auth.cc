// ClientConn, part 2: authenticating the client (SCRAM-SHA-256, md5, trust) and finishing the login.
#include <openssl/rand.h>

#include "protocol/frontend.h"
#include "protocol/writer.h"
#include "proxy/client/client_conn.h"
#include "proxy/core/log.h"
#include "proxy/core/process.h"
#include "proxy/core/secrets.h"
#include "proxy/core/worker.h"
#include "proxy/pool/pool.h"

namespace pgs::proxy {

namespace pf = protocol::frontend;
using protocol::Frame;

namespace {
constexpr uint32_t kMaxAuthMessage = 64 * 1024;
}  // namespace

void ClientConn::begin_auth() {
  set_state(State::auth);
  const conf::Config& config = *worker_.snapshot().config;
  secrets_ = worker_.snapshot().secrets_for(request_.user);
  fake_auth_ = secrets_ == nullptr;
  auto type = config.proxy.auth_type;
  if (type == conf::AuthType::trust && !fake_auth_) {
    finish_auth();
    return;
  }
  bool can_scram = fake_auth_ || secrets_->has_scram;
  // An unknown user is offered what a known one would be (md5 under auth_type = "md5" when MD5 is
  // available), so the method asked for tells nothing about the name.
  bool can_md5 = fake_auth_ ? protocol::md5_stored_hash("", "").ok() : !secrets_->md5_hash.empty();
  bool use_md5 = (type == conf::AuthType::md5 && can_md5) || (!can_scram && can_md5);
  if (use_md5) {
    // A predictable salt would let a recorded response be replayed: no salt, no md5 login.
    if (RAND_bytes(md5_salt_, sizeof md5_salt_) != 1) {
      LOG_ERROR("client " + peer_ + ": RAND_bytes failed: no random md5 salt; login refused");
      fail("XX000", "could not generate a random authentication salt");
      return;
    }
    protocol::write_auth_md5(outbox(), md5_salt_);
    auth_step_ = AuthStep::md5;
  } else if (can_scram) {
    // Over TLS, channel binding is offered first (libpq channel_binding=prefer takes it, =require needs it).
    if (!tls_channel_binding().empty()) {
      protocol::write_auth_sasl(outbox(), {"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"});
    } else {
      protocol::write_auth_sasl(outbox(), {"SCRAM-SHA-256"});
    }
    auth_step_ = AuthStep::scram_first;
  } else {
    fail("28P01", "password authentication failed for user \"" + request_.user + "\"");
    return;
  }
  flush();
}

void ClientConn::process_auth() {
  while (state_ == State::auth && !closing()) {
    auto r = protocol::split_frame(rbuf_.data(), kMaxAuthMessage);
    if (std::holds_alternative<protocol::NeedMore>(r)) return;
    if (auto* bad = std::get_if<protocol::Invalid>(&r)) {
      fail("08P01", "invalid authentication message: " + std::string(bad->reason));
      return;
    }
    const Frame& f = std::get<Frame>(r);
    if (f.type != 'p') {
      fail("08P01", std::string("expected a password response, got message type '") + f.type + "'");
      return;
    }
    // Consume first: handling may finish the login and go on to the session's bytes. The frame's views
    // stay valid (consume only moves an offset; the buffer is not touched until the next read).
    rbuf_.consume(f.size);
    if (!handle_password_message(f)) return;
  }
}

bool ClientConn::handle_password_message(const Frame& f) {
  auto auth_failed = [this] {
    fail("28P01", "password authentication failed for user \"" + request_.user + "\"");
    return false;
  };
  switch (auth_step_) {
    case AuthStep::md5: {
      auto pw = pf::PasswordMessage::decode(f.body);
      if (!pw.ok()) return auth_failed();
      // Fails closed: a hash that could not be computed (no MD5 under FIPS) never matches.
      if (fake_auth_ || !protocol::md5_verify(secrets_->md5_hash, md5_salt_, pw->password)) {
        return auth_failed();
      }
      finish_auth();
      return state_ != State::closing;
    }
    case AuthStep::scram_first: {
      auto init = pf::SaslInitialResponse::decode(f.body);
      if (!init.ok()) {
        fail("08P01", "malformed SASLInitialResponse");
        return false;
      }
      const bool plus = init->mechanism == "SCRAM-SHA-256-PLUS" && !tls_channel_binding().empty();
      if (init->mechanism != "SCRAM-SHA-256" && !plus) {
        fail("28000", "client selected an invalid SASL authentication mechanism");
        return false;
      }
      // An unknown user runs the same exchange against a decoy (salt and iterations like a real
      // user's, stable per name) and fails like a wrong password after the proof.
      auto verifier = fake_auth_ ? worker_.snapshot().decoy_verifier(request_.user) : secrets_->scram;
      scram_ = std::make_unique<protocol::scram::ServerExchange>(
          std::move(verifier), protocol::scram::random_nonce(), std::string(tls_channel_binding()), plus);
      auto reply = scram_->on_client_first(init->data);
      if (!reply.ok()) {
        fail("08P01", "malformed SCRAM message: " + std::string(reply.error().detail));
        return false;
      }
      protocol::write_auth_sasl_continue(outbox(), reply.value());
      flush();
      auth_step_ = AuthStep::scram_final;
      return true;
    }
    case AuthStep::scram_final: {
      auto resp = pf::SaslResponse::decode(f.body);
      if (!resp.ok()) return auth_failed();
      auto final_msg = scram_->on_client_final(resp->data);
      if (!final_msg.ok() || fake_auth_) return auth_failed();
      protocol::write_auth_sasl_final(outbox(), final_msg.value());
      scram_.reset();
      finish_auth();
      return state_ != State::closing;
    }
    default:
      fail("08P01", "unexpected password message");
      return false;
  }
}

void ClientConn::finish_auth() {
  protocol::write_auth_ok(outbox());
  if (admin_) {
    finish_admin_login();
    return;
  }
  pool_ = worker_.pool_for(request_.database, request_.user);
  primary_pool_ = pool_;
  if (pool_ == nullptr) {
    fail("3D000", "database \"" + request_.database + "\" does not exist");
    return;
  }
  if (pool_->has_welcome()) {
    finish_login();
    return;
  }
  flush();
  set_state(State::login_wait);
  pool_->request_welcome(this);
}

void ClientConn::finish_admin_login() {
  static const std::pair<const char*, const char*> kWelcome[] = {
      {"server_version", "15.0 (pgsidecar admin)"}, {"server_encoding", "UTF8"}, {"client_encoding", "UTF8"},
      {"DateStyle", "ISO, MDY"}, {"integer_datetimes", "on"}, {"standard_conforming_strings", "on"},
      {"application_name", ""}, {"TimeZone", "UTC"}, {"is_superuser", "off"}};
  if (!allocate_cancel_key()) return;
  for (const auto& [name, value] : kWelcome) protocol::write_parameter_status(outbox(), name, value);
  protocol::write_backend_key_data(outbox(), cancel_pid_, cancel_secret_);
  protocol::write_ready_for_query(outbox(), 'I');
  set_state(State::idle);
  flush();
  if (rbuf_.size() > 0) process_admin();
}

bool ClientConn::allocate_cancel_key() {
  if (worker_.allocate_cancel_key(this, cancel_pid_, cancel_secret_)) return true;
  // Never hand out a predictable key: anyone could cancel this client's queries with it.
  LOG_ERROR("client " + peer_ + ": RAND_bytes failed: no random cancel key; login refused");
  fail("XX000", "could not generate a random cancel key");
  return false;
}

void ClientConn::on_welcome_ready() {
  if (state_ == State::login_wait) finish_login();
}

void ClientConn::finish_login() {
  if (!allocate_cancel_key()) return;
  // ParameterStatus as a real server would send it, with the client's own settings where it gave them.
  for (const auto& [name, server_value] : pool_->welcome()) {
    const std::string* mine = request_.gucs.get(name);
    const std::string& value = mine != nullptr ? *mine : server_value;
    protocol::write_parameter_status(outbox(), name, value);
    reported_.set(name, value);
  }
  protocol::write_backend_key_data(outbox(), cancel_pid_, cancel_secret_);
  protocol::write_ready_for_query(outbox(), 'I');
  set_state(State::idle);
  flush();
  if (!reading()) start_reading();
  if (rbuf_.size() > 0) {
    process_session();
  } else {
    release_idle_buffers();  // most clients now wait for their first query: keep no buffer for it
  }
}

}  // namespace pgs::proxy
