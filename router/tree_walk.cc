#include "router/tree_walk.h"

#include <cctype>

#include "router/functions.h"
#include "router/sql_scan.h"

namespace pgs::router::detail {

std::string_view str_field(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v && v->is_string() ? std::string_view(v->get_string()) : std::string_view{};
}

bool bool_field(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v && v->is_bool() && v->get_bool();
}

const json::object* obj_field(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v && v->is_object() ? &v->get_object() : nullptr;
}

std::optional<std::pair<std::string_view, const json::object*>> node_of(const json::value& v) {
  if (!v.is_object() || v.get_object().size() != 1) return std::nullopt;
  const auto& kv = *v.get_object().begin();
  if (!kv.value().is_object()) return std::nullopt;
  return std::make_pair(std::string_view(kv.key()), &kv.value().get_object());
}

std::optional<std::string> const_text(const json::value& v, std::string_view sql) {
  auto n = node_of(v);
  if (!n || n->first != "A_Const") return std::nullopt;
  const json::object& c = *n->second;
  if (const auto* s = obj_field(c, "sval")) return std::string(str_field(*s, "sval"));
  if (const auto* b = obj_field(c, "boolval")) return bool_field(*b, "boolval") ? "true" : "false";
  if (!c.contains("ival") && !c.contains("fval")) return std::nullopt;
  // Prefer the literal as written; grammar-made constants (READ ONLY -> 1) point at a keyword instead.
  const json::value* loc = c.if_contains("location");
  if (loc && loc->is_int64() && loc->get_int64() >= 0) {
    std::string_view lit = literal_at(sql, static_cast<size_t>(loc->get_int64()));
    if (!lit.empty()) return std::string(lit);
  }
  if (const auto* f = obj_field(c, "fval")) return std::string(str_field(*f, "fval"));
  const auto* i = obj_field(c, "ival");
  const json::value* iv = i ? i->if_contains("ival") : nullptr;
  return iv && iv->is_int64() ? std::to_string(iv->get_int64()) : std::string("0");
}

void TreeWalker::walk(const json::value& v) {
  if (too_deep_) return;
  if (++depth_ > kMaxWalkDepth) {
    too_deep_ = true;
  } else if (v.is_array()) {
    for (const auto& e : v.get_array()) walk(e);
  } else if (v.is_object()) {
    object(v.get_object());
  }
  --depth_;
}

void TreeWalker::object(const json::object& o) {
  if (o.contains("relname")) {
    relation(o, false);
    return;
  }
  for (const auto& kv : o) {
    std::string_view key = kv.key();
    if (!key.empty() && std::isupper(static_cast<unsigned char>(key[0]))) {
      typed(key, kv.value());
    } else {
      walk(kv.value());
    }
  }
}

void TreeWalker::typed(std::string_view type, const json::value& body) {
  if (!body.is_object()) return;
  const json::object& b = body.get_object();
  if (type == "RangeVar") {
    relation(b, false);
  } else if (type == "FuncCall") {
    func_call(b);
  } else if (type == "SQLValueFunction") {
    sql_value_function(b);
  } else if (type == "LockingClause") {
    locking(b);
  } else if (type == "RangeTableSample") {
    out_.flags.volatile_functions = true;  // TABLESAMPLE picks different rows each run
    walk(body);
  } else if (type == "TypeCast") {
    type_cast(b);
  } else if (type == "SelectStmt" || type == "InsertStmt" || type == "UpdateStmt" ||
             type == "DeleteStmt" || type == "MergeStmt") {
    ++depth_;
    query(type, b);
    --depth_;
  } else if (type == "ExecuteStmt") {
    // EXECUTE inside another statement (CREATE TABLE ... AS EXECUTE q): it needs the prepared statement.
    SessionChange ch{SessionOp::execute, std::string(str_field(b, "name"))};
    out_.session_changes.push_back(std::move(ch));
    walk(body);
  } else if (type == "ColumnRef" || type == "A_Const" || type == "String" || type == "TypeName" ||
             type == "ParamRef" || type == "A_Star") {
    return;  // leaves: nothing to collect
  } else {
    walk(body);
  }
}

void TreeWalker::query(std::string_view type, const json::object& body) {
  size_t mark = cte_scope_.size();
  if (const auto* w = obj_field(body, "withClause")) with_clause(*w);
  bool dml = type != "SelectStmt";
  for (const auto& kv : body) {
    std::string_view key = kv.key();
    if (key == "withClause") continue;
    if (dml && key == "relation" && kv.value().is_object()) {
      relation(kv.value().get_object(), true);
    } else if (key == "intoClause" && kv.value().is_object()) {
      into_clause(kv.value().get_object());
    } else {
      walk(kv.value());
    }
  }
  cte_scope_.resize(mark);
}

// Non-recursive WITH: a CTE body sees only the CTEs before it; WITH RECURSIVE: all of them.
void TreeWalker::with_clause(const json::object& with) {
  const json::value* ctes = with.if_contains("ctes");
  if (!ctes || !ctes->is_array()) return;
  bool recursive = bool_field(with, "recursive");
  std::vector<std::pair<std::string, const json::value*>> list;
  for (const auto& c : ctes->get_array()) {
    auto n = node_of(c);
    if (!n || n->first != "CommonTableExpr") continue;
    list.emplace_back(std::string(str_field(*n->second, "ctename")), n->second->if_contains("ctequery"));
  }
  if (recursive) {
    for (auto& [name, q] : list) cte_scope_.push_back(name);
  }
  for (auto& [name, q] : list) {
    if (q) {
      if (auto n = node_of(*q); n && n->first != "SelectStmt") out_.flags.data_modifying_cte = true;
      walk(*q);
    }
    if (!recursive) cte_scope_.push_back(name);
  }
}

bool TreeWalker::is_cte(std::string_view name) const {
  for (const auto& n : cte_scope_) {
    if (n == name) return true;
  }
  return false;
}

void TreeWalker::relation(const json::object& rv, bool written) {
  TableRef t{std::string(str_field(rv, "schemaname")), std::string(str_field(rv, "relname"))};
  if (t.name.empty()) return;
  if (!written && t.schema.empty() && is_cte(t.name)) return;
  if (written && (str_field(rv, "relpersistence") == "t" || t.schema == "pg_temp")) {
    out_.flags.writes_temp = true;
  }
  if (t.schema.empty()) out_.flags.unqualified_tables = true;
  // Catalogs and statistics views change without any write we could see (no table generation is
  // bumped for them): reading them is as uncacheable as calling now().
  bool system = t.schema == "pg_catalog" || t.schema == "information_schema" ||
                (t.schema.empty() && t.name.starts_with("pg_"));
  if (system) out_.flags.volatile_functions = true;
  (written ? out_.tables_written : out_.tables_read).push_back(std::move(t));
}

void TreeWalker::into_clause(const json::object& into) {
  out_.flags.select_into = true;
  const json::object* rel = obj_field(into, "rel");
  if (!rel) return;
  relation(*rel, true);
  if (str_field(*rel, "relpersistence") == "t") {
    SessionChange ch{SessionOp::temp_object, std::string(str_field(*rel, "relname"))};
    ch.transaction_scoped = str_field(into, "onCommit") == "ONCOMMIT_DROP";
    out_.session_changes.push_back(std::move(ch));
  }
}

void TreeWalker::locking(const json::object& clause) {
  std::string_view s = str_field(clause, "strength");
  if (s == "LCS_FORUPDATE") out_.flags.for_update = true;
  if (s == "LCS_FORNOKEYUPDATE") out_.flags.for_no_key_update = true;
  if (s == "LCS_FORSHARE") out_.flags.for_share = true;
  if (s == "LCS_FORKEYSHARE") out_.flags.for_key_share = true;
  if (const json::value* rels = clause.if_contains("lockedRels")) walk(*rels);
}

// CURRENT_DATE, CURRENT_TIMESTAMP, LOCALTIME...: read the clock. CURRENT_USER and friends depend on
// the session's role, which is part of the cache key, so they are not volatile.
void TreeWalker::sql_value_function(const json::object& f) {
  std::string_view op = str_field(f, "op");
  if (op.find("TIME") != std::string_view::npos || op.find("DATE") != std::string_view::npos) {
    out_.flags.volatile_functions = true;
  }
}

// 'now'::timestamptz, timestamp 'today': special date/time inputs read the clock when evaluated.
void TreeWalker::type_cast(const json::object& cast) {
  if (const json::value* arg = cast.if_contains("arg")) {
    auto v = const_text(*arg, sql_);
    auto n = node_of(*arg);
    if (v && n && obj_field(*n->second, "sval")) {
      std::string_view s = *v;
      while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
      while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
      for (std::string_view word : {"now", "today", "tomorrow", "yesterday"}) {
        if (iequals(s, word)) out_.flags.volatile_functions = true;
      }
    }
  }
  for (const auto& kv : cast) walk(kv.value());
}

// current_setting('transaction_read_only') and friends answer differently on a replica: a client that
// asks is checking where it is connected (libpq target_session_attrs does), so it must see the primary.
void TreeWalker::node_identity_setting(std::string_view name, const json::object& call) {
  if (name != "current_setting") return;
  const json::value* args = call.if_contains("args");
  if (!args || !args->is_array() || args->get_array().empty()) return;
  auto v = const_text(args->get_array().front(), sql_);
  if (v && is_node_identity_setting(*v)) {
    out_.flags.calls_unsafe_function = true;
    out_.unsafe_functions.push_back(std::string(name));
  }
}

bool is_node_identity_setting(std::string_view name) {
  for (std::string_view s : {"transaction_read_only", "in_hot_standby", "default_transaction_read_only"}) {
    if (iequals(name, s)) return true;
  }
  return false;
}

void TreeWalker::func_call(const json::object& call) {
  std::vector<std::string_view> parts;
  if (const json::value* names = call.if_contains("funcname"); names && names->is_array()) {
    for (const auto& p : names->get_array()) {
      if (auto n = node_of(p); n && n->first == "String") parts.push_back(str_field(*n->second, "sval"));
    }
  }
  if (!parts.empty()) {
    std::string_view name = parts.back();
    std::string_view schema = parts.size() >= 2 ? parts[parts.size() - 2] : std::string_view{};
    std::string written = schema.empty() ? std::string(name) : std::string(schema) + "." + std::string(name);
    FunctionInfo info = lookup_function(schema, name, options_.replica_safe_functions);
    if (!info.replica_safe) {
      out_.flags.calls_unsafe_function = true;
      out_.unsafe_functions.push_back(written);
      if (!info.known) out_.flags.writes_unknown_tables = true;
    }
    if (info.volatile_) out_.flags.volatile_functions = true;
    if (info.effect != FunctionEffect::none) function_effect(std::string(name), info.effect, call);
    if (schema.empty() || schema == "pg_catalog") node_identity_setting(name, call);
    out_.functions.push_back(std::move(written));
  }
  for (const auto& kv : call) {
    if (kv.key() != "funcname") walk(kv.value());
  }
}

void TreeWalker::function_effect(const std::string& name, FunctionEffect effect, const json::object& call) {
  std::vector<std::optional<std::string>> args;
  if (const json::value* a = call.if_contains("args"); a && a->is_array()) {
    for (const auto& v : a->get_array()) args.push_back(const_text(v, sql_));
  }
  bool all_known = true;
  std::string joined;
  for (const auto& a : args) {
    if (!a) all_known = false;
    if (!joined.empty()) joined += ",";
    joined += a.value_or("?");
  }
  SessionChange ch;
  ch.name = name;
  switch (effect) {
    case FunctionEffect::advisory_lock: ch.op = SessionOp::advisory_lock; break;
    case FunctionEffect::advisory_xact_lock:
      ch.op = SessionOp::advisory_lock;
      ch.transaction_scoped = true;
      break;
    case FunctionEffect::advisory_unlock: ch.op = SessionOp::advisory_unlock; break;
    case FunctionEffect::advisory_unlock_all: ch.op = SessionOp::advisory_unlock_all; break;
    case FunctionEffect::set_config: {
      ch.op = SessionOp::set_config;
      bool local_known = args.size() == 3 && args[2].has_value();
      ch.transaction_scoped = local_known && (*args[2] == "true" || *args[2] == "t" || *args[2] == "on");
      ch.value_known = args.size() == 3 && all_known;
      ch.name = args.size() >= 1 && args[0] ? *args[0] : "";
      ch.value = args.size() >= 2 && args[1] ? *args[1] : "";
      if (ch.value_known) ch.sql = set_config_sql(ch.name, ch.value, ch.transaction_scoped);
      out_.session_changes.push_back(std::move(ch));
      return;
    }
    case FunctionEffect::none: return;
  }
  ch.value = joined;
  ch.value_known = all_known;
  out_.session_changes.push_back(std::move(ch));
}

// Backslashes force the E'' form so the text means the same whatever standard_conforming_strings is.
std::string quote_literal(std::string_view s) {
  bool backslash = s.find('\\') != std::string_view::npos;
  std::string out = backslash ? "E'" : "'";
  for (char c : s) {
    out += c;
    if (c == '\'' || (backslash && c == '\\')) out += c;
  }
  return out + "'";
}

std::string set_config_sql(std::string_view name, std::string_view value, bool is_local) {
  return "SELECT pg_catalog.set_config(" + quote_literal(name) + ", " + quote_literal(value) + ", " +
         (is_local ? "true" : "false") + ")";
}

}  // namespace pgs::router::detail
