// SCRAM-SHA-256 server side (RFC 5802 section 5, as Postgres's auth-scram.c applies it):
// the proxy authenticating a client against a stored verifier.
#include "protocol/auth.h"
#include "protocol/base64.h"
#include "protocol/crypto.h"
#include "protocol/decode_util.h"
#include "protocol/scram_attr.h"

namespace pgs::protocol::scram {

namespace {

constexpr std::string_view kPlusHeader = "p=tls-server-end-point,";

// gs2-header: "n,," (no channel binding), "y,," (client could bind, thinks we cannot), or
// "p=tls-server-end-point,," (binding, with SCRAM-SHA-256-PLUS only). As in Postgres's auth-scram.c:
// "p" without PLUS, PLUS without "p", and "y" when PLUS was offered (someone removed it on the way) are
// refused, and so is an authzid "a=...". Returns the header's length.
Result<size_t> read_gs2_header(std::string_view msg, bool offered_plus, bool plus) {
  if (plus) {
    if (!msg.starts_with("p=")) return make_error(Errc::unsupported, "SCRAM-SHA-256-PLUS without channel binding");
    if (!msg.starts_with(kPlusHeader)) return make_error(Errc::unsupported, "unsupported SCRAM channel binding type");
    size_t at = kPlusHeader.size();
    if (msg.size() > at && msg[at] == 'a') return make_error(Errc::unsupported, "SCRAM authzid not supported");
    if (msg.size() <= at || msg[at] != ',') return make_error(Errc::malformed, "bad SCRAM gs2 header");
    return at + 1;
  }
  if (msg.starts_with("p=")) return make_error(Errc::unsupported, "SCRAM channel binding requested without PLUS");
  if (msg.starts_with("y,") && offered_plus) {
    return make_error(Errc::unsupported, "SCRAM channel binding negotiation error: the client thinks the server "
                                         "offered no channel binding");
  }
  if (!msg.starts_with("n,") && !msg.starts_with("y,")) {
    return make_error(Errc::malformed, "bad SCRAM gs2 header");
  }
  if (msg.size() > 2 && msg[2] == 'a') return make_error(Errc::unsupported, "SCRAM authzid not supported");
  if (msg.size() < 3 || msg[2] != ',') return make_error(Errc::malformed, "bad SCRAM gs2 header");
  return size_t{3};
}

}  // namespace

ServerExchange::ServerExchange(Verifier verifier, std::string server_nonce, std::string channel_binding, bool plus)
    : verifier_(std::move(verifier)),
      server_nonce_(std::move(server_nonce)),
      channel_binding_(std::move(channel_binding)),
      plus_(plus && !channel_binding_.empty()) {
  if (plus && channel_binding_.empty()) step_ = Step::done;  // PLUS without TLS: every message fails
}

// client-first-message = gs2-header client-first-bare; client-first-bare = [m=ext,] n=user,r=nonce
// [,extensions]. The user name is ignored: the startup packet's "user" is the role (as in Postgres).
Result<std::string> ServerExchange::on_client_first(std::string_view client_first) {
  if (step_ != Step::client_first) return make_error(Errc::malformed, "SCRAM message out of order");
  step_ = Step::done;  // any failure ends the exchange
  PGS_TRY(gs2_len, read_gs2_header(client_first, !channel_binding_.empty(), plus_));
  gs2_header_ = std::string(client_first.substr(0, *gs2_len));
  std::string_view bare = client_first.substr(*gs2_len);
  AttrReader attrs(bare);
  if (attrs.peek() == 'm') return make_error(Errc::unsupported, "SCRAM mandatory extension");
  PGS_TRY(user, attrs.expect('n'));
  PGS_TRY(nonce, attrs.expect('r'));
  if (!is_valid_nonce(*nonce)) return make_error(Errc::malformed, "bad SCRAM client nonce");
  while (!attrs.at_end()) {
    PGS_TRY(ext, attrs.any_value());
  }
  client_first_bare_ = std::string(bare);
  combined_nonce_ = std::string(*nonce) + server_nonce_;
  server_first_ = "r=" + combined_nonce_ + ",s=" + base64_encode(verifier_.salt) +
                  ",i=" + std::to_string(verifier_.iterations);
  step_ = Step::client_final;
  return server_first_;
}

// client-final-message = c=<base64 gs2 header>,r=<combined nonce>[,extensions],p=<base64 proof>.
// ClientKey = proof XOR HMAC(StoredKey, AuthMessage); the client knows the password iff
// H(ClientKey) == StoredKey.
Result<std::string> ServerExchange::on_client_final(std::string_view client_final) {
  if (step_ != Step::client_final) return make_error(Errc::malformed, "SCRAM message out of order");
  step_ = Step::done;
  AttrReader attrs(client_final);
  PGS_TRY(cbind, attrs.expect('c'));
  auto cbind_raw = base64_decode(*cbind);
  const std::string expected = plus_ ? gs2_header_ + channel_binding_ : gs2_header_;
  if (!cbind_raw || !crypto::equal_constant_time(*cbind_raw, expected)) {
    return make_error(Errc::malformed, "SCRAM channel binding does not match");
  }
  PGS_TRY(nonce, attrs.expect('r'));
  if (*nonce != combined_nonce_) return make_error(Errc::malformed, "SCRAM nonce does not match");
  while (attrs.peek() != 'p') {
    PGS_TRY(ext, attrs.any_value());
  }
  const size_t proof_at = client_final.size() - attrs.rest().size();
  PGS_TRY(proof_b64, attrs.expect('p'));
  if (!attrs.at_end()) return make_error(Errc::malformed, "garbage after SCRAM proof");
  auto proof = base64_decode(*proof_b64);
  if (!proof || proof->size() != 32) return make_error(Errc::malformed, "bad SCRAM proof");

  // proof_at points at "p=": the message without ",p=..." is everything before its comma.
  const std::string auth_message = client_first_bare_ + "," + server_first_ + "," +
                                   std::string(client_final.substr(0, proof_at - 1));
  const crypto::Digest32 signature =
      crypto::hmac_sha256(crypto::view(verifier_.stored_key), auth_message);
  crypto::Digest32 client_key{};
  for (size_t i = 0; i < client_key.size(); ++i) {
    client_key[i] = static_cast<uint8_t>((*proof)[i]) ^ signature[i];
  }
  const crypto::Digest32 stored = crypto::sha256(crypto::view(client_key));
  if (!crypto::equal_constant_time(crypto::view(stored), crypto::view(verifier_.stored_key))) {
    return make_error(Errc::auth_failed, "password authentication failed");
  }
  const crypto::Digest32 server_signature =
      crypto::hmac_sha256(crypto::view(verifier_.server_key), auth_message);
  client_keys_ = ClientKeys{client_key, verifier_.server_key, verifier_.salt, verifier_.iterations};
  return "v=" + base64_encode(server_signature);
}

}  // namespace pgs::protocol::scram
