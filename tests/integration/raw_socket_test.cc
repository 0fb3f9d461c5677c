// Bad input on raw sockets: garbage, truncated and oversized startup packets, protocol 2.0,
// SSLRequest / GSSENCRequest answered 'N', direct TLS, oversized and unknown messages after login,
// wrong passwords. Each gets an ErrorResponse with the right SQLSTATE or a clean close, and after
// each one the same proxy still serves psql and libpq.
#include <sys/socket.h>

#include <set>

#include <gtest/gtest.h>

#include "tests/integration/harness.h"
#include "tests/support/raw_client.h"

namespace pgs::it {
namespace {

using Clock = std::chrono::steady_clock;

class RawSocketTest : public ProxyTest {
 protected:
  void SetUp() override {
    ProxyTest::SetUp();
    ProxyOptions o;
    o.client_login_timeout = "2s";
    o.max_message_bytes = 1 << 20;
    start_proxy(o);
  }
  // Called at the end of every test: the proxy survived and serves psql and libpq.
  void TearDown() override {
    if (proxy_ && !HasFatalFailure()) {
      EXPECT_TRUE(proxy_->alive()) << "proxy process died";
      RunResult r = run_psql(proxy_->conninfo(), "SELECT 'psql ok';\n", {"-At"});
      EXPECT_EQ(r.exit_code, 0) << r.describe();
      EXPECT_EQ(r.out, "psql ok\n");
      Pg pg(proxy_->spec());
      EXPECT_TRUE(pg.ok()) << pg.error();
      if (pg.ok()) {
        EXPECT_EQ(pg.scalar("SELECT 'libpq ok'"), "libpq ok");
      }
    }
    ProxyTest::TearDown();
  }
  std::unique_ptr<RawConn> open() {
    return std::make_unique<RawConn>(proxy_->host(), proxy_->port());
  }
  std::unique_ptr<RawConn> open_logged_in() {
    auto c = open();
    LoginOutcome l = login(*c, kUser, kPassword, kDatabase);
    EXPECT_TRUE(l.ok) << l.describe();
    return c;
  }
};

// What a bad input must produce. An ErrorResponse, when one comes, must carry one of `codes`;
// `error_required` (checked against the proxy only: Postgres itself silently drops some of these)
// turns "a clean close is enough" off.
void expect_error_or_close(RawConn& c, const std::set<std::string>& codes, bool error_required,
                           Millis deadline = Millis(5000)) {
  Drain d = c.drain(deadline);
  EXPECT_FALSE(d.timed_out) << "connection still open after " << deadline.count() << " ms";
  if (d.bytes.empty()) {
    EXPECT_FALSE(error_required && !is_direct()) << "closed without an ErrorResponse";
    return;
  }
  ASSERT_EQ(d.bytes[0], 'E') << "unexpected reply starting with byte " << int(d.bytes[0]);
  ASSERT_GE(d.bytes.size(), 5u);
  ErrorFields e = parse_error_fields(d.bytes.substr(5));
  EXPECT_TRUE(codes.count(e.sqlstate())) << "got " << e.describe();
  EXPECT_FALSE(e.message().empty());
}

TEST_F(RawSocketTest, GarbageBytes) {
  auto c = open();
  ASSERT_TRUE(c->send("GET / HTTP/1.1\r\nHost: pgsidecar\r\n\r\n"));
  expect_error_or_close(*c, {"08P01"}, false);
}

TEST_F(RawSocketTest, TruncatedStartupThenClose) {
  std::string startup = startup_packet({{"user", kUser}, {"database", kDatabase}});
  auto c = open();
  ASSERT_TRUE(c->send(startup.substr(0, 11)));
  ::shutdown(c->fd(), SHUT_WR);
  expect_error_or_close(*c, {"08P01"}, false);
}

TEST_F(RawSocketTest, TruncatedStartupHeldOpenHitsLoginTimeout) {
  PGS_IT_REQUIRE_PROXY();  // Postgres waits authentication_timeout (60 s) here
  auto c = open();
  ASSERT_TRUE(c->send(startup_packet({{"user", kUser}}).substr(0, 9)));
  auto t0 = Clock::now();
  Drain d = c->drain(Millis(6000));
  EXPECT_TRUE(d.closed) << "client_login_timeout = 2s not enforced";
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(5));
}

TEST_F(RawSocketTest, TwoGigabyteStartupLength) {
  auto c = open();
  ASSERT_TRUE(c->send(be32(0x80000000u) + be32(196608) + "user"));
  expect_error_or_close(*c, {"08P01"}, false);
}

TEST_F(RawSocketTest, StartupOverTenThousandBytes) {
  auto c = open();
  std::string big(10100, 'a');
  ASSERT_TRUE(c->send(startup_packet({{"user", kUser}, {"application_name", big}})));
  expect_error_or_close(*c, {"08P01"}, false);
}

// True when `bytes` is exactly one v3 message (type, length, body).
bool is_one_v3_message(const std::string& bytes) {
  if (bytes.size() < 5) return false;
  uint32_t len = 0;
  for (int i = 1; i <= 4; ++i) len = (len << 8) | uint8_t(bytes[i]);
  return len + 1 == bytes.size();
}

TEST_F(RawSocketTest, Protocol2IsRefused) {
  auto c = open();
  ASSERT_TRUE(c->send(startup_packet({{"user", kUser}, {"database", kDatabase}}, 0x00020000)));
  Drain d = c->drain(Millis(5000));
  EXPECT_TRUE(d.closed);
  ASSERT_FALSE(d.bytes.empty()) << "closed without telling the client why";
  ASSERT_EQ(d.bytes[0], 'E');
  if (is_one_v3_message(d.bytes)) {
    ErrorFields e = parse_error_fields(d.bytes.substr(5));
    EXPECT_TRUE(e.sqlstate() == "0A000" || e.sqlstate() == "08P01") << e.describe();
  } else {
    // Protocol 2 error format (what Postgres itself sends): 'E', text, NUL.
    EXPECT_NE(d.bytes.find("protocol"), std::string::npos) << d.bytes;
    EXPECT_EQ(d.bytes.back(), '\0');
  }
}

TEST_F(RawSocketTest, SslRequestAnsweredNThenNormalStartup) {
  auto c = open();
  ASSERT_TRUE(c->send(startup_packet_raw(80877103, "")));
  auto answer = c->read_byte(Millis(5000));
  ASSERT_TRUE(answer);
  EXPECT_EQ(*answer, 'N');
  ASSERT_TRUE(c->send(startup_packet({{"user", kUser}, {"database", kDatabase}})));
  LoginOutcome l = finish_login(*c, kUser, kPassword);
  ASSERT_TRUE(l.ok) << l.describe();
  EXPECT_EQ(simple_query(*c, "SELECT 1").status, 'I');
  // libpq does the same with sslmode=prefer, and refuses with sslmode=require.
  ConnSpec s = proxy_->spec();
  s.extra["sslmode"] = "prefer";
  Pg prefer(s);
  EXPECT_TRUE(prefer.ok()) << prefer.error();
  s.extra["sslmode"] = "require";
  Pg require(s);
  EXPECT_FALSE(require.ok());
  EXPECT_NE(require.error().find("SSL"), std::string::npos) << require.error();
}

TEST_F(RawSocketTest, GssEncRequestAnsweredNThenNormalStartup) {
  auto c = open();
  ASSERT_TRUE(c->send(startup_packet_raw(80877104, "")));
  auto answer = c->read_byte(Millis(5000));
  ASSERT_TRUE(answer);
  if (is_direct() && *answer == 'G') {
    GTEST_SKIP() << "this Postgres offers GSS encryption; the proxy must answer 'N'";
  }
  EXPECT_EQ(*answer, 'N');
  ASSERT_TRUE(c->send(startup_packet({{"user", kUser}, {"database", kDatabase}})));
  LoginOutcome l = finish_login(*c, kUser, kPassword);
  EXPECT_TRUE(l.ok) << l.describe();
}

TEST_F(RawSocketTest, DirectTlsClientHelloIsClosedCleanly) {
  auto c = open();
  // The first bytes of a TLS 1.2/1.3 ClientHello record (sslnegotiation=direct, PG 17 clients).
  std::string hello = {0x16, 0x03, 0x01, 0x00, static_cast<char>(0xc8), 0x01, 0x00, 0x00,
                       static_cast<char>(0xc4), 0x03, 0x03};
  hello += std::string(32, '\x5a');
  ASSERT_TRUE(c->send(hello));
  Drain d = c->drain(Millis(5000));
  EXPECT_TRUE(d.closed);
  EXPECT_TRUE(d.bytes.empty()) << "a TLS client cannot read a Postgres message";
}

TEST_F(RawSocketTest, OversizedMessageAfterLogin) {
  auto c = open_logged_in();
  // A Query claiming 1.5 GB: above every limit (Postgres: 1 GB); only the header is sent.
  ASSERT_TRUE(c->send("Q" + be32(0x60000000u) + "SELECT "));
  expect_error_or_close(*c, {"08P01", "54000"}, true);
}

TEST_F(RawSocketTest, MessageAboveMaxMessageBytes) {
  PGS_IT_REQUIRE_PROXY();  // max_message_bytes is the proxy's own limit (1 MiB here)
  auto c = open_logged_in();
  ASSERT_TRUE(c->send("Q" + be32(2u << 20) + std::string(4096, ' ')));
  expect_error_or_close(*c, {"08P01", "54000"}, true);
}

TEST_F(RawSocketTest, UnknownMessageTypeAfterLogin) {
  auto c = open_logged_in();
  ASSERT_TRUE(c->send(typed_message('j', "junk")));
  expect_error_or_close(*c, {"08P01"}, true);
}

TEST_F(RawSocketTest, LengthBelowFourAfterLogin) {
  auto c = open_logged_in();
  ASSERT_TRUE(c->send(std::string("Q") + be32(2)));
  expect_error_or_close(*c, {"08P01"}, false);
}

TEST_F(RawSocketTest, WrongPassword) {
  auto c = open();
  LoginOutcome l = login(*c, kUser, "definitely-wrong", kDatabase);
  ASSERT_TRUE(l.error) << l.describe();
  EXPECT_EQ(l.error->sqlstate(), "28P01");
  EXPECT_TRUE(c->drain(Millis(5000)).closed);
}

// The SCRAM exchange up to the server-first-message, then a client-final with a proof that fits no
// password: what a user-name prober sees of one name.
struct ScramProbe {
  std::string salt_b64;    // "s=" of the server-first-message
  std::string iterations;  // "i="
  std::optional<ErrorFields> error;  // the answer to the bogus proof
  std::string problem;
};

std::string scram_attribute(const std::string& msg, char key) {
  for (size_t pos = 0; pos < msg.size();) {
    size_t end = msg.find(',', pos);
    if (end == std::string::npos) end = msg.size();
    if (end - pos >= 2 && msg[pos] == key && msg[pos + 1] == '=') return msg.substr(pos + 2, end - pos - 2);
    pos = end + 1;
  }
  return "";
}

ScramProbe probe_scram(const std::string& host, uint16_t port, const std::string& user) {
  ScramProbe out;
  RawConn c(host, port);
  c.send(startup_packet({{"user", user}, {"database", kDatabase}}));
  auto sasl = c.read_message(Millis(5000));
  if (!sasl || sasl->type != 'R' || sasl->body.size() < 4 || sasl->body[3] != 10) {
    out.problem = "no AuthenticationSASL";
    return out;
  }
  const std::string data = "n,,n=,r=pgsprobe0123456789";
  c.send(typed_message('p', std::string("SCRAM-SHA-256") + '\0' + be32(uint32_t(data.size())) + data));
  auto cont = c.read_message(Millis(5000));
  if (!cont || cont->type != 'R' || cont->body.size() < 4 || cont->body[3] != 11) {
    out.problem = "no AuthenticationSASLContinue";
    return out;
  }
  const std::string server_first = cont->body.substr(4);
  out.salt_b64 = scram_attribute(server_first, 's');
  out.iterations = scram_attribute(server_first, 'i');
  const std::string final_msg = "c=biws,r=" + scram_attribute(server_first, 'r') +
                                ",p=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
  c.send(typed_message('p', final_msg));
  auto answer = c.read_message(Millis(5000));
  if (!answer || answer->type != 'E') {
    out.problem = "no ErrorResponse after the proof";
    return out;
  }
  out.error = parse_error_fields(answer->body);
  return out;
}

// Before the fix every unknown name got one fixed salt, so two probes with two made-up names
// told unknown names (same salt) from configured ones. Now a name always gets the same salt, two
// names different ones, with the iteration count and salt length of a configured user, and the
// exchange ends like a wrong password.
TEST_F(RawSocketTest, UnknownUsersGetStablePerNameSaltsLikeKnownUsers) {
  PGS_IT_REQUIRE_PROXY();
  const ScramProbe a = probe_scram(proxy_->host(), proxy_->port(), "pgs_harden_nobody_a");
  const ScramProbe a_again = probe_scram(proxy_->host(), proxy_->port(), "pgs_harden_nobody_a");
  const ScramProbe b = probe_scram(proxy_->host(), proxy_->port(), "pgs_harden_nobody_b");
  const ScramProbe known = probe_scram(proxy_->host(), proxy_->port(), kUser);
  for (const ScramProbe* p : {&a, &a_again, &b, &known}) {
    ASSERT_EQ(p->problem, "");
    ASSERT_TRUE(p->error);
    EXPECT_EQ(p->error->sqlstate(), "28P01") << p->error->describe();
    EXPECT_EQ(p->error->get('S'), "FATAL");
  }
  EXPECT_NE(a.salt_b64, b.salt_b64) << "two unknown names share a salt";
  EXPECT_EQ(a.salt_b64, a_again.salt_b64) << "one unknown name got two salts";
  EXPECT_NE(a.salt_b64, known.salt_b64);
  EXPECT_EQ(a.salt_b64.size(), known.salt_b64.size());
  EXPECT_EQ(a.iterations, known.iterations);
  EXPECT_EQ(a.error->message(), "password authentication failed for user \"pgs_harden_nobody_a\"");
  EXPECT_EQ(known.error->message(), "password authentication failed for user \"" + std::string(kUser) + "\"");
}

TEST_F(RawSocketTest, BogusCancelRequestGetsNoReply) {
  auto c = open();
  ASSERT_TRUE(c->send(startup_packet_raw(80877102, be32(12345) + be32(67890))));
  Drain d = c->drain(Millis(5000));
  EXPECT_TRUE(d.closed);
  EXPECT_TRUE(d.bytes.empty());
}

TEST_F(RawSocketTest, ManyBadInputsInARow) {
  for (int i = 0; i < 50; ++i) {
    auto c = open();
    switch (i % 5) {
      case 0: c->send("\x00\x00\x00\x01garbage"); break;
      case 1: c->send(be32(8) + be32(0x12345678)); break;
      case 2: c->send(startup_packet({{"user", kUser}}).substr(0, 5)); break;
      case 3: c->send(std::string(64, '\xff')); break;
      default: break;  // connect and close at once
    }
    c->close_with_reset();
  }
  EXPECT_TRUE(proxy_->alive());
}

}  // namespace
}  // namespace pgs::it
