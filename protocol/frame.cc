#include "protocol/frame.h"

namespace pgs::protocol {

namespace {

uint32_t load_u32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

}  // namespace

// Typed message (docs "Message Formats"): Byte1 type, Int32 length including itself, body.
// The length is validated from the first five bytes so a hostile peer cannot make the caller
// buffer more than the cap; a length with the sign bit set is above any cap we accept.
FrameResult split_frame(Bytes buf, uint32_t max_message_bytes) {
  constexpr size_t kHeader = 5;
  if (buf.size() < kHeader) return NeedMore{kHeader};
  const uint32_t len = load_u32(buf.data() + 1);
  if (len < 4) return Invalid{"message length below 4"};
  if (len > 0x7fffffffu) return Invalid{"negative message length"};
  if (uint64_t{len} > uint64_t{max_message_bytes} + 4) return Invalid{"message too large"};
  const size_t total = size_t{1} + len;
  if (buf.size() < total) return NeedMore{total};
  Frame f;
  f.type = static_cast<char>(buf[0]);
  f.body = buf.subspan(kHeader, len - 4);
  f.size = total;
  f.whole = buf.first(total);
  return f;
}

std::optional<FrameHeader> peek_frame_header(Bytes buf) {
  if (buf.size() < 5) return std::nullopt;
  const uint32_t len = load_u32(buf.data() + 1);
  if (len < 4) return std::nullopt;
  return FrameHeader{static_cast<char>(buf[0]), len - 4};
}

FrameResult split_frame_streaming(Bytes buf, uint32_t max_message_bytes, uint32_t inspect_bytes) {
  auto head = peek_frame_header(buf);
  if (!head || head->body_size <= inspect_bytes || head->body_size > max_message_bytes ||
      head->body_size > 0x7fffffffu - 4) {
    return split_frame(buf, max_message_bytes);  // whole, NeedMore or Invalid, as usual
  }
  constexpr size_t kHeader = 5;
  const size_t window = kHeader + inspect_bytes;
  if (buf.size() < window) return NeedMore{window};
  Frame f;
  f.type = head->type;
  f.body = buf.subspan(kHeader, inspect_bytes);
  f.size = window;
  f.whole = buf.first(window);
  f.streamed = head->body_size - inspect_bytes;
  return f;
}

// Startup-phase packet (docs "Message Flow / Start-up"): Int32 length including itself, Int32 code.
// A direct-TLS ClientHello starts with 0x16, which as a length would be ≥ 369 MB: it can never
// be a valid startup packet, so it is reported on the first byte.
StartupResult split_startup(Bytes buf, uint32_t max_bytes) {
  constexpr size_t kHeader = 8;
  if (!buf.empty() && buf[0] == kTlsHandshakeByte) return Invalid{"direct TLS"};
  if (buf.size() < 4) return NeedMore{4};
  const uint32_t len = load_u32(buf.data());
  if (len < kHeader) return Invalid{"startup packet length below 8"};
  if (len > max_bytes) return Invalid{"startup packet too large"};
  if (buf.size() < len) return NeedMore{len};
  StartupFrame f;
  f.code = load_u32(buf.data() + 4);
  f.body = buf.subspan(kHeader, len - kHeader);
  f.size = len;
  return f;
}

}  // namespace pgs::protocol
