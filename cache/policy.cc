#include "cache/policy.h"

#include <algorithm>
#include <cctype>

namespace pgs::cache {
namespace {

using router::Classification;
using router::Kind;

CacheDecision bypass(BypassReason r) {
  CacheDecision d;
  d.reason = r;
  return d;
}

// Rules 3..7: facts about the statement and transaction that no hint can override.
std::optional<BypassReason> statement_bypass(const Classification& c, const SessionFacts& facts) {
  if (c.hint.no_cache) return BypassReason::hint_no_cache;
  if (c.flags.parse_error || c.flags.oversized) return BypassReason::not_parsed;
  if (c.kind == Kind::multi || c.statements.size() > 1) return BypassReason::multi_statement;
  if (c.kind != Kind::select && c.kind != Kind::values && c.kind != Kind::table) return BypassReason::not_select;
  if (!c.read_only || c.writes() || c.flags.any_row_lock() || c.flags.session_state || c.flags.select_into ||
      c.flags.data_modifying_cte || c.flags.writes_temp || !c.session_changes.empty()) {
    return BypassReason::not_read_only;
  }
  if (c.flags.volatile_functions || c.flags.calls_unsafe_function) return BypassReason::volatile_function;
  if (facts.in_transaction) {
    if (facts.transaction_read_write) return BypassReason::in_transaction;
    if (!facts.transaction_read_committed) return BypassReason::in_snapshot_transaction;
  }
  return std::nullopt;
}

const conf::CacheClass* find_class(const conf::CacheConfig& config, std::string_view name) {
  for (const conf::CacheClass& cls : config.classes) {
    if (cls.name == name) return &cls;
  }
  return nullptr;
}

// Smallest-TTL class over the tables; null (and *all_in_class = false) if one is in no class.
const conf::CacheClass* tightest_class(const std::vector<std::string>& tables, const conf::CacheConfig& config,
                                       bool* all_in_class) {
  const conf::CacheClass* best = nullptr;
  *all_in_class = true;
  for (const std::string& t : tables) {
    const conf::CacheClass* cls = config.class_for_table(t);
    if (cls == nullptr) {
      *all_in_class = false;
      continue;
    }
    if (best == nullptr || cls->ttl < best->ttl) best = cls;
  }
  return best;
}

CacheDecision cacheable(std::vector<std::string> tables, std::chrono::milliseconds ttl, std::string_view cls) {
  CacheDecision d;
  d.cacheable = true;
  d.ttl = ttl;
  d.class_name = std::string(cls);
  d.tables = std::move(tables);
  return d;
}

// Rules 9..13, once every table is resolved.
CacheDecision classify_ttl(const Classification& c, std::vector<std::string> tables,
                           const conf::CacheConfig& config) {
  bool all_in_class = false;
  const conf::CacheClass* tight = tightest_class(tables, config, &all_in_class);
  if (!c.hint.cache_class.empty()) {
    const conf::CacheClass* named = find_class(config, c.hint.cache_class);
    if (named == nullptr) return bypass(BypassReason::hint_unknown_class);
    return cacheable(std::move(tables), c.hint.cache_ttl.value_or(named->ttl), named->name);
  }
  if (c.hint.cache_ttl) {
    std::string_view label = tight != nullptr ? std::string_view(tight->name) : kHintClass;
    return cacheable(std::move(tables), *c.hint.cache_ttl, label);
  }
  if (tables.empty()) return bypass(BypassReason::no_tables);
  if (!all_in_class || tight == nullptr) return bypass(BypassReason::table_not_in_class);
  return cacheable(std::move(tables), tight->ttl, tight->name);
}

// Rule 8b, default-deny: every table read must be known to the catalog and have no row-level security.
std::optional<BypassReason> row_security_bypass(const std::vector<std::string>& tables, const SessionFacts& facts) {
  bool unknown = false;
  for (const std::string& t : tables) {
    RowSecurity rs = facts.row_security != nullptr ? facts.row_security->row_security(facts.database, t)
                                                   : RowSecurity::unknown;
    if (rs == RowSecurity::on) return BypassReason::row_security;
    unknown = unknown || rs == RowSecurity::unknown;
  }
  if (unknown) return BypassReason::row_security_unknown;
  return std::nullopt;
}

// One element of a search_path: `"Quoted"`, `'quoted'`, or a bare name (folded to lower case).
std::optional<std::string> path_element(std::string_view e) {
  while (!e.empty() && std::isspace(static_cast<unsigned char>(e.front()))) e.remove_prefix(1);
  while (!e.empty() && std::isspace(static_cast<unsigned char>(e.back()))) e.remove_suffix(1);
  if (e.empty()) return std::nullopt;
  if (e.size() >= 2 && (e.front() == '"' || e.front() == '\'') && e.back() == e.front()) {
    std::string_view inner = e.substr(1, e.size() - 2);
    if (inner.empty() || inner.find(e.front()) != std::string_view::npos) return std::nullopt;
    return std::string(inner);
  }
  std::string out;
  for (char ch : e) {
    unsigned char u = static_cast<unsigned char>(ch);
    if (!(std::isalnum(u) || ch == '_' || ch == '$' || u >= 0x80)) return std::nullopt;
    out.push_back(static_cast<char>(std::tolower(u)));
  }
  return out;
}

}  // namespace

std::optional<std::vector<std::string>> parse_search_path(std::string_view path) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= path.size()) {
    size_t comma = path.find(',', start);
    if (comma == std::string_view::npos) comma = path.size();
    std::optional<std::string> e = path_element(path.substr(start, comma - start));
    if (!e) return std::nullopt;
    out.push_back(std::move(*e));
    start = comma + 1;
  }
  return out;
}

