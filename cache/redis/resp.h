// RESP: a Redis command in the protocol's request form (an array of bulk strings), the bytes hiredis's
// redisFormatCommandArgv writes. Written here because that formatter (sdscatfmt per argument) took a
// tenth of a write transaction's proxy CPU; the bytes are the same, appended to the transport's batch
// (redis_transport.h). Pure.
#pragma once

#include <span>
#include <string>
#include <string_view>

namespace pgs::cache::redis {

// Replaces `out` with "*<n>\r\n" then "$<len>\r\n<arg>\r\n" for each argument (binary-safe).
void format_command(std::span<const std::string_view> args, std::string& out);
// Appends the same bytes to `out`.
void append_command(std::span<const std::string_view> args, std::string& out);

}  // namespace pgs::cache::redis
