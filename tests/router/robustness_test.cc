// Mutated and random inputs: classify(), fingerprint(), normalize() and parse_hints() never crash, and
// the read_only invariant holds on whatever comes out. (A deterministic stand-in for the libFuzzer
// target; the same entry points are safe to fuzz.)
#include <gtest/gtest.h>
#include <pthread.h>

#include <atomic>
#include <random>
#include <string>
#include <vector>

#include "router/classify.h"
#include "router/fingerprint.h"

namespace pgs::router {
namespace {

const std::vector<std::string> kSeeds = {
    "SELECT * FROM a JOIN b ON a.id = b.id WHERE a.x = 'str''s' AND b.y = E'\\n' FOR UPDATE",
    "WITH RECURSIVE r AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT * FROM r",
    "/* pgsidecar: replica, cache ttl=5s */ SELECT $1::int, $$dollar$$, $tag$x$tag$",
    "INSERT INTO t VALUES (1) ON CONFLICT DO NOTHING; SET search_path = a; LISTEN c",
    "SELECT set_config('a.b', 'c', false), pg_advisory_lock(-1), nextval('s')",
    "EXPLAIN (ANALYZE, FORMAT JSON) DELETE FROM t USING u WHERE t.a = u.a RETURNING *",
    "CREATE TEMP TABLE x AS SELECT * FROM y; DECLARE c CURSOR WITH HOLD FOR SELECT 1",
    "-- comment\nBEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY; COMMIT",
};

void check_invariants(const std::string& sql) {
  Classification c = classify(sql);
  if (c.flags.parse_error || c.flags.oversized) {
    EXPECT_FALSE(c.read_only) << sql;
  }
  if (c.read_only) {
    EXPECT_TRUE(c.tables_written.empty()) << sql;
    EXPECT_FALSE(c.flags.data_modifying_cte || c.flags.select_into || c.flags.any_row_lock() ||
                 c.flags.calls_unsafe_function || c.flags.session_state)
        << sql;
  }
  for (const auto& s : c.statements) {
    EXPECT_LE(size_t{s.location} + s.length, sql.size()) << sql;
  }
  std::string n = normalize(sql);
  Fingerprint f = fingerprint(sql);
  EXPECT_EQ(f.ok, f.value != 0 || f.hex != "0000000000000000") << sql;
  (void)parse_hints(sql);
}

TEST(Robustness, MutatedSeeds) {
  std::mt19937 rng(12345);
  const std::string alphabet = "()[]'\"$;:-/*+ \n\\abcSELECTfromWHERE0123456789,.=<>|&E";
  for (const auto& seed : kSeeds) {
    for (int i = 0; i < 300; ++i) {
      std::string s = seed;
      int edits = 1 + static_cast<int>(rng() % 6);
      for (int e = 0; e < edits && !s.empty(); ++e) {
        size_t pos = rng() % s.size();
        switch (rng() % 4) {
          case 0: s[pos] = alphabet[rng() % alphabet.size()]; break;
          case 1: s.insert(pos, 1, alphabet[rng() % alphabet.size()]); break;
          case 2: s.erase(pos, 1 + rng() % 8); break;
          default: s.insert(pos, s.substr(rng() % s.size(), rng() % 16)); break;
        }
      }
      check_invariants(s);
    }
  }
}

// glibc gives threads 2 MB of stack when RLIMIT_STACK is unlimited: the worst input the guard lets
// through (max_parse_tokens nesting tokens) must classify within that, on a thread with exactly 2 MB.
TEST(Robustness, WorstAcceptedInputFitsIn2MBOfStack) {
  auto repeat = [](const std::string& unit, size_t n) {
    std::string s;
    for (size_t i = 0; i < n; ++i) s += unit;
    return s;
  };
  const size_t budget = ClassifyOptions{}.max_parse_tokens;
  static std::vector<std::string> inputs;
  inputs = {"SELECT 1" + repeat("+1", budget - 1), "SELECT " + repeat("- ", budget - 1) + "1",
            "SELECT " + repeat("(", budget - 1) + "1" + repeat(")", budget - 1),
            "SELECT " + repeat("(SELECT ", budget / 2 - 1) + "1" + repeat(")", budget / 2 - 1),
            "SELECT 1" + repeat("::int", budget / 2 - 1), "SELECT 1" + repeat(" UNION SELECT 1", budget / 2 - 1),
            "SELECT ARRAY" + repeat("[", budget - 2) + "1" + repeat("]", budget - 2)};
  static std::atomic<int> done{0};
  done = 0;
  auto body = [](void*) -> void* {
    for (const auto& sql : inputs) {
      Classification c = classify(sql);
      if (c.read_only && (c.flags.oversized || c.flags.parse_error)) std::abort();
      (void)fingerprint(sql);
      (void)normalize(sql);
      done.fetch_add(1);
    }
    return nullptr;
  };
  pthread_attr_t attr;
  ASSERT_EQ(pthread_attr_init(&attr), 0);
  ASSERT_EQ(pthread_attr_setstacksize(&attr, 2u << 20), 0);
  pthread_t t;
  ASSERT_EQ(pthread_create(&t, &attr, body, nullptr), 0);
  ASSERT_EQ(pthread_join(t, nullptr), 0);  // a stack overflow kills the whole test binary instead
  pthread_attr_destroy(&attr);
  EXPECT_EQ(done.load(), static_cast<int>(inputs.size()));
}

TEST(Robustness, DeeplyNestedCommentsAreRefused) {
  std::string sql;
  for (int i = 0; i < 4000; ++i) sql += "/*";
  for (int i = 0; i < 4000; ++i) sql += "*/";
  sql += "SELECT 1";
  Classification c = classify(sql);  // the Postgres lexer would spend ~1 s on this
  EXPECT_TRUE(c.flags.oversized);
  EXPECT_EQ(normalize(sql), kOversizedStatement);
  EXPECT_TRUE(classify("/* a /* nested */ comment */ SELECT 1").read_only);
}

TEST(Robustness, RandomBytes) {
  std::mt19937 rng(777);
  for (int i = 0; i < 500; ++i) {
    std::string s(rng() % 200, '\0');
    for (auto& ch : s) ch = static_cast<char>(rng() % 256);
    check_invariants(s);
  }
}

TEST(Robustness, PathologicalShapes) {
  auto repeat = [](const std::string& unit, int n) {
    std::string s;
    for (int i = 0; i < n; ++i) s += unit;
    return s;
  };
  for (const std::string& sql :
       {"SELECT " + repeat("(", 5000) + "1" + repeat(")", 5000), "SELECT " + repeat("- ", 20000) + "1",
        "SELECT " + repeat("NOT ", 20000) + "true", "SELECT 1" + repeat(" UNION SELECT 1", 9000),
        "SELECT 1" + repeat("::int", 9000), "SELECT ARRAY" + repeat("[", 3000) + "1" + repeat("]", 3000),
        repeat("/*", 10000), repeat("/*", 4000) + repeat("*/", 4000) + "SELECT 1", repeat("SELECT 1;", 5000), "SELECT '" + repeat("x", 100000)}) {
    check_invariants(sql);
  }
}

}  // namespace
}  // namespace pgs::router
