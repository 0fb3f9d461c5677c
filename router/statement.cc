#include "router/statement.h"

#include <algorithm>
#include <unordered_map>

#include "router/sql_scan.h"

namespace pgs::router::detail {
namespace {

using Handler = void (*)(Ctx&, std::string_view type, const json::object& body);

void add_change(Ctx& c, SessionOp op, std::string_view name, std::string sql = {}) {
  SessionChange ch;
  ch.op = op;
  ch.name = std::string(name);
  ch.sql = std::move(sql);
  c.out.session_changes.push_back(std::move(ch));
}

void query_stmt(Ctx& c, std::string_view type, const json::object& body) {
  static const std::unordered_map<std::string_view, Kind> kinds = {
      {"InsertStmt", Kind::insert}, {"UpdateStmt", Kind::update},
      {"DeleteStmt", Kind::delete_}, {"MergeStmt", Kind::merge}};
  if (type == "SelectStmt") {
    c.out.kind = iequals(first_word(c.text), "table") ? Kind::table
                 : body.contains("valuesLists")       ? Kind::values
                                                      : Kind::select;
  } else {
    c.out.kind = kinds.at(type);
  }
  c.walker.query(type, body);
}

bool explain_analyze(const json::object& body, std::string_view sql) {
  const json::value* opts = body.if_contains("options");
  if (!opts || !opts->is_array()) return false;
  for (const auto& o : opts->get_array()) {
    auto n = node_of(o);
    if (!n || str_field(*n->second, "defname") != "analyze") continue;
    const json::value* arg = n->second->if_contains("arg");
    if (!arg) return true;
    auto v = const_text(*arg, sql);
    auto s = node_of(*arg);
    if (s && s->first == "String") v = std::string(str_field(*s->second, "sval"));
    if (s && s->first == "Integer") {  // {"Integer": {}} is 0: zero fields are omitted
      const json::value* iv = s->second->if_contains("ival");
      v = iv && iv->is_int64() ? std::to_string(iv->get_int64()) : std::string("0");
    }
    return !(v && (*v == "false" || *v == "off" || *v == "0"));
  }
  return false;
}

void explain_stmt(Ctx& c, std::string_view, const json::object& body) {
  c.out.kind = Kind::explain;
  c.read_only_decided = true;
  const json::value* q = body.if_contains("query");
  if (!q) return;
  StatementClass inner;
  if (!classify_node(c.sql, c.text, *q, c.options, inner)) {
    c.too_deep = true;
    return;
  }
  c.out.flags |= inner.flags;
  c.out.tables_read = std::move(inner.tables_read);
  c.out.tables_written = std::move(inner.tables_written);
  c.out.functions = std::move(inner.functions);
  c.out.unsafe_functions = std::move(inner.unsafe_functions);
  if (explain_analyze(body, c.sql)) {
    c.out.session_changes = std::move(inner.session_changes);
  } else {
    // Without ANALYZE nothing runs: no rows change and no session effect takes place.
    c.out.tables_read.insert(c.out.tables_read.end(), c.out.tables_written.begin(), c.out.tables_written.end());
    c.out.tables_written.clear();
    c.out.flags.session_state = false;
    // EXECUTE q still needs q to plan it: keep that dependency (never a change of state).
    for (auto& ch : inner.session_changes) {
      if (ch.op == SessionOp::execute) c.out.session_changes.push_back(std::move(ch));
    }
  }
  // Only the plan of something that could itself run on a replica is read-only, ANALYZE or not.
  bool readable = inner.kind == Kind::select || inner.kind == Kind::values || inner.kind == Kind::table;
  c.out.read_only = readable && inner.read_only;
}

void copy_stmt(Ctx& c, std::string_view, const json::object& body) {
  bool from = bool_field(body, "is_from");
  c.out.kind = from ? Kind::copy_from : Kind::copy_to;
  if (const auto* rel = obj_field(body, "relation")) c.walker.relation(*rel, from);
  for (const auto& kv : body) {
    if (kv.key() != "relation") c.walker.walk(kv.value());
  }
}

Kind transaction_kind(std::string_view k) {
  static const std::unordered_map<std::string_view, Kind> kinds = {
      {"TRANS_STMT_BEGIN", Kind::begin}, {"TRANS_STMT_START", Kind::begin},
      {"TRANS_STMT_COMMIT", Kind::commit}, {"TRANS_STMT_ROLLBACK", Kind::rollback},
      {"TRANS_STMT_SAVEPOINT", Kind::savepoint}, {"TRANS_STMT_RELEASE", Kind::release},
      {"TRANS_STMT_ROLLBACK_TO", Kind::rollback_to},
      {"TRANS_STMT_PREPARE", Kind::prepare_transaction},
      {"TRANS_STMT_COMMIT_PREPARED", Kind::commit_prepared},
      {"TRANS_STMT_ROLLBACK_PREPARED", Kind::rollback_prepared}};
  auto it = kinds.find(k);
  return it == kinds.end() ? Kind::other : it->second;
}

// transaction_read_only / transaction_isolation options of BEGIN, START TRANSACTION, SET TRANSACTION.
struct TxOptions {
  bool read_only = false;
  bool serializable = false;
};
TxOptions transaction_options(const json::value* opts, std::string_view sql) {
  TxOptions t;
  if (!opts || !opts->is_array()) return t;
  for (const auto& o : opts->get_array()) {
    auto n = node_of(o);
    if (!n) continue;
    std::string_view name = str_field(*n->second, "defname");
    const json::value* arg = n->second->if_contains("arg");
    auto v = arg ? const_text(*arg, sql) : std::nullopt;
    if (name == "transaction_read_only") t.read_only = v && *v != "0" && *v != "false";
    if (name == "transaction_isolation") t.serializable = v && *v == "serializable";
  }
  return t;
}

void transaction_stmt(Ctx& c, std::string_view, const json::object& body) {
  c.out.kind = transaction_kind(str_field(body, "kind"));
  if (c.out.kind != Kind::begin) return;
  TxOptions t = transaction_options(body.if_contains("options"), c.sql);
  c.out.flags.serializable = t.serializable;
  if (!t.read_only) return;
  c.out.kind = Kind::begin_read_only;
  c.out.flags.transaction_read_only = true;
  // A hot standby refuses SERIALIZABLE, so such a transaction must start on the primary.
  if (t.serializable) c.not_read_only = true;
}

std::string args_text(Ctx& c, const json::object& body) {
  const json::value* args = body.if_contains("args");
  if (!args || !args->is_array() || args->get_array().empty()) return {};
  auto first = node_of(args->get_array().front());
  if (!first) return {};
  const json::value* loc = first->second->if_contains("location");
  if (!loc || !loc->is_int64() || loc->get_int64() < 0) return {};
  size_t pos = static_cast<size_t>(loc->get_int64());
  size_t end = static_cast<size_t>(c.text.data() - c.sql.data()) + trim_statement(c.text).size();
  if (pos >= end || end > c.sql.size()) return {};
  return std::string(c.sql.substr(pos, end - pos));
}

void session_characteristics(Ctx& c, const json::object& body) {
  const json::value* args = body.if_contains("args");
  if (!args || !args->is_array()) return;
  for (const auto& a : args->get_array()) {
    auto n = node_of(a);
    if (!n) continue;
    SessionChange ch{SessionOp::set, "default_" + std::string(str_field(*n->second, "defname"))};
    const json::value* arg = n->second->if_contains("arg");
    auto v = arg ? const_text(*arg, c.sql) : std::nullopt;
    ch.value = v.value_or("");
    ch.value_known = v.has_value();
    ch.sql = std::string(trim_statement(c.text));
    c.out.session_changes.push_back(std::move(ch));
  }
}

void variable_set_stmt(Ctx& c, std::string_view, const json::object& body) {
  std::string_view kind = str_field(body, "kind");
  std::string_view name = str_field(body, "name");
  bool local = bool_field(body, "is_local");
  if (kind == "VAR_SET_MULTI" && name == "TRANSACTION") {
    // SET TRANSACTION READ ONLY is harmless on a standby: outside a transaction it only warns, and after a
    // BEGIN in the same request it makes that transaction read-only. Anything else it sets stays off
    // replicas (SERIALIZABLE is refused there).
    c.out.kind = Kind::set_transaction;
    TxOptions t = transaction_options(body.if_contains("args"), c.sql);
    c.out.flags.transaction_read_only = t.read_only;
    c.out.flags.serializable = t.serializable;
    if (!t.read_only || t.serializable) c.not_read_only = true;
    return;
  }
  SessionChange ch;
  ch.name = std::string(name);
  ch.transaction_scoped = local;
  ch.sql = std::string(trim_statement(c.text));
  if (kind == "VAR_SET_MULTI") {
    c.out.kind = Kind::set;
    session_characteristics(c, body);
    return;
  }
  if (kind == "VAR_RESET_ALL") {
    ch.op = SessionOp::reset_all;
  } else if (kind == "VAR_RESET" || kind == "VAR_SET_DEFAULT") {
    ch.op = SessionOp::reset;
  } else {
    ch.op = SessionOp::set;
    ch.value = args_text(c, body);
    ch.value_known = kind == "VAR_SET_VALUE" && !ch.value.empty();
  }
  c.out.kind = local ? Kind::set_local : (kind.starts_with("VAR_RESET") ? Kind::reset : Kind::set);
  c.out.session_changes.push_back(std::move(ch));
}

void discard_stmt(Ctx& c, std::string_view, const json::object& body) {
  std::string_view t = str_field(body, "target");
  c.out.kind = t == "DISCARD_ALL" ? Kind::discard_all : Kind::discard;
  SessionOp op = t == "DISCARD_ALL"     ? SessionOp::discard_all
                 : t == "DISCARD_PLANS" ? SessionOp::discard_plans
                 : t == "DISCARD_TEMP"  ? SessionOp::discard_temp
                                        : SessionOp::discard_sequences;
  add_change(c, op, "", std::string(trim_statement(c.text)));
}

void prepared_stmt(Ctx& c, std::string_view type, const json::object& body) {
  std::string_view name = str_field(body, "name");
  if (type == "PrepareStmt") {
    c.out.kind = Kind::prepare;
    add_change(c, SessionOp::prepare, name, std::string(trim_statement(c.text)));
  } else if (type == "ExecuteStmt") {
    c.out.kind = Kind::execute;
    c.out.flags.writes_unknown_tables = true;
    add_change(c, SessionOp::execute, name);
    if (const json::value* p = body.if_contains("params")) c.walker.walk(*p);
  } else {
    c.out.kind = Kind::deallocate;
    add_change(c, name.empty() ? SessionOp::deallocate_all : SessionOp::deallocate, name);
  }
}

void listen_stmt(Ctx& c, std::string_view type, const json::object& body) {
  std::string_view channel = str_field(body, "conditionname");
  if (type == "ListenStmt") {
    c.out.kind = Kind::listen;
    add_change(c, SessionOp::listen, channel);
  } else if (type == "UnlistenStmt") {
    c.out.kind = Kind::unlisten;
    add_change(c, channel.empty() ? SessionOp::unlisten_all : SessionOp::unlisten, channel);
  } else {
    c.out.kind = Kind::notify;
  }
}

constexpr int64_t kCursorOptHold = 0x20;  // CURSOR_OPT_HOLD, src/include/nodes/parsenodes.h

void cursor_stmt(Ctx& c, std::string_view type, const json::object& body) {
  std::string_view name = str_field(body, "portalname");
  if (type == "DeclareCursorStmt") {
    c.out.kind = Kind::declare_cursor;
    const json::value* o = body.if_contains("options");
    if (o && o->is_int64() && (o->get_int64() & kCursorOptHold)) {
      add_change(c, SessionOp::declare_with_hold, name);
    }
    if (const json::value* q = body.if_contains("query")) c.walker.walk(*q);
  } else if (type == "ClosePortalStmt") {
    c.out.kind = Kind::close_cursor;
    add_change(c, name.empty() ? SessionOp::close_all_cursors : SessionOp::close_cursor, name);
  } else {
    c.out.kind = Kind::fetch;
  }
}

void routine_stmt(Ctx& c, std::string_view type, const json::object& body) {
  c.out.kind = type == "CallStmt" ? Kind::call : Kind::do_;
  c.out.flags.writes_unknown_tables = true;
  if (const auto* f = obj_field(body, "funccall")) c.walker.func_call(*f);
}

void lock_stmt(Ctx& c, std::string_view type, const json::object& body) {
  c.out.kind = type == "LockStmt" ? Kind::lock : Kind::vacuum;
  c.walker.walk(body);
}

// SHOW transaction_read_only / in_hot_standby / ALL tell a replica from the primary (libpq's
// target_session_attrs=read-write asks exactly that after connecting): answer them from the primary.
void show_stmt(Ctx& c, std::string_view, const json::object& body) {
  c.out.kind = Kind::show;
  std::string_view name = str_field(body, "name");
  if (name == "all" || is_node_identity_setting(name)) c.not_read_only = true;
}

const std::unordered_map<std::string_view, Handler>& handlers() {
  static const std::unordered_map<std::string_view, Handler> h = {
      {"SelectStmt", query_stmt},      {"InsertStmt", query_stmt},
      {"UpdateStmt", query_stmt},      {"DeleteStmt", query_stmt},
      {"MergeStmt", query_stmt},       {"ExplainStmt", explain_stmt},
      {"CopyStmt", copy_stmt},         {"TransactionStmt", transaction_stmt},
      {"VariableSetStmt", variable_set_stmt}, {"VariableShowStmt", show_stmt},
      {"DiscardStmt", discard_stmt},   {"PrepareStmt", prepared_stmt},
      {"ExecuteStmt", prepared_stmt},  {"DeallocateStmt", prepared_stmt},
      {"ListenStmt", listen_stmt},     {"UnlistenStmt", listen_stmt},
      {"NotifyStmt", listen_stmt},     {"DeclareCursorStmt", cursor_stmt},
      {"FetchStmt", cursor_stmt},      {"ClosePortalStmt", cursor_stmt},
      {"CallStmt", routine_stmt},      {"DoStmt", routine_stmt},
      {"LockStmt", lock_stmt},         {"VacuumStmt", lock_stmt},
      {"ClusterStmt", lock_stmt},      {"ReindexStmt", lock_stmt},
  };
  return h;
}

// Kinds that can be read-only (before looking at flags). Transaction ends and savepoints write
// nothing themselves: whatever wrote in the transaction already bound it to the primary.
bool readable_kind(Kind k) {
  switch (k) {
    case Kind::select: case Kind::values: case Kind::table: case Kind::show:
    case Kind::begin_read_only: case Kind::commit: case Kind::rollback: case Kind::savepoint:
    case Kind::release: case Kind::rollback_to: case Kind::empty: case Kind::set_transaction:
      return true;
    default:
      return false;
  }
}

template <typename T>
void sort_unique(std::vector<T>& v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
}

void finish(Ctx& c) {
  StatementClass& o = c.out;
  for (const auto& ch : o.session_changes) {
    if (!ch.transaction_scoped && ch.op != SessionOp::execute) o.flags.session_state = true;
    if (ch.op == SessionOp::set_config && ch.name.empty()) o.flags.opaque_session = true;  // computed name
  }
  // Default-deny for session state: whatever may run code we cannot see, or is not a kind we model.
  if (o.flags.writes_unknown_tables || o.kind == Kind::other || o.kind == Kind::ddl) o.flags.opaque_session = true;
  const Flags& f = o.flags;
  bool clean = !f.any_row_lock() && !f.data_modifying_cte && !f.select_into && !f.writes_temp &&
               !f.calls_unsafe_function && !f.session_state && o.tables_written.empty();
  if (c.read_only_decided) {
    o.read_only = o.read_only && clean && !c.not_read_only;
  } else {
    o.read_only = readable_kind(o.kind) && clean && !c.not_read_only;
  }
  sort_unique(o.tables_read);
  sort_unique(o.tables_written);
  sort_unique(o.functions);
  sort_unique(o.unsafe_functions);
}

}  // namespace

bool classify_node(std::string_view sql, std::string_view text, const json::value& stmt,
                   const ClassifyOptions& options, StatementClass& out) {
  auto n = node_of(stmt);
  TreeWalker walker(sql, options, out);
  Ctx c{sql, text, options, out, walker};
  if (!n) {
    out.kind = Kind::other;
  } else if (auto it = handlers().find(n->first); it != handlers().end()) {
    it->second(c, n->first, *n->second);
  } else if (is_ddl(n->first)) {
    ddl_stmt(c, n->first, *n->second);
  } else {
    out.kind = Kind::other;
    walker.walk(*n->second);
  }
  finish(c);
  return !c.too_deep && !walker.too_deep();
}

std::string_view trim_statement(std::string_view text) {
  while (!text.empty()) {
    char ch = text.back();
    if (ch == ';' || ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f') {
      text.remove_suffix(1);
    } else {
      break;
    }
  }
  return text;
}

}  // namespace pgs::router::detail
