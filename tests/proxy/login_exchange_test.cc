// LoginExchange, message by message, with no network and no Postgres: the test plays the client
// (protocol/auth.h's client side of SCRAM and md5) and reads what the exchange answers.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "protocol/backend.h"
#include "protocol/frame.h"
#include "protocol/writer.h"
#include "proxy/login/login_exchange.h"
#include "proxy/login/user_secrets.h"

namespace pgs::proxy {
namespace {

namespace pb = protocol::backend;
namespace scram = protocol::scram;
using conf::AuthType;

constexpr char kUser[] = "alice";
constexpr char kPassword[] = "alice-pw";
constexpr char kPasswordFailed[] = "password authentication failed for user \"alice\"";

protocol::Bytes bytes_of(const std::string& s) { return {reinterpret_cast<const uint8_t*>(s.data()), s.size()}; }

// One Authentication message of a reply, copied out of it.
struct Auth {
  int32_t code = -1;
  std::string data;
  std::vector<std::string> mechanisms;  // AuthenticationSASL only
};

// The reply's messages, each of which must be an Authentication request.
std::vector<Auth> auths_of(const std::string& reply) {
  std::vector<Auth> out;
  protocol::Bytes rest = bytes_of(reply);
  while (!rest.empty()) {
    auto r = protocol::split_frame(rest, 1 << 20);
    const auto* f = std::get_if<protocol::Frame>(&r);
    if (f == nullptr || f->type != 'R') {
      ADD_FAILURE() << "not an Authentication message in the reply";
      return out;
    }
    auto a = pb::Authentication::decode(f->body);
    if (!a.ok()) {
      ADD_FAILURE() << "malformed Authentication message";
      return out;
    }
    Auth auth{.code = a->code, .data = std::string(protocol::as_string_view(a->data))};
    if (a->code == static_cast<int32_t>(pb::AuthCode::sasl)) {
      for (auto m : a->mechanisms()) auth.mechanisms.emplace_back(m);
    }
    out.push_back(std::move(auth));
    rest = rest.subspan(f->size);
  }
  return out;
}

// The single Authentication message of a reply.
Auth auth_of(const std::string& reply) {
  auto all = auths_of(reply);
  if (all.size() != 1) {
    ADD_FAILURE() << "expected one Authentication message, got " << all.size();
    return {};
  }
  return all[0];
}

constexpr int32_t code(pb::AuthCode c) { return static_cast<int32_t>(c); }

// Hands one 'p' message (as a client writes it) to the exchange.
LoginAction deliver(LoginExchange& x, const std::string& wire) {
  auto r = protocol::split_frame(bytes_of(wire), 1 << 20);
  const auto* f = std::get_if<protocol::Frame>(&r);
  if (f == nullptr) {
    ADD_FAILURE() << "the test wrote an incomplete message";
    return {};
  }
  return x.on_password_message(*f);
}

LoginAction send_password(LoginExchange& x, std::string_view password) {
  std::string wire;
  protocol::write_password(wire, password);
  return deliver(x, wire);
}

LoginAction send_sasl_initial(LoginExchange& x, std::string_view mechanism, std::string_view data) {
  std::string wire;
  protocol::write_sasl_initial_response(wire, mechanism, data);
  return deliver(x, wire);
}

LoginAction send_sasl_response(LoginExchange& x, std::string_view data) {
  std::string wire;
  protocol::write_sasl_response(wire, data);
  return deliver(x, wire);
}

UserSecrets secrets_of(std::string_view password) {
  UserSecrets s;
  s.has_scram = true;
  s.scram = scram::Verifier::from_password(password, "0123456789abcdef", scram::kDefaultIterations);
  auto md5 = protocol::md5_stored_hash(kUser, password);
  if (md5.ok()) s.md5_hash = md5.value();
  return s;
}

const UserSecrets& alice() {
  static const UserSecrets s = secrets_of(kPassword);
  return s;
}

// Inputs for alice (or, with secrets = nullptr, for an unknown user of the same name). `decoy_calls`
// counts the decoy verifiers asked for.
LoginExchange::Inputs inputs(AuthType type, const UserSecrets* secrets, int* decoy_calls = nullptr) {
  LoginExchange::Inputs in;
  in.auth_type = type;
  in.secrets = secrets;
  in.decoy = [decoy_calls] {
    if (decoy_calls != nullptr) ++*decoy_calls;
    return scram::Verifier::decoy("test-process-secret", kUser, scram::kDefaultIterations);
  };
  in.user = kUser;
  return in;
}

void expect_refused(const LoginAction& a, std::string_view sqlstate, std::string_view message) {
  EXPECT_EQ(a.outcome, LoginOutcome::refused);
  EXPECT_EQ(std::string_view(a.sqlstate), sqlstate);
  EXPECT_EQ(a.message, message);
  EXPECT_EQ(a.reply, "");
}

void expect_authenticated_with(const LoginAction& a, const std::vector<int32_t>& codes) {
  ASSERT_EQ(a.outcome, LoginOutcome::authenticated) << a.sqlstate << " " << a.message;
  auto all = auths_of(a.reply);
  std::vector<int32_t> got;
  for (const auto& m : all) got.push_back(m.code);
  EXPECT_EQ(got, codes);
}

// ---- trust ----

TEST(LoginExchange, TrustAuthenticatesAKnownUserAtOnce) {
  LoginExchange x;
  auto a = x.begin(inputs(AuthType::trust, &alice()));
  expect_authenticated_with(a, {code(pb::AuthCode::ok)});
}

// ---- md5 ----

std::string md5_salt_of(const LoginAction& a) {
  EXPECT_EQ(a.outcome, LoginOutcome::wait);
  Auth m = auth_of(a.reply);
  EXPECT_EQ(m.code, code(pb::AuthCode::md5));
  EXPECT_EQ(m.data.size(), 4u);
  return m.data;
}

std::string md5_response(std::string_view password, const std::string& salt) {
  return protocol::md5_password_response(kUser, password, reinterpret_cast<const uint8_t*>(salt.data()));
}

TEST(LoginExchange, Md5RightPasswordAuthenticates) {
  if (alice().md5_hash.empty()) GTEST_SKIP() << "MD5 unavailable (FIPS)";
  LoginExchange x;
  std::string salt = md5_salt_of(x.begin(inputs(AuthType::md5, &alice())));
  expect_authenticated_with(send_password(x, md5_response(kPassword, salt)), {code(pb::AuthCode::ok)});
}

TEST(LoginExchange, Md5WrongPasswordFails28P01) {
  if (alice().md5_hash.empty()) GTEST_SKIP() << "MD5 unavailable (FIPS)";
  LoginExchange x;
  std::string salt = md5_salt_of(x.begin(inputs(AuthType::md5, &alice())));
  expect_refused(send_password(x, md5_response("not-alice-pw", salt)), "28P01", kPasswordFailed);
}

// A response recorded for one salt must not be replayed against another exchange.
TEST(LoginExchange, Md5SaltIsRandomPerExchange) {
  if (alice().md5_hash.empty()) GTEST_SKIP() << "MD5 unavailable (FIPS)";
  LoginExchange first, second;
  std::string salt1 = md5_salt_of(first.begin(inputs(AuthType::md5, &alice())));
  std::string salt2 = md5_salt_of(second.begin(inputs(AuthType::md5, &alice())));
  EXPECT_NE(salt1, salt2);  // 2^-32 chance of a false failure
  expect_refused(send_password(second, md5_response(kPassword, salt1)), "28P01", kPasswordFailed);
}

int failing_source(unsigned char*, int) { return 0; }

TEST(LoginExchange, Md5WithoutARandomSaltIsRefusedXX000) {
  if (alice().md5_hash.empty()) GTEST_SKIP() << "MD5 unavailable (FIPS)";
  LoginExchange x;
  auto in = inputs(AuthType::md5, &alice());
  in.random = &failing_source;
  auto a = x.begin(std::move(in));
  expect_refused(a, "XX000", "could not generate a random authentication salt");
  EXPECT_NE(a.log_error, "");
}

// ---- SCRAM-SHA-256 ----

std::vector<std::string> mechanisms_offered(const LoginAction& a) {
  EXPECT_EQ(a.outcome, LoginOutcome::wait);
  Auth m = auth_of(a.reply);
  EXPECT_EQ(m.code, code(pb::AuthCode::sasl));
  return m.mechanisms;
}

// Runs the client side up to the client-final-message; returns the server's answer to it.
LoginAction scram_login(LoginExchange& x, scram::ClientExchange& client, std::string_view mechanism) {
  LoginAction first = send_sasl_initial(x, mechanism, client.client_first());
  if (first.outcome != LoginOutcome::wait) return first;
  Auth cont = auth_of(first.reply);
  EXPECT_EQ(cont.code, code(pb::AuthCode::sasl_continue));
  auto final_msg = client.on_server_first(cont.data);
  if (!final_msg.ok()) {
    ADD_FAILURE() << "client rejected server-first-message: " << final_msg.error().detail;
    return {};
  }
  return send_sasl_response(x, final_msg.value());
}

TEST(LoginExchange, ScramFullExchangeAuthenticates) {
  LoginExchange x;
  EXPECT_EQ(mechanisms_offered(x.begin(inputs(AuthType::scram_sha_256, &alice()))),
            std::vector<std::string>{"SCRAM-SHA-256"});
  scram::ClientExchange client(kPassword, scram::random_nonce());
  auto done = scram_login(x, client, "SCRAM-SHA-256");
  expect_authenticated_with(done, {code(pb::AuthCode::sasl_final), code(pb::AuthCode::ok)});
  auto all = auths_of(done.reply);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_TRUE(client.on_server_final(all[0].data).ok());  // the server proved it knows the verifier
}

TEST(LoginExchange, ScramWrongProofFails28P01) {
  LoginExchange x;
  (void)x.begin(inputs(AuthType::scram_sha_256, &alice()));
  scram::ClientExchange client("not-alice-pw", scram::random_nonce());
  expect_refused(scram_login(x, client, "SCRAM-SHA-256"), "28P01", kPasswordFailed);
}

TEST(LoginExchange, ScramPlusIsOfferedAndBoundOverTls) {
  const std::string binding = "tls-server-end-point hash";
  LoginExchange x;
  auto in = inputs(AuthType::scram_sha_256, &alice());
  in.channel_binding = binding;
  EXPECT_EQ(mechanisms_offered(x.begin(std::move(in))),
            (std::vector<std::string>{"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"}));
  scram::ClientExchange client(kPassword, scram::random_nonce(), {}, binding);
  expect_authenticated_with(scram_login(x, client, "SCRAM-SHA-256-PLUS"),
                            {code(pb::AuthCode::sasl_final), code(pb::AuthCode::ok)});
}

TEST(LoginExchange, ScramPlusIsRefusedWithoutChannelBinding) {
  LoginExchange x;
  (void)x.begin(inputs(AuthType::scram_sha_256, &alice()));
  scram::ClientExchange client(kPassword, scram::random_nonce());
  expect_refused(send_sasl_initial(x, "SCRAM-SHA-256-PLUS", client.client_first()), "28000",
                 "client selected an invalid SASL authentication mechanism");
}

TEST(LoginExchange, MalformedSaslInitialResponseIs08P01) {
  LoginExchange x;
  (void)x.begin(inputs(AuthType::scram_sha_256, &alice()));
  // A PasswordMessage where a SASLInitialResponse is due: a mechanism name, then no data length.
  expect_refused(send_password(x, "SCRAM-SHA-256"), "08P01", "malformed SASLInitialResponse");
}

TEST(LoginExchange, MalformedClientFirstMessageIs08P01) {
  LoginExchange x;
  (void)x.begin(inputs(AuthType::scram_sha_256, &alice()));
  auto a = send_sasl_initial(x, "SCRAM-SHA-256", "not a client-first-message");
  EXPECT_EQ(a.outcome, LoginOutcome::refused);
  EXPECT_EQ(std::string_view(a.sqlstate), "08P01");
  EXPECT_EQ(a.message.rfind("malformed SCRAM message: ", 0), 0u) << a.message;
}

// ---- an unknown user looks like a known one until its proof fails ----

TEST(LoginExchange, UnknownUserIsOfferedWhatAKnownOneIs) {
  for (AuthType type : {AuthType::scram_sha_256, AuthType::md5}) {
    for (const std::string& binding : {std::string(), std::string("tls hash")}) {
      LoginExchange known, unknown;
      auto known_in = inputs(type, &alice()), unknown_in = inputs(type, nullptr);
      known_in.channel_binding = unknown_in.channel_binding = binding;
      Auth k = auth_of(known.begin(std::move(known_in)).reply);
      Auth u = auth_of(unknown.begin(std::move(unknown_in)).reply);
      EXPECT_EQ(k.code, u.code);
      EXPECT_EQ(k.mechanisms, u.mechanisms);
      EXPECT_EQ(k.data.size(), u.data.size());
    }
  }
}

TEST(LoginExchange, UnknownUserRunsTheScramExchangeAndFailsAfterTheProof) {
  // Under trust too: only a known user is let in without a password.
  for (AuthType type : {AuthType::scram_sha_256, AuthType::trust}) {
    int decoy_calls = 0;
    LoginExchange x;
    EXPECT_EQ(mechanisms_offered(x.begin(inputs(type, nullptr, &decoy_calls))),
              std::vector<std::string>{"SCRAM-SHA-256"});
    scram::ClientExchange client(kPassword, scram::random_nonce());
    auto first = send_sasl_initial(x, "SCRAM-SHA-256", client.client_first());
    ASSERT_EQ(first.outcome, LoginOutcome::wait) << first.message;
    EXPECT_EQ(decoy_calls, 1);
    Auth cont = auth_of(first.reply);
    ASSERT_EQ(cont.code, code(pb::AuthCode::sasl_continue));
    auto final_msg = client.on_server_first(cont.data);
    ASSERT_TRUE(final_msg.ok());
    expect_refused(send_sasl_response(x, final_msg.value()), "28P01", kPasswordFailed);
  }
}

TEST(LoginExchange, UnknownUserRunsTheMd5ExchangeAndFailsAfterTheResponse) {
  if (alice().md5_hash.empty()) GTEST_SKIP() << "MD5 unavailable (FIPS)";
  LoginExchange x;
  std::string salt = md5_salt_of(x.begin(inputs(AuthType::md5, nullptr)));
  expect_refused(send_password(x, md5_response(kPassword, salt)), "28P01", kPasswordFailed);
}

// A caller that gives no decoy gets a refusal at the SASLInitialResponse, never an exception.
TEST(LoginExchange, UnknownUserWithoutADecoyIsRefusedAtItsFirstResponse) {
  LoginExchange x;
  auto in = inputs(AuthType::scram_sha_256, nullptr);
  in.decoy = nullptr;
  EXPECT_EQ(mechanisms_offered(x.begin(std::move(in))), std::vector<std::string>{"SCRAM-SHA-256"});
  scram::ClientExchange client(kPassword, scram::random_nonce());
  expect_refused(send_sasl_initial(x, "SCRAM-SHA-256", client.client_first()), "28P01", kPasswordFailed);
}

TEST(LoginExchange, UserWithNoUsableSecretIsRefused28P01) {
  UserSecrets none;  // no verifier, no md5 hash
  LoginExchange x;
  expect_refused(x.begin(inputs(AuthType::scram_sha_256, &none)), "28P01", kPasswordFailed);
}

// ---- order ----

TEST(LoginExchange, PasswordMessageOutOfStepIs08P01) {
  {
    LoginExchange x;  // before begin
    expect_refused(send_password(x, "alice-pw"), "08P01", "unexpected password message");
  }
  {
    LoginExchange x;  // after it authenticated
    ASSERT_EQ(x.begin(inputs(AuthType::trust, &alice())).outcome, LoginOutcome::authenticated);
    expect_refused(send_password(x, "alice-pw"), "08P01", "unexpected password message");
  }
  {
    LoginExchange x;  // after it refused
    (void)x.begin(inputs(AuthType::scram_sha_256, &alice()));
    ASSERT_EQ(send_password(x, "x").outcome, LoginOutcome::refused);
    expect_refused(send_password(x, "alice-pw"), "08P01", "unexpected password message");
  }
}

}  // namespace
}  // namespace pgs::proxy

