// Which statements provably cannot change session state (issue 10, default-deny). A statement may run
// user code that the statement text does not show: a trigger, a rule or a view's query, a row-level
// security policy, a column default, check constraint or index expression calling a user function. Such
// code can take a session advisory lock, LISTEN, create a temp table or set_config(..., false), and the
// proxy would hand that server to the next client. So a statement is session-neutral only when the
// classifier saw everything it does (router Flags::opaque_session is false, no session change) and every
// relation it names is known from the catalog to run no user code. Everything else makes the proxy ask
// the server what holds (the session probe) before the server goes back to the pool.
//
// The facts come from the primary's catalog of every served database (kSessionCodeQuery plus the
// cascade/partition rows of cache::kCatalogQuery), read by CatalogWatcher. Pure: no libuv, no libpq.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "cache/dependencies.h"
#include "cache/policy.h"
#include "router/classification.h"

namespace pgs::proxy {

// Rows (kind, name, value):
//   ('relation', 'schema.name', 'code' | 'plain') for every table, partitioned table, view,
//     materialized view and foreign table. 'code': has user triggers or rules, row-level security, is a
//     view (its query may call anything, also through other views) or a foreign table (the wrapper keeps
//     per-session state), a partitioned table with such a partition, or a default / check constraint /
//     index expression depending on a function outside pg_catalog or on a built-in one that changes the
//     session (set_config, pg_advisory_lock ...). pg_catalog and information_schema
//     relations are 'plain' (their views call built-in functions only).
//   ('user_functions', count, '') functions outside pg_catalog and information_schema that are not
//     members of a well-known extension that keeps no session state (pg_stat_statements, pgcrypto ...).
//   ('rls', 'schema.name', 't' | 'f' followed by current_database()) for every relation of the kinds
//     above and every sequence: 't' when it has row-level security enabled, or is a view reading such a
//     relation (directly or through other views), or is a sequence (its values change without writes).
//     The result cache never caches those, nor relations without a row (cache/policy.h rule 8b); an
//     unqualified name resolves to the first schema of the search_path that has a row for it.
//   ('custom_setting', 'prefix.name', '') quoted custom setting names that user functions' bodies spell
//     out ('app.tenant'): a full probe reads them back (custom settings are not listed in pg_settings).
inline constexpr std::string_view kSessionCodeQuery = R"sql(
WITH RECURSIVE rls(oid) AS (
  SELECT c.oid FROM pg_catalog.pg_class c WHERE c.relrowsecurity
  UNION
  SELECT r.ev_class
    FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_rewrite r ON r.oid = d.objid JOIN rls ON rls.oid = d.refobjid
   WHERE d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass
     AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND r.ev_class <> d.refobjid
)
SELECT 'relation', n.nspname || '.' || c.relname,
       CASE WHEN n.nspname IN ('pg_catalog', 'information_schema') THEN 'plain'
            WHEN c.relkind IN ('v', 'f') OR c.relrowsecurity
              OR EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t WHERE t.tgrelid = c.oid AND NOT t.tgisinternal)
              OR EXISTS (SELECT 1 FROM pg_catalog.pg_rewrite r WHERE r.ev_class = c.oid AND r.rulename <> '_RETURN')
              OR (c.relkind = 'p' AND EXISTS (
                    SELECT 1 FROM pg_catalog.pg_partition_tree(c.oid) pt
                      JOIN pg_catalog.pg_class pc ON pc.oid = pt.relid
                     WHERE pc.relrowsecurity OR EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t
                                                         WHERE t.tgrelid = pt.relid AND NOT t.tgisinternal)))
              OR EXISTS (
                   SELECT 1 FROM pg_catalog.pg_depend d
                     JOIN pg_catalog.pg_proc p ON p.oid = d.refobjid
                    WHERE d.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass
                      AND (p.pronamespace <> 'pg_catalog'::pg_catalog.regnamespace
                           OR p.proname IN ('set_config', 'pg_advisory_lock', 'pg_advisory_lock_shared',
                                            'pg_try_advisory_lock', 'pg_try_advisory_lock_shared'))
                      AND ((d.classid = 'pg_catalog.pg_attrdef'::pg_catalog.regclass
                            AND d.objid IN (SELECT a.oid FROM pg_catalog.pg_attrdef a WHERE a.adrelid = c.oid))
                        OR (d.classid = 'pg_catalog.pg_constraint'::pg_catalog.regclass
                            AND d.objid IN (SELECT k.oid FROM pg_catalog.pg_constraint k WHERE k.conrelid = c.oid))
                        OR (d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
                            AND d.objid IN (SELECT i.indexrelid FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid))))
            THEN 'code' ELSE 'plain' END
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND n.nspname NOT LIKE 'pg\_toast%'
   AND n.nspname NOT LIKE 'pg\_temp\_%'
