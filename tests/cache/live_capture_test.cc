// ResultCapture and the stored-value format against real Postgres 15 replies (dev primary,
// 127.0.0.1:15432): for NULLs, unicode, bytea, numeric, empty results, text and binary formats, simple
// and extended protocol (unnamed and named statements), the bytes a hit would replay are exactly the
// bytes Postgres sent between BindComplete (or the Query) and ReadyForQuery.
#include <gtest/gtest.h>

#include <memory>

#include "cache/capture.h"
#include "cache/entry.h"
#include "protocol/auth.h"
#include "protocol/backend.h"
#include "protocol/writer.h"
#include "tests/protocol/wire_conn.h"
#include "tests/support/dev_env.h"

namespace pgs::cache {
namespace {


using protocol::test::OwnedFrame;
using protocol::test::WireConn;

std::string whole(const OwnedFrame& f) {
  std::string out;
  protocol::MessageWriter(out).begin(f.type).raw(f.body).finish();
  return out;
}

protocol::Bytes bytes(const std::string& s) { return {reinterpret_cast<const uint8_t*>(s.data()), s.size()}; }

// Startup + SCRAM as user flopods; true once ReadyForQuery arrived.
bool login(WireConn& c) {
  std::string out;
  protocol::write_startup(out, {{"user", test::kUser}, {"database", test::kDatabase}});
  if (!c.send(out)) return false;
  auto f = c.read_frame();
  if (!f || f->type != 'R') return false;
  protocol::scram::ClientExchange scram(test::kPassword, protocol::scram::random_nonce());
  out.clear();
  protocol::write_sasl_initial_response(out, "SCRAM-SHA-256", scram.client_first());
  if (!c.send(out) || !(f = c.read_frame()) || f->type != 'R') return false;
  auto cont = protocol::backend::Authentication::decode(f->bytes());
  if (!cont) return false;
  auto final_msg = scram.on_server_first(protocol::as_string_view(cont->data));
  if (!final_msg) return false;
  out.clear();
  protocol::write_sasl_response(out, *final_msg);
  if (!c.send(out)) return false;
  while ((f = c.read_frame())) {
    if (f->type == 'Z') return true;
    if (f->type == 'E') return false;
  }
  return false;
}

// Frames until ReadyForQuery (included).
std::vector<OwnedFrame> until_ready(WireConn& c) {
  std::vector<OwnedFrame> frames;
  while (auto f = c.read_frame()) {
    frames.push_back(*f);
    if (f->type == 'Z') break;
  }
  return frames;
}

// Feeds the reply from index `from`, checks the capture equals Postgres' bytes (Z excluded) and
// survives encode/decode; returns the stored bytes.
std::string capture_and_check(const std::vector<OwnedFrame>& frames, size_t from, ReplyShape shape) {
  ResultCapture cap(shape, 1u << 20);
  std::string expected;
  for (size_t i = from; i < frames.size(); ++i) {
    std::string w = whole(frames[i]);
    if (frames[i].type != 'Z') expected += w;
    cap.feed(frames[i].type, bytes(w));
  }
  EXPECT_EQ(cap.state(), CaptureState::complete) << capture_abort_name(cap.abort_reason());
  std::string stored = cap.take();
  EXPECT_EQ(stored, expected);
  const std::string value = encode_entry({shape, "test", 1, 1000}, stored);
  auto decoded = decode_entry(value, shape);
  EXPECT_TRUE(decoded.ok()) << (decoded.ok() ? "" : decoded.error().detail);
  if (decoded.ok()) EXPECT_EQ(decoded->messages, expected);
  return stored;
}

const char* kQueries[] = {
    "SELECT 1::int AS a, NULL::text AS b, 'ünïcødé ✓'::text AS c",
    "SELECT '\\x00ff10'::bytea AS b, 12345678901234567890.123456789::numeric AS n, 1.5::float8 AS f",
    "SELECT g, g::text || 'x' FROM generate_series(1, 50) g",
    "SELECT 1 WHERE false",
    "SELECT ARRAY[1,2,NULL]::int[] AS arr, '{\"k\": [1, null]}'::jsonb AS j, DATE '2024-02-29' AS d",
};

class LiveCapture : public ::testing::Test {
 protected:
  void SetUp() override {
    auto fd = WireConn::connect_until(test::kPrimaryPort, std::chrono::steady_clock::now() + std::chrono::seconds(30));
    if (!fd) GTEST_SKIP() << "dev primary at 127.0.0.1:15432 is not running (./dev up)";
    conn_ = std::make_unique<WireConn>(*fd);
    ASSERT_TRUE(login(*conn_));
  }
  std::unique_ptr<WireConn> conn_;
};

TEST_F(LiveCapture, SimpleProtocol) {
  for (const char* sql : kQueries) {
    SCOPED_TRACE(sql);
    std::string out;
    protocol::write_query(out, sql);
    ASSERT_TRUE(conn_->send(out));
    auto frames = until_ready(*conn_);
    ASSERT_FALSE(frames.empty());
    std::string first = capture_and_check(frames, 0, ReplyShape::simple);
    ASSERT_TRUE(conn_->send(out));
    EXPECT_EQ(capture_and_check(until_ready(*conn_), 0, ReplyShape::simple), first);  // deterministic
  }
}

// Parse (unnamed), Bind with all-text or all-binary results, [Describe portal], Execute, Sync.
TEST_F(LiveCapture, ExtendedProtocolTextAndBinary) {
  for (const char* sql : kQueries) {
    for (int16_t format : {0, 1}) {
      for (bool describe : {true, false}) {
        SCOPED_TRACE(std::string(sql) + (format ? " binary" : " text") + (describe ? " described" : ""));
        std::string out;
        protocol::write_parse(out, "", sql, {});
        // Bind params region: 0 param formats, 0 params, 1 result format.
        std::string region("\0\0\0\0\0\1", 6);
        region += static_cast<char>(0);
        region += static_cast<char>(format);
        protocol::write_bind(out, "", "", region);
        if (describe) protocol::write_describe(out, 'P', "");
        protocol::write_execute(out, "", 0);
        protocol::write_sync(out);
        ASSERT_TRUE(conn_->send(out));
        auto frames = until_ready(*conn_);
        ASSERT_GE(frames.size(), 3u);
        ASSERT_EQ(frames[0].type, '1');
        ASSERT_EQ(frames[1].type, '2');
        capture_and_check(frames, 2, describe ? ReplyShape::extended_described : ReplyShape::extended);
      }
    }
  }
}

TEST_F(LiveCapture, NamedPreparedStatementRepliesAreIdentical) {
  std::string out;
  protocol::write_parse(out, "pgsc_s1", "SELECT id, x FROM (VALUES (1, 'a'), (2, NULL)) v(id, x) WHERE id >= $1",
                        {23});
  protocol::write_sync(out);
  ASSERT_TRUE(conn_->send(out));
  auto parsed = until_ready(*conn_);
  ASSERT_EQ(parsed.front().type, '1');
  std::string previous;
  for (int i = 0; i < 2; ++i) {
    out.clear();
    // 1 param format (text), 1 param "1", 1 result format (binary).
    std::string region("\0\1\0\0\0\1\0\0\0\1" "1" "\0\1\0\1", 15);
    protocol::write_bind(out, "", "pgsc_s1", region);
    protocol::write_describe(out, 'P', "");
    protocol::write_execute(out, "", 0);
    protocol::write_sync(out);
    ASSERT_TRUE(conn_->send(out));
    auto frames = until_ready(*conn_);
    ASSERT_EQ(frames[0].type, '2');
    std::string stored = capture_and_check(frames, 1, ReplyShape::extended_described);
    if (i == 1) EXPECT_EQ(stored, previous);
    previous = stored;
  }
}

TEST_F(LiveCapture, ErrorsAndNoticesAbort) {
  std::string out;
  protocol::write_query(out, "SELECT * FROM no_such_table_pgsc");
  ASSERT_TRUE(conn_->send(out));
  auto frames = until_ready(*conn_);
  ResultCapture cap(ReplyShape::simple, 1u << 20);
  for (const OwnedFrame& f : frames) cap.feed(f.type, bytes(whole(f)));
  EXPECT_EQ(cap.abort_reason(), CaptureAbort::error);

  out.clear();
  protocol::write_query(out, "DO $$ BEGIN RAISE NOTICE 'hi'; END $$");
  ASSERT_TRUE(conn_->send(out));
  frames = until_ready(*conn_);
  ResultCapture notice(ReplyShape::simple, 1u << 20);
  for (const OwnedFrame& f : frames) notice.feed(f.type, bytes(whole(f)));
  EXPECT_EQ(notice.abort_reason(), CaptureAbort::notice);
}

}  // namespace
}  // namespace pgs::cache
