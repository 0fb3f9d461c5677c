// pg_lsn values as 64-bit integers: "16/B374D848" <-> (0x16 << 32) | 0xB374D848.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace pgs::router {

using Lsn = uint64_t;  // 0 = none / unknown

// Parses Postgres's text form ("X/Y", hex, each part at most 8 digits). nullopt when malformed.
std::optional<Lsn> parse_lsn(std::string_view text);
std::string format_lsn(Lsn lsn);

}  // namespace pgs::router
