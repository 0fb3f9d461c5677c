// What the router knows about a SQL string: kinds, tables, flags, session-state changes and hints.
// Plain data produced by classify() (router/classify.h); no behaviour beyond names and merging.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pgs::router {

// Statement kinds. X(enumerator, name used in metrics and logs).
#define PGS_ROUTER_KINDS(X)                                                          \
  X(select, "select") X(values, "values") X(show, "show") X(table, "table")          \
  X(explain, "explain") X(insert, "insert") X(update, "update") X(delete_, "delete") \
  X(merge, "merge") X(copy_from, "copy_from") X(copy_to, "copy_to") X(ddl, "ddl")    \
  X(begin, "begin") X(begin_read_only, "begin_read_only") X(commit, "commit")        \
  X(rollback, "rollback") X(savepoint, "savepoint") X(rollback_to, "rollback_to")    \
  X(release, "release") X(prepare_transaction, "prepare_transaction")                \
  X(commit_prepared, "commit_prepared") X(rollback_prepared, "rollback_prepared")    \
  X(set, "set") X(set_local, "set_local") X(set_transaction, "set_transaction")      \
  X(reset, "reset") X(discard_all, "discard_all") X(discard, "discard")              \
  X(prepare, "prepare") X(execute, "execute") X(deallocate, "deallocate")            \
  X(listen, "listen") X(unlisten, "unlisten") X(notify, "notify") X(lock, "lock")    \
  X(call, "call") X(do_, "do") X(vacuum, "vacuum") X(declare_cursor, "declare_cursor") \
  X(fetch, "fetch") X(close_cursor, "close_cursor") X(empty, "empty") X(multi, "multi") \
  X(other, "other")

enum class Kind : uint8_t {
#define PGS_X(e, n) e,
  PGS_ROUTER_KINDS(PGS_X)
#undef PGS_X
};

inline constexpr std::array kKindNames = {
#define PGS_X(e, n) std::string_view{n},
    PGS_ROUTER_KINDS(PGS_X)
#undef PGS_X
};
inline constexpr std::string_view kind_name(Kind k) { return kKindNames[static_cast<size_t>(k)]; }

// A relation as written in the statement. The parser already folded unquoted identifiers to lower case
// and kept quoted ones, so `name` is the identity Postgres will resolve. `schema` is empty when the
// statement did not qualify the name: the caller resolves it with the session's search_path.
struct TableRef {
  std::string schema;
  std::string name;
  bool qualified() const { return !schema.empty(); }
  std::string qualified_name() const { return schema.empty() ? name : schema + "." + name; }
  auto operator<=>(const TableRef&) const = default;
};

struct Flags {
  bool for_update = false;           // SELECT ... FOR UPDATE anywhere in the statement
  bool for_no_key_update = false;
  bool for_share = false;
  bool for_key_share = false;
  bool data_modifying_cte = false;   // WITH x AS (INSERT/UPDATE/DELETE/MERGE ...)
  bool select_into = false;          // SELECT ... INTO new_table
  bool writes_temp = false;          // creates or writes a temporary relation
  bool calls_unsafe_function = false;  // a function not proven safe on a hot standby (see functions.h)
  bool volatile_functions = false;   // result may differ between two runs on the same data (now(),
                                     // random(), nextval, any unknown function, TABLESAMPLE, reads of
                                     // pg_catalog / information_schema / pg_* views): not cacheable
  bool session_state = false;        // at least one session-scoped SessionChange (not EXECUTE)
  bool transaction_read_only = false;  // BEGIN/START ... READ ONLY or SET TRANSACTION READ ONLY
  bool serializable = false;         // BEGIN/START/SET TRANSACTION ... ISOLATION LEVEL SERIALIZABLE
  bool writes_unknown_tables = false;  // may write relations not listed (CALL, DO, EXECUTE, unknown
                                       // functions, parse error, oversized): invalidate broadly
  bool opaque_session = false;       // may change session state in ways session_changes cannot show:
                                     // runs code the classifier cannot see (DO, CALL, EXECUTE, functions
                                     // outside the built-in table, set_config of a computed name), is DDL
                                     // or a statement of kind `other` (LOAD, ...), or was not parsed
  bool unqualified_tables = false;   // some TableRef has no schema
  bool parse_error = false;          // libpg_query rejected the text (`Classification::error`)
  bool oversized = false;            // above max_parse_bytes / max_parse_tokens: not parsed

