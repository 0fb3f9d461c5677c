// Frontend message views: round trips through the writers, truncation, trailing bytes, limits.
#include <optional>
#include <vector>

#include "protocol/frontend.h"
#include "protocol/writer.h"
#include "tests/protocol/test_util.h"

namespace pgs::protocol::frontend {
namespace {

using test::be16;
using test::be32;
using test::bind_body;
using test::bytes_of;
using test::msg;
using test::only_frame;
using test::S;

TEST(FrontendTypes, NamesFromTheTable) {
  EXPECT_STREQ(type_name('Q'), "Query");
  EXPECT_STREQ(type_name('D'), "Describe");
  EXPECT_STREQ(type_name('p'), "PasswordMessage");
  EXPECT_EQ(type_name('Z'), nullptr);
  EXPECT_TRUE(is_known_type('F'));
  EXPECT_FALSE(is_known_type('\0'));
}

TEST(FrontendDecode, Query) {
  std::string wire;
  write_query(wire, "select 1; select 2");
  Frame f = only_frame(wire);
  ASSERT_EQ(f.type, 'Q');
  auto q = Query::decode(f.body);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->sql, "select 1; select 2");
}

TEST(FrontendDecode, ParseRoundTrip) {
  std::string wire;
  write_parse(wire, "s1", "select $1::int, $2", {23, 0});
  auto p = Parse::decode(only_frame(wire).body);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->name, "s1");
  EXPECT_EQ(p->sql, "select $1::int, $2");
  EXPECT_EQ(p->param_count(), 2u);
  EXPECT_EQ(p->param_type(0), 23u);
  EXPECT_EQ(p->param_types(), (std::vector<uint32_t>{23, 0}));
  EXPECT_EQ(as_string_view(p->param_type_block), be16(2) + be32(23) + be32(0));
}

TEST(FrontendDecode, ParseNameFromTheHeadOfAStreamedParse) {
  EXPECT_EQ(*Parse::decode_name(bytes_of(S("s1\0select repeat("))), "s1");
  EXPECT_FALSE(Parse::decode_name(bytes_of(S("s1 without its end"))).ok());
}

TEST(FrontendDecode, BindViewReadsTheNamesAndLeavesTheRestAsItCame) {
  std::string body = bind_body("p1", "s1", {0, 1}, {"42", std::nullopt}, {1});
  auto v = BindView::decode(bytes_of(body));
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->portal, "p1");
  EXPECT_EQ(v->statement, "s1");
  EXPECT_EQ(as_string_view(v->rest), std::string_view(body).substr(6));
  // The head of a Bind whose values are still streaming in reads the same.
  const std::string first_bytes = body.substr(0, 8);  // the view borrows from it
  auto head = BindView::decode(bytes_of(first_bytes));
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->statement, "s1");
  EXPECT_EQ(head->rest.size(), 2u);
  EXPECT_FALSE(BindView::decode(bytes_of(S("p1\0s1"))).ok());
  EXPECT_FALSE(BindView::decode(bytes_of(S("p1"))).ok());
  EXPECT_FALSE(BindView::decode(bytes_of(S(""))).ok());
}

TEST(FrontendDecodeMessage, EachTypeGetsItsViewOnce) {
  std::string wire;
  write_query(wire, "select 1");
  write_parse(wire, "s1", "select $1", {23});
  wire += msg('B', bind_body("", "s1", {}, {"7"}, {}));
  write_describe(wire, 'P', "");
  write_execute(wire, "", 0);
  write_close(wire, 'S', "s1");
  write_sync(wire);
  std::vector<Message> got;
  Bytes rest = bytes_of(wire);
  while (!rest.empty()) {
    auto r = split_frame(rest, 1 << 20);
    const Frame& f = std::get<Frame>(r);
    auto m = decode_message(f);
    ASSERT_TRUE(m.ok()) << f.type;
    got.push_back(*m);
    rest = rest.subspan(f.size);
  }
  ASSERT_EQ(got.size(), 7u);
  EXPECT_EQ(got[0].as<Query>()->sql, "select 1");
  EXPECT_EQ(got[1].as<Parse>()->name, "s1");
  EXPECT_EQ(got[1].as<Parse>()->param_type(0), 23u);
  EXPECT_EQ(got[2].as<BindView>()->statement, "s1");
  EXPECT_EQ(got[3].as<Describe>()->kind, 'P');
  EXPECT_EQ(got[4].as<Execute>()->max_rows, 0);
  EXPECT_EQ(got[5].as<Close>()->name, "s1");
  EXPECT_EQ(got[6].type(), 'S');
  EXPECT_TRUE(std::holds_alternative<std::monostate>(got[6].view));
}

