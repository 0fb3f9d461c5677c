// Backend message views: round trips through the writers the proxy uses towards clients.
#include <optional>
#include <vector>

#include "protocol/backend.h"
#include "protocol/writer.h"
#include "tests/protocol/test_util.h"

namespace pgs::protocol::backend {
namespace {

using test::be16;
using test::be32;
using test::bytes_of;
using test::msg;
using test::only_frame;
using test::S;

TEST(BackendTypes, NamesFromTheTable) {
  EXPECT_STREQ(type_name('D'), "DataRow");
  EXPECT_STREQ(type_name('Z'), "ReadyForQuery");
  EXPECT_STREQ(type_name('v'), "NegotiateProtocolVersion");
  EXPECT_EQ(type_name('Q'), nullptr);
  EXPECT_FALSE(is_known_type('Q'));
}

TEST(BackendDecode, ErrorResponseRoundTrip) {
  std::string wire;
  write_error(wire, {.severity = "FATAL", .sqlstate = "28P01", .message = "password authentication failed",
                     .detail = "d", .hint = "h"});
  Frame f = only_frame(wire);
  ASSERT_EQ(f.type, 'E');
  auto e = ErrorFields::decode(f.body);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->severity, "FATAL");
  EXPECT_EQ(e->sqlstate, "28P01");
  EXPECT_EQ(e->message, "password authentication failed");
  EXPECT_EQ(e->detail, "d");
  EXPECT_EQ(e->hint, "h");

  wire.clear();
  write_notice(wire, {.severity = "NOTICE", .sqlstate = "00000", .message = "hello"});
  Frame n = only_frame(wire);
  EXPECT_EQ(n.type, 'N');
  EXPECT_EQ(ErrorFields::decode(n.body)->detail, "");
}

TEST(BackendDecode, ErrorFieldsPreferNonLocalizedSeverityAndSkipUnknown) {
  const std::string body = S("SFEHLER\0VERROR\0C42P01\0Mno\0P15\0Rparser.c\0\0");
  auto e = ErrorFields::decode(bytes_of(body));
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->severity, "ERROR");
  EXPECT_EQ(e->sqlstate, "42P01");
  EXPECT_FALSE(ErrorFields::decode(bytes_of(S("SERROR\0"))).ok());          // no terminator
  EXPECT_FALSE(ErrorFields::decode(bytes_of(S("SERROR\0\0junk"))).ok());    // trailing
}

TEST(BackendDecode, WriterNeverEmbedsNul) {
  std::string wire;
  write_error(wire, {.severity = "ERROR", .sqlstate = "08P01", .message = S("bad\0MSneaky")});
  auto e = ErrorFields::decode(only_frame(wire).body);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->message, "bad");
}

TEST(BackendDecode, AuthenticationRequests) {
  std::string wire;
  write_auth_ok(wire);
  EXPECT_EQ(Authentication::decode(only_frame(wire).body)->code, 0);

  wire.clear();
  write_auth_cleartext(wire);
  EXPECT_EQ(Authentication::decode(only_frame(wire).body)->code, 3);

  wire.clear();
  const uint8_t salt[4] = {1, 2, 3, 4};
  write_auth_md5(wire, salt);
  auto md5 = Authentication::decode(only_frame(wire).body);
  ASSERT_TRUE(md5.ok());
  EXPECT_EQ(md5->code, 5);
  ASSERT_EQ(md5->data.size(), 4u);
  EXPECT_EQ(md5->data[3], 4);

  wire.clear();
  write_auth_sasl(wire, {"SCRAM-SHA-256", "SCRAM-SHA-256-PLUS"});
  auto sasl = Authentication::decode(only_frame(wire).body);
  ASSERT_TRUE(sasl.ok());
  EXPECT_EQ(sasl->mechanisms(), (std::vector<std::string_view>{"SCRAM-SHA-256", "SCRAM-SHA-256-PLUS"}));

  wire.clear();
  write_auth_sasl_continue(wire, "r=abc,s=c2FsdA==,i=4096");
  auto cont = Authentication::decode(only_frame(wire).body);
  EXPECT_EQ(cont->code, 11);
  EXPECT_EQ(as_string_view(cont->data), "r=abc,s=c2FsdA==,i=4096");

  wire.clear();
  write_auth_sasl_final(wire, "v=xyz");
  EXPECT_EQ(Authentication::decode(only_frame(wire).body)->code, 12);

  EXPECT_FALSE(Authentication::decode(bytes_of(be32(5) + "abc")).ok());
  EXPECT_FALSE(Authentication::decode(bytes_of(be32(0) + "x")).ok());
  EXPECT_FALSE(Authentication::decode(bytes_of(be32(10) + S("SCRAM-SHA-256\0"))).ok());
  EXPECT_TRUE(Authentication::decode(bytes_of(be32(7))).ok());  // GSS: unsupported by us, valid layout
}

