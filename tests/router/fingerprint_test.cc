// fingerprint(), normalize(), and LSN text conversions.
#include <gtest/gtest.h>

#include "router/fingerprint.h"
#include "router/lsn.h"

namespace pgs::router {
namespace {

TEST(Fingerprint, SameShapeSameFingerprint) {
  Fingerprint a = fingerprint("SELECT * FROM t WHERE id = 1");
  Fingerprint b = fingerprint("select *   from t where id = 42");
  Fingerprint c = fingerprint("SELECT * FROM u WHERE id = 1");
  ASSERT_TRUE(a.ok);
  EXPECT_EQ(a.value, b.value);
  EXPECT_EQ(a.hex, b.hex);
  EXPECT_NE(a.value, c.value);
  EXPECT_EQ(a.hex.size(), 16u);
  EXPECT_EQ(a.hex.find_first_not_of("0123456789abcdef"), std::string::npos);
}

TEST(Fingerprint, UnparseableIsNotOk) {
  Fingerprint f = fingerprint("SELEC 'secret'");
  EXPECT_FALSE(f.ok);
  EXPECT_EQ(f.value, 0u);
}

TEST(Normalize, ConstantsBecomeParameters) {
  EXPECT_EQ(normalize("SELECT * FROM t WHERE a = 5 AND b = 'secret'"),
            "SELECT * FROM t WHERE a = $1 AND b = $2");
  EXPECT_EQ(normalize("ALTER ROLE bob PASSWORD 'hunter2'"), "ALTER ROLE bob PASSWORD $1");
  EXPECT_EQ(normalize("SET app.key TO 'secretvalue'"), "SET app.key TO $1");
}

TEST(Normalize, FailuresNeverLeakLiterals) {
  std::string n = normalize("SELEC * FROM t WHERE password = 'hunter2'");
  EXPECT_EQ(n, kUnparseableStatement);
  EXPECT_EQ(normalize(std::string_view("SELECT 'a\0b'", 12)), kUnparseableStatement);
  ClassifyOptions small;
  small.max_parse_bytes = 10;
  EXPECT_EQ(normalize("SELECT 'hunter2'", small), kOversizedStatement);
  std::string deep = "SELECT 1";
  for (int i = 0; i < 50000; ++i) deep += "+1";
  EXPECT_EQ(normalize(deep), kOversizedStatement);
  EXPECT_FALSE(fingerprint(deep).ok);
}

TEST(Lsn, ParseAndFormat) {
  EXPECT_EQ(parse_lsn("0/0"), Lsn{0});
  EXPECT_EQ(parse_lsn("16/B374D848"), (Lsn{0x16} << 32) | 0xB374D848);
  EXPECT_EQ(parse_lsn("FFFFFFFF/FFFFFFFF"), ~Lsn{0});
  EXPECT_EQ(format_lsn((Lsn{0x16} << 32) | 0xB374D848), "16/B374D848");
  EXPECT_EQ(format_lsn(0), "0/0");
  for (const char* bad : {"", "16", "/1", "1/", "G/1", "123456789/1", "1/2/3", "-1/2"}) {
    EXPECT_FALSE(parse_lsn(bad).has_value()) << bad;
  }
  EXPECT_LT(*parse_lsn("0/FFFFFFFF"), *parse_lsn("1/0"));
}

}  // namespace
}  // namespace pgs::router
