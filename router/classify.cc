#include "router/classify.h"

#include <pg_query.h>

#include <algorithm>
#include <cctype>
#include <boost/json.hpp>
#include <string>

#include "router/sql_scan.h"
#include "router/statement.h"

namespace pgs::router {

Flags& Flags::operator|=(const Flags& o) {
  for_update |= o.for_update;
  for_no_key_update |= o.for_no_key_update;
  for_share |= o.for_share;
  for_key_share |= o.for_key_share;
  data_modifying_cte |= o.data_modifying_cte;
  select_into |= o.select_into;
  writes_temp |= o.writes_temp;
  calls_unsafe_function |= o.calls_unsafe_function;
  volatile_functions |= o.volatile_functions;
  session_state |= o.session_state;
  transaction_read_only |= o.transaction_read_only;
  serializable |= o.serializable;
  writes_unknown_tables |= o.writes_unknown_tables;
  opaque_session |= o.opaque_session;
  unqualified_tables |= o.unqualified_tables;
  parse_error |= o.parse_error;
  oversized |= o.oversized;
  return *this;
}

bool StatementClass::writes() const {
  switch (kind) {
    case Kind::insert: case Kind::update: case Kind::delete_: case Kind::merge: case Kind::copy_from:
    case Kind::ddl: case Kind::call: case Kind::do_: case Kind::vacuum:
      return true;
    default:
      return !tables_written.empty() || flags.data_modifying_cte || flags.select_into;
  }
}

bool cacheable_candidate(const Classification& c) {
  bool kind_ok = c.kind == Kind::select || c.kind == Kind::values || c.kind == Kind::table;
  return kind_ok && c.read_only && !c.flags.volatile_functions && !c.hint.no_cache;
}

std::string_view session_op_name(SessionOp op) {
  static constexpr std::string_view names[] = {
#define PGS_X(e) #e,
      PGS_ROUTER_SESSION_OPS(PGS_X)
#undef PGS_X
  };
  return names[static_cast<size_t>(op)];
}

namespace {

namespace json = boost::json;

void mark_unparsed(Classification& c) {
  c.kind = Kind::other;
  c.read_only = false;
  c.flags.writes_unknown_tables = true;
  c.flags.opaque_session = true;
}

template <typename T>
void append_unique(std::vector<T>& to, const std::vector<T>& from) {
  to.insert(to.end(), from.begin(), from.end());
  std::sort(to.begin(), to.end());
  to.erase(std::unique(to.begin(), to.end()), to.end());
}

void summarize(Classification& c) {
  if (c.statements.empty()) {
    c.kind = Kind::empty;
    c.read_only = true;
    return;
  }
  c.kind = c.statements.size() == 1 ? c.statements.front().kind : Kind::multi;
  // "BEGIN; SET TRANSACTION READ ONLY; ..." starts a read-only transaction, as BEGIN READ ONLY does.
  if (c.statements.size() >= 2) {
    StatementClass& begin = c.statements[0];
    const StatementClass& set = c.statements[1];
    if (begin.kind == Kind::begin && !begin.flags.serializable && set.kind == Kind::set_transaction &&
        set.read_only) {
      begin.kind = Kind::begin_read_only;
      begin.read_only = true;
      begin.flags.transaction_read_only = true;
    }
  }
  c.read_only = true;
  for (const auto& s : c.statements) {
    c.read_only = c.read_only && s.read_only;
    c.flags |= s.flags;
    append_unique(c.tables_read, s.tables_read);
    append_unique(c.tables_written, s.tables_written);
    append_unique(c.functions, s.functions);
    append_unique(c.unsafe_functions, s.unsafe_functions);
    c.session_changes.insert(c.session_changes.end(), s.session_changes.begin(), s.session_changes.end());
  }
}

// Splits the parse tree into statements; false when the tree is too deep to walk.
bool classify_tree(const json::value& root, std::string_view sql, const ClassifyOptions& options,
                   Classification& c) {
  const json::value* stmts = root.is_object() ? root.get_object().if_contains("stmts") : nullptr;
  if (!stmts || !stmts->is_array()) return true;
  for (const auto& raw : stmts->get_array()) {
    if (!raw.is_object()) continue;
    const json::object& r = raw.get_object();
    auto num = [&](std::string_view key) {
      const json::value* v = r.if_contains(key);
      return v && v->is_int64() && v->get_int64() > 0 ? static_cast<size_t>(v->get_int64()) : size_t{0};
    };
    size_t loc = std::min(num("stmt_location"), sql.size());
    size_t len = num("stmt_len");
    if (len == 0 || len > sql.size() - loc) len = sql.size() - loc;
    while (len > 0 && std::isspace(static_cast<unsigned char>(sql[loc]))) ++loc, --len;  // after the last ';'
    StatementClass s;
    s.location = static_cast<uint32_t>(loc);
    s.length = static_cast<uint32_t>(len);
    const json::value* node = r.if_contains("stmt");
    if (node && !detail::classify_node(sql, sql.substr(loc, len), *node, options, s)) return false;
    c.statements.push_back(std::move(s));
  }
  return true;
}

void parse_and_classify(const std::string& text, const ClassifyOptions& options, Classification& c) {
  PgQueryParseResult r = pg_query_parse(text.c_str());
  if (r.error) {
    c.flags.parse_error = true;
    c.error = r.error->message ? r.error->message : "syntax error";
    pg_query_free_parse_result(r);
    mark_unparsed(c);
    return;
  }
  json::monotonic_resource mr;
  json::parse_options po;
  po.max_depth = detail::kMaxWalkDepth + 64;
  std::error_code ec;
  json::value root = json::parse(r.parse_tree ? r.parse_tree : "{}", ec, &mr, po);
  pg_query_free_parse_result(r);
  if (ec || !classify_tree(root, text, options, c)) {
    c.statements.clear();
    c.flags.oversized = true;  // nested deeper than we are willing to walk
    mark_unparsed(c);
    return;
  }
  summarize(c);
}

}  // namespace

Classification classify(std::string_view sql, const ClassifyOptions& options) {
  Classification c;
  c.length = static_cast<uint32_t>(std::min<size_t>(sql.size(), UINT32_MAX));
  c.hint = parse_hints(sql);
  if (sql.size() > options.max_parse_bytes) {
    c.flags.oversized = true;
    mark_unparsed(c);
    return c;
  }
  detail::ScanStats st = detail::scan_stats(sql);
  if (st.has_nul) {
    c.flags.parse_error = true;
    c.error = "statement contains a NUL byte";
    mark_unparsed(c);
    return c;
  }
  if (detail::too_complex(st, options.max_parse_tokens)) {
    c.flags.oversized = true;
    mark_unparsed(c);
    return c;
  }
  parse_and_classify(std::string(sql), options, c);
  return c;
}

}  // namespace pgs::router
