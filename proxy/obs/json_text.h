// Small text helpers shared by the slow log and the digests' JSON.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace pgs::obs {

// `s` with every invalid UTF-8 sequence replaced by U+FFFD, so the JSON we emit is always valid
// (statement text and parameters arrive in the client's encoding, and binary parameters are bytes).
std::string sanitize_utf8(std::string_view s);

// `s` cut to at most `max_bytes` bytes without splitting a UTF-8 sequence.
std::string_view truncate_utf8(std::string_view s, size_t max_bytes);

// "2026-11-26T18:54:04.123Z" (UTC, milliseconds).
std::string iso8601_utc(std::chrono::system_clock::time_point t);

// A query fingerprint as 16 lowercase hex digits (pg_query's textual form).
std::string fingerprint_hex(uint64_t fingerprint);

}  // namespace pgs::obs