TEST(BackendDecode, SessionMessagesRoundTrip) {
  std::string wire;
  write_parameter_status(wire, "TimeZone", "UTC");
  auto ps = ParameterStatus::decode(only_frame(wire).body);
  ASSERT_TRUE(ps.ok());
  EXPECT_EQ(ps->name, "TimeZone");
  EXPECT_EQ(ps->value, "UTC");

  wire.clear();
  write_backend_key_data(wire, 123, -456);
  auto k = BackendKeyData::decode(only_frame(wire).body);
  ASSERT_TRUE(k.ok());
  EXPECT_EQ(k->pid, 123);
  EXPECT_EQ(k->secret, -456);

  for (char status : {'I', 'T', 'E'}) {
    wire.clear();
    write_ready_for_query(wire, status);
    EXPECT_EQ(ReadyForQuery::decode(only_frame(wire).body)->status, status);
  }
  EXPECT_FALSE(ReadyForQuery::decode(bytes_of("X")).ok());

  wire.clear();
  write_negotiate_protocol_version(wire, 0, {"_pq_.a", "_pq_.b"});
  auto n = NegotiateProtocolVersion::decode(only_frame(wire).body);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n->newest_minor, 0);
  EXPECT_EQ(n->unrecognized, (std::vector<std::string_view>{"_pq_.a", "_pq_.b"}));
  EXPECT_FALSE(NegotiateProtocolVersion::decode(bytes_of(be32(0) + be32(1000000) + S("a\0"))).ok());
}

TEST(BackendDecode, RowDescriptionAndDataRowRoundTrip) {
  std::string wire;
  write_row_description(wire, {{"database"}, {"cl_active", 20, 8}});
  auto rd = RowDescription::decode(only_frame(wire).body);
  ASSERT_TRUE(rd.ok());
  ASSERT_EQ(rd->fields.size(), 2u);
  EXPECT_EQ(rd->fields[0].name, "database");
  EXPECT_EQ(rd->fields[0].type_oid, 25u);
  EXPECT_EQ(rd->fields[1].type_oid, 20u);
  EXPECT_EQ(rd->fields[1].type_size, 8);
  EXPECT_EQ(rd->fields[1].type_modifier, -1);

  wire.clear();
  write_data_row(wire, {std::string_view("flopods"), std::nullopt, std::string_view("")});
  auto row = DataRow::decode(only_frame(wire).body);
  ASSERT_TRUE(row.ok());
  EXPECT_EQ(row->column_count, 3);
  DataRow::Cursor cur(*row);
  std::optional<Bytes> v;
  ASSERT_TRUE(cur.next(v));
  EXPECT_EQ(as_string_view(*v), "flopods");
  ASSERT_TRUE(cur.next(v));
  EXPECT_FALSE(v.has_value());
  ASSERT_TRUE(cur.next(v));
  ASSERT_TRUE(v.has_value());
  EXPECT_TRUE(v->empty());
  EXPECT_FALSE(cur.next(v));
}

TEST(BackendDecode, DataRowRejectsBadColumns) {
  EXPECT_FALSE(DataRow::decode(bytes_of(be16(0xffff))).ok());                       // negative count
  EXPECT_FALSE(DataRow::decode(bytes_of(be16(1) + be32(5) + "abc")).ok());          // short value
  EXPECT_FALSE(DataRow::decode(bytes_of(be16(1) + be32(0xfffffffeu))).ok());        // length -2
  EXPECT_FALSE(DataRow::decode(bytes_of(be16(1) + be32(1) + "ab")).ok());           // trailing
  EXPECT_FALSE(DataRow::decode(bytes_of(be16(2) + be32(0xffffffffu))).ok());        // missing column
}

