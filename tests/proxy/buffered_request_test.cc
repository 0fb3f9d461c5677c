// decode_buffered_request and scan_batch: the first request buffered from a client, decoded once, and
// what routing reads from it.
#include "proxy/request/buffered_request.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "protocol/writer.h"
#include "proxy/request/batch_scan.h"
#include "router/classify.h"

namespace pgs::proxy {
namespace {

namespace pf = protocol::frontend;

protocol::Bytes view(const std::string& s) { return {reinterpret_cast<const uint8_t*>(s.data()), s.size()}; }

std::string extended(std::string_view sql, std::string_view statement = "", bool parse = true) {
  std::string b;
  if (parse) protocol::write_parse(b, statement, sql, {});
  protocol::write_bind(b, "", statement, std::string("\0\0\0\0\0\0", 6));
  protocol::write_describe(b, 'P', "");
  protocol::write_execute(b, "", 0);
  protocol::write_sync(b);
  return b;
}

TEST(BufferedRequest, EndsWithTheFirstQueryOrSync) {
  std::string q;
  protocol::write_query(q, "SELECT 1");
  protocol::write_query(q, "SELECT 2");
  BufferedRequest r = decode_buffered_request(view(q), 1 << 20);
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_TRUE(r.complete);
  EXPECT_EQ(r.messages[0].as<pf::Query>()->sql, "SELECT 1");

  std::string b = extended("SELECT 3") + extended("SELECT 4");
  r = decode_buffered_request(view(b), 1 << 20);
  ASSERT_EQ(r.messages.size(), 5u);
  EXPECT_TRUE(r.complete);
  EXPECT_EQ(r.messages[0].as<pf::Parse>()->sql, "SELECT 3");
  EXPECT_EQ(r.messages[4].type(), 'S');
}

// The session decodes a simple Query as it frames it and hands that message on: the request built from
// it must be what decoding the buffer would have given.
TEST(BufferedRequest, AQueryDecodedAlreadyIsTheWholeRequest) {
  std::string q;
  protocol::write_query(q, "SELECT 1");
  protocol::write_query(q, "SELECT 2");
  BufferedRequest decoded = decode_buffered_request(view(q), 1 << 20);
  BufferedRequest given = BufferedRequest::of_query(decoded.messages.at(0));
  EXPECT_EQ(given.complete, decoded.complete);
  ASSERT_EQ(given.messages.size(), decoded.messages.size());
  EXPECT_EQ(given.messages[0].frame.whole.data(), decoded.messages[0].frame.whole.data()) << "a view, not a copy";
  EXPECT_EQ(given.messages[0].as<pf::Query>()->sql, "SELECT 1");
}

TEST(BufferedRequest, StopsAtWhatIsNotAllHereOrDoesNotDecode) {
  std::string b = extended("SELECT 1");
  BufferedRequest cut = decode_buffered_request(view(b.substr(0, b.size() - 2)), 1 << 20);
  EXPECT_FALSE(cut.complete);
  EXPECT_EQ(cut.messages.size(), 4u) << "the Sync is not all here";
  std::string bad;
  protocol::write_parse(bad, "", "SELECT 1", {});
  bad += std::string("D\0\0\0\6X\0", 7);  // a Describe of kind 'X'
  protocol::write_sync(bad);
  BufferedRequest stopped = decode_buffered_request(view(bad), 1 << 20);
  EXPECT_FALSE(stopped.complete);
  EXPECT_EQ(stopped.messages.size(), 1u);
  EXPECT_TRUE(decode_buffered_request(view(""), 1 << 20).messages.empty());
}

BatchFacts scan(const std::string& bytes) {
  auto classify = [](std::string_view sql) { return std::make_shared<const router::Classification>(router::classify(sql)); };
  auto prepared = [](std::string_view name) -> const std::string* {
    static const std::string kRead = "SELECT 1";
    return name == "s1" ? &kRead : nullptr;
  };
  return scan_batch(decode_buffered_request(view(bytes), 1 << 20), classify, prepared);
}

TEST(BatchScan, ReadsTheWholeRequestOrCountsItAsAWrite) {
  BatchFacts read = scan(extended("SELECT 1"));
  EXPECT_TRUE(read.complete);
  EXPECT_TRUE(read.summary.read_only);
  BatchFacts write = scan(extended("UPDATE t SET a = 1"));
  EXPECT_TRUE(write.complete);
  EXPECT_FALSE(write.summary.read_only);
  BatchFacts named = scan(extended("", "s1", false));
  EXPECT_TRUE(named.complete);
  EXPECT_TRUE(named.summary.read_only) << "a Bind of a statement the client prepared reads its text";
  EXPECT_FALSE(scan(extended("", "unknown", false)).complete) << "a statement the proxy does not know";
  EXPECT_FALSE(scan(extended("", "", false)).complete) << "an unnamed statement from an earlier request";
  std::string b = extended("SELECT 1");
  EXPECT_FALSE(scan(b.substr(0, b.size() - 2)).complete) << "its Sync not here yet";
  std::string lone;
  protocol::write_sync(lone);
  EXPECT_FALSE(scan(lone).complete) << "a lone Sync: nothing to route";
}

}  // namespace
}  // namespace pgs::proxy
