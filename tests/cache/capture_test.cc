// ResultCapture + encode_entry/decode_entry: round trips per reply shape, every abort case, and values
// from Redis that must be rejected (corrupt, truncated, wrong shape).
#include <gtest/gtest.h>

#include "cache/capture.h"
#include "cache/entry.h"
#include "protocol/frame.h"
#include "protocol/writer.h"

namespace pgs::cache {
namespace {

using protocol::Bytes;

Bytes bytes(const std::string& s) { return Bytes(reinterpret_cast<const uint8_t*>(s.data()), s.size()); }

std::string msg_row_description() {
  std::string out;
  protocol::write_row_description(out, {{"id", 23, 4}, {"name", 25, -1}});
  return out;
}
std::string msg_row(std::optional<std::string_view> a, std::optional<std::string_view> b) {
  std::string out;
  protocol::write_data_row(out, {a, b});
  return out;
}
std::string msg_complete(std::string_view tag) {
  std::string out;
  protocol::write_command_complete(out, tag);
  return out;
}
std::string msg_ready(char status) {
  std::string out;
  protocol::write_ready_for_query(out, status);
  return out;
}
std::string msg_no_data() {
  std::string out;
  protocol::write_no_data(out);
  return out;
}
std::string msg_error() {
  std::string out;
  protocol::write_error(out, {"ERROR", "42P01", "no such table"});
  return out;
}
std::string msg_notice() {
  std::string out;
  protocol::write_notice(out, {"NOTICE", "00000", "hello"});
  return out;
}
std::string msg_param_status() {
  std::string out;
  protocol::write_parameter_status(out, "TimeZone", "UTC");
  return out;
}
std::string msg_typed(char type, std::string body = {}) {
  std::string out;
  protocol::MessageWriter(out).begin(type).raw(body).finish();
  return out;
}

// decode_entry() of a value the caller keeps alive (the reply borrows from it).
bool decodes(const std::string& value, ReplyShape shape) { return decode_entry(value, shape).ok(); }

// Feeds messages (each a whole frame) and returns the final state.
CaptureState feed_all(ResultCapture& c, const std::vector<std::string>& msgs) {
  CaptureState s = c.state();
  for (const std::string& m : msgs) s = c.feed(m[0], bytes(m));
  return s;
}

std::string concat(const std::vector<std::string>& msgs) {
  std::string out;
  for (const std::string& m : msgs) out += m;
  return out;
}

TEST(ResultCapture, SimpleRoundTrip) {
  std::vector<std::string> reply = {msg_row_description(), msg_row("1", "ä unicode"), msg_row("2", std::nullopt),
                                    msg_complete("SELECT 2")};
  ResultCapture c(ReplyShape::simple, 1 << 20);
  EXPECT_EQ(feed_all(c, reply), CaptureState::capturing);
  EXPECT_EQ(c.feed('Z', bytes(msg_ready('I'))), CaptureState::complete);
  EXPECT_EQ(c.rows(), 2u);
  std::string stored = c.take();
  EXPECT_EQ(stored, concat(reply));  // byte-identical, ReadyForQuery excluded

  std::string value = encode_entry({ReplyShape::simple, "user_profile", 1700000000123, 900000}, stored);
  auto decoded = decode_entry(value, ReplyShape::simple);
  ASSERT_TRUE(decoded.ok()) << decoded.error().detail;
  EXPECT_EQ(decoded->messages, stored);
  EXPECT_EQ(decoded->meta.class_name, "user_profile");
  EXPECT_EQ(decoded->meta.created_at_ms, 1700000000123u);
  EXPECT_EQ(decoded->meta.ttl_ms, 900000u);
  EXPECT_EQ(decoded->rows, 2u);
}

TEST(ResultCapture, ExtendedShapes) {
  {
    std::vector<std::string> reply = {msg_row_description(), msg_row("1", "a"), msg_complete("SELECT 1")};
    ResultCapture c(ReplyShape::extended_described, 1 << 20);
    feed_all(c, reply);
    EXPECT_EQ(c.feed('Z', bytes(msg_ready('T'))), CaptureState::complete);
    std::string stored = c.take();
    EXPECT_EQ(stored, concat(reply));
    EXPECT_TRUE(decodes(encode_entry({ReplyShape::extended_described, "c", 1, 1}, stored),
                             ReplyShape::extended_described));
    // The same bytes are not a valid answer for another shape.
    EXPECT_FALSE(decodes(encode_entry({ReplyShape::extended_described, "c", 1, 1}, stored),
                              ReplyShape::extended));
    EXPECT_FALSE(decodes(encode_entry({ReplyShape::extended, "c", 1, 1}, stored), ReplyShape::extended));
  }
  {
    std::vector<std::string> reply = {msg_no_data(), msg_complete("SELECT 0")};
    ResultCapture c(ReplyShape::extended_described, 1 << 20);
    feed_all(c, reply);
    EXPECT_EQ(c.feed('Z', bytes(msg_ready('I'))), CaptureState::complete);
    EXPECT_TRUE(decodes(encode_entry({ReplyShape::extended_described, "c", 1, 1}, c.take()),
                             ReplyShape::extended_described));
  }
  {
    std::vector<std::string> reply = {msg_row("1", "a"), msg_row("2", "b"), msg_complete("SELECT 2")};
    ResultCapture c(ReplyShape::extended, 1 << 20);
    feed_all(c, reply);
    EXPECT_EQ(c.feed('Z', bytes(msg_ready('I'))), CaptureState::complete);
    std::string stored = c.take();
    EXPECT_EQ(stored, concat(reply));
    const std::string value = encode_entry({ReplyShape::extended, "c", 1, 1}, stored);
    auto d = decode_entry(value, ReplyShape::extended);
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(d->rows, 2u);
  }
  {
    // An empty result in the extended protocol without Describe: just CommandComplete.
    ResultCapture c(ReplyShape::extended, 1 << 20);
    feed_all(c, {msg_complete("SELECT 0")});
    EXPECT_EQ(c.feed('Z', bytes(msg_ready('I'))), CaptureState::complete);
    EXPECT_TRUE(decodes(encode_entry({ReplyShape::extended, "c", 1, 1}, c.take()), ReplyShape::extended));
  }
}

struct AbortCase {
  const char* name;
  ReplyShape shape;
  std::vector<std::string> msgs;
  CaptureAbort why;
};

TEST(ResultCapture, AbortCases) {
  const std::string T = msg_row_description(), D = msg_row("1", "a"), C = msg_complete("SELECT 1");
  const AbortCase cases[] = {
      {"error", ReplyShape::simple, {T, D, msg_error()}, CaptureAbort::error},
      {"error first", ReplyShape::extended, {msg_error()}, CaptureAbort::error},
      {"notice", ReplyShape::simple, {T, msg_notice(), D, C}, CaptureAbort::notice},
      {"copy out", ReplyShape::simple, {msg_typed('H', std::string("\0\0\0", 3))}, CaptureAbort::copy},
      {"copy data", ReplyShape::simple, {T, msg_typed('d', "x")}, CaptureAbort::copy},
      {"portal suspended", ReplyShape::extended, {D, msg_typed('s')}, CaptureAbort::portal_suspended},
      {"parameter status", ReplyShape::simple, {T, D, msg_param_status(), C}, CaptureAbort::parameter_status},
      {"notification", ReplyShape::simple, {T, msg_typed('A', std::string("\0\0\0\1c\0p\0", 8))},
       CaptureAbort::notification},
      {"empty query", ReplyShape::simple, {msg_typed('I')}, CaptureAbort::unexpected_message},
      {"rows before description", ReplyShape::simple, {D, C}, CaptureAbort::unexpected_message},
      {"description without Describe", ReplyShape::extended, {T, D, C}, CaptureAbort::unexpected_message},
      {"Describe but no description", ReplyShape::extended_described, {D, C}, CaptureAbort::unexpected_message},
      {"second statement", ReplyShape::simple, {T, D, C, T}, CaptureAbort::unexpected_message},
      {"failed transaction", ReplyShape::simple, {T, D, C, msg_ready('E')}, CaptureAbort::failed_transaction},
      {"unknown type", ReplyShape::simple, {T, msg_typed('?')}, CaptureAbort::unexpected_message},
  };
  for (const AbortCase& k : cases) {
    SCOPED_TRACE(k.name);
    ResultCapture c(k.shape, 1 << 20);
    EXPECT_EQ(feed_all(c, k.msgs), CaptureState::aborted);
    EXPECT_EQ(capture_abort_name(c.abort_reason()), capture_abort_name(k.why));
    EXPECT_EQ(c.take(), "");
    // Once aborted, nothing revives it.
    EXPECT_EQ(c.feed('Z', bytes(msg_ready('I'))), CaptureState::aborted);
  }
}

TEST(ResultCapture, TooLarge) {
  const std::string T = msg_row_description(), D = msg_row("1", std::string(100, 'x')), C = msg_complete("SELECT 3");
  size_t exact = T.size() + 3 * D.size() + C.size();
  {
    ResultCapture c(ReplyShape::simple, static_cast<uint32_t>(exact));
    feed_all(c, {T, D, D, D, C});
    EXPECT_EQ(c.feed('Z', bytes(msg_ready('I'))), CaptureState::complete);  // exactly at the limit is fine
  }
  {
    ResultCapture c(ReplyShape::simple, static_cast<uint32_t>(exact - 1));
    EXPECT_EQ(feed_all(c, {T, D, D, D, C}), CaptureState::aborted);
    EXPECT_EQ(c.abort_reason(), CaptureAbort::too_large);
  }
}

TEST(CacheEntry, CorruptValuesAreRejected) {
  std::string stored = msg_row_description() + msg_row("1", "a") + msg_complete("SELECT 1");
  const std::string good = encode_entry({ReplyShape::simple, "cls", 42, 1000}, stored);
  ASSERT_TRUE(decode_entry(good, ReplyShape::simple).ok());

  std::vector<std::pair<const char*, std::string>> bad = {
      {"empty", ""},
      {"magic", "XGSC" + good.substr(4)},
      {"version 1", good.substr(0, 4) + '\x01' + good.substr(5)},
      {"version 3", good.substr(0, 4) + '\x03' + good.substr(5)},
      {"truncated", good.substr(0, good.size() - 1)},
      {"extra byte", good + 'x'},
      {"header only", good.substr(0, 20)},
      {"garbage payload", encode_entry({ReplyShape::simple, "cls", 1, 1}, "garbage bytes here")},
      {"no CommandComplete", encode_entry({ReplyShape::simple, "cls", 1, 1}, msg_row_description() + msg_row("1", "a"))},
      {"row count mismatch", encode_entry({ReplyShape::simple, "cls", 1, 1},
                                          msg_row_description() + msg_row("1", "a") + msg_complete("SELECT 2"))},
      {"column count mismatch", encode_entry({ReplyShape::simple, "cls", 1, 1},
                                             msg_row_description() + msg_typed('D', std::string("\0\1\0\0\0\1x", 7)) +
                                                 msg_complete("SELECT 1"))},
      {"error inside", encode_entry({ReplyShape::simple, "cls", 1, 1}, msg_row_description() + msg_error())},
      {"after complete", encode_entry({ReplyShape::simple, "cls", 1, 1}, stored + msg_row("1", "a"))},
      {"ready inside", encode_entry({ReplyShape::simple, "cls", 1, 1}, stored + msg_ready('I'))},
  };
  // Every single-byte flip in the message region must not crash, and flips in lengths must be caught.
  for (size_t i = 0; i < good.size(); ++i) {
    std::string flipped = good;
    flipped[i] = static_cast<char>(flipped[i] ^ 0x5a);
    auto r = decode_entry(flipped, ReplyShape::simple);
    (void)r;
  }
  for (const auto& [name, value] : bad) {
    EXPECT_FALSE(decodes(value, ReplyShape::simple)) << name;
  }
}

}  // namespace
}  // namespace pgs::cache
