// The value stored in Redis for one cached result, and its validation on the way back. Pure.
//
// Layout (integers big-endian):
//   "PGSC" | u8 format version (2) | u8 ReplyShape | u32 ttl_ms | u64 created_at_ms (unix)
//   | u64 generations | u8 class name length | class name | u32 messages length | messages
// `generations` fingerprints the table generations the result was read under (generations_fingerprint
// in lookup.h): a reader serves the entry only if the generations it reads from Redis, in the same
// round trip as the value, give the same fingerprint.
// `messages` are the raw backend messages ResultCapture stored. Nothing read from Redis is trusted:
// decode_entry() checks the header, that the length fields match the value exactly, and re-frames every
// message with the protocol's framing and message decoders, in the sequence the shape requires
// (DataRow column counts agree with the RowDescription; "SELECT n" agrees with the number of rows).
// Any failure is a miss.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "cache/key.h"
#include "protocol/result.h"

namespace pgs::cache {

inline constexpr uint8_t kEntryVersion = 2;

struct EntryMeta {
  ReplyShape shape = ReplyShape::simple;
  std::string_view class_name;  // at most 255 bytes (longer is cut)
  uint64_t created_at_ms = 0;
  uint32_t ttl_ms = 0;
  uint64_t generations = 0;
};

std::string encode_entry(const EntryMeta& meta, std::string_view messages);

struct CachedReply {
  EntryMeta meta;               // class_name borrows from the decoded value
  std::string_view messages;    // borrows from the decoded value: write these to the client
  uint32_t rows = 0;
};

// `expected` is the shape of the request being answered; a value of another shape is rejected.
// `max_message_bytes` caps each framed message (the proxy's max_message_bytes).
Result<CachedReply> decode_entry(std::string_view value, ReplyShape expected, uint32_t max_message_bytes = 1u << 30);
// The reply borrows from `value`: decoding a temporary string would leave it dangling.
Result<CachedReply> decode_entry(std::string&& value, ReplyShape expected, uint32_t max_message_bytes = 1u << 30) = delete;

}  // namespace pgs::cache
