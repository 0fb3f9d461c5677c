// Every frontend message type, sent by a hostile client before login, out of order, truncated, with
// bogus or oversized lengths. After each case: an ErrorResponse with a SQLSTATE or a clean close
// within a deadline, the proxy alive, and an honest client on the same pool of ONE server sees none
// of the hostile client's state and finds the server free (hostile_fixture.h).
#include <random>

#include "tests/hostile/hostile_fixture.h"

namespace pgs::it::hostile {
namespace {

std::string random_bytes(uint32_t seed, size_t n) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& ch : s) ch = char(rng() & 0xff);
  return s;
}

// A protocol 3.0 StartupMessage of exactly `total` bytes (application_name padded).
std::string startup_of_size(size_t total) {
  std::string base = startup_packet({{"user", kUser}, {"database", kDatabase}, {"application_name", ""}});
  return startup_packet({{"user", kUser}, {"database", kDatabase}, {"application_name", std::string(total - base.size(), 'a')}});
}

// Reads what a startup-phase input got: nothing and a close, or an ErrorResponse with a SQLSTATE
// (then a close); never silence past the login timeout (3 s) plus slack.
void expect_startup_refused(RawConn& c, const std::string& what) {
  Drain d = c.drain(Millis(8000));
  EXPECT_FALSE(d.timed_out) << what << ": connection still open (hang)";
  if (d.bytes.empty()) return;
  ASSERT_EQ(d.bytes[0], 'E') << what << ": unexpected reply byte " << int(uint8_t(d.bytes[0]));
  ASSERT_GE(d.bytes.size(), 5u);
  ErrorFields e = parse_error_fields(d.bytes.substr(5));
  EXPECT_EQ(e.sqlstate().size(), 5u) << what << ": " << e.describe();
}

TEST_F(HostileTest, StartupPacketGarbage) {
  const std::string tls_hello = std::string("\x16\x03\x01\x00\xc8\x01\x00\x00\xc4\x03\x03", 11) + std::string(32, 'Z');
  struct Case {
    std::string name;
    std::string bytes;
    bool half_close;
  };
  std::vector<Case> cases = {
      {"random 64 bytes seed 1", random_bytes(1, 64), false},
      {"random 64 bytes seed 2", random_bytes(2, 64), true},
      {"random 4096 bytes seed 3", random_bytes(3, 4096), false},
      {"length 0", be32(0), false},
      {"length 0 then more", be32(0) + be32(196608) + "user", false},
      {"length 4", be32(4), false},
      {"length 7", be32(7) + "abc", false},
      {"length 10,001", startup_of_size(10001), false},
      {"length 10,001 header only", be32(10001) + be32(196608), true},
      {"length 2 GB", be32(0x80000000u) + be32(196608), false},
      {"protocol 1234.5678", startup_packet({{"user", kUser}, {"database", kDatabase}}, (1234u << 16) | 5678u), false},
      {"protocol 2.0", startup_packet({{"user", kUser}}, 0x00020000), false},
      {"TLS ClientHello", tls_hello, false},
      {"CancelRequest short", startup_packet_raw(80877102, be32(1)), false},
      {"CancelRequest long", startup_packet_raw(80877102, be32(1) + be32(2) + "extra"), false},
      {"no user", startup_packet({{"database", kDatabase}}), false},
      {"params not terminated", startup_packet_raw(196608, std::string("user\0flopods", 12)), false},
      {"key without value", startup_packet_raw(196608, std::string("user\0flopods\0database", 21)), false},
      {"unknown database", startup_packet({{"user", kUser}, {"database", "hostile_no_such_db"}}), false},
      {"typed Query as first packet", query_message("SELECT 1"), false},
  };
  for (const Case& k : cases) {
    SCOPED_TRACE(k.name);
    auto c = open();
    EXPECT_TRUE(send_or_closed(*c, k.bytes));
    if (k.half_close) ::shutdown(c->fd(), SHUT_WR);
    if (k.name == "unknown database") {  // answered, not merely closed
      LoginOutcome l = finish_login(*c, kUser, kPassword);
      ASSERT_TRUE(l.error) << l.describe();
      EXPECT_EQ(l.error->sqlstate(), "3D000");
    } else {
      expect_startup_refused(*c, k.name);
    }
    expect_clean(k.name);
  }
}

