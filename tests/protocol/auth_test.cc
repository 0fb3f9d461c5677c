// md5 and SCRAM-SHA-256 (RFC 5802, RFC 7677) on both sides, checked against external vectors.
#include <openssl/evp.h>

#include "protocol/auth.h"
#include "protocol/base64.h"
#include "tests/protocol/test_util.h"

namespace pgs::protocol {
namespace {

using scram::ClientExchange;
using scram::ServerExchange;
using scram::Verifier;

// Reference values computed with Python's hashlib (an independent implementation):
// "md5" + md5("flopods-dev" + "flopods"), then with the salt 01 02 03 04.
TEST(Md5, StoredHashAndResponse) {
  EXPECT_EQ(md5_stored_hash("flopods", "flopods-dev").value(), "md57a74ae47813429c3a95efbb1fa28373f");
  const uint8_t salt[4] = {1, 2, 3, 4};
  EXPECT_EQ(md5_password_response("flopods", "flopods-dev", salt), "md57e31179cc6e650affbd66a665fe8e988");
  EXPECT_EQ(md5_response_from_hash("md57a74ae47813429c3a95efbb1fa28373f", salt).value(),
            "md57e31179cc6e650affbd66a665fe8e988");
  EXPECT_TRUE(md5_verify("md57a74ae47813429c3a95efbb1fa28373f", salt, "md57e31179cc6e650affbd66a665fe8e988"));
  EXPECT_FALSE(md5_verify("md57a74ae47813429c3a95efbb1fa28373f", salt, "md57e31179cc6e650affbd66a665fe8e989"));
  EXPECT_FALSE(md5_verify("md57a74ae47813429c3a95efbb1fa28373f", salt, ""));
  EXPECT_FALSE(md5_verify("", salt, "md5"));  // a missing stored hash never matches
  EXPECT_FALSE(md5_response_from_hash("md5short", salt).ok());
}

// The comparison behind md5 client auth, given the expected response as computed: before the fix the
// proxy compared the client's response with "md5" + md5_hex(...), which is just "md5" when MD5 is
// unavailable, so a client sending "md5" logged in. Now an expected value that could not be computed,
// or has the wrong shape, never matches anything.
TEST(Md5, ResponseMatchesFailsClosed) {
  const std::string good = "md57e31179cc6e650affbd66a665fe8e988";
  EXPECT_TRUE(md5_response_matches(good, good));
  EXPECT_FALSE(md5_response_matches(good, "md57e31179cc6e650affbd66a665fe8e989"));
  EXPECT_FALSE(md5_response_matches(good, good.substr(0, 34)));
  EXPECT_FALSE(md5_response_matches(make_error(Errc::unavailable, "MD5 is not available"), "md5"));
  EXPECT_FALSE(md5_response_matches(make_error(Errc::unavailable, "MD5 is not available"), ""));
  EXPECT_FALSE(md5_response_matches(std::string("md5"), "md5"));  // what the old code compared against
  EXPECT_FALSE(md5_response_matches(std::string(""), ""));
}

// OpenSSL with FIPS default properties and no FIPS provider refuses MD5 (as a FIPS build does): every
// md5 computation reports it, and no response is accepted, not even the value the old code expected.
TEST(Md5, WithoutMd5NothingMatches) {
  const uint8_t salt[4] = {1, 2, 3, 4};
  const std::string stored = "md57a74ae47813429c3a95efbb1fa28373f";
  ASSERT_EQ(EVP_default_properties_enable_fips(nullptr, 1), 1);
  auto computed = md5_stored_hash("flopods", "flopods-dev");
  auto expected = md5_response_from_hash(stored, salt);
  const bool right_accepted = md5_verify(stored, salt, "md57e31179cc6e650affbd66a665fe8e988");
  const bool bare_accepted = md5_verify(stored, salt, "md5");
  const std::string client_response = md5_password_response("flopods", "flopods-dev", salt);
  ASSERT_EQ(EVP_default_properties_enable_fips(nullptr, 0), 1);
  ASSERT_FALSE(computed.ok()) << "MD5 still available under FIPS properties: " << computed.value();
  EXPECT_EQ(computed.error().code, Errc::unavailable);
  ASSERT_FALSE(expected.ok());
  EXPECT_EQ(expected.error().code, Errc::unavailable);
  EXPECT_FALSE(right_accepted);
  EXPECT_FALSE(bare_accepted);
  EXPECT_EQ(client_response, "");
  EXPECT_TRUE(md5_stored_hash("flopods", "flopods-dev").ok());  // restored
}

TEST(Base64, StrictRoundTrip) {
  for (std::string s : {"", "f", "fo", "foo", "foob", "fooba", "foobar"}) {
    auto back = base64_decode(base64_encode(s));
    ASSERT_TRUE(back.has_value()) << s;
    EXPECT_EQ(*back, s);
  }
  EXPECT_EQ(base64_encode(std::string_view("n,,")), "biws");
  for (std::string_view bad : {"a", "abc", "ab=c", "a===", "====", "Zm9=", "Zg=a", "Zh==", "Zm9v\n", "Zm 9"}) {
    EXPECT_FALSE(base64_decode(bad).has_value()) << bad;
  }
}

// pg_authid.rolpassword of role flopods (password "flopods-dev") read from the dev primary
// (Postgres 15, 127.0.0.1:15432) with
//   psql -U postgres -Atc "select rolpassword from pg_authid where rolname='flopods'".
constexpr std::string_view kPostgresVerifier =
    "SCRAM-SHA-256$4096:bkS/DFUkZl+VVmiMosuLSA==$Fpq472QrSmpiDnKI+dVM/IZS4AvdRj6WZGrDuROCXJs=:"
    "JqjncTHdl2O2XQz9bLdW1XldBbE7fwSRTcqRVQI44v4=";

TEST(ScramVerifier, ReproducesARealPostgresVerifier) {
  auto parsed = Verifier::parse(kPostgresVerifier);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->iterations, 4096);
  EXPECT_EQ(parsed->salt.size(), 16u);
  Verifier mine = Verifier::from_password("flopods-dev", parsed->salt, parsed->iterations);
  EXPECT_EQ(mine.stored_key, parsed->stored_key);
  EXPECT_EQ(mine.server_key, parsed->server_key);
  EXPECT_EQ(mine.to_string(), kPostgresVerifier);
}

TEST(ScramVerifier, RejectsMalformed) {
  const std::string ok(kPostgresVerifier);
  for (std::string bad : {std::string(""), std::string("md5abc"), "SCRAM-SHA-256$0:" + ok.substr(19),
                          "SCRAM-SHA-256$-1:" + ok.substr(19), "SCRAM-SHA-256$x:" + ok.substr(19),
                          ok.substr(0, ok.size() - 4), ok + "AAAA", ok.substr(0, ok.find('$', 14)),
                          "SCRAM-SHA-256$4096:$" + ok.substr(ok.find('$', 14) + 1)}) {
    EXPECT_FALSE(Verifier::parse(bad).ok()) << bad;
  }
}

// RFC 7677 section 3: user "user", password "pencil".
constexpr std::string_view kRfcClientNonce = "rOprNGfwEbeRWgbNEkqO";
constexpr std::string_view kRfcServerNonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
constexpr std::string_view kRfcClientFirst = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
constexpr std::string_view kRfcServerFirst =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
constexpr std::string_view kRfcClientFinal =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
constexpr std::string_view kRfcServerFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

Verifier rfc_verifier() {
  return Verifier::from_password("pencil", *base64_decode("W22ZaJ0SNY7soEsUEjb6gQ=="), 4096);
}

TEST(Scram, Rfc7677ServerSide) {
  ServerExchange server(rfc_verifier(), std::string(kRfcServerNonce));
  auto first = server.on_client_first(kRfcClientFirst);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(*first, kRfcServerFirst);
  auto final_msg = server.on_client_final(kRfcClientFinal);
  ASSERT_TRUE(final_msg.ok()) << final_msg.error().detail;
  EXPECT_EQ(*final_msg, kRfcServerFinal);
}

TEST(Scram, Rfc7677ClientSide) {
  ClientExchange client("pencil", std::string(kRfcClientNonce), "user");
  EXPECT_EQ(client.client_first(), kRfcClientFirst);
  auto final_msg = client.on_server_first(kRfcServerFirst);
  ASSERT_TRUE(final_msg.ok()) << final_msg.error().detail;
  EXPECT_EQ(*final_msg, kRfcClientFinal);
  EXPECT_TRUE(client.on_server_final(kRfcServerFinal).ok());
}

TEST(Scram, ClientAgainstServer) {
  Verifier v = Verifier::from_password("s3cret", "0123456789abcdef", 4096);
  ServerExchange server(v, scram::random_nonce());
  ClientExchange client("s3cret", scram::random_nonce());
  auto first = server.on_client_first(client.client_first());
  ASSERT_TRUE(first.ok());
  auto final_msg = client.on_server_first(*first);
  ASSERT_TRUE(final_msg.ok());
  auto server_final = server.on_client_final(*final_msg);
  ASSERT_TRUE(server_final.ok());
  EXPECT_TRUE(client.on_server_final(*server_final).ok());
}

// SCRAM-SHA-256-PLUS over TLS: the client binds to the server certificate's hash; the server checks
// it. Another hash (a man in the middle's certificate) fails, as do the downgrades Postgres refuses.
TEST(Scram, ChannelBindingPlus) {
  Verifier v = Verifier::from_password("s3cret", "0123456789abcdef", 4096);
  const std::string end_point(32, '\x5a');
  {
    ServerExchange server(v, scram::random_nonce(), end_point, true);
    ClientExchange client("s3cret", scram::random_nonce(), {}, end_point);
    EXPECT_TRUE(client.client_first().starts_with("p=tls-server-end-point,,"));
    auto first = server.on_client_first(client.client_first());
    ASSERT_TRUE(first.ok()) << first.error().detail;
    auto final_msg = client.on_server_first(*first);
    ASSERT_TRUE(final_msg.ok());
    auto server_final = server.on_client_final(*final_msg);
    ASSERT_TRUE(server_final.ok()) << server_final.error().detail;
    EXPECT_TRUE(client.on_server_final(*server_final).ok());
  }
  {  // the client saw another certificate
    ServerExchange server(v, scram::random_nonce(), end_point, true);
    ClientExchange client("s3cret", scram::random_nonce(), {}, std::string(32, '\x66'));
    auto first = server.on_client_first(client.client_first());
    ASSERT_TRUE(first.ok());
    auto final_msg = client.on_server_first(*first);
    ASSERT_TRUE(final_msg.ok());
    EXPECT_FALSE(server.on_client_final(*final_msg).ok());
  }
  {  // "y" while PLUS was offered: someone took it out of the list on the way
    ServerExchange server(v, scram::random_nonce(), end_point, false);
    auto r = server.on_client_first("y,,n=,r=abc");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, Errc::unsupported);
  }
  {  // PLUS chosen, no binding asked; and a binding type we do not do
    ServerExchange server(v, scram::random_nonce(), end_point, true);
    EXPECT_EQ(server.on_client_first("n,,n=,r=abc").error().code, Errc::unsupported);
    ServerExchange other(v, scram::random_nonce(), end_point, true);
    EXPECT_EQ(other.on_client_first("p=tls-unique,,n=,r=abc").error().code, Errc::unsupported);
  }
  {  // over TLS without PLUS, "n" still works (libpq channel_binding=disable)
    ServerExchange server(v, scram::random_nonce(), end_point, false);
    ClientExchange client("s3cret", scram::random_nonce());
    auto first = server.on_client_first(client.client_first());
    ASSERT_TRUE(first.ok());
    auto final_msg = client.on_server_first(*first);
    ASSERT_TRUE(server.on_client_final(*final_msg).ok());
  }
}

