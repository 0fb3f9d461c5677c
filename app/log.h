// Process-wide logging: one line per call, timestamped (UTC, ms), written whole under a mutex so
// lines from different threads never interleave. The access log can go to its own file.
#pragma once

#include <string>
#include <string_view>

namespace pgs::app::log {

enum class Level { info, warn, error };

void write(Level level, std::string_view message);
inline void info(std::string_view m) { write(Level::info, m); }
inline void warn(std::string_view m) { write(Level::warn, m); }
inline void error(std::string_view m) { write(Level::error, m); }

// Where access lines go: "-" (stdout, the default), "none", or a file path (appended).
// Returns false if the file cannot be opened. Call once, before serving.
bool set_access_log(const std::string& target);
void access(std::string_view line);

// "2026-11-26T18:54:02.123Z"
std::string utc_timestamp();

}  // namespace pgs::app::log
