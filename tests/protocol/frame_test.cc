// split_frame: typed-message framing (docs "Message Formats").
#include <random>

#include "protocol/frame.h"
#include "protocol/writer.h"
#include "tests/protocol/test_util.h"

namespace pgs::protocol {
namespace {

using test::be32;
using test::bytes_of;

constexpr uint32_t kMax = 1u << 20;

TEST(SplitFrame, EmptyBufferNeedsHeader) {
  FrameResult r = split_frame({}, kMax);
  ASSERT_TRUE(std::holds_alternative<NeedMore>(r));
  EXPECT_EQ(std::get<NeedMore>(r).at_least, 5u);
}

TEST(SplitFrame, ByteByByte) {
  std::string wire;
  write_query(wire, "select 1");
  for (size_t n = 0; n < wire.size(); ++n) {
    FrameResult r = split_frame(bytes_of(wire).first(n), kMax);
    ASSERT_TRUE(std::holds_alternative<NeedMore>(r)) << "prefix " << n;
    size_t want = std::get<NeedMore>(r).at_least;
    EXPECT_GT(want, n);
    EXPECT_LE(want, wire.size());
  }
  FrameResult r = split_frame(bytes_of(wire), kMax);
  ASSERT_TRUE(std::holds_alternative<Frame>(r));
  const Frame& f = std::get<Frame>(r);
  EXPECT_EQ(f.type, 'Q');
  EXPECT_EQ(f.size, wire.size());
  EXPECT_EQ(as_string_view(f.body), std::string_view("select 1\0", 9));
  EXPECT_EQ(f.whole.data(), bytes_of(wire).data());
  EXPECT_EQ(f.whole.size(), wire.size());
}

TEST(SplitFrame, TwoFramesInOneBuffer) {
  std::string wire;
  write_query(wire, "select 1");
  const size_t first_size = wire.size();
  write_sync(wire);
  wire += "Q";  // the start of a third message
  Bytes buf = bytes_of(wire);

  FrameResult r1 = split_frame(buf, kMax);
  ASSERT_TRUE(std::holds_alternative<Frame>(r1));
  EXPECT_EQ(std::get<Frame>(r1).size, first_size);
  buf = buf.subspan(std::get<Frame>(r1).size);

  FrameResult r2 = split_frame(buf, kMax);
  ASSERT_TRUE(std::holds_alternative<Frame>(r2));
  EXPECT_EQ(std::get<Frame>(r2).type, 'S');
  EXPECT_TRUE(std::get<Frame>(r2).body.empty());
  EXPECT_EQ(std::get<Frame>(r2).size, 5u);
  buf = buf.subspan(std::get<Frame>(r2).size);

  FrameResult r3 = split_frame(buf, kMax);
  ASSERT_TRUE(std::holds_alternative<NeedMore>(r3));
  EXPECT_EQ(std::get<NeedMore>(r3).at_least, 5u);
}

TEST(SplitFrame, LengthBelowFourIsInvalid) {
  for (uint32_t len : {0u, 1u, 3u}) {
    std::string wire = "Q" + be32(len);
    EXPECT_TRUE(std::holds_alternative<Invalid>(split_frame(bytes_of(wire), kMax))) << len;
  }
}

TEST(SplitFrame, OversizedRejectedFromHeaderAlone) {
  std::string at_cap = "d" + be32(kMax + 4);
  FrameResult ok = split_frame(bytes_of(at_cap), kMax);
  ASSERT_TRUE(std::holds_alternative<NeedMore>(ok));
  EXPECT_EQ(std::get<NeedMore>(ok).at_least, size_t{kMax} + 5);

  std::string over = "d" + be32(kMax + 5);
  FrameResult r = split_frame(bytes_of(over), kMax);
  ASSERT_TRUE(std::holds_alternative<Invalid>(r));
  EXPECT_EQ(std::get<Invalid>(r).reason, "message too large");
}

TEST(SplitFrame, NegativeLengthIsInvalidWhateverTheCap) {
  for (uint32_t len : {0x80000000u, 0xfffffffcu, 0xffffffffu}) {
    std::string wire = "d" + be32(len);
    EXPECT_TRUE(std::holds_alternative<Invalid>(split_frame(bytes_of(wire), 0xffffffffu))) << len;
  }
}

TEST(SplitFrame, HttpRequestIsNotAPostgresMessage) {
  std::string wire = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  EXPECT_TRUE(std::holds_alternative<Invalid>(split_frame(bytes_of(wire), 64u << 20)));
}

// Random bytes: the result is always consistent with the buffer (never reads past it).
TEST(SplitFrame, GarbageNeverOverreads) {
  std::mt19937 rng(42);
  for (int round = 0; round < 20000; ++round) {
    std::string wire(rng() % 16, '\0');
    for (char& c : wire) c = static_cast<char>(rng() % 4 == 0 ? 0 : rng());
    FrameResult r = split_frame(bytes_of(wire), 8);
    if (auto* f = std::get_if<Frame>(&r)) {
      ASSERT_LE(f->size, wire.size());
      ASSERT_EQ(f->body.size() + 5, f->size);
      ASSERT_LE(f->body.size(), 8u);
    } else if (auto* m = std::get_if<NeedMore>(&r)) {
      ASSERT_GT(m->at_least, wire.size());
      ASSERT_LE(m->at_least, 13u);
    }
  }
}

}  // namespace
}  // namespace pgs::protocol

