#include "proxy/login/login_exchange.h"

#include <openssl/rand.h>

#include "protocol/frontend.h"
#include "protocol/writer.h"

namespace pgs::proxy {

namespace pf = protocol::frontend;

LoginExchange::LoginExchange() = default;
LoginExchange::~LoginExchange() = default;

LoginAction LoginExchange::begin(Inputs inputs) {
  in_ = std::move(inputs);
  unknown_user_ = in_.secrets == nullptr;
  if (in_.auth_type == conf::AuthType::trust && !unknown_user_) return authenticated({});
  bool can_scram = unknown_user_ || in_.secrets->has_scram;
  // An unknown user is offered what a known one would be (md5 under auth_type = "md5" when MD5 is
  // available), so the method asked for tells nothing about the name.
  bool can_md5 = unknown_user_ ? protocol::md5_stored_hash("", "").ok() : !in_.secrets->md5_hash.empty();
  bool use_md5 = (in_.auth_type == conf::AuthType::md5 && can_md5) || (!can_scram && can_md5);
  if (use_md5) return ask_for_md5();
  if (can_scram) return ask_for_sasl();
  return password_failed();
}

LoginAction LoginExchange::ask_for_md5() {
  // A predictable salt would let a recorded response be replayed: no salt, no md5 login.
  RandomFill fill = in_.random != nullptr ? in_.random : &RAND_bytes;
  if (fill(md5_salt_, sizeof md5_salt_) != 1) {
    LoginAction a = refuse("XX000", "could not generate a random authentication salt");
    a.log_error = "RAND_bytes failed: no random md5 salt; login refused";
    return a;
  }
  LoginAction a;
  protocol::write_auth_md5(a.reply, md5_salt_);
  step_ = Step::md5;
  return a;
}

LoginAction LoginExchange::ask_for_sasl() {
  LoginAction a;
  // Over TLS, channel binding is offered first (libpq channel_binding=prefer takes it, =require needs it).
  if (!in_.channel_binding.empty()) {
    protocol::write_auth_sasl(a.reply, {"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"});
  } else {
    protocol::write_auth_sasl(a.reply, {"SCRAM-SHA-256"});
  }
  step_ = Step::scram_first;
  return a;
}

LoginAction LoginExchange::on_password_message(const protocol::Frame& f) {
  switch (step_) {
    case Step::md5:
      return on_md5_response(f.body);
    case Step::scram_first:
      return on_sasl_initial_response(f.body);
    case Step::scram_final:
      return on_sasl_response(f.body);
    case Step::not_started:
    case Step::finished:
      break;
  }
  return refuse("08P01", "unexpected password message");
}

LoginAction LoginExchange::on_md5_response(protocol::Bytes body) {
  auto pw = pf::PasswordMessage::decode(body);
  if (!pw.ok()) return password_failed();
  // Fails closed: a hash that could not be computed (no MD5 under FIPS) never matches.
  if (unknown_user_ || !protocol::md5_verify(in_.secrets->md5_hash, md5_salt_, pw->password)) {
    return password_failed();
  }
  return authenticated({});
}

LoginAction LoginExchange::on_sasl_initial_response(protocol::Bytes body) {
  auto init = pf::SaslInitialResponse::decode(body);
  if (!init.ok()) return refuse("08P01", "malformed SASLInitialResponse");
  const bool plus = init->mechanism == "SCRAM-SHA-256-PLUS" && !in_.channel_binding.empty();
  if (init->mechanism != "SCRAM-SHA-256" && !plus) {
    return refuse("28000", "client selected an invalid SASL authentication mechanism");
  }
  // An unknown user runs the same exchange against a decoy (salt and iterations like a real user's,
  // stable per name) and fails like a wrong password after the proof.
  if (unknown_user_ && !in_.decoy) return password_failed();
  auto verifier = unknown_user_ ? in_.decoy() : in_.secrets->scram;
  scram_ = std::make_unique<protocol::scram::ServerExchange>(std::move(verifier), protocol::scram::random_nonce(),
                                                             in_.channel_binding, plus);
  auto server_first = scram_->on_client_first(init->data);
  if (!server_first.ok()) {
    return refuse("08P01", "malformed SCRAM message: " + std::string(server_first.error().detail));
  }
  LoginAction a;
  protocol::write_auth_sasl_continue(a.reply, server_first.value());
  step_ = Step::scram_final;
  return a;
}

LoginAction LoginExchange::on_sasl_response(protocol::Bytes body) {
  auto resp = pf::SaslResponse::decode(body);
  if (!resp.ok()) return password_failed();
  auto server_final = scram_->on_client_final(resp->data);
  if (!server_final.ok() || unknown_user_) return password_failed();
  std::string reply;
  protocol::write_auth_sasl_final(reply, server_final.value());
  auto keys = scram_->client_keys();
  LoginAction a = authenticated(std::move(reply));
  a.client_keys = std::move(keys);
  return a;
}

LoginAction LoginExchange::authenticated(std::string reply) {
  step_ = Step::finished;
  scram_.reset();
  protocol::write_auth_ok(reply);
  return {.outcome = LoginOutcome::authenticated, .reply = std::move(reply)};
}

LoginAction LoginExchange::refuse(const char* sqlstate, std::string message) {
  step_ = Step::finished;
  scram_.reset();
  return {.outcome = LoginOutcome::refused, .sqlstate = sqlstate, .message = std::move(message)};
}

LoginAction LoginExchange::password_failed() {
  return refuse("28P01", "password authentication failed for user \"" + in_.user + "\"");
}

}  // namespace pgs::proxy
