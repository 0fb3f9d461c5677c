// The client side of a server login as pure rules (protocol/server_login.h): the SSLRequest, its
// answer, and which authentication requests the proxy answers (issue 13, item 2).
#include "protocol/server_login.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "protocol/auth.h"

namespace pgs::protocol {
namespace {

std::span<const uint8_t> bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

TEST(ServerLogin, SslRequestIsEightBytes) {
  std::string out;
  write_ssl_request(out);
  EXPECT_EQ(out, std::string("\x00\x00\x00\x08\x04\xd2\x16\x2f", 8));
}

TEST(ServerLogin, SslAnswers) {
  EXPECT_EQ(read_ssl_answer(bytes("")), SslAnswer::need_more);
  EXPECT_EQ(read_ssl_answer(bytes("S")), SslAnswer::tls);
  EXPECT_EQ(read_ssl_answer(bytes("N")), SslAnswer::plaintext);
  EXPECT_EQ(read_ssl_answer(bytes("NR")), SslAnswer::plaintext);  // the plaintext login follows 'N'
  EXPECT_EQ(read_ssl_answer(bytes("E")), SslAnswer::error);
  EXPECT_EQ(read_ssl_answer(bytes("X")), SslAnswer::invalid);
  // Bytes after 'S' came before the handshake, unencrypted: refused (CVE-2021-23222).
  EXPECT_EQ(read_ssl_answer(bytes("SR")), SslAnswer::invalid);
}

struct AuthCase {
  int32_t code;
  ScramProgress scram;
  bool allow_cleartext;
  bool refused;
};

TEST(ServerLogin, WhichAuthenticationRequestsAreAnswered) {
  using enum ScramProgress;
  const std::vector<AuthCase> cases = {
      {0, none, false, false},      // trust, md5 or cleartext done: Ok
      {0, verified, false, false},  // SCRAM with the server's signature checked: Ok
      {0, started, false, true},    // Ok before the SASLFinal: the server proved nothing
      {3, none, false, true},       // cleartext password: refused by default
      {3, none, true, false},       // ... unless allowed
      {5, none, false, false},      // md5
      {10, none, false, false},     // SASL
      {10, started, false, true},   // a second SASL
      {11, started, false, false},  // SASLContinue inside the exchange
      {11, none, false, true},      // ... outside it
      {12, started, false, false},  // SASLFinal inside the exchange
      {12, verified, false, true},  // a second SASLFinal
  };
  for (const auto& c : cases) {
    auto why = refuse_server_auth(c.code, c.scram, ServerAuthPolicy{c.allow_cleartext});
    EXPECT_EQ(!why.empty(), c.refused) << "code " << c.code << " scram " << static_cast<int>(c.scram)
                                       << " allow_cleartext " << c.allow_cleartext << ": " << why;
  }
}

TEST(ServerLogin, ScramClientIsVerifiedOnlyByAGoodSignature) {
  scram::Verifier v = scram::Verifier::from_password("s3cret", "0123456789abcdef", 4096);
  for (bool forged : {false, true}) {
    scram::ServerExchange server(v, scram::random_nonce());
    scram::ClientExchange client("s3cret", scram::random_nonce());
    auto first = server.on_client_first(client.client_first());
    ASSERT_TRUE(first.ok());
    auto final_msg = client.on_server_first(*first);
    ASSERT_TRUE(final_msg.ok());
    EXPECT_FALSE(client.server_verified());  // started, not verified: an Ok now is refused
    auto server_final = server.on_client_final(*final_msg);
    ASSERT_TRUE(server_final.ok());
    std::string reply = forged ? "v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" : *server_final;
    EXPECT_EQ(client.on_server_final(reply).ok(), !forged);
    EXPECT_EQ(client.server_verified(), !forged);
  }
}

}  // namespace
}  // namespace pgs::protocol