TEST_F(HostileTest, NegotiationRequestsThenGarbage) {
  for (uint32_t code : {80877103u, 80877104u}) {  // SSLRequest, GSSENCRequest
    for (const std::string& after : {random_bytes(code, 64), startup_packet_raw(code, ""),
                                     std::string("\x16\x03\x01\x00\x10", 5) + std::string(16, 'x')}) {
      SCOPED_TRACE(std::to_string(code) + " then " + std::to_string(after.size()) + " bytes");
      auto c = open();
      ASSERT_TRUE(c->send(startup_packet_raw(code, "")));
      auto answer = c->read_byte(kAnswerDeadline);
      ASSERT_TRUE(answer);
      EXPECT_EQ(*answer, 'N');
      EXPECT_TRUE(send_or_closed(*c, after));
      if (after == startup_packet_raw(code, "")) {
        // Postgres refuses a repeated request (as protocol 1234.5679); the proxy answers 'N' again,
        // which is harmless: client_login_timeout still ends the connection.
        auto again = c->read_byte(kAnswerDeadline);
        if (again) {
          EXPECT_EQ(*again, 'N');
        }
      }
      expect_startup_refused(*c, "after the negotiation answer");
    }
  }
  expect_clean("negotiation requests then garbage");
}

// Each frontend message type as the first packet, and in the authentication phase instead of the
// password response.
TEST_F(HostileTest, EveryTypeBeforeLogin) {
  for (const TypeSample& s : frontend_samples()) {
    SCOPED_TRACE(s.name);
    {
      auto c = open();
      EXPECT_TRUE(send_or_closed(*c, typed_message(s.type, s.body)));
      expect_startup_refused(*c, std::string(s.name) + " as the first packet");
    }
    for (uint32_t len : {uint32_t(4 + s.body.size()), 0u, 0xffffffffu}) {
      auto c = open();
      ASSERT_TRUE(c->send(startup_packet({{"user", kUser}, {"database", kDatabase}})));
      auto auth = c->read_message(kAnswerDeadline);
      ASSERT_TRUE(auth && auth->type == 'R') << "no AuthenticationRequest";
      EXPECT_TRUE(send_or_closed(*c, with_length(s.type, len, s.body)));
      Verdict v = read_verdict(*c, kAnswerDeadline);
      EXPECT_FALSE(v.ready) << s.name << " in the auth phase logged in: " << v.describe();
      expect_answered(v, std::string(s.name) + " in the auth phase, length " + std::to_string(len), false);
    }
  }
  expect_clean("every type before login");
}

struct Seq {
  std::string name;
  std::string bytes;
  bool ready_ok;  // a server accepts it (answers with ReadyForQuery and maybe no error)
};

