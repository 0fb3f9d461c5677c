// Password authentication on OpenSSL: SCRAM-SHA-256 (RFC 5802 + RFC 7677) for both sides, and md5.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "protocol/result.h"

namespace pgs::protocol {

// "md5" + hex(md5(hex(md5(password + user)) + salt)): what a client sends for AuthenticationMD5.
std::string md5_password_response(std::string_view user, std::string_view password,
                                  const uint8_t salt[4]);
// "md5" + hex(md5(password + user)): the form pg_authid stores; md5_response_from_hash uses it.
std::string md5_stored_hash(std::string_view user, std::string_view password);
std::string md5_response_from_hash(std::string_view stored_hash, const uint8_t salt[4]);
// Server side: does a client's PasswordMessage answer AuthenticationMD5(salt) for this stored
// hash? Compared in constant time.
bool md5_verify(std::string_view stored_hash, const uint8_t salt[4], std::string_view client_response);

namespace scram {

// A hostile or misconfigured server must not make a login burn minutes of CPU on a worker thread:
// ClientExchange refuses server-first-messages asking for more PBKDF2 iterations than this.
inline constexpr int kMaxClientIterations = 10'000'000;

// A stored verifier: SCRAM-SHA-256$<iter>:<base64 salt>$<base64 StoredKey>:<base64 ServerKey>.
struct Verifier {
  int iterations = 4096;
  std::string salt;  // raw bytes
  std::array<uint8_t, 32> stored_key{};
  std::array<uint8_t, 32> server_key{};

  static Result<Verifier> parse(std::string_view text);
  static Verifier from_password(std::string_view password, std::string_view salt, int iterations);
  std::string to_string() const;
};

// Server side (the proxy authenticating a client). One exchange per login.
class ServerExchange {
 public:
  // nonce: random printable characters (no ','), supplied by the caller so tests are repeatable.
  ServerExchange(Verifier verifier, std::string server_nonce);
  // client-first-message (the SASLInitialResponse data) -> server-first-message.
  Result<std::string> on_client_first(std::string_view client_first);
  // client-final-message -> server-final-message ("v=..."); Errc::auth_failed on a wrong proof.
  // The proof is compared in constant time.
  // Errors: Errc::unsupported for channel binding ("p=..."), an authzid or a mandatory extension;
  // Errc::malformed for bad syntax, a nonce that does not match, or a call out of order.
  Result<std::string> on_client_final(std::string_view client_final);

 private:
  enum class Step : uint8_t { client_first, client_final, done };
  Verifier verifier_;
  std::string server_nonce_;
  std::string client_first_bare_;
  std::string server_first_;
  std::string combined_nonce_;
  std::string gs2_header_;  // "n,," or "y,,": the client-final "c=" must carry it back
  Step step_ = Step::client_first;
};

// Client side (the proxy logging in to a server).
class ClientExchange {
 public:
  // client_nonce: printable characters without ','. `user` goes into "n=" (escaped as RFC 5802
  // saslname); Postgres ignores it and libpq leaves it empty, which is the default.
  ClientExchange(std::string password, std::string client_nonce, std::string_view user = {});
  std::string client_first() const;  // "n,,n=<user>,r=<nonce>"
  // server-first-message -> client-final-message.
  Result<std::string> on_server_first(std::string_view server_first);
  // Checks the server signature in server-final-message. Errc::auth_failed for a wrong
  // signature or a server error ("e=..."); Errc::malformed for bad syntax or a call out of order.
  Result<Unit> on_server_final(std::string_view server_final);

 private:
  enum class Step : uint8_t { server_first, server_final, done };
  std::string password_;
  std::string client_nonce_;
  std::string client_first_bare_;
  std::string auth_message_;
  std::array<uint8_t, 32> server_key_{};
  Step step_ = Step::server_first;
};

// Random printable nonce (base64 of 18 random bytes) from OpenSSL's RAND_bytes.
std::string random_nonce();

}  // namespace scram
}  // namespace pgs::protocol
