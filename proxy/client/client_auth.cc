// ClientConn, part 2: the login after the startup packet. The authentication exchange itself is
// LoginExchange (proxy/login/login_exchange.h); here its messages are framed, its answers acted on,
// and the login finished (the login pool, its welcome parameters, the cancel key).
#include "protocol/frame.h"
#include "protocol/writer.h"
#include "proxy/client/client_conn.h"
#include "proxy/core/log.h"
#include "proxy/core/process.h"
#include "proxy/core/secrets.h"
#include "proxy/core/worker.h"
#include "proxy/pool/pool.h"

namespace pgs::proxy {

using protocol::Frame;

namespace {
constexpr uint32_t kMaxAuthMessage = 64 * 1024;
}  // namespace

// A user with no secret in [[users]] is looked up with auth_query (not for the admin console, whose
// users are the config's): the exchange starts once the verifier is known, or as an unknown user's
// (a decoy, failing like a wrong password) when there is none.
void ClientConn::begin_auth() {
  set_state(State::auth);
  const Snapshot& snapshot = worker_.snapshot();
  const UserSecrets* secrets = snapshot.secrets_for(request_.user);  // kept alive by snapshot_hold_
  const bool has_secret = secrets != nullptr && (secrets->has_scram || !secrets->md5_hash.empty());
  if (has_secret || admin_ || !snapshot.config->proxy.auth_query_enabled()) {
    begin_login(secrets);
    return;
  }
  const conf::DatabaseConfig* db = snapshot.config->find_database(request_.database);
  const std::string& dbname = db->server_dbname.empty() ? db->name : db->server_dbname;
  auto answer = worker_.auth_query().lookup(dbname, request_.user, id_);
  if (!answer) {
    awaiting_lookup_ = true;  // client_login_timeout still applies
    return;
  }
  on_auth_answer(*answer);
}

void ClientConn::on_auth_answer(const AuthAnswer& answer) {
  if (state_ != State::auth || closing() || login_ != nullptr) return;
  awaiting_lookup_ = false;
  switch (answer.kind) {
    case AuthAnswer::Kind::found:
      looked_up_ = answer.secrets;
      begin_login(looked_up_.get());
      return;
    case AuthAnswer::Kind::unknown:
      begin_login(nullptr);
      return;
    case AuthAnswer::Kind::failed:
      fail(answer.sqlstate, std::string(answer.sqlstate) == "53300"
                                ? "too many authentication lookups in progress"
                                : "could not look up the password of user \"" + request_.user +
                                      "\" on the server (auth_query); see the proxy's log");
      return;
  }
}

void ClientConn::begin_login(const UserSecrets* secrets) {
  const Snapshot& snapshot = worker_.snapshot();
  LoginExchange::Inputs in;
  in.auth_type = snapshot.config->proxy.auth_type;
  in.secrets = secrets;
  in.decoy = [this] { return worker_.snapshot().decoy_verifier(request_.user); };
  in.channel_binding = std::string(tls_channel_binding());
  in.user = request_.user;
  login_ = std::make_unique<LoginExchange>();
  act_on_login(login_->begin(std::move(in)));
}

void ClientConn::process_auth() {
  if (login_ == nullptr && state_ == State::auth && rbuf_.size() > 0) {
    // Nothing was asked yet (auth_query is looking the user up): no client speaks now.
    fail("08P01", "unexpected message before the authentication request");
    return;
  }
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
    if (!act_on_login(login_->on_password_message(f))) return;
  }
}

bool ClientConn::act_on_login(LoginAction a) {
  outbox().append(a.reply);
  switch (a.outcome) {
    case LoginOutcome::wait:
      flush();
      return true;
    case LoginOutcome::authenticated:
      // SCRAM pass-through: a user the proxy has no server password for logs in to servers with the
      // keys its clients prove.
      if (a.client_keys && !admin_) note_client_keys(*a.client_keys);
      login_.reset();
      looked_up_.reset();
      finish_auth();
      return state_ != State::closing;
    case LoginOutcome::refused:
      if (!a.log_error.empty()) LOG_ERROR("client " + peer_ + ": " + a.log_error);
      fail(a.sqlstate, a.message);
      return false;
  }
  return false;
}

void ClientConn::note_client_keys(const protocol::scram::ClientKeys& keys) {
  const UserSecrets* configured = worker_.snapshot().secrets_for(request_.user);
  if (configured == nullptr || configured->server_password.empty()) worker_.note_client_keys(request_.user, keys);
}

// AuthenticationOk was written (the login exchange's last reply).
void ClientConn::finish_auth() {
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
    session_state_.note_reported(name, value);
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