std::vector<Seq> out_of_order_cases() {
  std::string parse1 = parse_msg("", "SELECT 1");
  std::vector<std::optional<std::string>> nulls(65535);
  return {
      {"Execute without Bind", execute_msg("") + sync_msg(), false},
      {"Execute of a missing portal", execute_msg("nope", 1) + sync_msg(), false},
      {"Bind without Parse", bind_msg("", "") + execute_msg("") + sync_msg(), false},
      {"Bind of a missing statement", bind_msg("", "nostmt") + sync_msg(), false},
      {"Bind of a reserved name", bind_msg("", "pgsidecar_1") + sync_msg(), false},
      {"Describe of a missing statement", describe_msg('S', "nope") + sync_msg(), false},
      {"Describe of a missing portal", describe_msg('P', "nope") + sync_msg(), false},
      {"Describe of kind Z", describe_msg('Z', "x") + sync_msg(), false},
      {"Close of missing objects", close_msg('S', "nope") + close_msg('P', "nope") + sync_msg(), true},
      {"Close of kind Z", close_msg('Z', "x") + sync_msg(), false},
      {"Sync alone", sync_msg(), true},
      {"three Syncs", sync_msg() + sync_msg() + sync_msg(), true},
      {"Flush alone, then Sync", flush_msg() + sync_msg(), true},
      {"Flush with a half batch, then Sync", parse1 + flush_msg() + bind_msg("", "") + flush_msg() + sync_msg(), true},
      {"CopyData outside COPY", copy_data_msg("1\tx\n") + sync_msg(), true},
      {"CopyDone outside COPY", copy_done_msg() + sync_msg(), true},
      {"CopyFail outside COPY", copy_fail_msg("no") + sync_msg(), true},
      {"CopyData outside COPY, then Query", copy_data_msg("x") + query_message("SELECT 2"), true},
      {"CopyDone inside an extended batch", parse1 + copy_done_msg() + bind_msg("", "") + execute_msg("") + sync_msg(), true},
      {"FunctionCall of oid 0", function_call_msg(0, {}), false},
      {"FunctionCall with too many arguments", function_call_msg(2026, {"1", "2"}), false},
      {"Parse error, then Bind Execute Sync", parse_msg("", "SELEC oops") + bind_msg("", "") + execute_msg("") + sync_msg(), false},
      {"Query inside an extended batch", parse1 + query_message("SELECT 2") + sync_msg(), true},
      {"Execute with negative max rows", parse1 + bind_msg("", "") + execute_msg("", -5) + sync_msg(), true},
      {"duplicate named Parse", parse_msg("dup", "SELECT 1") + parse_msg("dup", "SELECT 2") + sync_msg(), false},
      {"Parse named pgsidecar_1", parse_msg("pgsidecar_1", "SELECT 1") + sync_msg(), true},
      {"Parse with 65535 parameter types", parse_msg("", "SELECT 1", std::vector<uint32_t>(65535, 23)) + sync_msg(), true},
      {"Bind with 65535 NULL parameters", parse1 + bind_msg("", "", nulls) + sync_msg(), false},
      {"two statements in one Parse", parse_msg("", "SELECT 1; SELECT 2") + sync_msg(), false},
      // A server ignores a Sync inside COPY FROM STDIN (for libpq's sake); the CopyFail ends the COPY
      // with an error, and only the second Sync ends the batch.
      {"COPY FROM STDIN, Sync, CopyFail, Sync",
       parse_msg("", "COPY hostile_rows FROM STDIN") + bind_msg("", "") + execute_msg("") + sync_msg() +
           copy_fail_msg("hostile") + sync_msg(),
       false},
      {"COPY FROM STDIN, then Query instead of data", query_message("COPY hostile_rows FROM STDIN") + query_message("SELECT 3"), false},
      {"COPY FROM STDIN, bad row, CopyDone",
       query_message("COPY hostile_rows FROM STDIN") + copy_data_msg("not-a-number\tx\n") + copy_done_msg(), false},
      {"COPY TO STDOUT, client sends CopyData", query_message("COPY (SELECT 1) TO STDOUT") + copy_data_msg("x"), true},
      {"PasswordMessage after login", password_msg("again"), false},
      {"Terminate, then Query", terminate_message() + query_message("SELECT 1"), false},
      {"unknown type j", typed_message('j', "junk"), false},
      {"unknown type 0xff", typed_message('\xff', ""), false},
      {"backend type Z", typed_message('Z', "I"), false},
      {"backend type T", typed_message('T', be16(0)), false},
  };
}

TEST_F(HostileTest, OutOfOrderAfterLogin) {
  for (const Seq& k : out_of_order_cases()) {
    SCOPED_TRACE(k.name);
    auto c = open_logged_in();
    EXPECT_TRUE(send_or_closed(*c, k.bytes));
    Verdict v = read_verdict(*c, kAnswerDeadline);
    expect_answered(v, k.name, k.ready_ok);
    expect_in_sync(*c, k.name);
    c.reset();
    expect_clean(k.name);
  }
}