TEST(FrontendDecodeMessage, ABrokenViewIsAnErrorAndAStreamedHeadIsRead) {
  auto decodes = [](char type, const std::string& body) {
    const std::string wire = msg(type, body);
    return decode_message(only_frame(wire)).ok();
  };
  EXPECT_FALSE(decodes('Q', "no terminator"));
  EXPECT_FALSE(decodes('P', S("s1\0select 1\0") + be16(3)));
  EXPECT_FALSE(decodes('D', S("X\0")));
  EXPECT_FALSE(decodes('C', S("S")));
  EXPECT_FALSE(decodes('E', S("\0") + be16(0)));
  EXPECT_TRUE(decodes('B', S("\0\0")));
  // A streamed Parse (the rest of it not buffered yet) is read as far as its name.
  const std::string wire = msg('P', S("s1\0select 1\0") + be16(0));
  Frame f = only_frame(wire);
  f.streamed = 100;
  auto m = decode_message(f);
  ASSERT_TRUE(m.ok());
  ASSERT_NE(m->as<ParseName>(), nullptr);
  EXPECT_EQ(m->as<ParseName>()->name, "s1");
  const std::string query = msg('Q', "select");
  Frame q = only_frame(query);
  q.streamed = 100;
  auto mq = decode_message(q);
  ASSERT_TRUE(mq.ok());
  EXPECT_TRUE(std::holds_alternative<std::monostate>(mq->view));
}

TEST(FrontendDecode, ParseCountMustMatchBytes) {
  // Claims 65535 types with none present: rejected before anything is reserved.
  EXPECT_FALSE(Parse::decode(bytes_of(S("\0select 1\0") + be16(65535))).ok());
  EXPECT_FALSE(Parse::decode(bytes_of(S("\0select 1\0") + be16(1) + be32(23) + "x")).ok());
}

TEST(FrontendDecode, DescribeExecuteCloseRoundTrip) {
  std::string wire;
  write_describe(wire, 'S', "s1");
  auto d = Describe::decode(only_frame(wire).body);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->kind, 'S');
  EXPECT_EQ(d->name, "s1");

  wire.clear();
  write_execute(wire, "p", 10);
  auto e = Execute::decode(only_frame(wire).body);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->portal, "p");
  EXPECT_EQ(e->max_rows, 10);

  wire.clear();
  write_close(wire, 'P', "");
  auto c = Close::decode(only_frame(wire).body);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->kind, 'P');
  EXPECT_EQ(c->name, "");

  EXPECT_FALSE(Describe::decode(bytes_of(S("Xs1\0"))).ok());
  EXPECT_FALSE(Close::decode(bytes_of(S("Q\0"))).ok());
}

