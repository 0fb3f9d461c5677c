// SCRAM-SHA-256 stored verifiers (the format of pg_authid.rolpassword) and nonces.
#include <openssl/rand.h>

#include <charconv>
#include <cstdio>
#include <cstdlib>

#include "protocol/auth.h"
#include "protocol/base64.h"
#include "protocol/crypto.h"

namespace pgs::protocol::scram {

namespace {

constexpr std::string_view kPrefix = "SCRAM-SHA-256$";

bool parse_positive_int(std::string_view s, int& out) {
  if (s.empty() || s.front() == '+' || s.front() == '-') return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size() && out > 0;
}

bool decode_key(std::string_view b64, std::array<uint8_t, 32>& out) {
  auto raw = base64_decode(b64);
  if (!raw || raw->size() != out.size()) return false;
  for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<uint8_t>((*raw)[i]);
  return true;
}

}  // namespace

// SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>, base64 throughout.
Result<Verifier> Verifier::parse(std::string_view text) {
  const Error bad = make_error(Errc::malformed, "not a SCRAM-SHA-256 verifier");
  if (!text.starts_with(kPrefix)) return bad;
  text.remove_prefix(kPrefix.size());
  const size_t colon1 = text.find(':');
  const size_t dollar = text.find('$');
  if (colon1 == std::string_view::npos || dollar == std::string_view::npos || dollar < colon1) return bad;
  const size_t colon2 = text.find(':', dollar);
  if (colon2 == std::string_view::npos) return bad;
  Verifier v;
  if (!parse_positive_int(text.substr(0, colon1), v.iterations)) return bad;
  auto salt = base64_decode(text.substr(colon1 + 1, dollar - colon1 - 1));
  if (!salt || salt->empty()) return bad;
  v.salt = std::move(*salt);
  if (!decode_key(text.substr(dollar + 1, colon2 - dollar - 1), v.stored_key)) return bad;
  if (!decode_key(text.substr(colon2 + 1), v.server_key)) return bad;
  return v;
}

// RFC 5802 section 3: SaltedPassword = Hi(password, salt, i); ClientKey = HMAC(SaltedPassword,
// "Client Key"); StoredKey = H(ClientKey); ServerKey = HMAC(SaltedPassword, "Server Key").
// SASLprep is not applied: for ASCII passwords it is the identity (Postgres falls back to the raw
// bytes whenever SASLprep would reject the password), so non-ASCII passwords may differ.
// An iteration count below 1 is taken as 1 (PBKDF2 is undefined for 0).
Verifier Verifier::from_password(std::string_view password, std::string_view salt, int iterations) {
  Verifier v;
  v.iterations = iterations < 1 ? 1 : iterations;
  v.salt = std::string(salt);
  const crypto::Digest32 salted = crypto::pbkdf2_sha256(password, salt, v.iterations);
  const crypto::Digest32 client_key = crypto::hmac_sha256(crypto::view(salted), "Client Key");
  v.stored_key = crypto::sha256(crypto::view(client_key));
  v.server_key = crypto::hmac_sha256(crypto::view(salted), "Server Key");
  return v;
}

std::string Verifier::derived_salt(std::string_view key, std::string_view name) {
  std::string input("salt");
  input.push_back('\0');
  input.append(name);
  const crypto::Digest32 mac = crypto::hmac_sha256(key, input);
  return std::string(crypto::view(mac).substr(0, kSaltBytes));
}

Verifier Verifier::decoy(std::string_view key, std::string_view name, int iterations) {
  Verifier v;
  v.iterations = iterations < 1 ? 1 : iterations;
  v.salt = derived_salt(key, name);
  std::string input("keys");
  input.push_back('\0');
  input.append(name);
  const crypto::Digest32 seed = crypto::hmac_sha256(key, input);
  v.stored_key = crypto::hmac_sha256(crypto::view(seed), "Stored Key");
  v.server_key = crypto::hmac_sha256(crypto::view(seed), "Server Key");
  return v;
}

std::string Verifier::to_string() const {
  return std::string(kPrefix) + std::to_string(iterations) + ":" + base64_encode(salt) + "$" +
         base64_encode(stored_key) + ":" + base64_encode(server_key);
}

std::string random_nonce() {
  uint8_t raw[18];
  // Without a working CSPRNG no login can be made safe: stop rather than reuse a nonce.
  if (RAND_bytes(raw, sizeof raw) != 1) {
    std::fprintf(stderr, "pgsidecar: RAND_bytes failed\n");
    std::abort();
  }
  return base64_encode(std::span<const uint8_t>(raw, sizeof raw));
}

}  // namespace pgs::protocol::scram
