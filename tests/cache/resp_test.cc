// format_command writes the bytes hiredis's own formatter writes, for any arguments (binary-safe).
#include "cache/redis/resp.h"

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <string>
#include <vector>

namespace pgs::cache::redis {
namespace {

std::string by_hiredis(const std::vector<std::string_view>& args) {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (std::string_view a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  char* out = nullptr;
  long long n = redisFormatCommandArgv(&out, static_cast<int>(args.size()), argv.data(), lens.data());
  std::string s(out, static_cast<size_t>(n));
  redisFreeCommand(out);
  return s;
}

TEST(RespFormat, WritesWhatHiredisWrites) {
  std::string big(70000, 'x');
  std::string binary("a\0b\r\nc", 6);
  const std::vector<std::vector<std::string_view>> cases = {
      {"PING"},
      {"GET", "pgs:r:0123"},
      {"EVALSHA", "0123456789abcdef0123456789abcdef01234567", "3", "gens", "gen", "gens:lsn", "", "public.t"},
      {"SET", "k", binary, "PX", "1000"},
      {"SET", "k", big},
      {"", ""},
  };
  std::string out = "left over";
  for (const auto& args : cases) {
    format_command(args, out);
    EXPECT_EQ(out, by_hiredis(args)) << args.front();
  }
}

TEST(RespFormat, SpellsTheCountsInDecimal) {
  std::string out;
  std::vector<std::string_view> args = {"SET", "key", "value"};
  format_command(args, out);
  EXPECT_EQ(out, "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n");
}

}  // namespace
}  // namespace pgs::cache::redis
