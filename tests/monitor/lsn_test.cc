// HealthMonitor::parse_lsn / format_lsn: Postgres's pg_lsn text form "X/Y" (two hex halves).
#include <gtest/gtest.h>

#include "proxy/monitor/health_monitor.h"

namespace pgs::monitor {
namespace {

TEST(Lsn, ParsesPostgresTextForm) {
  EXPECT_EQ(HealthMonitor::parse_lsn("16/B374D848"), 0x16B374D848ull);
  EXPECT_EQ(HealthMonitor::parse_lsn("0/0"), 0ull);
  EXPECT_EQ(HealthMonitor::parse_lsn("0/1"), 1ull);
  EXPECT_EQ(HealthMonitor::parse_lsn("1/0"), 1ull << 32);
  EXPECT_EQ(HealthMonitor::parse_lsn("FFFFFFFF/FFFFFFFF"), UINT64_MAX);
  EXPECT_EQ(HealthMonitor::parse_lsn("0/10a037a0"), 0x10A037A0ull);  // lower case is fine
}

TEST(Lsn, RejectsMalformedText) {
  for (const char* bad : {"", "/", "0/", "/0", "16", "16B374D848", "1/2/3", "G/0", "0/G", "-1/0", "0/-1",
                          "100000000/0", "0/100000000", " 0/0", "0/0 ", "0x1/0", "+1/0"}) {
    EXPECT_FALSE(HealthMonitor::parse_lsn(bad).has_value()) << "'" << bad << "'";
  }
}

TEST(Lsn, FormatsLikePostgres) {
  EXPECT_EQ(HealthMonitor::format_lsn(0x16B374D848ull), "16/B374D848");
  EXPECT_EQ(HealthMonitor::format_lsn(0), "0/0");
  EXPECT_EQ(HealthMonitor::format_lsn(UINT64_MAX), "FFFFFFFF/FFFFFFFF");
  EXPECT_EQ(HealthMonitor::format_lsn(1ull << 32), "1/0");
}

TEST(Lsn, RoundTrips) {
  for (uint64_t v : {0ull, 1ull, 0xFFFFFFFFull, 0x100000000ull, 0x16B374D848ull, 0xDEADBEEF01234567ull, ~0ull}) {
    auto back = HealthMonitor::parse_lsn(HealthMonitor::format_lsn(v));
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(*back, v);
  }
}

}  // namespace
}  // namespace pgs::monitor
