// Minimal thread-safe logging to stderr: one line per call, with a level and a timestamp.
#pragma once

#include <cstdio>
#include <string>

namespace pgs::proxy {

enum class LogLevel { debug, info, warn, error };

void set_log_level(LogLevel level);
bool log_enabled(LogLevel level);
void log_line(LogLevel level, const std::string& message);

#define PGS_LOG(level, expr)                                      \
  do {                                                            \
    if (::pgs::proxy::log_enabled(level)) {                       \
      ::pgs::proxy::log_line(level, (expr));                      \
    }                                                             \
  } while (0)
#define LOG_DEBUG(expr) PGS_LOG(::pgs::proxy::LogLevel::debug, expr)
#define LOG_INFO(expr) PGS_LOG(::pgs::proxy::LogLevel::info, expr)
#define LOG_WARN(expr) PGS_LOG(::pgs::proxy::LogLevel::warn, expr)
#define LOG_ERROR(expr) PGS_LOG(::pgs::proxy::LogLevel::error, expr)

}  // namespace pgs::proxy
