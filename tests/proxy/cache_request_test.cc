// scan_cacheable_request: which buffered requests are one unit the result cache may answer.
#include "proxy/request/cache_request.h"

#include <gtest/gtest.h>

#include "protocol/writer.h"

namespace pgs::proxy {
namespace {

// The unit at the start of `buffered`, as the client connection finds it: decoded once, then scanned.
std::optional<CacheableRequest> scan_unit(protocol::Bytes buffered) {
  return scan_cacheable_request(decode_buffered_request(buffered, 1 << 20));
}

protocol::Bytes view(const std::string& s) { return {reinterpret_cast<const uint8_t*>(s.data()), s.size()}; }

// Bind with no parameters and one result format for all columns.
void add_bind(std::string& out, std::string_view portal, std::string_view statement, int16_t format = 0) {
  std::string rest("\0\0\0\0\0\1", 6);
  rest.push_back(static_cast<char>(format >> 8));
  rest.push_back(static_cast<char>(format & 0xff));
  protocol::write_bind(out, portal, statement, rest);
}

TEST(CacheRequest, SimpleQueryIsOneUnitWhateverFollows) {
  std::string b;
  protocol::write_query(b, "SELECT 1");
  size_t first = b.size();
  protocol::write_query(b, "SELECT 2");
  auto r = scan_unit(view(b));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->shape, cache::ReplyShape::simple);
  EXPECT_EQ(r->sql, "SELECT 1");
  EXPECT_EQ(r->bytes, first);
  std::string prefix;
  write_cache_hit_prefix(*r, prefix);
  EXPECT_TRUE(prefix.empty());
}

TEST(CacheRequest, ParseBindDescribeExecuteSync) {
  std::string b;
  protocol::write_parse(b, "", "SELECT $1", {23});
  add_bind(b, "", "", 1);
  protocol::write_describe(b, 'P', "");
  protocol::write_execute(b, "", 0);
  protocol::write_sync(b);
  size_t whole = b.size();
  protocol::write_query(b, "next");
  auto r = scan_unit(view(b));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->shape, cache::ReplyShape::extended_described);
  ASSERT_TRUE(r->parse);
  EXPECT_EQ(r->sql, "SELECT $1");
  EXPECT_EQ(r->parse->param_types(), std::vector<uint32_t>{23});
  EXPECT_EQ(r->bind.rest.size(), 8u) << "formats, values and result formats, raw";
  EXPECT_EQ(r->bind.rest.back(), 1) << "binary results";
  EXPECT_EQ(r->bytes, whole);
  std::string prefix;
  write_cache_hit_prefix(*r, prefix);
  EXPECT_EQ(prefix, std::string("1\0\0\0\4" "2\0\0\0\4", 10)) << "ParseComplete, BindComplete";
}

TEST(CacheRequest, NamedStatementWithoutParseOrDescribe) {
  std::string b;
  add_bind(b, "", "s1");
  protocol::write_execute(b, "", 0);
  protocol::write_sync(b);
  auto r = scan_unit(view(b));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->shape, cache::ReplyShape::extended);
  EXPECT_FALSE(r->parse);
  EXPECT_EQ(r->bind.statement, "s1");
  std::string prefix;
  write_cache_hit_prefix(*r, prefix);
  EXPECT_EQ(prefix, std::string("2\0\0\0\4", 5));
}

TEST(CacheRequest, NotOneUnit) {
  auto batch = [](auto&& build) {
    std::string b;
    build(b);
    return scan_unit(view(b)).has_value();
  };
  // No Sync yet: not complete.
  EXPECT_FALSE(batch([](std::string& b) {
    protocol::write_parse(b, "", "SELECT 1", {});
    add_bind(b, "", "");
    protocol::write_execute(b, "", 0);
  }));
  // A row limit (PortalSuspended), a named portal, a Describe of the statement, a Flush, two Executes.
  EXPECT_FALSE(batch([](std::string& b) {
    add_bind(b, "", "s1");
    protocol::write_execute(b, "", 10);
    protocol::write_sync(b);
  }));
  EXPECT_FALSE(batch([](std::string& b) {
    add_bind(b, "p1", "s1");
    protocol::write_execute(b, "p1", 0);
    protocol::write_sync(b);
  }));
  EXPECT_FALSE(batch([](std::string& b) {
    protocol::write_parse(b, "", "SELECT 1", {});
    protocol::write_describe(b, 'S', "");
    add_bind(b, "", "");
    protocol::write_execute(b, "", 0);
    protocol::write_sync(b);
  }));
  EXPECT_FALSE(batch([](std::string& b) {
    add_bind(b, "", "s1");
    protocol::write_execute(b, "", 0);
    protocol::write_flush(b);
  }));
  EXPECT_FALSE(batch([](std::string& b) {
    add_bind(b, "", "s1");
    protocol::write_execute(b, "", 0);
    protocol::write_execute(b, "", 0);
    protocol::write_sync(b);
  }));
  // A Parse of one name and a Bind of another.
  EXPECT_FALSE(batch([](std::string& b) {
    protocol::write_parse(b, "a", "SELECT 1", {});
    add_bind(b, "", "b");
    protocol::write_execute(b, "", 0);
    protocol::write_sync(b);
  }));
  // Truncated or malformed frames never scan.
  std::string q;
  protocol::write_query(q, "SELECT 1");
  EXPECT_FALSE(scan_unit(view(q.substr(0, q.size() - 1))));
  EXPECT_FALSE(scan_unit(view(std::string("B\0\0\0\4", 5))));
  EXPECT_FALSE(scan_unit(view("")));
}

