// Password authentication on OpenSSL: SCRAM-SHA-256 (RFC 5802 + RFC 7677) for both sides, and md5.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "protocol/result.h"

namespace pgs::protocol {

// MD5 can be unavailable (OpenSSL refuses it under a FIPS provider). Every server-side use fails
// closed then: no stored hash, no expected response, no login by md5.

// "md5" + hex(md5(hex(md5(password + user)) + salt)): what a client sends for AuthenticationMD5.
// "" when MD5 is unavailable (the server then refuses the login).
std::string md5_password_response(std::string_view user, std::string_view password,
                                  const uint8_t salt[4]);
// "md5" + hex(md5(password + user)): the form pg_authid stores; md5_response_from_hash uses it.
// Errc::unavailable without MD5.
Result<std::string> md5_stored_hash(std::string_view user, std::string_view password);
// The response a client must send for `stored_hash` ("md5" + 32 hex digits) and `salt`.
// Errc::unavailable without MD5; Errc::malformed when stored_hash is not of that form.
Result<std::string> md5_response_from_hash(std::string_view stored_hash, const uint8_t salt[4]);
// Server side: does a client's PasswordMessage answer AuthenticationMD5(salt) for this stored
// hash? Compared in constant time; false whenever the expected response cannot be computed.
bool md5_verify(std::string_view stored_hash, const uint8_t salt[4], std::string_view client_response);
// The comparison md5_verify makes, given the expected response as computed (or not): true only for
// an expected value of the right shape ("md5" + 32 hex digits) equal to the client's response.
bool md5_response_matches(const Result<std::string>& expected, std::string_view client_response);

namespace scram {

// A hostile or misconfigured server must not make a login burn minutes of CPU on a worker thread:
// ClientExchange refuses server-first-messages asking for more PBKDF2 iterations than this.
inline constexpr int kMaxClientIterations = 10'000'000;

// Salt length of the verifiers the proxy makes (as Postgres's SCRAM_DEFAULT_SALT_LEN), and the
// default iteration count (Postgres's scram_iterations default).
inline constexpr size_t kSaltBytes = 16;
inline constexpr int kDefaultIterations = 4096;

// A stored verifier: SCRAM-SHA-256$<iter>:<base64 salt>$<base64 StoredKey>:<base64 ServerKey>.
struct Verifier {
  int iterations = kDefaultIterations;
  std::string salt;  // raw bytes
  std::array<uint8_t, 32> stored_key{};
  std::array<uint8_t, 32> server_key{};

  static Result<Verifier> parse(std::string_view text);
  static Verifier from_password(std::string_view password, std::string_view salt, int iterations);
  // kSaltBytes bytes of HMAC-SHA-256(key, "salt" NUL name): a salt that is stable for one name under
  // one key (a per-process secret) and unrelated between names.
  static std::string derived_salt(std::string_view key, std::string_view name);
  // A verifier for a name that has none (an unknown user), so that its exchange looks like a real
  // one: derived_salt(key, name), the given iteration count, and keys derived from (key, name) that
  // no password is known to produce, so every proof fails. No PBKDF2: as cheap as a stored verifier.
  static Verifier decoy(std::string_view key, std::string_view name, int iterations);
  std::string to_string() const;
};

// SCRAM pass-through (as PgBouncer does it): what a client proved it knows, kept so that the proxy can log
// in to a server as that user without the password. ClientKey = HMAC(SaltedPassword, "Client Key") is
// recovered from a client's proof (ServerExchange::client_keys); with it and the verifier's ServerKey the
// proxy can answer a server whose stored verifier is the same one (same salt and iteration count). A
// secret as strong as the password for this verifier: kept in memory only, never logged.
struct ClientKeys {
  std::array<uint8_t, 32> client_key{};
  std::array<uint8_t, 32> server_key{};
  std::string salt;  // raw bytes: the server's server-first-message must carry the same ones
  int iterations = 0;
};

// Server side (the proxy authenticating a client). One exchange per login.
class ServerExchange {
 public:
  // nonce: random printable characters (no ','), supplied by the caller so tests are repeatable.
  // channel_binding: over TLS, the tls-server-end-point data (the hash of the server's certificate,
  // RFC 5929), and the server then offers SCRAM-SHA-256-PLUS; "" without TLS. `plus`: the client chose
  // SCRAM-SHA-256-PLUS (then binding is required and checked).
  ServerExchange(Verifier verifier, std::string server_nonce, std::string channel_binding = {}, bool plus = false);
  // client-first-message (the SASLInitialResponse data) -> server-first-message.
  Result<std::string> on_client_first(std::string_view client_first);
  // client-final-message -> server-final-message ("v=..."); Errc::auth_failed on a wrong proof.
  // The proof is compared in constant time.
  // Errors: Errc::unsupported for channel binding the exchange cannot do ("p=..." without PLUS, a
  // binding type other than tls-server-end-point, "y" from a client that saw PLUS offered: a downgrade),
  // an authzid or a mandatory extension; Errc::malformed for bad syntax, a binding or nonce that does
  // not match, or a call out of order.
  Result<std::string> on_client_final(std::string_view client_final);
  // After on_client_final accepted the proof: the client's keys (its ClientKey, recovered as
  // proof XOR HMAC(StoredKey, AuthMessage), and the verifier's ServerKey, salt and iterations).
  // nullopt before that and after a failure.
  const std::optional<ClientKeys>& client_keys() const { return client_keys_; }