TEST(FrontendDecode, PasswordAndSasl) {
  std::string wire;
  write_password(wire, "md5abc");
  auto p = PasswordMessage::decode(only_frame(wire).body);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->password, "md5abc");

  wire.clear();
  write_sasl_initial_response(wire, "SCRAM-SHA-256", "n,,n=,r=abc");
  auto i = SaslInitialResponse::decode(only_frame(wire).body);
  ASSERT_TRUE(i.ok());
  EXPECT_EQ(i->mechanism, "SCRAM-SHA-256");
  EXPECT_EQ(i->data, "n,,n=,r=abc");

  const std::string no_data = S("SCRAM-SHA-256\0") + be32(0xffffffffu);
  auto none = SaslInitialResponse::decode(bytes_of(no_data));
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->data, "");
  EXPECT_FALSE(SaslInitialResponse::decode(bytes_of(S("M\0") + be32(0xfffffffeu))).ok());
  EXPECT_FALSE(SaslInitialResponse::decode(bytes_of(S("M\0") + be32(5) + "abc")).ok());

  wire.clear();
  write_sasl_response(wire, "c=biws,r=x,p=y");
  auto r = SaslResponse::decode(only_frame(wire).body);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->data, "c=biws,r=x,p=y");
}

TEST(FrontendDecode, CopyFailAndFunctionCall) {
  const std::string copy_fail = S("client gave up\0");
  auto cf = CopyFail::decode(bytes_of(copy_fail));
  ASSERT_TRUE(cf.ok());
  EXPECT_EQ(cf->message, "client gave up");

  // lo_open(oid 1234, mode): function 952, two int4 args in binary, binary result.
  std::string body = be32(952) + be16(1) + be16(1) + be16(2) + be32(4) + be32(1234) + be32(4) +
                     be32(0x60000) + be16(1);
  auto fc = FunctionCall::decode(bytes_of(body));
  ASSERT_TRUE(fc.ok()) << fc.error().detail;
  EXPECT_EQ(fc->function_oid, 952u);
  EXPECT_EQ(fc->args.count, 2u);
  EXPECT_EQ(fc->arg_formats.for_value(1), 1);
  EXPECT_EQ(fc->result_format, 1);
  EXPECT_TRUE(validate('F', bytes_of(body)).ok());
}

// A valid body of each typed frontend message.
struct Sample {
  char type;
  std::string body;
  bool strict_prefix;  // every strict prefix must fail to decode
};

std::vector<Sample> samples() {
  return {
      {'Q', S("select 1\0"), true},
      {'P', S("s\0select $1\0") + be16(1) + be32(23), true},
      {'B', bind_body("p", "s", {1}, {"ab", std::nullopt}, {0, 1}), true},
      {'D', S("Ss\0"), true},
      {'E', S("p\0") + be32(0), true},
      {'C', S("Pp\0"), true},
      {'S', "", true},
      {'H', "", true},
      {'X', "", true},
      {'d', "any bytes", false},
      {'c', "", true},
      {'f', S("oops\0"), true},
      {'F', be32(1) + be16(0) + be16(1) + be32(0xffffffffu) + be16(0), true},
      {'p', S("secret\0"), false},
  };
}

TEST(FrontendValidate, EveryTypeAcceptsItsSample) {
  for (const Sample& s : samples()) {
    EXPECT_TRUE(validate(s.type, bytes_of(s.body)).ok()) << s.type;
    std::string wire = msg(s.type, s.body);
    Frame f = only_frame(wire);
    EXPECT_EQ(f.type, s.type);
    EXPECT_TRUE(validate(f.type, f.body).ok()) << s.type;
  }
}

TEST(FrontendValidate, TruncatedBodiesFail) {
  for (const Sample& s : samples()) {
    if (!s.strict_prefix) continue;
    for (size_t n = 0; n < s.body.size(); ++n) {
      EXPECT_FALSE(validate(s.type, bytes_of(s.body).first(n)).ok()) << s.type << " prefix " << n;
    }
  }
}

TEST(FrontendValidate, TrailingBytesFail) {
  for (const Sample& s : samples()) {
    if (!s.strict_prefix) continue;
    std::string longer = s.body + "x";
    auto r = validate(s.type, bytes_of(longer));
    ASSERT_FALSE(r.ok()) << s.type;
  }
}

TEST(FrontendValidate, UnknownTypeIsUnsupported) {
  auto r = validate('Z', {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::unsupported);
  EXPECT_FALSE(validate('p', {}).ok());
}

}  // namespace
}  // namespace pgs::protocol::frontend
