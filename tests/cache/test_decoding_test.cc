// test_decoding lines and the per-transaction table sets built from them.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "cache/stream/test_decoding.h"

namespace pgs::cache::stream {
namespace {

using Kind = DecodedLine::Kind;
using Tables = std::vector<std::string>;

struct LineCase {
  std::string_view line;
  Kind kind;
  std::string_view table;
};

TEST(ParseTestDecoding, Lines) {
  const LineCase cases[] = {
      {"BEGIN", Kind::begin, ""},
      {"COMMIT", Kind::commit, ""},
      {"BEGIN 748", Kind::begin, ""},
      {"COMMIT 748", Kind::commit, ""},
      {"COMMIT 748 (at 2026-12-06 17:00:00.1+00)", Kind::commit, ""},
      {"table public.users: INSERT: id[integer]:1 name[text]:'a'", Kind::change, "public.users"},
      {"table public.users: UPDATE: old-key: id[integer]:1 new-tuple: id[integer]:2", Kind::change,
       "public.users"},
      {"table public.t: DELETE: (no-tuple-data)", Kind::change, "public.t"},
      {"table public.t: DELETE: id[integer]:1", Kind::change, "public.t"},
      {"table public.t: TRUNCATE: (no-flags)", Kind::change, "public.t"},
      {"table public.t: TRUNCATE: restart_seqs cascade", Kind::change, "public.t"},
      {"table public.t: INSERT: (no-tuple-data)", Kind::change, "public.t"},
      {"table public.t: INSERT:", Kind::change, "public.t"},
      {"table core.user_profile: UPDATE: id[bigint]:7", Kind::change, "core.user_profile"},
      // Quoted parts: doubled quotes, a dot, a colon, a comma and ": " inside the quotes.
      {"table \"My Schema\".\"Odd\"\"Name\": UPDATE: id[integer]:1", Kind::change, "My Schema.Odd\"Name"},
      {"table \"a.b\".\"c: d\": INSERT: x[int]:1", Kind::change, "a.b.c: d"},
      {"table \"s, t\".\"x:\": DELETE: (no-tuple-data)", Kind::change, "s, t.x:"},
      {"table \"\"\"\".\"\"\"\"\"\": INSERT: x[int]:1", Kind::change, "\".\"\""},
      {"table public.\"Users\": INSERT: x[int]:1", Kind::change, "public.Users"},
      {"table \"select\".t: INSERT: x[int]:1", Kind::change, "select.t"},
      // Unquoted parts are taken as is (test_decoding would have quoted these, but they read).
      {"table Public.Users: INSERT: x[int]:1", Kind::change, "Public.Users"},
      // Logical messages and everything else: other.
      {"message: transactional: 1 prefix: p, sz: 3 content:abc", Kind::other, ""},
      {"message: transactional: 0 prefix: table , sz: 0 content:", Kind::other, ""},
      {"", Kind::other, ""},
      {"BEGINNING", Kind::other, ""},
      {"begin", Kind::other, ""},
      {"COMMIT PREPARED 'gid'", Kind::other, ""},
      {"PREPARE TRANSACTION 'gid'", Kind::other, ""},
      {"BEGIN 12x", Kind::other, ""},
      {"COMMIT (at x", Kind::other, ""},
      {"table ", Kind::other, ""},
      {"table public.t", Kind::other, ""},
      {"table public.t:", Kind::other, ""},
      {"table public.t: MERGE: x", Kind::other, ""},
      {"table public.t: INSERTX: x", Kind::other, ""},
      {"table public.t: INSERT:x", Kind::other, ""},
      {"table t: INSERT: x[int]:1", Kind::other, ""},
      {"table .t: INSERT: x[int]:1", Kind::other, ""},
      {"table public.: INSERT: x[int]:1", Kind::other, ""},
      {"table \"\".t: INSERT: x[int]:1", Kind::other, ""},
      {"table \"open.t: INSERT: x[int]:1", Kind::other, ""},
      {"table \"a\"b.t: INSERT: x[int]:1", Kind::other, ""},
      {"table public.t x: INSERT: x[int]:1", Kind::other, ""},
      {"table a.b.c: INSERT: x[int]:1", Kind::other, ""},
      {"table public.a, public.b: INSERT: x[int]:1", Kind::other, ""},
      // Several tables (TRUNCATE a, b) do not fit DecodedLine: other here, read by TransactionTables.
      {"table public.a, public.b: TRUNCATE: (no-flags)", Kind::other, ""},
      {"\x01\xff garbage \"", Kind::other, ""},
  };
  for (const auto& c : cases) {
    const DecodedLine got = parse_test_decoding(c.line);
    EXPECT_EQ(got.kind, c.kind) << c.line;
    EXPECT_EQ(got.table, c.table) << c.line;
  }
}

TEST(ParseTestDecoding, EveryPrefixOfATableLineIsSafe) {
  const std::string line = "table \"My Schema\".\"Odd\"\"Name\": UPDATE: id[integer]:1";
  for (size_t n = 0; n <= line.size(); ++n) {
    const std::unique_ptr<char[]> exact(new char[n]);  // exact size: an overread is a heap overflow
    std::memcpy(exact.get(), line.data(), n);
    const std::string_view cut(exact.get(), n);
    const DecodedLine got = parse_test_decoding(cut);
    TransactionTables tt;
    (void)tt.on_line("BEGIN");
    (void)tt.on_line(cut);
    if (got.kind == Kind::change) {
      EXPECT_EQ(got.table, "My Schema.Odd\"Name") << cut;
    }
  }
}

// Feeds lines; returns the answer of each COMMIT in order (and checks the others gave nullopt).
std::vector<Tables> feed(TransactionTables& tt, std::initializer_list<std::string_view> lines) {
  std::vector<Tables> answers;
  for (auto line : lines) {
    auto got = tt.on_line(line);
    if (parse_test_decoding(line).kind == Kind::commit) {
      EXPECT_TRUE(got.has_value()) << line;
      if (got) answers.push_back(*got);
    } else {
      EXPECT_FALSE(got.has_value()) << line;
    }
  }
  return answers;
}

TEST(TransactionTables, TwoTablesSortedUnique) {
  TransactionTables tt;
  auto got = feed(tt, {"BEGIN", "table public.users: INSERT: id[integer]:1",
                       "table core.accounts: UPDATE: id[integer]:1",
                       "table public.users: DELETE: (no-tuple-data)",
                       "message: transactional: 1 prefix: x, sz: 1 content:y",
                       "table core.accounts: UPDATE: id[integer]:2", "COMMIT"});
  EXPECT_EQ(got, (std::vector<Tables>{{"core.accounts", "public.users"}}));
}

TEST(TransactionTables, NoChangesGivesEmptyList) {
  TransactionTables tt;
  auto got = feed(tt, {"BEGIN", "message: transactional: 1 prefix: x, sz: 0 content:", "COMMIT"});
  EXPECT_EQ(got, (std::vector<Tables>{Tables{}}));
}

TEST(TransactionTables, NonTransactionalMessageOutsideIsIgnored) {
  TransactionTables tt;
  auto got = feed(tt, {"message: transactional: 0 prefix: x, sz: 0 content:", "BEGIN",
                       "table public.t: INSERT: x[int]:1", "COMMIT"});
  EXPECT_EQ(got, (std::vector<Tables>{{"public.t"}}));
}

TEST(TransactionTables, QuotedNamesAndMultiTableTruncate) {
  TransactionTables tt;
  auto got = feed(tt, {"BEGIN", "table public.\"b, c\", \"My S\".\"x\"\"y\", public.a: TRUNCATE: cascade",
                       "COMMIT"});
  EXPECT_EQ(got, (std::vector<Tables>{{"My S.x\"y", "public.a", "public.b, c"}}));
}

TEST(TransactionTables, ChangeOutsideTransactionIsEverything) {
  TransactionTables tt;
  auto got = feed(tt, {"table public.t: INSERT: x[int]:1", "BEGIN", "table public.u: INSERT: x[int]:1",
                       "COMMIT"});
  EXPECT_EQ(got, (std::vector<Tables>{{"*"}}));
}

TEST(TransactionTables, CommitWithoutBeginIsEverything) {
  TransactionTables tt;
  auto got = feed(tt, {"table public.t: INSERT: x[int]:1", "COMMIT", "COMMIT"});
  EXPECT_EQ(got, (std::vector<Tables>{{"*"}, {"*"}}));
}

TEST(TransactionTables, BeginInsideTransactionIsEverything) {
  TransactionTables tt;
  auto got = feed(tt, {"BEGIN", "table public.t: INSERT: x[int]:1", "BEGIN", "COMMIT"});
  EXPECT_EQ(got, (std::vector<Tables>{{"*"}}));
}

TEST(TransactionTables, UnreadableTableLineIsEverything) {
  for (std::string_view bad : {"table public.t: MERGE: x", "table \"open.t: INSERT: x", "table t: INSERT: x",
                               "table public.a, public.b: UPDATE: x", "table "}) {
    TransactionTables tt;
    auto got = feed(tt, {"BEGIN", "table public.t: INSERT: x[int]:1", bad, "table public.u: INSERT: x",
                         "COMMIT"});
    EXPECT_EQ(got, (std::vector<Tables>{{"*"}})) << bad;
  }
}

TEST(TransactionTables, OtherLinesNotStartingWithTableAreIgnored) {
  TransactionTables tt;
  auto got = feed(tt, {"BEGIN", "tables public.t: INSERT: x", "garbage", "", "COMMIT"});
  EXPECT_EQ(got, (std::vector<Tables>{Tables{}}));
}

TEST(TransactionTables, MaxTablesBound) {
  TransactionTables tt(2);
  // Exactly two distinct tables (repeated) fit.
  auto got = feed(tt, {"BEGIN", "table public.a: INSERT: x", "table public.b: INSERT: x",
                       "table public.a: INSERT: x", "COMMIT"});
  EXPECT_EQ(got, (std::vector<Tables>{{"public.a", "public.b"}}));
  // A third distinct table: just "*".
  got = feed(tt, {"BEGIN", "table public.a: INSERT: x", "table public.b: INSERT: x", "table public.c: INSERT: x",
                  "table public.a: INSERT: x", "COMMIT"});
  EXPECT_EQ(got, (std::vector<Tables>{{"*"}}));
  // The same through one TRUNCATE line.
  got = feed(tt, {"BEGIN", "table public.a, public.b, public.c: TRUNCATE: (no-flags)", "COMMIT"});
  EXPECT_EQ(got, (std::vector<Tables>{{"*"}}));
}

TEST(TransactionTables, ZeroMaxTablesIsAlwaysEverythingOnChange) {
  TransactionTables tt(0);
  auto got = feed(tt, {"BEGIN", "COMMIT", "BEGIN", "table public.a: INSERT: x", "COMMIT"});
  EXPECT_EQ(got, (std::vector<Tables>{Tables{}, {"*"}}));
}

TEST(TransactionTables, StateResetsAfterEachCommit) {
  TransactionTables tt(2);
  auto got = feed(tt, {
                          "BEGIN", "table public.a: INSERT: x", "COMMIT",                         // plain
                          "BEGIN", "table public.b: INSERT: x", "COMMIT",                         // no public.a
                          "table public.z: INSERT: x", "BEGIN", "COMMIT",                         // outside: *
                          "BEGIN", "COMMIT",                                                      // empty again
                          "BEGIN", "table bad", "COMMIT",                                         // unreadable: *
                          "BEGIN", "table public.c: INSERT: x", "COMMIT",                         // back to normal
                          "BEGIN", "table public.a: INSERT: x", "table public.b: INSERT: x",
                          "table public.c: INSERT: x", "COMMIT",                                  // bound: *
                          "BEGIN", "table public.d: INSERT: x", "table public.e: INSERT: x", "COMMIT",
                      });
  EXPECT_EQ(got, (std::vector<Tables>{{"public.a"},
                                      {"public.b"},
                                      {"*"},
                                      {},
                                      {"*"},
                                      {"public.c"},
                                      {"*"},
                                      {"public.d", "public.e"}}));
}

}  // namespace
}  // namespace pgs::cache::stream