// Issue 12 item 6: one entry per statement. The key's view of a request depends on the text, the
// declared types, the parameter bytes and formats and the result formats, never on the statement name.
std::string bind_region(const std::vector<std::string>& values, std::vector<int16_t> param_formats,
                        std::vector<int16_t> result_formats) {
  std::string r;
  auto put16 = [&](int v) { r.push_back(static_cast<char>((v >> 8) & 0xff)); r.push_back(static_cast<char>(v & 0xff)); };
  put16(static_cast<int>(param_formats.size()));
  for (int16_t f : param_formats) put16(f);
  put16(static_cast<int>(values.size()));
  for (const auto& v : values) {
    uint32_t n = static_cast<uint32_t>(v.size());
    for (int shift = 24; shift >= 0; shift -= 8) r.push_back(static_cast<char>((n >> shift) & 0xff));
    r.append(v);
  }
  put16(static_cast<int>(result_formats.size()));
  for (int16_t f : result_formats) put16(f);
  return r;
}

const std::vector<uint32_t> kNoTypes;  // a named statement parsed without declared types

// [Parse(parse_name)] Bind(statement) [Describe] Execute Sync, scanned.
std::optional<CacheableRequest> scan_one(std::string& b, bool parse, std::string_view name, const std::string& region,
                                         const std::vector<uint32_t>& types, bool describe = true) {
  if (parse) protocol::write_parse(b, name, "SELECT v FROM t WHERE id = $1", types);
  protocol::write_bind(b, "", name, region);
  if (describe) protocol::write_describe(b, 'P', "");
  protocol::write_execute(b, "", 0);
  protocol::write_sync(b);
  return scan_unit(view(b));
}

TEST(CacheRequest, KeyedStatementIgnoresTheStatementName) {
  const std::string sql = "SELECT v FROM t WHERE id = $1";
  const std::string region = bind_region({"4"}, {}, {0});
  std::string b1, b2, b3;
  auto unnamed = scan_one(b1, true, "", region, {0});
  auto parse_named = scan_one(b2, true, "_pg3_0", region, {0});
  auto bind_named = scan_one(b3, false, "_pg3_0", region, {});
  ASSERT_TRUE(unnamed && parse_named && bind_named);
  auto k1 = keyed_statement(*unnamed, sql, nullptr);  // the Parse's types
  auto k2 = keyed_statement(*parse_named, sql, nullptr);
  auto k3 = keyed_statement(*bind_named, sql, &kNoTypes);  // the named statement was parsed without types
  ASSERT_TRUE(k1 && k2 && k3);
  EXPECT_EQ(k1->statement, k2->statement);
  EXPECT_EQ(k1->statement, k3->statement) << "an unspecified (0) type is no type";
  EXPECT_EQ(k1->params, k2->params);
  EXPECT_EQ(k1->params, k3->params);
  EXPECT_EQ(k1->entry_shape, cache::ReplyShape::extended_described);
  // All-text results, however the Bind spells them, are one form; binary ones are another entry.
  std::string b4, b5, b6;
  auto no_codes = keyed_statement(*scan_one(b4, true, "", bind_region({"4"}, {0}, {}), {}), sql, nullptr);
  auto binary = keyed_statement(*scan_one(b5, true, "", bind_region({"4"}, {}, {1}), {}), sql, nullptr);
  auto other_value = keyed_statement(*scan_one(b6, true, "", bind_region({"5"}, {}, {0}), {}), sql, nullptr);
  ASSERT_TRUE(no_codes && binary && other_value);
  EXPECT_EQ(no_codes->params, k1->params);
  EXPECT_NE(binary->params, k1->params);
  EXPECT_NE(other_value->params, k1->params);
  std::string b7;
  auto typed = keyed_statement(*scan_one(b7, true, "", region, {23}), sql, nullptr);
  ASSERT_TRUE(typed);
  EXPECT_NE(typed->statement, k1->statement) << "declared types change the result";
}