TEST(BackendDecode, CommandCompleteAndEmptyReplies) {
  std::string wire;
  write_command_complete(wire, "SELECT 3");
  EXPECT_EQ(CommandComplete::decode(only_frame(wire).body)->tag, "SELECT 3");
  wire.clear();
  write_empty_query_response(wire);
  write_parse_complete(wire);
  write_bind_complete(wire);
  write_close_complete(wire);
  write_no_data(wire);
  std::string_view types = "I123n";
  Bytes buf = bytes_of(wire);
  for (char t : types) {
    FrameResult r = split_frame(buf, 1024);
    ASSERT_TRUE(std::holds_alternative<Frame>(r));
    const Frame& f = std::get<Frame>(r);
    EXPECT_EQ(f.type, t);
    EXPECT_TRUE(validate(f.type, f.body).ok());
    buf = buf.subspan(f.size);
  }
  EXPECT_TRUE(buf.empty());
}

TEST(BackendDecode, DescribeCopyAndNotify) {
  auto pd = ParameterDescription::decode(bytes_of(be16(2) + be32(23) + be32(25)));
  ASSERT_TRUE(pd.ok());
  EXPECT_EQ(pd->type_oids, (std::vector<uint32_t>{23, 25}));
  EXPECT_FALSE(ParameterDescription::decode(bytes_of(be16(3) + be32(23))).ok());

  auto cr = CopyResponse::decode(bytes_of(std::string(1, '\0') + be16(2) + be16(0) + be16(0)));
  ASSERT_TRUE(cr.ok());
  EXPECT_EQ(cr->format, 0);
  EXPECT_EQ(cr->column_formats.size(), 2u);

  const std::string notify = be32(77) + S("chan\0payload\0");
  auto nr = NotificationResponse::decode(bytes_of(notify));
  ASSERT_TRUE(nr.ok());
  EXPECT_EQ(nr->pid, 77);
  EXPECT_EQ(nr->channel, "chan");
  EXPECT_EQ(nr->payload, "payload");
}

struct Sample {
  char type;
  std::string body;
  bool strict_prefix;
};

std::vector<Sample> samples() {
  return {
      {'R', be32(5) + "salt", true},
      {'K', be32(1) + be32(2), true},
      {'S', S("a\0b\0"), true},
      {'Z', "I", true},
      {'E', S("SERROR\0C08P01\0Mx\0\0"), true},
      {'N', S("SNOTICE\0\0"), true},
      {'T', be16(1) + S("c\0") + be32(0) + be16(0) + be32(25) + be16(0xffff) + be32(0xffffffffu) + be16(0), true},
      {'D', be16(2) + be32(1) + "x" + be32(0xffffffffu), true},
      {'C', S("SELECT 1\0"), true},
      {'I', "", true},
      {'1', "", true},
      {'2', "", true},
      {'3', "", true},
      {'n', "", true},
      {'t', be16(1) + be32(23), true},
      {'s', "", true},
      {'G', std::string(1, '\0') + be16(1) + be16(0), true},
      {'H', std::string(1, '\1') + be16(1) + be16(1), true},
      {'W', std::string(1, '\0') + be16(0), true},
      {'d', "row data", false},
      {'c', "", true},
      {'A', be32(1) + S("ch\0\0"), true},
      {'V', be32(2) + "ok", true},
      {'v', be32(0) + be32(1) + S("_pq_.x\0"), true},
  };
}

TEST(BackendValidate, EveryTypeAcceptsItsSampleAndRejectsTruncations) {
  for (const Sample& s : samples()) {
    std::string wire = msg(s.type, s.body);
    Frame f = only_frame(wire);
    EXPECT_TRUE(validate(f.type, f.body).ok()) << s.type;
    if (!s.strict_prefix) continue;
    for (size_t n = 0; n < s.body.size(); ++n) {
      EXPECT_FALSE(validate(s.type, bytes_of(s.body).first(n)).ok()) << s.type << " prefix " << n;
    }
    std::string longer = s.body + "x";
    EXPECT_FALSE(validate(s.type, bytes_of(longer)).ok()) << s.type << " trailing";
  }
  EXPECT_EQ(validate('Q', {}).error().code, Errc::unsupported);
}

}  // namespace
}  // namespace pgs::protocol::backend
