// LoginExchange: a client's authentication exchange (SCRAM-SHA-256 with or without channel binding,
// md5, trust), from the first Authentication request to AuthenticationOk or a refusal. It owns the
// exchange's state and does no I/O: the connection hands it events (begin, each PasswordMessage-type
// frame) and acts on the LoginAction it returns. Thread affinity: none (one exchange per login).
//
// Protocol: "Message Flow / Start-up" and "SASL Authentication" in the Postgres protocol docs (ch. 55).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "conf/config.h"
#include "protocol/auth.h"
#include "protocol/frame.h"
#include "proxy/login/user_secrets.h"

namespace pgs::proxy {

enum class LoginOutcome : uint8_t {
  wait,           // write `reply`, then wait for the client's next password message
  authenticated,  // write `reply` (it ends with AuthenticationOk): the client may log in
  refused,        // fail the login: FATAL `sqlstate` `message` (`reply` is empty)
};

// What the connection does after one event of the exchange.
struct LoginAction {
  LoginOutcome outcome = LoginOutcome::wait;
  std::string reply;           // backend messages to write to the client (Authentication*)
  const char* sqlstate = "";   // refused
  std::string message;         // refused: the ErrorResponse's message
  std::string log_error;       // refused for a fault of the proxy's own: a line for the error log
  // authenticated by SCRAM: the client's keys, with which the proxy can log in to servers as this user
  // without a password (SCRAM pass-through; protocol::scram::ClientKeys). Never logged.
  std::optional<protocol::scram::ClientKeys> client_keys;
};

class LoginExchange {
 public:
  // The md5 salt's random source, shaped like OpenSSL's RAND_bytes (1 on success). A seam for tests.
  using RandomFill = int (*)(unsigned char* out, int size);

  struct Inputs {
    conf::AuthType auth_type = conf::AuthType::scram_sha_256;
    // The user's credentials, or null for a user the proxy does not know. Not owned: they must outlive
    // the exchange (the connection holds the config snapshot they belong to).
    const UserSecrets* secrets = nullptr;
    // The verifier an unknown user's SCRAM exchange runs against (Snapshot::decoy_verifier): asked for
    // only when such a user sends its SASLInitialResponse. Without one, that user is refused there.
    std::function<protocol::scram::Verifier()> decoy;
    // tls-server-end-point data (RFC 5929) of the client's TLS session; "" without TLS. Only with it is
    // SCRAM-SHA-256-PLUS offered and accepted.
    std::string channel_binding;
    std::string user;  // as in the startup packet: named in the failure message
    RandomFill random = nullptr;  // nullptr: RAND_bytes
  };

  LoginExchange();
  ~LoginExchange();
  LoginExchange(const LoginExchange&) = delete;
  LoginExchange& operator=(const LoginExchange&) = delete;

  // Starts the exchange: trust for a known user is authenticated at once; otherwise the client is asked
  // for md5 or SASL. An unknown user is asked for what a known one would be, runs the same exchange and is
  // refused like a wrong password after its response, so the login tells nothing about the name.
  [[nodiscard]] LoginAction begin(Inputs inputs);
  // A frame of type 'p' from the client (PasswordMessage, SASLInitialResponse or SASLResponse: which one
  // depends on the step). Its views are read during the call only.
  [[nodiscard]] LoginAction on_password_message(const protocol::Frame& f);

 private:
  enum class Step : uint8_t { not_started, md5, scram_first, scram_final, finished };
  LoginAction ask_for_md5();
  LoginAction ask_for_sasl();
  LoginAction on_md5_response(protocol::Bytes body);
  LoginAction on_sasl_initial_response(protocol::Bytes body);
  LoginAction on_sasl_response(protocol::Bytes body);
  LoginAction authenticated(std::string reply);
  LoginAction refuse(const char* sqlstate, std::string message);
  LoginAction password_failed();  // 28P01, as Postgres words it

  Inputs in_;
  Step step_ = Step::not_started;
  bool unknown_user_ = false;  // no secrets: run the exchange, then fail like a wrong password
  uint8_t md5_salt_[4]{};
  std::unique_ptr<protocol::scram::ServerExchange> scram_;
};

}  // namespace pgs::proxy
