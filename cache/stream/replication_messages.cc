#include "cache/stream/replication_messages.h"

namespace pgs::cache::stream {

namespace {

constexpr size_t kXLogDataHeader = 1 + 8 + 8 + 8;
constexpr size_t kKeepaliveSize = 1 + 8 + 8 + 1;
constexpr size_t kStatusUpdateSize = 1 + 8 + 8 + 8 + 8 + 1;

// Seconds from 1970-01-01 to 2000-01-01 (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE days).
constexpr int64_t kPostgresEpochUnixSeconds = 946'684'800;

// The caller checked that 8 bytes are there.
uint64_t load_be64(std::string_view s, size_t pos) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(s[pos + i]);
  return v;
}

void append_be64(std::string& out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xff));
}

Result<StreamMessage> decode_xlog_data(std::string_view p) {
  if (p.size() < kXLogDataHeader) return make_error(Errc::truncated, "XLogData shorter than its header");
  XLogData m;
  m.start_lsn = load_be64(p, 1);
  m.end_lsn = load_be64(p, 9);
  m.send_time = static_cast<int64_t>(load_be64(p, 17));
  m.data = p.substr(kXLogDataHeader);
  return StreamMessage{m};
}

Result<StreamMessage> decode_keepalive(std::string_view p) {
  if (p.size() < kKeepaliveSize) return make_error(Errc::truncated, "primary keepalive too short");
  Keepalive m;
  m.end_lsn = load_be64(p, 1);
  m.send_time = static_cast<int64_t>(load_be64(p, 9));
  m.reply_requested = p[17] != 0;
  return StreamMessage{m};
}

}  // namespace

Result<StreamMessage> decode_stream_message(std::string_view payload) {
  if (payload.empty()) return make_error(Errc::truncated, "empty replication message");
  switch (payload[0]) {
    case 'w':
      return decode_xlog_data(payload);
    case 'k':
      return decode_keepalive(payload);
    default:
      return make_error(Errc::unsupported, "unknown replication message type");
  }
}

std::string standby_status_update(uint64_t written, uint64_t flushed, uint64_t applied, int64_t clock_us,
                                  bool reply_requested) {
  std::string out;
  out.reserve(kStatusUpdateSize);
  out.push_back('r');
  append_be64(out, written);
  append_be64(out, flushed);
  append_be64(out, applied);
  append_be64(out, static_cast<uint64_t>(clock_us));
  out.push_back(reply_requested ? 1 : 0);
  return out;
}

int64_t postgres_clock(std::chrono::system_clock::time_point t) {
  using std::chrono::microseconds;
  const int64_t unix_us = std::chrono::floor<microseconds>(t.time_since_epoch()).count();
  return unix_us - kPostgresEpochUnixSeconds * 1'000'000;
}

}  // namespace pgs::cache::stream