// Startup-phase packets after login read as a message of type 0x00 whose length (the next four
// bytes) asks for more: a half-close must end the connection.
TEST_F(HostileTest, StartupPhasePacketsAfterLogin) {
  const std::pair<const char*, std::string> cases[] = {
      {"StartupMessage", startup_packet({{"user", kUser}})},
      {"SSLRequest", startup_packet_raw(80877103, "")},
      {"GSSENCRequest", startup_packet_raw(80877104, "")},
      {"CancelRequest", startup_packet_raw(80877102, be32(1) + be32(2))},
  };
  for (const auto& [name, bytes] : cases) {
    SCOPED_TRACE(name);
    auto c = open_logged_in();
    EXPECT_TRUE(send_or_closed(*c, bytes));
    ::shutdown(c->fd(), SHUT_WR);
    Verdict v = read_verdict(*c, kAnswerDeadline);
    EXPECT_TRUE(v.closed) << v.describe();
    expect_answered(v, name, false);
  }
  expect_clean("startup-phase packets after login");
}

// An unknown message type is refused at once, as Postgres (SocketBackend) does before reading the
// length — not once a declared body of up to max_message_bytes has arrived (was: no answer, the junk
// buffered). Seen with a StartupMessage / SSLRequest / CancelRequest sent after login (type 0x00).
TEST_F(HostileTest, UnknownTypeByteRefusedAtOnce) {
  for (const std::string& bytes : {startup_packet_raw(80877103, ""), with_length('j', 0x1000, "junk")}) {
    auto c = open_logged_in();
    EXPECT_TRUE(send_or_closed(*c, bytes));
    Verdict v = read_verdict(*c, kAnswerDeadline);
    ASSERT_TRUE(v.error) << "no ErrorResponse before the body arrived: " << v.describe();
    EXPECT_EQ(v.error->sqlstate(), "08P01");
  }
  expect_clean("unknown type bytes");
}

// A Sync or a Flush with a non-empty body. Postgres answers ErrorResponse 08P01 "invalid message
// format" and then a ReadyForQuery that answers no Sync; the proxy counted replies by Sync and the
// client hung without its ReadyForQuery (and BUG-1, hostile_session_test.cc). Now the proxy refuses
// such a message before it reaches a server: FATAL 08P01 and a clean close, never a hang.
TEST_F(HostileTest, SyncOrFlushWithABodyIsAnswered) {
  const std::pair<const char*, std::string> cases[] = {
      {"Sync with a body", typed_message('S', "junk")},
      {"Flush with a body, then Sync", typed_message('H', "junk") + sync_msg()},
  };
  for (const auto& [name, bytes] : cases) {
    SCOPED_TRACE(name);
    auto c = open_logged_in();
    EXPECT_TRUE(send_or_closed(*c, bytes));
    Verdict v = read_verdict(*c, kAnswerDeadline);
    ASSERT_TRUE(v.error) << v.describe();
    EXPECT_EQ(v.error->sqlstate(), "08P01");
    EXPECT_TRUE(v.closed || v.ready == 'I') << "neither answered nor closed: " << v.describe();
    expect_clean(std::string(name) + ", the client still connected");  // its server must be free
  }
}

// Messages whose length promises more than is sent: the client then half-closes (the proxy must
// close, not wait), or holds the partial message while an honest client uses the only server.
TEST_F(HostileTest, LengthLongerThanBody) {
  for (const TypeSample& s : frontend_samples()) {
    SCOPED_TRACE(s.name);
    std::string partial = with_length(s.type, uint32_t(4 + s.body.size() + 100), s.body);
    {
      auto c = open_logged_in();
      EXPECT_TRUE(send_or_closed(*c, partial));
      ::shutdown(c->fd(), SHUT_WR);
      Verdict v = read_verdict(*c, kAnswerDeadline);
      EXPECT_TRUE(v.closed) << s.name << ": half-closed mid-message, not closed: " << v.describe();
    }
    auto held = open_logged_in();
    EXPECT_TRUE(send_or_closed(*held, partial));
    expect_clean(std::string(s.name) + " held mid-message");
  }
}