 private:
  enum class Step : uint8_t { client_first, client_final, done };
  Verifier verifier_;
  std::optional<ClientKeys> client_keys_;
  std::string server_nonce_;
  std::string client_first_bare_;
  std::string server_first_;
  std::string combined_nonce_;
  std::string channel_binding_;  // tls-server-end-point data; "" without TLS
  bool plus_ = false;
  std::string gs2_header_;  // "n,,", "y,," or "p=tls-server-end-point,,": "c=" carries it back (with the
                            // binding data after it for PLUS)
  Step step_ = Step::client_first;
};

// Client side (the proxy logging in to a server).
class ClientExchange {
 public:
  // client_nonce: printable characters without ','. `user` goes into "n=" (escaped as RFC 5802
  // saslname); Postgres ignores it and libpq leaves it empty, which is the default.
  // channel_binding: tls-server-end-point data to bind to (SCRAM-SHA-256-PLUS: the caller names that
  // mechanism); "" for none.
  ClientExchange(std::string password, std::string client_nonce, std::string_view user = {},
                 std::string channel_binding = {});
  // Pass-through: no password, a client's keys (see ClientKeys). The server's salt and iteration count
  // must be the keys' (else on_server_first fails with Errc::mismatch); the proof is
  // ClientKey XOR HMAC(H(ClientKey), AuthMessage) and the server's signature is checked with ServerKey.
  ClientExchange(const ClientKeys& keys, std::string client_nonce, std::string_view user = {},
                 std::string channel_binding = {});
  std::string client_first() const;  // "n,,n=<user>,r=<nonce>" ("p=tls-server-end-point,,..." with binding)
  // server-first-message -> client-final-message.
  Result<std::string> on_server_first(std::string_view server_first);
  // Checks the server signature in server-final-message. Errc::auth_failed for a wrong
  // signature or a server error ("e=..."); Errc::malformed for bad syntax or a call out of order.
  Result<Unit> on_server_final(std::string_view server_final);
  // True once on_server_final() verified the server's signature: the server proved it knows the password.
  bool server_verified() const { return server_verified_; }

 private:
  enum class Step : uint8_t { server_first, server_final, done };
  std::string password_;
  std::optional<ClientKeys> keys_;  // pass-through instead of password_
  std::string gs2_header_;          // "n,," or "p=tls-server-end-point,,"
  std::string channel_binding_attr_;  // "c=" + base64(gs2 header + binding data)
  std::string client_nonce_;
  std::string client_first_bare_;
  std::string auth_message_;
  std::array<uint8_t, 32> server_key_{};
  Step step_ = Step::server_first;
  bool server_verified_ = false;
};

// Random printable nonce (base64 of 18 random bytes) from OpenSSL's RAND_bytes.
std::string random_nonce();

}  // namespace scram
}  // namespace pgs::protocol
