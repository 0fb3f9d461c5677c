#include "cache/redis/resp.h"

#include <algorithm>
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
  out.clear();
  append_command(args, out);
}

void append_command(std::span<const std::string_view> args, std::string& out) {
  size_t total = out.size() + 16;
  for (std::string_view a : args) total += a.size() + 16;
  if (total > out.capacity()) out.reserve(std::max(total, out.capacity() * 2));
  append_header('*', args.size(), out);
  for (std::string_view a : args) {
    append_header('$', a.size(), out);
    out.append(a);
    out.append("\r\n");
  }
}

}  // namespace pgs::cache::redis
