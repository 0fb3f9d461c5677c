#include "proxy/stream/stream_catalog.h"

#include <algorithm>
#include <memory>
#include <optional>

#include "cache/policy.h"
#include "router/lsn.h"

namespace pgs::proxy {

namespace {

// One row per relation: its name, its version and that version as a number for the cheap sum. The
// columns' weight multiplies attnum so that renumbered columns do not cancel out; pg_attribute and
// pg_rewrite are read through their (attrelid, attnum) and (ev_class, rulename) indexes.
constexpr const char* kRelations =
    "SELECT n.nspname || '.' || c.relname AS name,"
    " c.oid::text || '/' || c.relfilenode::text || '/' || c.xmin::text || '/' || a.v::text || '/' || r.v::text"
    " AS version,"
    " c.oid::int8 + c.relfilenode::int8 + c.xmin::text::int8 + a.v + r.v AS weight"
    " FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    " CROSS JOIN LATERAL (SELECT coalesce(sum(a.attnum::int8 * 4096 + a.xmin::text::int8), 0) AS v"
    "   FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0) a"
    " CROSS JOIN LATERAL (SELECT coalesce(sum(r.oid::int8 + r.xmin::text::int8), 0) AS v"
    "   FROM pg_catalog.pg_rewrite r WHERE r.ev_class = c.oid) r"
    " WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
    " AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'";

constexpr const char* kFunctionsSum =
    "SELECT count(*)::text || '/' || coalesce(sum(p.oid::int8 + p.xmin::text::int8), 0)::text"
    " FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace"
    " WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_temp%'";

using ResultPtr = std::unique_ptr<PGresult, void (*)(PGresult*)>;

ResultPtr run(PGconn* sql, const std::string& text) { return ResultPtr(PQexec(sql, text.c_str()), PQclear); }

std::string error_of(const PGresult* r) {
  std::string s = PQresultErrorMessage(r);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  std::replace(s.begin(), s.end(), '\n', ' ');
  return s.empty() ? "unexpected result" : s;
}

// The rows of kRelations and the edges, read only when the sum moved. "" or the error.
std::string read_rows(PGconn* sql, std::map<std::string, std::string>& relations, cache::WriteDependencies& edges) {
  ResultPtr r = run(sql, std::string("SELECT name, version FROM (") + kRelations + ") x");
  if (PQresultStatus(r.get()) != PGRES_TUPLES_OK || PQnfields(r.get()) != 2) return error_of(r.get());
  for (int i = 0; i < PQntuples(r.get()); ++i) relations.emplace(PQgetvalue(r.get(), i, 0), PQgetvalue(r.get(), i, 1));
  ResultPtr e = run(sql, std::string(cache::kCatalogQuery));
  if (PQresultStatus(e.get()) != PGRES_TUPLES_OK || PQnfields(e.get()) != 3) return error_of(e.get());
  std::vector<cache::CatalogRow> rows;
  for (int i = 0; i < PQntuples(e.get()); ++i) {
    rows.push_back({PQgetvalue(e.get(), i, 0), PQgetvalue(e.get(), i, 1), PQgetvalue(e.get(), i, 2)});
  }
  edges = stream_edges(rows);
  return {};
}

}  // namespace

std::set<std::string> changed_relations(const std::map<std::string, std::string>& before,
                                        const std::map<std::string, std::string>& now) {
  std::set<std::string> out;
  for (const auto& [name, version] : now) {
    auto it = before.find(name);
    if (it == before.end() || it->second != version) out.insert(name);
  }
  for (const auto& [name, version] : before) {
    if (now.count(name) == 0) out.insert(name);
  }
  return out;
}

bool functions_changed(const std::string& before_sum, const std::string& now_sum) {
  auto functions = [](const std::string& s) {
    auto bar = s.find('|');
    return bar == std::string::npos ? s : s.substr(bar + 1);
  };
  return !before_sum.empty() && functions(before_sum) != functions(now_sum);
}

cache::WriteDependencies stream_edges(const std::vector<cache::CatalogRow>& rows) {
  std::vector<cache::CatalogRow> kept;
  for (const cache::CatalogRow& r : rows) {
    if (r.kind == "partition" || r.kind == "view") kept.push_back(r);
  }
  return cache::WriteDependencies::from_rows(kept);
}

void expand_pending(std::set<std::string>& pending, const cache::WriteDependencies& edges) {
  if (pending.empty() || edges.empty()) return;
  std::vector<std::string> tables(pending.begin(), pending.end());
  edges.expand(tables);
  pending.insert(tables.begin(), tables.end());
}

std::string check_catalog(PGconn* sql, CatalogSnapshot& snapshot, std::set<std::string>& pending) {
  constexpr const char* kSumStatement = "pgsidecar_stream_catalog_sum";
  if (!snapshot.prepared) {
    const std::string text = std::string("SELECT (SELECT count(*)::text || '/' || coalesce(sum(weight), 0)::text FROM (") +
                             kRelations + ") x) || '|' || (" + kFunctionsSum + "), pg_catalog.pg_current_wal_lsn()::text";
    ResultPtr p(PQprepare(sql, kSumStatement, text.c_str(), 0, nullptr), PQclear);
    if (PQresultStatus(p.get()) != PGRES_COMMAND_OK) return error_of(p.get());
    snapshot.prepared = true;
  }
  ResultPtr r(PQexecPrepared(sql, kSumStatement, 0, nullptr, nullptr, nullptr, 0), PQclear);
  if (PQresultStatus(r.get()) != PGRES_TUPLES_OK || PQntuples(r.get()) != 1 || PQnfields(r.get()) != 2) {
    return error_of(r.get());
  }
  std::optional<router::Lsn> wal = router::parse_lsn(PQgetvalue(r.get(), 0, 1));
  if (!wal) return "unreadable WAL position";
  snapshot.primary_wal = *wal;
  std::string sum = PQgetvalue(r.get(), 0, 0);
  if (sum == snapshot.sum) return {};
  std::map<std::string, std::string> now;
  cache::WriteDependencies edges;
  if (std::string error = read_rows(sql, now, edges); !error.empty()) return error;
  if (!snapshot.sum.empty()) {  // the first read only records (opening the slot bumped everything)
    if (functions_changed(snapshot.sum, sum)) pending.insert(std::string(cache::kAllTables));
    std::set<std::string> changed = changed_relations(snapshot.relations, now);
    pending.insert(changed.begin(), changed.end());
    expand_pending(pending, edges);  // a view over a redefined view changes too
  }
  snapshot.relations = std::move(now);
  snapshot.edges = std::move(edges);
  snapshot.sum = std::move(sum);
  return {};
}

}  // namespace pgs::proxy