// Unknown users: a decoy verifier per name. The same name gets the same salt, other names (or another
// process secret) unrelated ones, all of the configured length, with the iteration count asked for.
TEST(ScramDecoy, StablePerNameAndDistinctAcrossNames) {
  const std::string key(32, 'k'), other_key(32, 'o');
  Verifier a1 = Verifier::decoy(key, "alice", 4096), a2 = Verifier::decoy(key, "alice", 4096);
  Verifier b = Verifier::decoy(key, "bob", 4096);
  EXPECT_EQ(a1.salt, a2.salt);
  EXPECT_EQ(a1.stored_key, a2.stored_key);
  EXPECT_NE(a1.salt, b.salt);
  EXPECT_NE(a1.stored_key, b.stored_key);
  EXPECT_NE(Verifier::decoy(other_key, "alice", 4096).salt, a1.salt);
  EXPECT_EQ(a1.salt.size(), scram::kSaltBytes);
  EXPECT_EQ(a1.salt, Verifier::derived_salt(key, "alice"));
  EXPECT_EQ(Verifier::decoy(key, "alice", 10000).iterations, 10000);
  EXPECT_TRUE(Verifier::parse(a1.to_string()).ok());
}

// A decoy's exchange runs to the proof like a real one and then fails like a wrong password.
TEST(ScramDecoy, EveryProofFailsAsAWrongPassword) {
  const std::string key(32, 'k');
  for (std::string password : {"", "pgsidecar-unknown", "alice", "flopods-dev"}) {
    ServerExchange server(Verifier::decoy(key, "alice", 4096), scram::random_nonce());
    ClientExchange client(password, scram::random_nonce());
    auto first = server.on_client_first(client.client_first());
    ASSERT_TRUE(first.ok());
    auto final_msg = client.on_server_first(*first);
    ASSERT_TRUE(final_msg.ok());
    auto r = server.on_client_final(*final_msg);
    ASSERT_FALSE(r.ok()) << password;
    EXPECT_EQ(r.error().code, Errc::auth_failed);
  }
}