// Bodies shorter than their fields (every proper prefix of a valid body), then Sync.
TEST_F(HostileTest, BodyShorterThanItsFields) {
  for (const TypeSample& s : frontend_samples()) {
    if (s.body.empty() || s.type == 'd' || s.type == 'f' || s.type == 'p' || !std::isalpha(uint8_t(s.type)) || s.type == 'Z' || s.type == 'T' ||
        s.type == 'j') {
      continue;  // a server ignores CopyData/CopyFail outside COPY unparsed, or covered elsewhere (password, unknown types)
    }
    for (size_t k = 0; k < s.body.size(); ++k) {
      std::string what = std::string(s.name) + " cut to " + std::to_string(k) + " bytes";
      SCOPED_TRACE(what);
      auto c = open_logged_in();
      EXPECT_TRUE(send_or_closed(*c, typed_message(s.type, s.body.substr(0, k)) + sync_msg()));
      Verdict v = read_verdict(*c, kAnswerDeadline, true);
      EXPECT_TRUE(v.error || v.closed) << what << ": accepted: " << v.describe();
      expect_answered(v, what, false);
      if (v.error) {
        Verdict rest = read_verdict(*c, kAnswerDeadline);  // its ReadyForQuery, or the close
        EXPECT_FALSE(rest.timed_out) << what << ": " << rest.describe();
      }
      expect_in_sync(*c, what);
    }
  }
  expect_clean("bodies shorter than their fields");
}

// Counts that promise more than the body holds (a Bind whose parameter count exceeds the bytes ...).
TEST_F(HostileTest, CountsBeyondTheBody) {
  const std::string z("\0", 1);
  const std::vector<Seq> cases = {
      {"Bind: 1000 parameters, none sent", typed_message('B', z + z + be16(0) + be16(1000)), false},
      {"Bind: parameter length 2 GB - 1", typed_message('B', z + z + be16(0) + be16(1) + be32(0x7fffffffu) + "abc" + be16(0)), false},
      {"Bind: parameter length -2", typed_message('B', z + z + be16(0) + be16(1) + be32(0xfffffffeu) + be16(0)), false},
      {"Bind: 30000 formats, none sent", typed_message('B', z + z + be16(30000) + be16(0) + be16(0)), false},
      {"Bind: format code 7", typed_message('B', z + z + be16(1) + be16(7) + be16(0) + be16(0)), false},
      {"Bind: 500 result formats, none sent", typed_message('B', z + z + be16(0) + be16(0) + be16(500)), false},
      {"Bind: trailing garbage", typed_message('B', z + z + be16(0) + be16(0) + be16(0) + "garbage"), false},
      {"Parse: 30000 types, none sent", typed_message('P', z + cstr("SELECT 1") + be16(30000)), false},
      {"Parse: -1 types", typed_message('P', z + cstr("SELECT 1") + be16(0xffff)), false},
      {"Parse: no terminators", typed_message('P', "nameSELECT 1"), false},
      {"FunctionCall: 1000 arguments, none sent", typed_message('F', be32(2026) + be16(0) + be16(1000)), false},
      {"FunctionCall: argument length 1 GB", typed_message('F', be32(2026) + be16(0) + be16(1) + be32(0x40000000u) + be16(0)), false},
      {"Describe: no name terminator", typed_message('D', "Sabc"), false},
      {"Execute: no portal terminator", typed_message('E', "portal"), false},
      {"Close: empty", typed_message('C', ""), false},
      {"Query: no terminator", typed_message('Q', "SELECT 1"), false},
      {"Query: NUL inside", typed_message('Q', cstr("SELECT 1") + cstr("SELECT 2")), false},
      {"CopyFail: no terminator", typed_message('f', "why"), true},
  };
  for (const Seq& k : cases) {
    SCOPED_TRACE(k.name);
    auto c = open_logged_in();
    EXPECT_TRUE(send_or_closed(*c, k.bytes + sync_msg()));
    Verdict v = read_verdict(*c, kAnswerDeadline);
    expect_answered(v, k.name, k.ready_ok);
    expect_in_sync(*c, k.name);
  }
  expect_clean("counts beyond the body");
}

