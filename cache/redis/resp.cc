#include "cache/redis/resp.h"

#include <charconv>

namespace pgs::cache::redis {

namespace {
void append_header(char kind, size_t n, std::string& out) {
  char digits[24];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, n);
  (void)ec;  // 24 bytes hold any size_t
  out.push_back(kind);
  out.append(digits, end);
  out.append("\r\n");
}
}  // namespace

void format_command(std::span<const std::string_view> args, std::string& out) {
  size_t total = 16;
  for (std::string_view a : args) total += a.size() + 16;
  out.clear();
  out.reserve(total);
  append_header('*', args.size(), out);
  for (std::string_view a : args) {
    append_header('$', a.size(), out);
    out.append(a);
    out.append("\r\n");
  }
}

}  // namespace pgs::cache::redis
