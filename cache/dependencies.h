// What else a write to a table may write, read from the database's catalog: ON DELETE/UPDATE CASCADE,
// SET NULL and SET DEFAULT foreign keys (a delete of a workspace deletes its members), partitions and
// their parents (an insert into a partition changes what the parent returns, and the other way round),
// tables with triggers or rules (they may write anything), and views: a view returns what the relations it
// reads hold, so a write to one of them changes the view (a view over a view, transitively), and a write
// to an updatable view writes the relations under it. Pure: the proxy reads the rows
// (kCatalogQuery) and builds this; tables_to_bump() results are expanded with it before a bump.
#pragma once

#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace pgs::cache {

// One row per edge: kind ("cascade", "partition", "trigger", "rule", "view"), the written table and, for
// cascade/partition, the table the write reaches ("" otherwise); for "view", a relation a plain view's
// query reads and the view. Names "schema.table".
inline constexpr std::string_view kCatalogQuery = R"sql(
SELECT 'cascade', pn.nspname || '.' || p.relname, cn.nspname || '.' || c.relname
  FROM pg_catalog.pg_constraint k
  JOIN pg_catalog.pg_class p ON p.oid = k.confrelid JOIN pg_catalog.pg_namespace pn ON pn.oid = p.relnamespace
  JOIN pg_catalog.pg_class c ON c.oid = k.conrelid JOIN pg_catalog.pg_namespace cn ON cn.oid = c.relnamespace
 WHERE k.contype = 'f' AND (k.confdeltype IN ('c', 'n', 'd') OR k.confupdtype IN ('c', 'n', 'd'))
UNION ALL
SELECT 'partition', cn.nspname || '.' || c.relname, pn.nspname || '.' || p.relname
  FROM pg_catalog.pg_inherits i
  JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid JOIN pg_catalog.pg_namespace cn ON cn.oid = c.relnamespace
  JOIN pg_catalog.pg_class p ON p.oid = i.inhparent JOIN pg_catalog.pg_namespace pn ON pn.oid = p.relnamespace
UNION ALL
SELECT DISTINCT 'trigger', n.nspname || '.' || c.relname, ''
  FROM pg_catalog.pg_trigger t
  JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE NOT t.tgisinternal
UNION ALL
SELECT DISTINCT 'rule', n.nspname || '.' || c.relname, ''
  FROM pg_catalog.pg_rewrite r
  JOIN pg_catalog.pg_class c ON c.oid = r.ev_class JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE r.rulename <> '_RETURN' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
UNION ALL
SELECT DISTINCT 'view', bn.nspname || '.' || b.relname, vn.nspname || '.' || v.relname
  FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_rewrite r ON r.oid = d.objid
  JOIN pg_catalog.pg_class v ON v.oid = r.ev_class JOIN pg_catalog.pg_namespace vn ON vn.oid = v.relnamespace
  JOIN pg_catalog.pg_class b ON b.oid = d.refobjid JOIN pg_catalog.pg_namespace bn ON bn.oid = b.relnamespace
 WHERE d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass
   AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
   AND v.relkind = 'v' AND b.oid <> v.oid AND vn.nspname NOT IN ('pg_catalog', 'information_schema')
)sql";

struct CatalogRow {
  std::string kind;
  std::string from;
  std::string to;
};

class WriteDependencies {
 public:
  WriteDependencies() = default;
  // Unknown kinds and malformed rows are ignored; the result is bounded by the rows given.
  static WriteDependencies from_rows(const std::vector<CatalogRow>& rows);

  // `tables` (sorted, unique, as tables_to_bump() returns) plus every table a write to them may also
  // write or change, transitively (views included); just kAllTables when one of them has triggers or
  // rules. Stays sorted, unique.
  void expand(std::vector<std::string>& tables) const;

  size_t edges() const { return edges_; }
  bool empty() const { return also_writes_.empty() && writes_anything_.empty() && view_reads_.empty(); }

 private:
  std::unordered_map<std::string, std::vector<std::string>> also_writes_;  // also written, or changed (views)
  std::unordered_map<std::string, std::vector<std::string>> view_reads_;   // view -> the relations it reads
  std::unordered_set<std::string> writes_anything_;
  size_t edges_ = 0;
};

}  // namespace pgs::cache
