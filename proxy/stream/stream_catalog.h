// What changed in one database's catalog behind every sidecar's back, as the invalidation stream's
// leader sees it (issue 12). DDL is not in the logical stream, so once a round the leader reads a cheap
// sum over the catalog rows that decide what a cached result holds, and only when it moved the rows:
//   - per relation (table, view, materialized view, foreign table outside the system and temp schemas):
//     its pg_class row (oid, relfilenode, row version: dropped and created again, rewritten, altered),
//     its columns' pg_attribute rows (renamed, retyped, dropped: a SELECT *'s RowDescription) and its
//     pg_rewrite rows (a view redefined with CREATE OR REPLACE VIEW keeps its pg_class row);
//   - the functions outside pg_catalog, information_schema and the temp schemas (pg_proc row versions):
//     a view may call one, and any user function may call another (plpgsql records no dependency), so a
//     function created, redefined or dropped invalidates every table ("*"). Statements that call a user
//     function themselves are never cached (the router treats unknown functions as volatile).
// With the rows it also reads the edges a decoded write must follow (cache::kCatalogQuery, kinds
// "partition" and "view"): a write to a partition changes its parent, a write to a relation changes the
// views reading it. Cascades and triggers need no edge here: what they wrote is in the stream itself.
#pragma once

#include <libpq-fe.h>

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "cache/dependencies.h"

namespace pgs::proxy {

// One database's catalog as last read by check_catalog().
struct CatalogSnapshot {
  std::string sum;                                // "" before the first read
  std::map<std::string, std::string> relations;  // "schema.name" -> its version
  cache::WriteDependencies edges;                 // partition and view edges (stream_edges)
  uint64_t primary_wal = 0;                        // pg_current_wal_lsn() when the sum was read
  bool prepared = false;                           // the sum's statement is prepared on the connection
  void clear() { *this = CatalogSnapshot(); }
};

// Pure: every relation added, removed or whose version differs between `before` and `now`.
std::set<std::string> changed_relations(const std::map<std::string, std::string>& before,
                                        const std::map<std::string, std::string>& now);

// Pure: "<relations' count/sum>" and "<functions' count/sum>" of the last two reads: "*" when only the
// functions' part moved, or along with the relations that changed.
bool functions_changed(const std::string& before_sum, const std::string& now_sum);

// Pure: the edges of cache::kCatalogQuery's rows a decoded write follows (partition and view only).
cache::WriteDependencies stream_edges(const std::vector<cache::CatalogRow>& rows);

// Pure: `pending` plus what a write to its tables also changes along `edges`.
void expand_pending(std::set<std::string>& pending, const cache::WriteDependencies& edges);

// Reads the catalog on `sql` (blocking, bounded by the connection's statement_timeout), and the primary's
// WAL position with it (the stream's lag is measured against it). Adds to `pending` what changed since
// `snapshot` (nothing on the first read: opening the slot bumped "*") and refreshes it. The sum, read every
// round, is a statement prepared on `sql` once (planning it cost more than running it); clear the
// snapshot when the connection is replaced. "" or the error.
std::string check_catalog(PGconn* sql, CatalogSnapshot& snapshot, std::set<std::string>& pending);

}  // namespace pgs::proxy
