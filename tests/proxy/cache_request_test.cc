// scan_cacheable_request: which buffered requests are one unit the result cache may answer.
#include "proxy/cache_request.h"

#include <gtest/gtest.h>

#include "protocol/writer.h"

namespace pgs::proxy {
namespace {

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
  auto r = scan_cacheable_request(view(b), 1 << 20);
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
  auto r = scan_cacheable_request(view(b), 1 << 20);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->shape, cache::ReplyShape::extended_described);
  EXPECT_TRUE(r->has_parse);
  EXPECT_EQ(r->sql, "SELECT $1");
  EXPECT_EQ(decode_param_types(r->param_types), std::vector<uint32_t>{23});
  EXPECT_EQ(r->params_region.size(), 8u) << "formats, values and result formats, raw";
  EXPECT_EQ(r->params_region.back(), 1) << "binary results";
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
  auto r = scan_cacheable_request(view(b), 1 << 20);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->shape, cache::ReplyShape::extended);
  EXPECT_FALSE(r->has_parse);
  EXPECT_EQ(r->bind_statement, "s1");
  std::string prefix;
  write_cache_hit_prefix(*r, prefix);
  EXPECT_EQ(prefix, std::string("2\0\0\0\4", 5));
}

TEST(CacheRequest, NotOneUnit) {
  auto batch = [](auto&& build) {
    std::string b;
    build(b);
    return scan_cacheable_request(view(b), 1 << 20).has_value();
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
  EXPECT_FALSE(scan_cacheable_request(view(q.substr(0, q.size() - 1)), 1 << 20));
  EXPECT_FALSE(scan_cacheable_request(view(std::string("B\0\0\0\4", 5)), 1 << 20));
  EXPECT_FALSE(scan_cacheable_request(view(""), 1 << 20));
}

}  // namespace
}  // namespace pgs::proxy
