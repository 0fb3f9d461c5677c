// Cache policy: may this statement's result be served from / stored in the result cache, for how long,
// and under which TTL class? Pure: a function of the statement's classification, facts about the
// client's session, and the [cache] config snapshot.
//
// Rules, in order (the first that applies decides):
//  1. cache disabled                                     -> bypass disabled
//  2. generations not in sync with Redis (this worker)  -> bypass generations_unsynced
//  3. hint "no cache"                                    -> bypass hint_no_cache
//  4. parse error / oversized / several statements / not a plain SELECT, VALUES or TABLE
//                                                        -> bypass not_parsed / multi_statement / not_select
//  5. not provably read-only, row locks, session-state changes, SELECT INTO -> bypass not_read_only
//  6. volatile or unsafe functions (now(), random(), nextval, unknown functions, catalog reads)
//                                                        -> bypass volatile_function (hints cannot override)
//  7. inside a read-write transaction (its own uncommitted writes are invisible to the cache)
//                                                        -> bypass in_transaction; inside a read-only
//     transaction whose isolation is not known to be READ COMMITTED (a snapshot must not see newer
//     results)                                           -> bypass in_snapshot_transaction
//  8. an unqualified table that the search_path and the catalog do not resolve with certainty -> bypass
//     unqualified_table_unresolved (see resolve_table())
//  8b. row-level security, default-deny (hints cannot override): a relation with RLS enabled, or a
//     view reading one, is never cached (its policies may read anything the session holds: role,
//     custom settings, session_user ...)       -> bypass row_security
//     the catalog was not read yet, or does not know the relation in the client's database (created
//     since the last read, a temp table) -> bypass row_security_unknown
//  9. hint class=NAME: NAME must exist (else bypass hint_unknown_class); its TTL, unless ttl= is given
// 10. hint ttl=D (with or without tables in classes)   -> cacheable, ttl D, class of the tables or "hint"
// 11. no tables read                                    -> bypass no_tables
// 12. a table in no class                               -> bypass table_not_in_class
// 13. otherwise cacheable; ttl = the smallest TTL of the classes of the tables read, class = that class.
//
// Invalidation contract for the caller: a hint may cache tables that are in no class, so the proxy
// must bump the generation of EVERY table a committed transaction wrote (not only class tables), and
// bump kAllTables when a committed statement may have written unknown tables (flags.writes_unknown_tables).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "conf/config.h"
#include "router/classification.h"

namespace pgs::cache {

#define PGS_CACHE_BYPASS_REASONS(X)                                                           \
  X(disabled) X(generations_unsynced) X(hint_no_cache) X(not_parsed) X(multi_statement)       \
  X(not_select) X(not_read_only) X(volatile_function) X(in_transaction)                       \
  X(in_snapshot_transaction) X(unqualified_table_unresolved) X(hint_unknown_class)            \
  X(no_tables) X(table_not_in_class) X(row_security) X(row_security_unknown)

enum class BypassReason : uint8_t {
#define PGS_X(e) e,
  PGS_CACHE_BYPASS_REASONS(PGS_X)
#undef PGS_X
};

// Names for metrics labels ("reason") and logs; kAllBypassReasons lists each value once.
inline constexpr std::array kBypassReasonNames = {
#define PGS_X(e) std::string_view{#e},
    PGS_CACHE_BYPASS_REASONS(PGS_X)
#undef PGS_X
};
inline constexpr std::array kAllBypassReasons = {
#define PGS_X(e) BypassReason::e,
    PGS_CACHE_BYPASS_REASONS(PGS_X)
#undef PGS_X
};
inline constexpr std::string_view bypass_reason_name(BypassReason r) {
  return kBypassReasonNames[static_cast<size_t>(r)];
}

// The class label used when a ttl= hint caches tables that belong to no class.
inline constexpr std::string_view kHintClass = "hint";

// Whether a relation has row-level security, as the catalog of one database says (the proxy's catalog
// reader implements it: proxy/session/session_code.h). `on` also for a view that reads such a relation, directly
// or through other views. `unknown` when the relation is not in the last catalog read of `database`.
enum class RowSecurity : uint8_t { off, on, unknown };
class RowSecurityFacts {
 public:
  virtual ~RowSecurityFacts() = default;
  // `database` as the server knows it (current_database()); `qualified` is "schema.name".
  virtual RowSecurity row_security(std::string_view database, std::string_view qualified) const = 0;
};

// What the proxy knows about the client's session (and this worker) when the statement arrives.
struct SessionFacts {
  bool in_transaction = false;          // last ReadyForQuery was 'T' or 'E', or a BEGIN is in this batch
  bool transaction_read_write = true;   // the open transaction may write (unknown = true)
  bool transaction_read_committed = false;  // the open transaction is known to be READ COMMITTED
  std::string_view role;                // current role (session_authorization / SET ROLE applied)
  // The client's search_path as set (GUC syntax: `"$user", public`, `core,public`, `'a', "B"`).
  std::string_view search_path = "\"$user\", public";
  bool may_have_temp_tables = false;    // the session created temp tables (pg_temp is searched first)
  bool generations_synced = true;       // GenerationSync::synced() of this worker
  // Row-level security facts (rule 8b); null = the catalog was not read: nothing that reads a table is
  // cached. `database` is the server's name of the client's database.
  const RowSecurityFacts* row_security = nullptr;
  std::string_view database;
};

struct CacheDecision {
  bool cacheable = false;
  BypassReason reason = BypassReason::disabled;  // meaningful when !cacheable
  std::chrono::milliseconds ttl{0};              // > 0 when cacheable
  std::string class_name;                        // metrics label when cacheable
  // Every table read, resolved and schema-qualified ("core.users"), sorted, unique: the generations to
  // put in the key. Filled when cacheable.
  std::vector<std::string> tables;
};

CacheDecision decide(const router::Classification& c, const SessionFacts& facts, const conf::CacheConfig& config);

// The schemas of a search_path value, in order, as Postgres identifiers (quotes removed, unquoted
// names folded to lower case; "$user" kept as written). Empty optional when the text cannot be parsed.
std::optional<std::vector<std::string>> parse_search_path(std::string_view search_path);

// Resolves an unqualified table name the way Postgres would, but only when certain: along the path,
// the first schema where the config lists the name, or where the catalog (facts.row_security, of the
// client's database) has a relation of that name, is the one; a schema where the catalog has no such
// relation is passed over, as Postgres does. Without a catalog, the first candidate schema must be one
// where the config lists the name. (A relation created since the last catalog read, outside the proxy,
// in an earlier schema is not seen until the next read, at most 30 s.)
// pg_catalog is searched first implicitly (its relations are pg_*; those reads are volatile anyway);
// "$user" means the schema named after `role`; pg_temp first when `may_have_temp_tables`.
// Returns "" when not certain.
std::string resolve_table(const router::TableRef& table, const SessionFacts& facts, const conf::CacheConfig& config);

// The generation name that stands for "any table": every key includes its generation, so bumping it
// invalidates every entry of the fleet (a committed CALL/DO/unknown function may have written anything).
inline constexpr std::string_view kAllTables = "*";

// The generations a committed statement must bump: each table written, qualified; an unqualified name
// becomes every schema.name it could resolve to along the search_path (and pg_temp is ignored: temp
// tables are per session); kAllTables when the statement may write unknown tables, or when the
// search_path cannot be parsed. Sorted, unique. Empty for a statement that writes nothing.
std::vector<std::string> tables_to_bump(const router::Classification& c, const SessionFacts& facts);

}  // namespace pgs::cache