namespace pgs::protocol {
namespace {

// split_frame_streaming: a message above the inspect window comes out as its first bytes plus a count
// of the body bytes still to arrive; smaller ones as split_frame gives them.
TEST(SplitFrameStreaming, SmallMessageIsWhole) {
  std::string wire;
  write_query(wire, "select 1");
  FrameResult r = split_frame_streaming(test::bytes_of(wire), 1u << 20, 64);
  ASSERT_TRUE(std::holds_alternative<Frame>(r));
  EXPECT_EQ(std::get<Frame>(r).streamed, 0u);
  EXPECT_EQ(std::get<Frame>(r).size, wire.size());
}

TEST(SplitFrameStreaming, LargeMessageWaitsForTheWindowThenStreams) {
  std::string sql(1000, 'x');
  std::string wire;
  write_query(wire, sql);  // body 1001 bytes
  FrameResult more = split_frame_streaming(test::bytes_of(wire).first(50), 1u << 20, 100);
  ASSERT_TRUE(std::holds_alternative<NeedMore>(more));
  EXPECT_EQ(std::get<NeedMore>(more).at_least, 105u);
  FrameResult r = split_frame_streaming(test::bytes_of(wire).first(300), 1u << 20, 100);
  ASSERT_TRUE(std::holds_alternative<Frame>(r));
  const Frame& f = std::get<Frame>(r);
  EXPECT_EQ(f.type, 'Q');
  EXPECT_EQ(f.size, 105u);
  EXPECT_EQ(f.body.size(), 100u);
  EXPECT_EQ(f.streamed, 901u);
  EXPECT_EQ(f.whole.size(), 105u);
  EXPECT_EQ(f.size + f.streamed, wire.size());
}

TEST(SplitFrameStreaming, AboveTheCapIsInvalidAndPeekTellsItsSize) {
  std::string wire;
  write_query(wire, std::string(1000, 'x'));
  FrameResult r = split_frame_streaming(test::bytes_of(wire).first(10), 500, 100);
  EXPECT_TRUE(std::holds_alternative<Invalid>(r));
  auto head = peek_frame_header(test::bytes_of(wire).first(10));
  ASSERT_TRUE(head.has_value());
  EXPECT_EQ(head->type, 'Q');
  EXPECT_EQ(head->body_size, 1001u);
  EXPECT_FALSE(peek_frame_header(test::bytes_of(wire).first(4)).has_value());
}

TEST(WriteBind, StreamedTailIsCountedInTheLength) {
  std::string out;
  write_bind(out, "", "pgsidecar_1", "abc", 1000);
  auto head = peek_frame_header(test::bytes_of(out));
  ASSERT_TRUE(head.has_value());
  EXPECT_EQ(head->type, 'B');
  EXPECT_EQ(head->body_size, out.size() - 5 + 1000);
}

}  // namespace
}  // namespace pgs::protocol

namespace pgs::protocol {
namespace {

TEST(WriteTruncatedNotice, KeepsCompleteFieldsAndMarksTheCutOne) {
  std::string body("SERROR\0VERROR\0C22P02\0Minvalid input: \"xxxxxxxx", 46);
  std::string out;
  write_truncated_notice(out, 'E', body, 1000000);
  FrameResult r = split_frame(test::bytes_of(out), 1u << 20);
  ASSERT_TRUE(std::holds_alternative<Frame>(r));
  std::string_view b = as_string_view(std::get<Frame>(r).body);
  EXPECT_NE(b.find(std::string_view("C22P02\0", 7)), std::string_view::npos);
  EXPECT_NE(b.find("Minvalid input: \"xxxxxxxx... (truncated by pgsidecar, 1000000 bytes in all)"), std::string_view::npos);
  EXPECT_EQ(b.substr(b.size() - 2), std::string_view("\0\0", 2));  // the cut field's NUL, then the end
}

TEST(WriteTruncatedNotice, NeverEndsInsideAUtf8Sequence) {
  std::string body = std::string("SNOTICE\0Mabc", 12) + "\xc3";  // the first byte of "é"
  std::string out;
  write_truncated_notice(out, 'N', body, 99);
  EXPECT_EQ(out.find('\xc3'), std::string::npos);
  EXPECT_NE(out.find("Mabc... (truncated"), std::string::npos);
}

}  // namespace
}  // namespace pgs::protocol