  Flags& operator|=(const Flags& o);
  bool any_row_lock() const { return for_update || for_no_key_update || for_share || for_key_share; }
};

// Session-state effects that a transaction pooler must track, replay or pin for.
#define PGS_ROUTER_SESSION_OPS(X)                                                     \
  X(set) X(reset) X(reset_all) X(set_config) X(discard_all) X(discard_plans)          \
  X(discard_sequences) X(discard_temp) X(prepare) X(execute) X(deallocate)            \
  X(deallocate_all) X(listen) X(unlisten) X(unlisten_all) X(advisory_lock)            \
  X(advisory_unlock) X(advisory_unlock_all) X(temp_object) X(declare_with_hold)       \
  X(close_cursor) X(close_all_cursors)

enum class SessionOp : uint8_t {
#define PGS_X(e) e,
  PGS_ROUTER_SESSION_OPS(PGS_X)
#undef PGS_X
};
std::string_view session_op_name(SessionOp op);

// One effect. Field use per op:
//   set / reset:         name = setting (lower case, e.g. "search_path", "role", "session_authorization",
//                        "timezone"); value = argument text as written (set only); sql = the statement.
//                        SET x TO DEFAULT is a reset. SET SESSION CHARACTERISTICS AS TRANSACTION ...
//                        becomes one set per default_transaction_* setting.
//   set_config:          name, value when both are constants (else value_known = false); sql =
//                        "SELECT pg_catalog.set_config('name', 'value', false)".
//   prepare/execute/deallocate: name = statement name; prepare's sql = the PREPARE text.
//   listen/unlisten:     name = channel.
//   advisory_*:          name = function called, value = key argument text ("42" or "1,2").
//   temp_object:         name = relation created; transaction_scoped when ON COMMIT DROP.
//   declare_with_hold / close_cursor: name = cursor.
// transaction_scoped: SET LOCAL, set_config(..., true), pg_advisory_xact_*, ON COMMIT DROP: gone at
// transaction end, so not replayed and not pinning. EXECUTE is a dependency, not a change.
struct SessionChange {
  SessionOp op = SessionOp::set;
  std::string name;
  std::string value;
  std::string sql;
  bool transaction_scoped = false;
  bool value_known = true;
};

enum class RouteHint : uint8_t { none, primary, replica };

// Leading-comment hints: /* pgsidecar: primary */, /* pgsidecar: replica */,
// /* pgsidecar: cache ttl=30s class=NAME */, /* pgsidecar: no cache */. Directives may be combined in
// one comment separated by ',' or ';'; `-- pgsidecar: ...` line comments work too.
struct Hint {
  RouteHint route = RouteHint::none;
  bool cache = false;                              // "cache" directive present
  std::optional<std::chrono::milliseconds> cache_ttl;
  std::string cache_class;
  bool no_cache = false;
  bool malformed = false;  // a pgsidecar: comment had a directive we did not understand (ignored)
};

// One statement, or the summary of several.
struct StatementClass {
  Kind kind = Kind::other;
  bool read_only = false;  // provably read-only: may run on a replica
  Flags flags;
  std::vector<TableRef> tables_read;     // sorted by (schema, name), unique; CTE names excluded
  std::vector<TableRef> tables_written;  // sorted, unique
  std::vector<SessionChange> session_changes;  // in statement order
  std::vector<std::string> functions;          // called, as written ("lower", "app.f"), sorted, unique
  std::vector<std::string> unsafe_functions;   // the subset that is not replica-safe
  uint32_t location = 0;  // byte offset of this statement in the classified text
  uint32_t length = 0;    // byte length (summary: whole text)

  // True for kinds that change data (or may): insert/update/delete/merge/copy_from/ddl/... or any
  // written table, data-modifying CTE or SELECT INTO.
  bool writes() const;
};

struct Classification : StatementClass {
  Hint hint;
  std::string error;                        // parse error message ("" when parsed)
  std::vector<StatementClass> statements;   // one per statement; empty for "", parse errors, oversized
};

// A plain single SELECT/VALUES/TABLE that is read-only, calls nothing volatile and has no hint against
// caching: the only statements the result cache should consider.
bool cacheable_candidate(const Classification& c);

}  // namespace pgs::router