TEST(Scram, WrongPasswordIsAuthFailed) {
  ServerExchange server(Verifier::from_password("right", "salt-salt", 4096), scram::random_nonce());
  ClientExchange client("wrong", scram::random_nonce());
  auto first = server.on_client_first(client.client_first());
  ASSERT_TRUE(first.ok());
  auto final_msg = client.on_server_first(*first);
  ASSERT_TRUE(final_msg.ok());
  auto r = server.on_client_final(*final_msg);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::auth_failed);
}

TEST(Scram, ClientRejectsAForgedServerSignature) {
  ClientExchange client("pencil", std::string(kRfcClientNonce), "user");
  ASSERT_TRUE(client.on_server_first(kRfcServerFirst).ok());
  auto r = client.on_server_final("v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::auth_failed);
}

TEST(Scram, ServerErrorIsAuthFailed) {
  ClientExchange client("pencil", std::string(kRfcClientNonce), "user");
  ASSERT_TRUE(client.on_server_first(kRfcServerFirst).ok());
  EXPECT_EQ(client.on_server_final("e=invalid-proof").error().code, Errc::auth_failed);
}

TEST(Scram, ServerRejectsBadClientFirst) {
  struct Case {
    std::string_view msg;
    Errc code;
  };
  for (Case c : {Case{"p=tls-server-end-point,,n=,r=abc", Errc::unsupported},
                 Case{"n,a=admin,n=,r=abc", Errc::unsupported}, Case{"n,,m=ext,n=,r=abc", Errc::unsupported},
                 Case{"x,,n=,r=abc", Errc::malformed}, Case{"n,,r=abc", Errc::malformed},
                 Case{"n,,n=,r=", Errc::malformed}, Case{"n,,n=,r=abc,", Errc::malformed},
                 Case{"n,,n=,r=a\x01" "c", Errc::malformed}, Case{"", Errc::malformed}, Case{"n,", Errc::malformed}}) {
    ServerExchange server(rfc_verifier(), "srv");
    auto r = server.on_client_first(c.msg);
    ASSERT_FALSE(r.ok()) << c.msg;
    EXPECT_EQ(r.error().code, c.code) << c.msg;
  }
  ServerExchange y(rfc_verifier(), "srv");
  EXPECT_TRUE(y.on_client_first("y,,n=,r=abc,x=ext").ok());
}

TEST(Scram, ServerRejectsBadClientFinal) {
  const std::string nonce = std::string(kRfcClientNonce) + std::string(kRfcServerNonce);
  const std::string proof = "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
  for (std::string bad : {"c=eSws,r=" + nonce + "," + proof,          // binding differs from "n,,"
                          "c=biws,r=" + nonce + "x," + proof,         // nonce altered
                          "c=biws,r=" + nonce,                        // no proof
                          "c=biws,r=" + nonce + "," + proof + ",x=1", // after the proof
                          "c=biws,r=" + nonce + ",p=AAAA",            // proof too short
                          "r=" + nonce + "," + proof}) {
    ServerExchange server(rfc_verifier(), std::string(kRfcServerNonce));
    ASSERT_TRUE(server.on_client_first(kRfcClientFirst).ok());
    auto r = server.on_client_final(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code, Errc::malformed) << bad;
  }
}

TEST(Scram, OutOfOrderCallsFail) {
  ServerExchange server(rfc_verifier(), "srv");
  EXPECT_FALSE(server.on_client_final(kRfcClientFinal).ok());
  ServerExchange twice(rfc_verifier(), std::string(kRfcServerNonce));
  ASSERT_TRUE(twice.on_client_first(kRfcClientFirst).ok());
  ASSERT_TRUE(twice.on_client_final(kRfcClientFinal).ok());
  EXPECT_FALSE(twice.on_client_final(kRfcClientFinal).ok());

  ClientExchange client("pencil", "abc");
  EXPECT_FALSE(client.on_server_final(kRfcServerFinal).ok());
}

TEST(Scram, ClientRejectsBadServerFirst) {
  for (std::string_view bad :
       {"r=other-nonce,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
        "r=rOprNGfwEbeRWgbNEkqOx,s=!!!!,i=4096", "r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0",
        "r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,x=1",
        "r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=99999999999",
        "r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=20000000", "m=x,r=a"}) {
    ClientExchange client("pencil", std::string(kRfcClientNonce));
    EXPECT_FALSE(client.on_server_first(bad).ok()) << bad;
  }
}

TEST(Scram, RandomNonceIsPrintableAndFresh) {
  std::string a = scram::random_nonce();
  std::string b = scram::random_nonce();
  EXPECT_EQ(a.size(), 24u);
  EXPECT_NE(a, b);
  EXPECT_EQ(a.find(','), std::string::npos);
}

}  // namespace
}  // namespace pgs::protocol
