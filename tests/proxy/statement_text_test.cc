#include "proxy/session/statement_text.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace pgs::proxy {
namespace {

TEST(LexicalNormalize, ReplacesLiteralsAndKeepsShape) {
  struct Case {
    const char* in;
    const char* out;
  };
  const Case cases[] = {
      {"SELECT * FROM t WHERE id = 42", "select * from t where id = ?"},
      {"select 'secret', E'a\\'b', $tag$body$tag$, 1.5e3", "select ?, ?, ?, ?"},
      {"SELECT a FROM t1 WHERE b = $1  -- comment 7\n AND c = 'x''y'", "select a from t1 where b = $1 and c = ?"},
      {"/* pgsidecar: primary */ SELECT \"Col1\" FROM x", "select \"Col1\" from x"},
      {"insert into t values (1,'a'),(2,'b')", "insert into t values (?,?),(?,?)"},
  };
  for (const auto& c : cases) EXPECT_EQ(lexical_normalize(c.in), c.out) << c.in;
}

TEST(LexicalNormalize, SameShapeSameFingerprint) {
  EXPECT_EQ(lexical_fingerprint(lexical_normalize("select * from t where id = 1")),
            lexical_fingerprint(lexical_normalize("SELECT *  FROM t WHERE id = 99")));
  EXPECT_NE(lexical_fingerprint(lexical_normalize("select * from t where id = 1")),
            lexical_fingerprint(lexical_normalize("select * from u where id = 1")));
}

TEST(LexicalNormalize, BoundedAndSafeOnUnterminatedText) {
  EXPECT_EQ(lexical_normalize("select 'never closed"), "select ?");
  EXPECT_EQ(lexical_normalize("select $a$ never closed"), "select ?");
  EXPECT_LE(lexical_normalize(std::string(10000, 'x'), 100).size(), 100u);
}

TEST(LexicalNormalize, CutAtTheWindowThenTrailingSpacesDropped) {
  EXPECT_EQ(lexical_normalize("select \"a b c d\" from t", 10), "select \"a");
  EXPECT_EQ(lexical_normalize("select \"a   b\"", 10), "select \"a");
  EXPECT_EQ(lexical_normalize("select  1   ", 100), "select ?");
  EXPECT_EQ(lexical_normalize("", 100), "");
  EXPECT_EQ(lexical_normalize("   ", 100), "");
}

// lexical_shape is the fingerprint of lexical_normalize's text, on the stack up to 2 kB and beyond.
TEST(LexicalShape, IsTheFingerprintOfTheNormalisedText) {
  const std::string long_text = "select " + std::string(3000, 'a') + " from t where x = 'y'";
  const std::vector<std::string> texts = {"select * from t where id = 1", "", "  ", "select \"Q\" from \"never closed",
                                          long_text, std::string(2047, 'b') + " 1", "UPDATE t SET x = 5 -- c"};
  for (const std::string& t : texts) {
    for (size_t max : {size_t{10}, size_t{2048}, size_t{4096}}) {
      EXPECT_EQ(lexical_shape(t, max), lexical_fingerprint(lexical_normalize(t, max))) << t.substr(0, 40) << " " << max;
    }
  }
  EXPECT_EQ(lexical_shape("SELECT * FROM t WHERE id = 99"), lexical_shape("select * from t where id = 1"));
}

}  // namespace
}  // namespace pgs::proxy

namespace pgs::proxy {
namespace {

TEST(MentionsAny, CaseInsensitiveAnywhere) {
  static constexpr std::string_view kWords[] = {"prepare", "set"};
  EXPECT_TRUE(mentions_any("PREPARE q AS SELECT 1", kWords));
  EXPECT_TRUE(mentions_any("select 1; ReSeT all", kWords)) << "inside a word too: a cheap pre-check";
  EXPECT_FALSE(mentions_any("SELECT abalance FROM pgbench_accounts WHERE aid = $1", kWords));
  EXPECT_FALSE(mentions_any("prepar", kWords)) << "a prefix cut by the end of the text";
  EXPECT_FALSE(mentions_any("", kWords));
  EXPECT_TRUE(mentions_any("\xc3\xa9 set", kWords)) << "non-ASCII bytes are skipped";
}

// The word buckets change nothing: the same answer as the plain search, over texts that hold each word
// (any case, at any place, cut by the end) and texts that hold none.
TEST(MentionsAny, AgreesWithAPlainSearch) {
  static constexpr std::string_view kWords[] = {"set",  "discard", "listen",  "advisory", "temp", "hold",
                                                "prepare", "dealloc", "session", "role",   "close",
                                                "do", "call", "execute", "load", "pgsidecar_"};
  auto plain = [](std::string_view sql) {
    std::string lower(sql);
    for (char& c : lower) c = ascii_lower(c);
    for (std::string_view w : kWords) {
      if (lower.find(w) != std::string::npos) return true;
    }
    return false;
  };
  std::vector<std::string> texts = {"SELECT abalance FROM pgbench_accounts WHERE aid = 1",
                                    "UPDATE pgbench_tellers SET tbalance = tbalance + 5", "select pg_sleep(1)",
                                    "INSERT INTO t VALUES (1)", "", "s", "se", "SE", "pgsidecar", "pgsidecar_x",
                                    "\xc3\xa9 \xff LOAD"};
  for (std::string_view w : kWords) {
    std::string upper(w);
    for (char& c : upper) c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 32 : c);
    texts.push_back("x" + upper + "y");
    texts.push_back(std::string(w.substr(0, w.size() - 1)));  // cut by the end
    texts.push_back("SELECT 1 -- " + std::string(w));
  }
  for (const std::string& t : texts) EXPECT_EQ(mentions_any(t, kWords), plain(t)) << t;
  std::vector<std::string_view> many(40, "zzz");  // more words than one mask holds
  many.back() = "needle";
  static constexpr std::string_view kOneLetter[] = {"q", "do"};
  EXPECT_TRUE(mentions_any("xQ", kOneLetter)) << "a one-letter word matches at the end too";
  EXPECT_TRUE(mentions_any("ado", kOneLetter));
  EXPECT_FALSE(mentions_any("d o", kOneLetter));
  EXPECT_TRUE(mentions_any("a NEEDLE here", many));
  EXPECT_FALSE(mentions_any("a needl here", many));
}

TEST(PreparedStatementBody, FindsTheStatementAfterAs) {
  EXPECT_EQ(prepared_statement_body("PREPARE q AS SELECT 1").value_or("<none>"), "SELECT 1");
  EXPECT_EQ(prepared_statement_body("  prepare \"Q x\"\"y\" (int, numeric(10,2)) as\n  UPDATE t SET a = $1").value_or("<none>"),
            "UPDATE t SET a = $1");
  EXPECT_EQ(prepared_statement_body("PREPARE q(int)AS SELECT $1").value_or("<none>"), "SELECT $1");
  for (const char* bad : {"SELECT 1", "/* c */ PREPARE q AS SELECT 1", "PREPARE q SELECT 1", "PREPARE \"q AS SELECT 1",
                          "PREPARE q (int AS SELECT 1", "PREPARE q AS", "PREPAREq AS SELECT 1", ""}) {
    EXPECT_FALSE(prepared_statement_body(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace pgs::proxy
