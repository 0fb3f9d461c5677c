// BindArgs: a Bind's formats, values and result formats read in place and checked once; the hostile
// layouts it must refuse as error values (and FunctionCall, which shares its argument rules).
#include <optional>
#include <string>
#include <vector>

#include "protocol/frontend.h"
#include "protocol/writer.h"
#include "tests/protocol/test_util.h"

namespace pgs::protocol::frontend {
namespace {

using test::be16;
using test::be32;
using test::bind_args;
using test::bind_body;
using test::bytes_of;
using test::only_frame;
using test::S;

// Every value the cursor yields, NULL as std::nullopt, copied out of the view.
std::vector<std::optional<std::string>> values_of(const ValueList& values) {
  std::vector<std::optional<std::string>> out;
  ValueList::Cursor cursor(values);
  std::optional<Bytes> v;
  while (cursor.next(v)) out.push_back(v ? std::optional<std::string>(as_string_view(*v)) : std::nullopt);
  return out;
}

std::vector<int16_t> formats_for_values(const BindArgs& args) {
  std::vector<int16_t> out;
  for (size_t i = 0; i < args.values.count; ++i) out.push_back(args.param_formats.for_value(i));
  return out;
}

Errc refusal(const std::string& rest) {
  auto a = BindArgs::decode(bytes_of(rest));
  EXPECT_FALSE(a.ok());
  return a.ok() ? Errc::unsupported : a.error().code;  // unsupported: never a BindArgs refusal
}

TEST(BindArgs, NoParametersAndNoResultFormats) {
  const std::string rest = bind_args({}, {}, {});
  auto a = BindArgs::decode(bytes_of(rest));
  ASSERT_TRUE(a.ok()) << a.error().detail;
  EXPECT_EQ(a->param_formats.count, 0u);
  EXPECT_EQ(a->values.count, 0u);
  EXPECT_EQ(as_string_view(a->values.block), be16(0)) << "the count alone";
  EXPECT_EQ(a->result_formats.count, 0u);
  EXPECT_TRUE(values_of(a->values).empty());
}

TEST(BindArgs, NoFormatCodeMeansEveryValueIsText) {
  const std::string rest = bind_args({}, {"a", "b"}, {});
  auto a = BindArgs::decode(bytes_of(rest));
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(formats_for_values(*a), (std::vector<int16_t>{0, 0}));
}

TEST(BindArgs, OneFormatCodeAppliesToEveryValue) {
  const std::string rest = bind_args({1}, {"a", "b", "c"}, {});
  auto a = BindArgs::decode(bytes_of(rest));
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->param_formats.count, 1u);
  EXPECT_EQ(formats_for_values(*a), (std::vector<int16_t>{1, 1, 1}));
  EXPECT_EQ(values_of(a->values), (std::vector<std::optional<std::string>>{"a", "b", "c"}));
}

TEST(BindArgs, OneFormatCodePerValueWithNullAndBinaryValues) {
  const std::string binary = S("\0\xff\x01");
  const std::string rest = bind_args({0, 1, 1, 0}, {"42", binary, std::nullopt, ""}, {});
  auto a = BindArgs::decode(bytes_of(rest));
  ASSERT_TRUE(a.ok()) << a.error().detail;
  EXPECT_EQ(formats_for_values(*a), (std::vector<int16_t>{0, 1, 1, 0}));
  EXPECT_EQ(values_of(a->values), (std::vector<std::optional<std::string>>{"42", binary, std::nullopt, ""}))
      << "an empty value is not NULL";
  // The block is the count and every value exactly as sent (the cache keys it).
  const std::string block = be16(4) + be32(2) + "42" + be32(3) + binary + be32(0xffffffffu) + be32(0);
  EXPECT_EQ(as_string_view(a->values.block), block);
  EXPECT_EQ(as_string_view(a->param_formats.codes), be16(0) + be16(1) + be16(1) + be16(0));
}

TEST(BindArgs, ResultFormatsAreReadAsGiven) {
  const std::string rest = bind_args({}, {"7"}, {0, 1, 1});
  auto a = BindArgs::decode(bytes_of(rest));
  ASSERT_TRUE(a.ok());
  ASSERT_EQ(a->result_formats.count, 3u);
  EXPECT_EQ(a->result_formats.at(0), 0);
  EXPECT_EQ(a->result_formats.at(1), 1);
  EXPECT_EQ(a->result_formats.at(2), 1);
  EXPECT_EQ(a->result_formats.for_value(2), 1);
}

TEST(BindArgs, OneFormatCodeWithNoValuesIsAccepted) {
  // The server only checks a count above 1 against the values.
  EXPECT_TRUE(BindArgs::decode(bytes_of(bind_args({1}, {}, {}))).ok());
  EXPECT_TRUE(BindArgs::decode(bytes_of(bind_args({0}, {std::nullopt}, {1}))).ok());
}

TEST(BindArgs, EveryTruncationIsRefused) {
  // Cut inside each field in turn: format count, codes, value count, a length, a value's bytes,
  // a NULL's length, result format count, result codes.
  const std::string rest = bind_args({0, 1}, {"42", std::nullopt}, {1, 0});
  ASSERT_TRUE(BindArgs::decode(bytes_of(rest)).ok());
  for (size_t n = 0; n < rest.size(); ++n) {
    EXPECT_EQ(refusal(rest.substr(0, n)), Errc::truncated) << "prefix " << n;
  }
}

TEST(BindArgs, ALengthBelowMinusOneIsMalformed) {
  for (uint32_t len : {0xfffffffeu, 0x80000000u}) {
    const std::string rest = be16(0) + be16(1) + be32(len) + "xx" + be16(0);
    EXPECT_EQ(refusal(rest), Errc::malformed) << len;
  }
}

TEST(BindArgs, ALengthBeyondTheBodyIsRefused) {
  EXPECT_EQ(refusal(be16(0) + be16(1) + be32(1000) + "x" + be16(0)), Errc::truncated);
  // The largest length: no size_t arithmetic may wrap past the check.
  EXPECT_EQ(refusal(be16(0) + be16(1) + be32(0x7fffffffu) + "x" + be16(0)), Errc::truncated);
  // A value that swallows the result format count.
  EXPECT_EQ(refusal(be16(0) + be16(1) + be32(3) + "ab" + be16(0)), Errc::truncated);
}

TEST(BindArgs, LyingCountsFailWithoutOverread) {
  EXPECT_EQ(refusal(be16(0) + be16(65535) + be32(1) + "x" + be16(0)), Errc::truncated);
  EXPECT_EQ(refusal(be16(65535) + be16(0) + be16(0)), Errc::truncated);
  EXPECT_EQ(refusal(be16(0) + be16(0) + be16(65535) + be16(0)), Errc::truncated);
}

TEST(BindArgs, AFormatCountNeitherZeroOneNorTheValueCountIsMalformed) {
  EXPECT_EQ(refusal(bind_args({0, 0, 0}, {"a", "b"}, {})), Errc::malformed);
  EXPECT_EQ(refusal(bind_args({0, 1}, {"a", "b", "c"}, {})), Errc::malformed);
  EXPECT_EQ(refusal(bind_args({0, 1}, {}, {})), Errc::malformed);
}

TEST(BindArgs, AFormatCodeOtherThanTextOrBinaryIsMalformed) {
  EXPECT_EQ(refusal(bind_args({2}, {"a"}, {})), Errc::malformed);
  EXPECT_EQ(refusal(bind_args({0, -1}, {"a", "b"}, {})), Errc::malformed);
  EXPECT_EQ(refusal(bind_args({}, {"a"}, {-1})), Errc::malformed);
  EXPECT_EQ(refusal(bind_args({}, {"a"}, {1, 2})), Errc::malformed);
}

TEST(BindArgs, TrailingBytesAreMalformed) {
  EXPECT_EQ(refusal(bind_args({}, {"a"}, {1}) + "x"), Errc::malformed);
  EXPECT_EQ(refusal(bind_args({}, {}, {}) + S("\0")), Errc::malformed);
}

TEST(BindArgs, TheMaximum65535ParametersWithOneCodeEach) {
  std::vector<int16_t> formats(65535, 1);
  std::vector<std::optional<std::string>> values(65535, std::nullopt);
  values[65534] = "last";
  const std::string rest = bind_args(formats, values, {});
  auto a = BindArgs::decode(bytes_of(rest));
  ASSERT_TRUE(a.ok()) << a.error().detail;
  EXPECT_EQ(a->param_formats.count, 65535u);
  EXPECT_EQ(a->values.count, 65535u);
  EXPECT_EQ(a->param_formats.for_value(65534), 1);
  auto all = values_of(a->values);
  ASSERT_EQ(all.size(), 65535u);
  EXPECT_EQ(all.back(), "last");
}

TEST(BindArgs, ACursorOverNoListYieldsNothing) {
  ValueList::Cursor cursor(ValueList{});
  std::optional<Bytes> v;
  EXPECT_FALSE(cursor.next(v));
}

TEST(BindDecode, NamesAndArgumentsOfAWholeBind) {
  std::string body = bind_body("p1", "s1", {0, 1}, {"42", std::nullopt}, {1});
  std::string wire;
  write_bind(wire, "", "renamed", std::string_view(body).substr(6));  // region after "p1\0s1\0"
  auto b = Bind::decode(only_frame(wire).body);
  ASSERT_TRUE(b.ok()) << b.error().detail;
  EXPECT_EQ(b->portal, "");
  EXPECT_EQ(b->statement, "renamed");
  EXPECT_EQ(formats_for_values(b->args), (std::vector<int16_t>{0, 1}));
  EXPECT_EQ(values_of(b->args.values), (std::vector<std::optional<std::string>>{"42", std::nullopt}));
  ASSERT_EQ(b->args.result_formats.count, 1u);
  EXPECT_EQ(b->args.result_formats.at(0), 1);

  auto orig = Bind::decode(bytes_of(body));
  ASSERT_TRUE(orig.ok());
  EXPECT_EQ(orig->portal, "p1");
  EXPECT_EQ(orig->statement, "s1");
}

TEST(BindDecode, RefusesWhatBindArgsRefusesAndValidateAgrees) {
  const std::vector<std::string> bad = {
      bind_body("", "", {0, 0, 0}, {"a", "b"}, {}),
      bind_body("", "", {2}, {"a"}, {}),
      bind_body("", "", {}, {"a"}, {-1}),
      S("\0\0") + be16(0) + be16(1) + be32(0xfffffffeu) + be16(0),
      S("\0\0") + be16(0) + be16(65535) + be32(1) + "x" + be16(0),
      bind_body("", "", {}, {}, {}) + "x",
  };
  for (const std::string& body : bad) {
    auto b = Bind::decode(bytes_of(body));
    ASSERT_FALSE(b.ok());
    auto args = BindArgs::decode(bytes_of(body).subspan(2));
    ASSERT_FALSE(args.ok());
    EXPECT_EQ(b.error().code, args.error().code);
    auto v = validate('B', bytes_of(body));
    ASSERT_FALSE(v.ok());
    EXPECT_EQ(v.error().code, b.error().code);
  }
  EXPECT_TRUE(validate('B', bytes_of(bind_body("p", "s", {1}, {"ab", std::nullopt}, {0, 1}))).ok());
}

TEST(FunctionCallDecode, ArgumentsFollowBindsRules) {
  // lo_write(fd 0, bytes): function 955, one code for both arguments (binary), binary result.
  const std::string args = be16(2) + be32(4) + be32(0) + be32(3) + "abc";
  const std::string body = be32(955) + be16(1) + be16(1) + args + be16(1);  // the views borrow from it
  auto fc = FunctionCall::decode(bytes_of(body));
  ASSERT_TRUE(fc.ok()) << fc.error().detail;
  EXPECT_EQ(fc->function_oid, 955u);
  EXPECT_EQ(fc->arg_formats.for_value(1), 1);
  EXPECT_EQ(as_string_view(fc->args.block), args);
  auto all = values_of(fc->args);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[1], "abc");

  const std::string null_body = be32(1) + be16(0) + be16(1) + be32(0xffffffffu) + be16(0);
  auto null_arg = FunctionCall::decode(bytes_of(null_body));
  ASSERT_TRUE(null_arg.ok());
  EXPECT_EQ(values_of(null_arg->args), (std::vector<std::optional<std::string>>{std::nullopt}));

  auto mismatch = FunctionCall::decode(bytes_of(be32(1) + be16(3) + be16(0) + be16(0) + be16(0) + args + be16(0)));
  ASSERT_FALSE(mismatch.ok());
  EXPECT_EQ(mismatch.error().code, Errc::malformed);
  EXPECT_EQ(FunctionCall::decode(bytes_of(be32(1) + be16(0) + args + be16(2))).error().code, Errc::malformed)
      << "result format";
  EXPECT_EQ(FunctionCall::decode(bytes_of(be32(1) + be16(0) + be16(1) + be32(0xfffffffdu) + be16(0))).error().code,
            Errc::malformed);
  EXPECT_EQ(FunctionCall::decode(bytes_of(be32(1) + be16(0) + args + be16(0) + "x")).error().code, Errc::malformed);
}

}  // namespace
}  // namespace pgs::protocol::frontend
