// The value syntaxes of the config file: durations, sizes, host:port (conf/units.h).
#include "conf/units.h"

#include <gtest/gtest.h>

#include <limits>

namespace pgs::conf {
namespace {

struct DurationCase {
  const char* text;
  std::optional<int64_t> ms;
};

TEST(ParseDuration, Table) {
  const DurationCase cases[] = {
      {"0", 0},           {"250ms", 250},        {"5s", 5000},         {"10m", 600000},
      {"1h", 3600000},    {"1d", 86400000},      {"1h30m", 5400000},   {"1m30s500ms", 90500},
      {"0s", 0},          {"0ms", 0},            {"120000ms", 120000}, {"", std::nullopt},
      {"5", std::nullopt}, {"s", std::nullopt},  {"-5s", std::nullopt}, {"1.5s", std::nullopt},
      {"5 s", std::nullopt}, {"5S", std::nullopt}, {"5sec", std::nullopt}, {"5us", std::nullopt},
      {" 5s", std::nullopt}, {"5s ", std::nullopt}, {"ms", std::nullopt},
      {"99999999999999999999ms", std::nullopt},  // overflows uint64
      {"9223372036854775807ms", std::numeric_limits<int64_t>::max()},
      {"9223372036854775808ms", std::nullopt},   // one past Millis' range
      {"200000000000d", std::nullopt},           // 1.7e19 ms: past int64
  };
  for (const auto& c : cases) {
    auto got = parse_duration(c.text);
    if (!c.ms) {
      EXPECT_FALSE(got.has_value()) << "\"" << c.text << "\" parsed as " << got->count();
    } else {
      ASSERT_TRUE(got.has_value()) << "\"" << c.text << "\" rejected";
      EXPECT_EQ(got->count(), *c.ms) << c.text;
    }
  }
}

struct SizeCase {
  const char* text;
  std::optional<uint64_t> bytes;
};

TEST(ParseSize, Table) {
  constexpr uint64_t K = 1024;
  const SizeCase cases[] = {
      {"0", 0},          {"1000", 1000},        {"1B", 1},              {"64kB", 64 * K},
      {"64KB", 64 * K},  {"64KiB", 64 * K},     {"64kb", 64 * K},       {"16MB", 16 * K * K},
      {"1MiB", K * K},   {"64 MB", 64 * K * K}, {"2GB", 2 * K * K * K}, {"1GiB", K * K * K},
      {"1TB", K * K * K * K},
      {"", std::nullopt}, {"MB", std::nullopt}, {"-1MB", std::nullopt}, {"1.5MB", std::nullopt},
      {"1XB", std::nullopt}, {"1 ", std::nullopt}, {"1  MB", std::nullopt}, {"1M", std::nullopt},
      {"18446744073709551615", std::numeric_limits<uint64_t>::max()},
      {"18446744073709551616", std::nullopt},
      {"17179869184GB", std::nullopt},  // 2^34 GiB = 2^64 bytes: overflow
  };
  for (const auto& c : cases) {
    auto got = parse_size(c.text);
    if (!c.bytes) {
      EXPECT_FALSE(got.has_value()) << "\"" << c.text << "\" parsed as " << *got;
    } else {
      ASSERT_TRUE(got.has_value()) << "\"" << c.text << "\" rejected";
      EXPECT_EQ(*got, *c.bytes) << c.text;
    }
  }
}

TEST(FormatDuration, ShortestExactUnit) {
  EXPECT_EQ(format_duration(Millis{0}), "0");
  EXPECT_EQ(format_duration(Millis{250}), "250ms");
  EXPECT_EQ(format_duration(Millis{5000}), "5s");
  EXPECT_EQ(format_duration(Millis{90000}), "90s");
  EXPECT_EQ(format_duration(Millis{120000}), "2m");
  EXPECT_EQ(format_duration(Millis{3600000}), "1h");
  EXPECT_EQ(format_duration(Millis{86400000}), "1d");
  EXPECT_EQ(format_duration(Millis{1500}), "1500ms");
}

TEST(FormatSize, ExactMultiplesOnly) {
  EXPECT_EQ(format_size(0), "0");
  EXPECT_EQ(format_size(1000), "1000B");
  EXPECT_EQ(format_size(65536), "64kB");
  EXPECT_EQ(format_size(1u << 20), "1MB");
  EXPECT_EQ(format_size(64u << 20), "64MB");
  EXPECT_EQ(format_size(1ull << 30), "1GB");
}

TEST(FormatRoundTrip, ParseOfFormatIsIdentity) {
  for (int64_t ms : {0L, 1L, 999L, 1000L, 61000L, 3600000L, 86400000L * 3}) {
    EXPECT_EQ(parse_duration(format_duration(Millis{ms}))->count(), ms);
  }
  for (uint64_t b : {0ull, 1ull, 1023ull, 1024ull, 3ull << 20, 5ull << 30}) {
    EXPECT_EQ(*parse_size(format_size(b)), b);
  }
}

TEST(ParseHostPort, Table) {
  auto hp = parse_host_port("127.0.0.1:9930");
  ASSERT_TRUE(hp);
  EXPECT_EQ(hp->host, "127.0.0.1");
  EXPECT_EQ(hp->port, 9930);
  hp = parse_host_port("[::1]:80");
  ASSERT_TRUE(hp);
  EXPECT_EQ(hp->host, "::1");
  EXPECT_EQ(hp->port, 80);
  hp = parse_host_port("localhost:65535");
  ASSERT_TRUE(hp);
  EXPECT_EQ(hp->port, 65535);
  for (const char* bad : {"", "127.0.0.1", ":9930", "host:", "host:0", "host:65536", "host:12x",
                          "::1:80", "[::1]80", "[::1]:", "[::1"}) {
    EXPECT_FALSE(parse_host_port(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace pgs::conf
