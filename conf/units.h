// Pure parsers for the value syntaxes of the config file: durations, byte sizes, host:port.
// No toml++ here, so the router, cache or tests may reuse them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "conf/config.h"

namespace pgs::conf {

// A duration: one or more <digits><unit> groups, units ms, s, m, h, d ("250ms", "5s", "1h30m"), or "0".
// Returns nullopt on anything else (empty, negative, fractions, unknown unit, overflow past ~292 years).
std::optional<Millis> parse_duration(std::string_view text);

// A byte size: <digits>[ ][unit], unit B, kB/KB/KiB, MB/MiB, GB/GiB, TB/TiB (case-insensitive), all
// powers of 1024 as in postgresql.conf ("64MB" = 64 * 2^20). No unit = bytes. nullopt on overflow.
std::optional<uint64_t> parse_size(std::string_view text);

// The shortest exact rendering: 90000 ms -> "90s", 5400000 -> "90m", 250 -> "250ms", 0 -> "0".
std::string format_duration(Millis d);
// 1048576 -> "1MB", 65536 -> "64kB", 1000 -> "1000B" (only exact multiples use a unit).
std::string format_size(uint64_t bytes);

struct HostPort {
  std::string host;
  uint16_t port = 0;
};
// "127.0.0.1:9930", "localhost:80", "[::1]:9930". Port 1..65535, host non-empty.
std::optional<HostPort> parse_host_port(std::string_view text);

}  // namespace pgs::conf