UNION ALL
SELECT 'user_functions', pg_catalog.count(*)::text, ''
  FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND NOT EXISTS (
         SELECT 1 FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid
          WHERE d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND d.objid = p.oid AND d.deptype = 'e'
            AND e.extname IN ('pg_stat_statements', 'pgcrypto', 'uuid-ossp', 'pg_trgm', 'citext', 'hstore',
                              'btree_gin', 'btree_gist', 'unaccent', 'fuzzystrmatch', 'intarray', 'ltree',
                              'cube', 'earthdistance', 'tablefunc', 'pg_buffercache', 'pgstattuple'))
UNION ALL
SELECT 'rls', n.nspname || '.' || c.relname,
       CASE WHEN c.relkind = 'S' OR c.oid IN (SELECT oid FROM rls) THEN 't' ELSE 'f' END
         || pg_catalog.current_database()
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND n.nspname NOT LIKE 'pg\_toast%'
   AND n.nspname NOT LIKE 'pg\_temp\_%'
UNION ALL
(SELECT DISTINCT 'custom_setting', pg_catalog.lower(m[1]), ''
   FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace,
        pg_catalog.regexp_matches(p.prosrc, '''([A-Za-z_][A-Za-z0-9_$]*\.[A-Za-z_][A-Za-z0-9_$]*)''', 'g') m
  WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND p.prolang <> 13
  LIMIT 1000)
)sql";

class SessionCodeCatalog : public cache::RowSecurityFacts {
 public:
  // From the rows of every served database together (kSessionCodeQuery and cache::kCatalogQuery);
  // a name that is code in any database is code. Malformed rows are ignored.
  static SessionCodeCatalog from_rows(const std::vector<cache::CatalogRow>& rows);

  // True when a relation of that name is known and runs no user code. Unqualified names are plain only
  // when every known relation of that name, in any schema, is (the proxy does not resolve search_path
  // here). Unknown names (created since the last read, temp tables, other sessions' objects) are not.
  bool plain(const router::TableRef& t) const;
  // No served database has a user function (outside the extensions above): no statement can run user
  // code without naming a relation with code, DO, CALL or a function the classifier does not know.
  bool no_user_functions() const { return loaded_ && user_functions_ == 0; }
  // No user function and no relation with code in any served database: only a statement's own text can
  // change session state, so the keyword pre-check (may_change_session) is proof enough.
  bool code_free() const { return no_user_functions() && !any_code_; }
  bool loaded() const { return loaded_; }
  // Custom setting names spelled out in user functions (bounded by the query's LIMIT).
  const std::vector<std::string>& custom_settings() const { return custom_settings_; }
  size_t relations() const { return qualified_.size(); }
  // From the 'rls' rows of `database` (its current_database()): unknown when that database was not
  // read or has no such relation.
  cache::RowSecurity row_security(std::string_view database, std::string_view qualified) const override;

 private:
  std::unordered_map<std::string, bool> qualified_;    // "schema.name" -> plain
  std::unordered_map<std::string, bool> unqualified_;  // "name" -> plain in every schema that has it
  std::unordered_map<std::string, bool> row_security_;  // "database\0schema.name" -> RLS on
  std::vector<std::string> custom_settings_;
  uint64_t user_functions_ = 0;
  bool any_code_ = false;
  bool loaded_ = false;
};

// Whether `c` (already classified) may change session state beyond what its session_changes show:
// true when the classifier could not see everything (Flags::opaque_session) or a relation it names may
// run user code (`catalog` null: nothing is known, so any relation may).
bool may_run_session_code(const router::Classification& c, const SessionCodeCatalog* catalog);

// Custom setting names ("prefix.name") quoted anywhere in `sql`, DO bodies included ('app.tenant'):
// what unseen code in that text may set. Lower case, unique, at most 64.
std::vector<std::string> custom_setting_names(std::string_view sql);

}  // namespace pgs::proxy
