#include "app/log.h"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace pgs::app::log {
namespace {

std::mutex g_mutex;
std::FILE* g_access = stdout;

const char* level_name(Level level) {
  switch (level) {
    case Level::info: return "INFO";
    case Level::warn: return "WARN";
    case Level::error: return "ERROR";
  }
  return "?";
}

}  // namespace

std::string utc_timestamp() {
  using namespace std::chrono;
  const auto now = system_clock::now();
  const std::time_t secs = system_clock::to_time_t(now);
  const auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

void write(Level level, std::string_view message) {
  const std::string ts = utc_timestamp();
  std::lock_guard lock(g_mutex);
  std::fprintf(stderr, "%s %s %.*s\n", ts.c_str(), level_name(level), static_cast<int>(message.size()),
               message.data());
  std::fflush(stderr);
}

bool set_access_log(const std::string& target) {
  std::lock_guard lock(g_mutex);
  if (target == "-" || target.empty()) {
    g_access = stdout;
  } else if (target == "none") {
    g_access = nullptr;
  } else {
    std::FILE* f = std::fopen(target.c_str(), "a");
    if (f == nullptr) return false;
    g_access = f;
  }
  return true;
}

void access(std::string_view line) {
  std::lock_guard lock(g_mutex);
  if (g_access == nullptr) return;
  std::fwrite(line.data(), 1, line.size(), g_access);
  std::fputc('\n', g_access);
  std::fflush(g_access);
}

}  // namespace pgs::app::log