// ---- SCRAM pass-through ----
namespace pgs::proxy {
namespace {

// A SCRAM login hands out the client's keys (what the proxy logs in to servers with when it has no
// password for the user); a wrong proof, an md5 login and an unknown user's decoy exchange do not.
TEST(LoginExchange, ScramLoginHandsOutTheClientsKeys) {
  LoginExchange x;
  (void)x.begin(inputs(AuthType::scram_sha_256, &alice()));
  scram::ClientExchange client(kPassword, scram::random_nonce());
  auto done = scram_login(x, client, "SCRAM-SHA-256");
  ASSERT_EQ(done.outcome, LoginOutcome::authenticated);
  ASSERT_TRUE(done.client_keys.has_value());
  EXPECT_EQ(done.client_keys->server_key, alice().scram.server_key);
  EXPECT_EQ(done.client_keys->salt, alice().scram.salt);
  // The keys log in to a server holding the same verifier.
  protocol::scram::ServerExchange upstream(alice().scram, scram::random_nonce());
  scram::ClientExchange proxy(*done.client_keys, scram::random_nonce());
  auto first = upstream.on_client_first(proxy.client_first());
  ASSERT_TRUE(first.ok());
  auto final_msg = proxy.on_server_first(*first);
  ASSERT_TRUE(final_msg.ok());
  auto server_final = upstream.on_client_final(*final_msg);
  ASSERT_TRUE(server_final.ok());
  EXPECT_TRUE(proxy.on_server_final(*server_final).ok());
}

TEST(LoginExchange, NoKeysWithoutAProvenScramLogin) {
  {
    LoginExchange x;
    (void)x.begin(inputs(AuthType::scram_sha_256, &alice()));
    scram::ClientExchange client("not-alice-pw", scram::random_nonce());
    EXPECT_FALSE(scram_login(x, client, "SCRAM-SHA-256").client_keys.has_value());
  }
  {
    LoginExchange x;
    (void)x.begin(inputs(AuthType::scram_sha_256, nullptr));
    scram::ClientExchange client(kPassword, scram::random_nonce());
    EXPECT_FALSE(scram_login(x, client, "SCRAM-SHA-256").client_keys.has_value());
  }
  if (!alice().md5_hash.empty()) {
    LoginExchange x;
    std::string salt = md5_salt_of(x.begin(inputs(AuthType::md5, &alice())));
    auto a = send_password(x, md5_response(kPassword, salt));
    ASSERT_EQ(a.outcome, LoginOutcome::authenticated);
    EXPECT_FALSE(a.client_keys.has_value());
  }
}

}  // namespace
}  // namespace pgs::proxy
