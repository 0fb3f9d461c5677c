// The streaming replication CopyData codecs: exact bytes, round trips, every truncation, unknown types.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <string>

#include "cache/stream/replication_messages.h"

namespace pgs::cache::stream {
namespace {

std::string be64(uint64_t v) {
  std::string s;
  for (int shift = 56; shift >= 0; shift -= 8) s.push_back(static_cast<char>((v >> shift) & 0xff));
  return s;
}

std::string xlog_data(uint64_t start, uint64_t end, int64_t time, std::string_view data) {
  return "w" + be64(start) + be64(end) + be64(static_cast<uint64_t>(time)) + std::string(data);
}

std::string keepalive(uint64_t end, int64_t time, char reply) {
  return "k" + be64(end) + be64(static_cast<uint64_t>(time)) + std::string(1, reply);
}

// The first n bytes of `s` in a heap block of exactly n bytes: a read past the end is a heap overflow
// that AddressSanitizer reports (a short std::string would keep it inside its inline buffer).
struct ExactCopy {
  ExactCopy(std::string_view s, size_t n) : bytes(new char[n]), size(n) { std::memcpy(bytes.get(), s.data(), n); }
  std::string_view view() const { return {bytes.get(), size}; }
  std::unique_ptr<char[]> bytes;
  size_t size;
};

TEST(StandbyStatusUpdate, ExactBytes) {
  const std::string got = standby_status_update(0x0102030405060708, 0x1112131415161718, 0x2122232425262728,
                                                0x3132333435363738, true);
  const std::string want = std::string("r") + "\x01\x02\x03\x04\x05\x06\x07\x08" +
                           "\x11\x12\x13\x14\x15\x16\x17\x18" + "\x21\x22\x23\x24\x25\x26\x27\x28" +
                           "\x31\x32\x33\x34\x35\x36\x37\x38" + std::string(1, '\x01');
  EXPECT_EQ(got.size(), 34u);
  EXPECT_EQ(got, want);
  EXPECT_EQ(standby_status_update(0, 0, 0, 0, false), std::string("r") + std::string(33, '\0'));
}

TEST(StandbyStatusUpdate, HighBitsAndNegativeClock) {
  const std::string got = standby_status_update(~uint64_t{0}, uint64_t{1} << 63, 0x00000001'00000000, -1, false);
  EXPECT_EQ(got, "r" + be64(~uint64_t{0}) + be64(uint64_t{1} << 63) + be64(0x00000001'00000000) +
                     be64(~uint64_t{0}) + std::string(1, '\0'));
}

TEST(DecodeStreamMessage, XLogDataRoundTrip) {
  const std::string payload = xlog_data(0x16B3748, 0xFFFFFFFF'00000010, 789'000'000'123, "table public.t: ...");
  auto m = decode_stream_message(payload);
  ASSERT_TRUE(m.ok());
  const auto* x = std::get_if<XLogData>(&*m);
  ASSERT_NE(x, nullptr);
  EXPECT_EQ(x->start_lsn, 0x16B3748u);
  EXPECT_EQ(x->end_lsn, 0xFFFFFFFF'00000010u);
  EXPECT_EQ(x->send_time, 789'000'000'123);
  EXPECT_EQ(x->data, "table public.t: ...");
  EXPECT_EQ(x->data.data(), payload.data() + 25);  // a view into the payload, no copy
}

TEST(DecodeStreamMessage, XLogDataEmptyDataAndNegativeTime) {
  const std::string payload = xlog_data(1, 2, -5, "");  // outlives the view in m
  auto m = decode_stream_message(payload);
  ASSERT_TRUE(m.ok());
  const auto& x = std::get<XLogData>(*m);
  EXPECT_EQ(x.start_lsn, 1u);
  EXPECT_EQ(x.end_lsn, 2u);
  EXPECT_EQ(x.send_time, -5);
  EXPECT_TRUE(x.data.empty());
}

TEST(DecodeStreamMessage, XLogDataDataMayHoldNulAndNewlines) {
  const std::string data("a\0b\nc", 5);
  const std::string payload = xlog_data(1, 2, 3, data);
  auto m = decode_stream_message(payload);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(std::get<XLogData>(*m).data, data);
}

TEST(DecodeStreamMessage, KeepaliveRoundTrip) {
  for (char reply : {'\0', '\1'}) {
    auto m = decode_stream_message(keepalive(0xABCDEF0123456789, 42, reply));
    ASSERT_TRUE(m.ok());
    const auto* k = std::get_if<Keepalive>(&*m);
    ASSERT_NE(k, nullptr);
    EXPECT_EQ(k->end_lsn, 0xABCDEF0123456789u);
    EXPECT_EQ(k->send_time, 42);
    EXPECT_EQ(k->reply_requested, reply != 0);
  }
}

TEST(DecodeStreamMessage, KeepaliveIgnoresTrailingBytes) {
  auto m = decode_stream_message(keepalive(7, 8, '\1') + "future");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(std::get<Keepalive>(*m).end_lsn, 7u);
  EXPECT_TRUE(std::get<Keepalive>(*m).reply_requested);
}

TEST(DecodeStreamMessage, TruncatedXLogDataAtEveryLength) {
  const std::string full = xlog_data(1, 2, 3, "");
  ASSERT_EQ(full.size(), 25u);
  for (size_t n = 0; n < full.size(); ++n) {
    const ExactCopy cut(full, n);
    auto m = decode_stream_message(cut.view());
    ASSERT_FALSE(m.ok()) << n;
    EXPECT_EQ(m.error().code, Errc::truncated) << n;
  }
  EXPECT_TRUE(decode_stream_message(full).ok());
}

TEST(DecodeStreamMessage, TruncatedKeepaliveAtEveryLength) {
  const std::string full = keepalive(1, 2, '\1');
  ASSERT_EQ(full.size(), 18u);
  for (size_t n = 0; n < full.size(); ++n) {
    const ExactCopy cut(full, n);
    auto m = decode_stream_message(cut.view());
    ASSERT_FALSE(m.ok()) << n;
    EXPECT_EQ(m.error().code, Errc::truncated) << n;
  }
  EXPECT_TRUE(decode_stream_message(full).ok());
}

TEST(DecodeStreamMessage, UnknownType) {
  for (std::string payload : {std::string("r") + std::string(33, '\0'), std::string("x"), std::string(30, '\0'),
                              std::string("W") + std::string(30, '\0')}) {
    auto m = decode_stream_message(payload);
    ASSERT_FALSE(m.ok());
    EXPECT_EQ(m.error().code, Errc::unsupported);
  }
}

TEST(PostgresClock, EpochIs2000) {
  using namespace std::chrono;
  const system_clock::time_point y2000{seconds{946'684'800}};
  EXPECT_EQ(postgres_clock(y2000), 0);
  EXPECT_EQ(postgres_clock(y2000 + microseconds{1}), 1);
  EXPECT_EQ(postgres_clock(y2000 - seconds{1}), -1'000'000);
  EXPECT_EQ(postgres_clock(system_clock::time_point{}), -946'684'800'000'000);
  // 2026-12-06 00:00:00 UTC
  const auto day = sys_days{year{2026} / December / 6};
  EXPECT_EQ(postgres_clock(day), (sys_days{year{2026} / December / 6} - sys_days{year{2000} / January / 1}) /
                                     microseconds{1});
}

TEST(PostgresClock, RoundsDown) {
  using namespace std::chrono;
  const system_clock::time_point y2000{seconds{946'684'800}};
  EXPECT_EQ(postgres_clock(y2000 + nanoseconds{1999}), 1);
  EXPECT_EQ(postgres_clock(y2000 - nanoseconds{1}), -1);
}

}  // namespace
}  // namespace pgs::cache::stream
