// CopyData payloads of the streaming replication protocol, as pure bounds-checked codecs
// (PostgreSQL docs: protocol-replication.html, "XLogData (B)", "Primary keepalive message (B)",
// "Standby status update (F)"). No libpq here: the caller hands in the bytes PQgetCopyData returned
// and sends what standby_status_update() built with PQputCopyData.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "protocol/result.h"

namespace pgs::cache::stream {

// All integers on the wire are big-endian (network order).
// 'w' | int64 start_lsn | int64 end_lsn | int64 send_time | data...
struct XLogData {
  uint64_t start_lsn = 0;   // WAL start of the data
  uint64_t end_lsn = 0;     // current end of WAL on the server
  int64_t send_time = 0;    // microseconds since 2000-01-01 (server clock)
  std::string_view data;    // the plugin's output (a view into the payload: lives as long as it)
};
// 'k' | int64 end_lsn | int64 send_time | byte reply_requested
struct Keepalive {
  uint64_t end_lsn = 0;
  int64_t send_time = 0;
  bool reply_requested = false;  // the server wants a status update now (else it may end the walsender)
};
using StreamMessage = std::variant<XLogData, Keepalive>;

// One CopyData payload (the bytes PQgetCopyData returns). Errc::truncated when shorter than its type
// needs (an empty payload included); Errc::unsupported for an unknown type byte. Bytes after a
// keepalive's fields are ignored, as pg_recvlogical does (room for the protocol to grow).
// (Result is pgs::Result from protocol/result.h.)
Result<StreamMessage> decode_stream_message(std::string_view payload);

// The 'r' message: written, flushed and applied LSNs, the client's clock (microseconds since
// 2000-01-01) and whether the server should reply at once. 34 bytes:
// 'r' | int64 written | int64 flushed | int64 applied | int64 clock_us | byte reply_requested.
// The server treats `flushed` as how far the slot may be freed (confirmed_flush_lsn).
std::string standby_status_update(uint64_t written, uint64_t flushed, uint64_t applied, int64_t clock_us,
                                  bool reply_requested);

// Microseconds since 2000-01-01 00:00:00 UTC for a system_clock time point (the protocol's clock),
// rounded down.
int64_t postgres_clock(std::chrono::system_clock::time_point t);

}  // namespace pgs::cache::stream
