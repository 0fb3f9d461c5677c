// SCRAM pass-through (as PgBouncer does it): the proxy authenticates a client against a stored verifier,
// recovers the client's ClientKey from its proof, and logs in to the server with that key and the
// verifier's ServerKey, knowing no password.
#include "protocol/auth.h"
#include "protocol/base64.h"
#include "protocol/crypto.h"

#include <gtest/gtest.h>

namespace pgs::protocol {
namespace {

using scram::ClientExchange;
using scram::ClientKeys;
using scram::ServerExchange;
using scram::Verifier;

// One full exchange of a password client against `server`; the server's answer to the client-final.
Result<std::string> run(ServerExchange& server, ClientExchange& client) {
  auto first = server.on_client_first(client.client_first());
  if (!first.ok()) return first.error();
  auto final_msg = client.on_server_first(*first);
  if (!final_msg.ok()) return final_msg.error();
  auto server_final = server.on_client_final(*final_msg);
  if (!server_final.ok()) return server_final.error();
  auto checked = client.on_server_final(*server_final);
  if (!checked.ok()) return checked.error();
  return server_final;
}

ClientKeys keys_from(const std::string& password, const Verifier& v) {
  ServerExchange server(v, scram::random_nonce());
  ClientExchange client(password, scram::random_nonce());
  EXPECT_TRUE(run(server, client).ok());
  EXPECT_TRUE(server.client_keys().has_value());
  return server.client_keys().value_or(ClientKeys{});
}

TEST(ScramPassThrough, TheClientKeyIsRecoveredFromAGoodProof) {
  const Verifier v = Verifier::from_password("s3cret", "0123456789abcdef", 4096);
  const ClientKeys keys = keys_from("s3cret", v);
  // H(ClientKey) is the StoredKey; ClientKey itself is HMAC(SaltedPassword, "Client Key").
  const crypto::Digest32 salted = crypto::pbkdf2_sha256("s3cret", "0123456789abcdef", 4096);
  EXPECT_EQ(keys.client_key, crypto::hmac_sha256(crypto::view(salted), "Client Key"));
  EXPECT_EQ(keys.server_key, v.server_key);
  EXPECT_EQ(keys.salt, v.salt);
  EXPECT_EQ(keys.iterations, 4096);
}

TEST(ScramPassThrough, NoKeysFromAWrongPasswordOrAnUnfinishedExchange) {
  const Verifier v = Verifier::from_password("s3cret", "0123456789abcdef", 4096);
  ServerExchange server(v, scram::random_nonce());
  ClientExchange client("wrong", scram::random_nonce());
  EXPECT_FALSE(run(server, client).ok());
  EXPECT_FALSE(server.client_keys().has_value());
  ServerExchange fresh(v, scram::random_nonce());
  EXPECT_FALSE(fresh.client_keys().has_value());
}

// The pass-through client's messages are those of a client that knows the password: with the RFC 7677
// nonces, byte for byte the RFC's client-final, and the RFC's server signature verifies.
TEST(ScramPassThrough, KeysProduceTheRfc7677ClientFinal) {
  const std::string salt = *base64_decode("W22ZaJ0SNY7soEsUEjb6gQ==");
  const crypto::Digest32 salted = crypto::pbkdf2_sha256("pencil", salt, 4096);
  ClientKeys keys;
  keys.client_key = crypto::hmac_sha256(crypto::view(salted), "Client Key");
  keys.server_key = crypto::hmac_sha256(crypto::view(salted), "Server Key");
  keys.salt = salt;
  keys.iterations = 4096;
  ClientExchange client(keys, "rOprNGfwEbeRWgbNEkqO", "user");
  EXPECT_EQ(client.client_first(), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
  auto final_msg = client.on_server_first(
      "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096");
  ASSERT_TRUE(final_msg.ok()) << final_msg.error().detail;
  EXPECT_EQ(*final_msg,
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
            "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
  EXPECT_TRUE(client.on_server_final("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=").ok());
}

TEST(ScramPassThrough, RecoveredKeysLogInToAServerWithTheSameVerifier) {
  const Verifier v = Verifier::from_password("s3cret", "0123456789abcdef", 4096);
  const ClientKeys keys = keys_from("s3cret", v);
  ServerExchange server(v, scram::random_nonce());
  ClientExchange proxy(keys, scram::random_nonce());
  EXPECT_TRUE(run(server, proxy).ok());
}

// Channel binding on the client's leg (SCRAM-SHA-256-PLUS): its c= value is part of the AuthMessage the
// proof was made over, and the key is recovered all the same.
TEST(ScramPassThrough, KeysAreRecoveredUnderChannelBinding) {
  const Verifier v = Verifier::from_password("s3cret", "0123456789abcdef", 4096);
  const std::string end_point(32, '\x5a');
  ServerExchange server(v, scram::random_nonce(), end_point, true);
  ClientExchange client("s3cret", scram::random_nonce(), {}, end_point);
  ASSERT_TRUE(run(server, client).ok());
  ASSERT_TRUE(server.client_keys().has_value());
  ServerExchange upstream(v, scram::random_nonce());
  ClientExchange proxy(*server.client_keys(), scram::random_nonce());
  EXPECT_TRUE(run(upstream, proxy).ok());
}

// The server's secret is another one (the password changed there, or another verifier): its salt or
// iteration count differs, and the proxy says so instead of sending a proof that must fail.
TEST(ScramPassThrough, AServerWithAnotherSecretIsAMismatch) {
  const Verifier v = Verifier::from_password("s3cret", "0123456789abcdef", 4096);
  const ClientKeys keys = keys_from("s3cret", v);
  for (const Verifier& other : {Verifier::from_password("s3cret", "fedcba9876543210", 4096),
                                Verifier::from_password("s3cret", "0123456789abcdef", 8192)}) {
    ServerExchange server(other, scram::random_nonce());
    ClientExchange proxy(keys, scram::random_nonce());
    auto first = server.on_client_first(proxy.client_first());
    ASSERT_TRUE(first.ok());
    auto final_msg = proxy.on_server_first(*first);
    ASSERT_FALSE(final_msg.ok());
    EXPECT_EQ(final_msg.error().code, Errc::mismatch);
  }
}

TEST(ScramPassThrough, AForgedServerSignatureIsRefused) {
  const Verifier v = Verifier::from_password("s3cret", "0123456789abcdef", 4096);
  const ClientKeys keys = keys_from("s3cret", v);
  ServerExchange server(v, scram::random_nonce());
  ClientExchange proxy(keys, scram::random_nonce());
  auto first = server.on_client_first(proxy.client_first());
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(proxy.on_server_first(*first).ok());
  EXPECT_EQ(proxy.on_server_final("v=" + base64_encode(std::string(32, 'x'))).error().code, Errc::auth_failed);
}

}  // namespace
}  // namespace pgs::protocol
