#include "proxy/session/statement_text.h"

#include <gtest/gtest.h>

#include <random>
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

// The rules of statement_text.h written plainly, one token at a time into a growing string, as the
// reference the table-driven normaliser is checked against.
std::string reference_normalize(std::string_view s, size_t max_bytes) {
  auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
  auto letter = [&](char c) { return (lower(c) >= 'a' && lower(c) <= 'z') || c == '_'; };
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  auto alnum = [&](char c) { return digit(c) || (lower(c) >= 'a' && lower(c) <= 'z'); };
  auto ident = [&](char c) { return alnum(c) || c == '_' || c == '$'; };
  auto space = [](char c) { return std::string_view(" \t\n\r\f\v").find(c) != std::string_view::npos; };
  auto quoted_end = [&](size_t i, char q, bool backslash) {  // just past the closing quote, or the end
    for (size_t j = i + 1; j < s.size(); ++j) {
      if (backslash && s[j] == '\\') {
        ++j;
      } else if (s[j] == q) {
        if (j + 1 < s.size() && s[j + 1] == q) ++j;
        else return j + 1;
      }
    }
    return s.size();
  };
  const size_t cap = std::min(s.size(), max_bytes);
  std::string out;
  size_t i = 0;
  while (i < s.size() && out.size() < cap) {
    const char c = s[i];
    const bool after_name = i > 0 && ident(s[i - 1]);
    const bool e_string = lower(c) == 'e' && i + 1 < s.size() && s[i + 1] == '\'' && !after_name;
    std::string token;
    if (letter(c) && !e_string) {
      while (i < s.size() && (i == 0 || token.empty() || ident(s[i]))) token += lower(s[i++]);
    } else if (space(c)) {
      if (!out.empty() && out.back() != ' ') token = " ";
      ++i;
    } else if (c == '-' && i + 1 < s.size() && s[i + 1] == '-') {
      i = std::min(s.find('\n', i), s.size());
      if (!out.empty() && out.back() != ' ') token = " ";
    } else if (c == '/' && i + 1 < s.size() && s[i + 1] == '*') {
      size_t e = s.find("*/", i + 2);
      i = e == std::string_view::npos ? s.size() : e + 2;
      if (!out.empty() && out.back() != ' ') token = " ";
    } else if (c == '\'' || e_string) {
      i = quoted_end(e_string ? i + 1 : i, '\'', e_string);
      token = "?";
    } else if (c == '"') {
      size_t e = quoted_end(i, '"', false);
      token = std::string(s.substr(i, e - i));
      i = e;
    } else if (c == '$' && !after_name) {
      size_t j = i + 1;
      while (j < s.size() && (alnum(s[j]) || s[j] == '_')) ++j;
      if (j < s.size() && s[j] == '$' && !(j > i + 1 && digit(s[i + 1]))) {
        size_t e = s.find(s.substr(i, j - i + 1), j + 1);
        i = e == std::string_view::npos ? s.size() : e + (j - i + 1);
        token = "?";
      } else {
        token = "$";
        for (++i; i < s.size() && digit(s[i]); ++i) token += s[i];
      }
    } else if (digit(c) && !after_name) {
      while (i < s.size() && (alnum(s[i]) || s[i] == '.')) ++i;
      token = "?";
    } else {
      token = std::string(1, lower(c));
      ++i;
    }
    out += token.substr(0, cap - out.size());
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

// Random statements from the pieces each rule reads, cut at random windows: the normaliser and the
// reference must give the same text byte for byte (the shape keys the session-code memo and digests).
TEST(LexicalNormalize, AgreesWithThePlainRulesOnRandomText) {
  static const std::vector<std::string> kPieces = {
      "SELECT", "from", "Where", "e", "E", "x1", "_a$b", " ", "  ", "\t", "\n", "1", "42", "3.5e7", "0x1F", "'",
      "'it''s'", "E'a\\'b'", "e'", "\"Q\"\"x\"", "\"", "$", "$1", "$12", "$$", "$tag$", "$$ body $$", "--", "-- c\n",
      "/*", "*/", "/* c */", "-", "/", "*", "(", ")", ",", ";", "=", "\xc3\xa9", "\xff", "pgbench_accounts", "aid"};
  std::mt19937 rng(20261207);
  for (int n = 0; n < 20000; ++n) {
    std::string text;
    const int pieces = static_cast<int>(rng() % 12);
    for (int k = 0; k < pieces; ++k) text += kPieces[rng() % kPieces.size()];
    const size_t window = std::vector<size_t>{3, 8, 17, 64, 2048}[rng() % 5];
    ASSERT_EQ(lexical_normalize(text, window), reference_normalize(text, window)) << "[" << text << "] " << window;
  }
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

// find_each names each match (the word's index, where it starts) in text order, stops when told, and
// numbers the words beyond the first 32 as the list does.
TEST(KeywordSetFindEach, NamesEveryMatchUntilStopped) {
  static constexpr std::string_view kWords[] = {"set", "session", "do"};
  const KeywordSet set(kWords);
  std::vector<std::pair<size_t, size_t>> seen;
  EXPECT_FALSE(set.find_each("SESSION; reset DOne", [&](size_t k, size_t at) {
    seen.emplace_back(k, at);
    return false;
  }));
  EXPECT_EQ(seen, (std::vector<std::pair<size_t, size_t>>{{1, 0}, {0, 11}, {2, 15}}));
  seen.clear();
  EXPECT_TRUE(set.find_each("set do set", [&](size_t k, size_t at) {
    seen.emplace_back(k, at);
    return k == 2;
  }));
  EXPECT_EQ(seen, (std::vector<std::pair<size_t, size_t>>{{0, 0}, {2, 4}}));
  std::vector<std::string_view> many(40, "zzz");
  many[35] = "needle";
  const KeywordSet big(many);
  size_t found = 0;
  EXPECT_TRUE(big.find_each("a needle", [&](size_t k, size_t) { return (found = k) == 35; }));
  EXPECT_EQ(found, 35u);
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