std::string resolve_table(const router::TableRef& table, const SessionFacts& facts,
                          const conf::CacheConfig& config) {
  if (table.qualified()) return table.qualified_name();
  if (facts.may_have_temp_tables) return {};
  std::optional<std::vector<std::string>> path = parse_search_path(facts.search_path);
  if (!path) return {};
  // pg_catalog's relations are all named pg_*: only those could be shadowed by it.
  if (table.name.starts_with("pg_")) return {};
  for (const std::string& element : *path) {
    if (element == "pg_catalog" || element == "pg_temp") continue;
    std::string schema = element == "$user" ? std::string(facts.role) : element;
    if (schema.empty()) return {};
    std::string qualified = schema + "." + table.name;
    if (config.class_for_table(qualified) != nullptr) return qualified;
    // Not listed: the catalog decides whether the name exists in this schema (Postgres takes the
    // first that has it) or not (Postgres looks further). Without a catalog: not certain.
    if (facts.row_security == nullptr) return {};
    if (facts.row_security->row_security(facts.database, qualified) != RowSecurity::unknown) return qualified;
  }
  return {};
}

CacheDecision decide(const Classification& c, const SessionFacts& facts, const conf::CacheConfig& config) {
  if (!config.enabled) return bypass(BypassReason::disabled);
  if (!facts.generations_synced) return bypass(BypassReason::generations_unsynced);
  if (std::optional<BypassReason> r = statement_bypass(c, facts)) return bypass(*r);
  std::vector<std::string> tables;
  tables.reserve(c.tables_read.size());
  for (const router::TableRef& t : c.tables_read) {
    std::string resolved = resolve_table(t, facts, config);
    if (resolved.empty()) return bypass(BypassReason::unqualified_table_unresolved);
    tables.push_back(std::move(resolved));
  }
  std::sort(tables.begin(), tables.end());
  tables.erase(std::unique(tables.begin(), tables.end()), tables.end());
  if (std::optional<BypassReason> r = row_security_bypass(tables, facts)) return bypass(*r);
  return classify_ttl(c, std::move(tables), config);
}

std::vector<std::string> tables_to_bump(const Classification& c, const SessionFacts& facts) {
  std::vector<std::string> out;
  if (c.flags.writes_unknown_tables) out.emplace_back(kAllTables);
  std::optional<std::vector<std::string>> path;
  for (const router::TableRef& t : c.tables_written) {
    if (t.qualified()) {
      out.push_back(t.qualified_name());
      continue;
    }
    if (!path) path = parse_search_path(facts.search_path);
    if (!path) {
      out.emplace_back(kAllTables);
      continue;
    }
    for (const std::string& element : *path) {
      if (element == "pg_temp") continue;
      std::string schema = element == "$user" ? std::string(facts.role) : element;
      out.push_back(schema.empty() ? std::string(kAllTables) : schema + "." + t.name);
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

}  // namespace pgs::cache