// A message that does not decode is refused where it is read, before the request asks for a server:
// with the pool's only server held by another client, the client hears why at once, not after a
// wait for a server it would never have used.
TEST_F(HostileTest, AMessageThatDoesNotDecodeIsRefusedBeforeItWaitsForAServer) {
  Pg holder(proxy_->spec());
  ASSERT_TRUE(holder.ok()) << holder.error();
  holder.must("BEGIN");  // the pool's one server stays bound to this transaction
  const std::string z("\0", 1);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"Parse", typed_message('P', z + cstr("SELECT 1") + be16(3))},
      {"Bind", typed_message('B', "no terminators")},
      {"Describe", typed_message('D', "Sabc")},
      {"Query", typed_message('Q', cstr("SELECT 1") + cstr("SELECT 2"))},
  };
  for (const auto& [type, bytes] : cases) {
    SCOPED_TRACE(type);
    auto c = open_logged_in();
    EXPECT_TRUE(send_or_closed(*c, bytes + sync_msg()));
    Verdict v = read_verdict(*c, kAnswerDeadline, true);
    ASSERT_TRUE(v.error) << v.describe();
    EXPECT_EQ(v.error->sqlstate(), "08P01") << v.describe();
    EXPECT_NE(v.error->message().find("invalid " + type + " message"), std::string::npos) << v.describe();
  }
  holder.must("COMMIT");
  expect_clean("messages that do not decode, with the server held");
}

TEST_F(HostileTest, BogusLengths) {
  for (const TypeSample& s : frontend_samples()) {
    for (uint32_t len : {0u, 1u, 3u, 0x40000001u, 0x7fffffffu, 0x80000000u, 0xffffffffu}) {
      std::string what = std::string(s.name) + " with length " + std::to_string(len);
      SCOPED_TRACE(what);
      auto c = open_logged_in();
      EXPECT_TRUE(send_or_closed(*c, with_length(s.type, len, s.body)));
      Verdict v = read_verdict(*c, kAnswerDeadline);
      EXPECT_TRUE(v.closed || v.error) << what << ": " << v.describe();
      expect_answered(v, what, false);
    }
    expect_clean(std::string(s.name) + " with bogus lengths");
  }
}

TEST_F(HostileTest, OversizedMessages) {
  {
    auto c = open_logged_in();  // declared max + 1, 64 KB of it sent
    // (the length field counts itself: max_message_bytes is the body's size)
    EXPECT_TRUE(send_or_closed(*c, with_length('Q', kMaxMessage + 5, std::string(65536, ' '))));
    expect_answered(read_verdict(*c, kAnswerDeadline), "declared max_message_bytes + 1", false);
    EXPECT_TRUE(c->closed());
  }
  for (char type : {'Q', 'P', 'B', 'd', 'F', 'j'}) {
    SCOPED_TRACE(std::string("2 MiB message of type ") + type);
    auto c = open_logged_in();
    EXPECT_TRUE(send_or_closed(*c, typed_message(type, std::string(2u << 20, 'x'))));
    Verdict v = read_verdict(*c, kAnswerDeadline);
    EXPECT_TRUE(v.closed || v.error) << v.describe();
    expect_answered(v, "2 MiB message", false);
  }
  {
    auto c = open_logged_in();  // inside COPY
    ASSERT_TRUE(c->send(query_message("COPY hostile_rows FROM STDIN")));
    auto in = c->read_message(kAnswerDeadline);
    ASSERT_TRUE(in && in->type == 'G') << "no CopyInResponse";
    EXPECT_TRUE(send_or_closed(*c, copy_data_msg(std::string(2u << 20, 'x'))));
    expect_answered(read_verdict(*c, kAnswerDeadline), "2 MiB CopyData", false);
  }
  {
    auto c = open_logged_in();  // just below the limit: served
    std::string sql = "SELECT length('" + std::string(kMaxMessage - 200, 'y') + "')";
    QueryOutcome q = simple_query(*c, sql);
    auto rows = data_rows(q.messages);
    EXPECT_EQ(q.status, 'I') << (q.error ? q.error->describe() : "no answer");
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0][0], std::to_string(kMaxMessage - 200));
  }
  expect_clean("oversized messages");
}

}  // namespace
}  // namespace pgs::it::hostile
