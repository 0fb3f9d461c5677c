// Incremental framing of the PostgreSQL v3 protocol (docs: "Message Formats").
// Pure: never allocates, never reads past the span.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <variant>

#include "protocol/byte_reader.h"

namespace pgs::protocol {

// Postgres caps a startup packet at 10,000 bytes (MAX_STARTUP_PACKET_LENGTH).
inline constexpr uint32_t kMaxStartupPacket = 10000;

struct NeedMore {
  size_t at_least;  // total bytes the buffer must hold before calling again
};
struct Invalid {
  std::string_view reason;  // static string
};

// A typed message: 1 type byte, 4-byte length (includes itself), body.
struct Frame {
  char type;
  Bytes body;    // view into the caller's buffer
  size_t size;   // bytes consumed: 1 + length
  Bytes whole;   // type byte .. end of body: forward these bytes unchanged
  // split_frame_streaming only: body bytes of the message that follow `body` and are not buffered yet
  // (the message is larger than the inspect window). `body`/`whole` then hold its first bytes, and the
  // length field in `whole` still declares the whole message.
  size_t streamed = 0;
};
using FrameResult = std::variant<NeedMore, Frame, Invalid>;

// Splits the first typed message off `buf`. A length < 4 or > max_body + 4 is Invalid
// (checked from the first 5 bytes, before anything is buffered).
FrameResult split_frame(Bytes buf, uint32_t max_message_bytes);

// The first five bytes of a typed message: its type and the body size its length field declares
// (length - 4; nullopt when fewer than five bytes are buffered or the length is below 4).
struct FrameHeader {
  char type;
  uint32_t body_size;
};
std::optional<FrameHeader> peek_frame_header(Bytes buf);

// split_frame for a proxy that streams large messages: a message whose body is at most `inspect_bytes`
// is returned whole, as by split_frame; a larger one (up to max_message_bytes) is returned once its
// first `inspect_bytes` body bytes are buffered, as a Frame whose `streamed` counts the body bytes still
// to come. Above max_message_bytes: Invalid (peek_frame_header tells how many bytes to skip).
FrameResult split_frame_streaming(Bytes buf, uint32_t max_message_bytes, uint32_t inspect_bytes);

// Startup-phase packet: 4-byte length (includes itself), then a 4-byte code and body.
struct StartupFrame {
  uint32_t code;  // protocol version (196608 = 3.0) or a request code below
  Bytes body;     // bytes after the code
  size_t size;    // bytes consumed
};
using StartupResult = std::variant<NeedMore, StartupFrame, Invalid>;

inline constexpr uint32_t kProtocol30 = 196608;         // 3 << 16
inline constexpr uint32_t kSslRequestCode = 80877103;
inline constexpr uint32_t kGssEncRequestCode = 80877104;
inline constexpr uint32_t kCancelRequestCode = 80877102;
inline constexpr uint8_t kTlsHandshakeByte = 0x16;  // direct TLS ClientHello (PG 17 sslnegotiation=direct)

// Splits a startup-phase packet. A first byte of 0x16 is Invalid("direct TLS") so the caller
// can close cleanly; length < 8 or > max_bytes is Invalid.
StartupResult split_startup(Bytes buf, uint32_t max_bytes = kMaxStartupPacket);

}  // namespace pgs::protocol
