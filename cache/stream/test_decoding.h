// The output of the `test_decoding` logical decoding plugin, read as "which tables did a committed
// transaction write" (issue 12 item 1). Pure: the caller feeds XLogData payloads (one line each).
// Expected slot options: include-xids '0', skip-empty-xacts '1'; no streaming, no two-phase.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace pgs::cache::stream {

// One line of test_decoding output (options include-xids '0', skip-empty-xacts '1'):
//   "BEGIN", "COMMIT", "table public.users: INSERT: id[integer]:1 ...",
//   "table \"My Schema\".\"Odd\"\"Name\": UPDATE: ...", "table public.t: TRUNCATE: (no-flags)",
//   "table public.t: DELETE: (no-tuple-data)", and "message: ..." (logical messages: other).
// The table is the relation's identity as the cache names it: "schema.name" with each part unquoted
// (test_decoding quotes an identifier that needs it, doubling inner quotes; unquote it exactly; an
// unquoted part is taken as is). A line that does not parse is `other` (never an error: the caller
// treats an unknown line conservatively).
// Also accepted: "BEGIN 123" / "COMMIT 123" (include-xids on) and a " (at <timestamp>)" suffix on COMMIT
// (include-timestamp). A change needs one of the actions INSERT, UPDATE, DELETE, TRUNCATE.
// A TRUNCATE of several tables ("table public.a, public.b: TRUNCATE: ...") is `other` here, since
// DecodedLine holds one table; TransactionTables reads every table of such a line.
struct DecodedLine {
  enum class Kind : uint8_t { begin, commit, change, other } kind = Kind::other;
  std::string table;  // for change
};
DecodedLine parse_test_decoding(std::string_view line);

// The tables of one transaction, from its BEGIN to its COMMIT. on_line() returns the sorted, unique
// tables when the line is a COMMIT (possibly empty), nullopt otherwise. A change line outside BEGIN/COMMIT,
// or an `other` line inside a transaction that starts with "table " (a table line it could not read),
// makes that transaction's answer contain "*" (every table: the caller bumps everything). At most
// `max_tables` distinct tables are kept per transaction; beyond, the answer is just "*".
// Whenever "*" is in the answer it is the whole answer: {"*"} (no real table is named "*": a cache name
// always has a schema part). Also answered {"*"}, the stream having been entered mid-transaction or
// lost its place: a COMMIT without a BEGIN, a BEGIN inside a transaction (the two are merged), an
// unreadable "table " line anywhere. Other lines ("message: ...", anything unknown) are ignored.
// State resets after each COMMIT. Not thread-safe; one instance per replication stream, made anew when
// the stream restarts.
class TransactionTables {
 public:
  explicit TransactionTables(size_t max_tables = 1024);
  std::optional<std::vector<std::string>> on_line(std::string_view line);

 private:
  void add(std::string table);

  size_t max_tables_;
  bool in_transaction_ = false;
  bool all_tables_ = false;  // the answer is {"*"}; tables_ is then empty
  std::set<std::string, std::less<>> tables_;
};

}  // namespace pgs::cache::stream