// A described statement without parameters whose results are text gets the bytes a simple Query of
// the same text gets: psycopg sends it as a Query until it prepares it, then as Bind(name).
TEST(CacheRequest, KeyedStatementWithoutParametersIsTheSimpleQuery) {
  const std::string sql = "SELECT v FROM t";
  std::string q;
  protocol::write_query(q, sql);
  auto simple = scan_unit(view(q));
  ASSERT_TRUE(simple);
  auto ks = keyed_statement(*simple, sql, nullptr);
  std::string b1, b2;
  auto named = scan_one(b1, false, "_pg3_1", bind_region({}, {}, {0}), {});
  auto kn = keyed_statement(*named, sql, &kNoTypes);
  ASSERT_TRUE(ks && kn);
  EXPECT_EQ(ks->entry_shape, cache::ReplyShape::simple);
  EXPECT_EQ(kn->entry_shape, cache::ReplyShape::simple);
  EXPECT_EQ(ks->statement, kn->statement);
  EXPECT_EQ(ks->params, kn->params);
  auto undescribed = keyed_statement(*scan_one(b2, false, "_pg3_1", bind_region({}, {}, {0}), {}, false), sql, &kNoTypes);
  ASSERT_TRUE(undescribed);
  EXPECT_EQ(undescribed->entry_shape, cache::ReplyShape::extended) << "no RowDescription: its own entry";
}

// The exact bytes keyed_statement() gives for known Binds: they are the cache key's input, so a change
// here orphans every stored entry. Pinned from the key as it was computed before BindArgs.
TEST(CacheRequest, KeyedStatementBytesArePinned) {
  using namespace std::string_literals;
  const std::string sql = "SELECT v FROM t WHERE id = $1";
  // One code per value (text, binary, binary), a NULL among the values, binary results; the types
  // declared by the Parse end in an unspecified one, which the key drops.
  const std::string values = "\0\3"s + "\0\0\0\2" "42"s + "\0\0\0\2\0\xff"s + "\xff\xff\xff\xff"s;
  std::string b1;
  auto r1 = scan_one(b1, true, "", "\0\3\0\0\0\1\0\1"s + values + "\0\1\0\1"s, {23, 17, 0});
  ASSERT_TRUE(r1);
  auto k1 = keyed_statement(*r1, sql, nullptr);
  ASSERT_TRUE(k1);
  EXPECT_EQ(k1->entry_shape, cache::ReplyShape::extended_described);
  EXPECT_EQ(k1->statement, sql + "\0\0\2\0\0\0\x17\0\0\0\x11"s);
  EXPECT_EQ(k1->params, "\0\x08"s + "\0\3\0\0\0\1\0\1"s + values + "\0\1\0\1"s);

  // One code for all values is spelled out per value; all-text results, as two codes, are no codes.
  std::string b2;
  const std::string two = "\0\2\0\0\0\1a\0\0\0\1b"s;
  auto r2 = scan_one(b2, false, "s1", "\0\1\0\1"s + two + "\0\2\0\0\0\0"s, {}, false);
  ASSERT_TRUE(r2);
  auto k2 = keyed_statement(*r2, sql, &kNoTypes);
  ASSERT_TRUE(k2);
  EXPECT_EQ(k2->entry_shape, cache::ReplyShape::extended);
  EXPECT_EQ(k2->statement, sql);
  EXPECT_EQ(k2->params, "\0\6\0\2\0\1\0\1"s + two);

  // All-text parameters, given as one code, are no codes.
  std::string b3;
  auto r3 = scan_one(b3, true, "", "\0\1\0\0"s + two + "\0\0"s, {});
  ASSERT_TRUE(r3);
  auto k3 = keyed_statement(*r3, sql, nullptr);
  ASSERT_TRUE(k3);
  EXPECT_EQ(k3->params, "\0\0"s + two);
}

TEST(CacheRequest, KeyedStatementRejectsAMalformedBind) {
  std::string b;
  std::string region = bind_region({"4"}, {}, {0});
  region.pop_back();
  auto r = scan_one(b, true, "", region, {});
  ASSERT_TRUE(r);
  EXPECT_FALSE(keyed_statement(*r, "SELECT v FROM t WHERE id = $1", nullptr));
  // A format code other than 0 or 1 (the server refuses it: never an entry).
  std::string b2;
  auto bad_code = scan_one(b2, true, "", bind_region({"4"}, {2}, {}), {});
  ASSERT_TRUE(bad_code);
  EXPECT_FALSE(keyed_statement(*bad_code, "SELECT v FROM t WHERE id = $1", nullptr));
}

}  // namespace
}  // namespace pgs::proxy
