// SCRAM-SHA-256 client side (RFC 5802 section 3, as libpq's fe-auth-scram.c applies it):
// the proxy logging in to a server with a cleartext password, or with a client's keys (pass-through).
#include <charconv>

#include "protocol/auth.h"
#include "protocol/base64.h"
#include "protocol/crypto.h"
#include "protocol/decode_util.h"
#include "protocol/scram_attr.h"

namespace pgs::protocol::scram {

namespace {


Result<int> parse_iterations(std::string_view s) {
  int out = 0;
  if (s.empty() || s.front() == '+' || s.front() == '-') return make_error(Errc::malformed, "SCRAM i=");
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  if (ec != std::errc() || end != s.data() + s.size() || out < 1) {
    return make_error(Errc::malformed, "SCRAM iteration count");
  }
  if (out > kMaxClientIterations) return make_error(Errc::unsupported, "SCRAM iteration count too large");
  return out;
}

// RFC 5802 saslname: ',' and '=' are written as "=2C" and "=3D".
std::string escape_saslname(std::string_view user) {
  std::string out;
  for (char c : user) {
    if (c == ',') {
      out += "=2C";
    } else if (c == '=') {
      out += "=3D";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

ClientExchange::ClientExchange(std::string password, std::string client_nonce, std::string_view user,
                               std::string channel_binding)
    : password_(std::move(password)),
      gs2_header_(channel_binding.empty() ? "n,," : "p=tls-server-end-point,,"),
      channel_binding_attr_("c=" + base64_encode(gs2_header_ + channel_binding)),
      client_nonce_(std::move(client_nonce)),
      client_first_bare_("n=" + escape_saslname(user) + ",r=" + client_nonce_) {}

ClientExchange::ClientExchange(const ClientKeys& keys, std::string client_nonce, std::string_view user,
                               std::string channel_binding)
    : ClientExchange(std::string(), std::move(client_nonce), user, std::move(channel_binding)) {
  keys_ = keys;
}

std::string ClientExchange::client_first() const { return gs2_header_ + client_first_bare_; }

// server-first-message = r=<client nonce + server nonce>,s=<salt>,i=<iterations>; nothing else
// is accepted (libpq's "garbage at end of server-first-message").
Result<std::string> ClientExchange::on_server_first(std::string_view server_first) {
  if (step_ != Step::server_first) return make_error(Errc::malformed, "SCRAM message out of order");
  step_ = Step::done;
  AttrReader attrs(server_first);
  if (attrs.peek() == 'm') return make_error(Errc::unsupported, "SCRAM mandatory extension");
  PGS_TRY(nonce, attrs.expect('r'));
  if (!is_valid_nonce(*nonce) || nonce->size() <= client_nonce_.size() ||
      !nonce->starts_with(client_nonce_)) {
    return make_error(Errc::malformed, "SCRAM server nonce does not extend ours");
  }
  PGS_TRY(salt_b64, attrs.expect('s'));
  auto salt = base64_decode(*salt_b64);
  if (!salt || salt->empty()) return make_error(Errc::malformed, "bad SCRAM salt");
  PGS_TRY(iter_text, attrs.expect('i'));
  PGS_TRY(iterations, parse_iterations(*iter_text));
  if (!attrs.at_end()) return make_error(Errc::malformed, "garbage after SCRAM server-first");

  crypto::Digest32 client_key{};
  if (keys_) {
    // Pass-through: the keys hold for the verifier they were proved against, and for no other.
    if (*salt != keys_->salt || *iterations != keys_->iterations) {
      return make_error(Errc::mismatch, "the server's SCRAM salt or iteration count is not the verifier's");
    }
    client_key = keys_->client_key;
    server_key_ = keys_->server_key;
  } else {
    const crypto::Digest32 salted = crypto::pbkdf2_sha256(password_, *salt, *iterations);
    client_key = crypto::hmac_sha256(crypto::view(salted), "Client Key");
    server_key_ = crypto::hmac_sha256(crypto::view(salted), "Server Key");
  }
  const crypto::Digest32 stored_key = crypto::sha256(crypto::view(client_key));

  const std::string without_proof = channel_binding_attr_ + ",r=" + std::string(*nonce);
  auth_message_ = client_first_bare_ + "," + std::string(server_first) + "," +
                  without_proof;
  const crypto::Digest32 signature = crypto::hmac_sha256(crypto::view(stored_key), auth_message_);
  crypto::Digest32 proof{};
  for (size_t i = 0; i < proof.size(); ++i) proof[i] = client_key[i] ^ signature[i];
  step_ = Step::server_final;
  return without_proof + ",p=" + base64_encode(proof);
}

// server-final-message = v=<base64 ServerSignature> | e=<server error>.
Result<Unit> ClientExchange::on_server_final(std::string_view server_final) {
  if (step_ != Step::server_final) return make_error(Errc::malformed, "SCRAM message out of order");
  step_ = Step::done;
  AttrReader attrs(server_final);
  if (attrs.peek() == 'e') return make_error(Errc::auth_failed, "server rejected SCRAM proof");
  PGS_TRY(verifier_b64, attrs.expect('v'));
  if (!attrs.at_end()) return make_error(Errc::malformed, "garbage after SCRAM server-final");
  auto signature = base64_decode(*verifier_b64);
  const crypto::Digest32 expected = crypto::hmac_sha256(crypto::view(server_key_), auth_message_);
  if (!signature || !crypto::equal_constant_time(*signature, crypto::view(expected))) {
    return make_error(Errc::auth_failed, "server signature does not match");
  }
  server_verified_ = true;
  return Unit{};
}

}  // namespace pgs::protocol::scram
