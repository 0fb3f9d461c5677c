// Walks libpg_query's JSON parse tree (Boost.JSON values) and collects tables, functions and flags
// into a StatementClass. Internal to router/.
//
// Shape of the tree (libpg_query 15-4.0): a Node is an object with one PascalCase key naming its type,
// {"RangeVar": {...}}; typed fields are inlined without the wrapper ("relation": {"relname": ...}),
// which is why any object with a "relname" member is treated as a RangeVar. Offsets ("location") are
// bytes into the whole text given to the parser.
#pragma once

#include <boost/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "router/classification.h"
#include "router/classify.h"
#include "router/functions.h"

namespace pgs::router::detail {

namespace json = boost::json;

// Deepest JSON nesting the walker follows; deeper trees mark the statement oversized.
inline constexpr int kMaxWalkDepth = 3000;

class TreeWalker {
 public:
  TreeWalker(std::string_view sql, const ClassifyOptions& options, StatementClass& out)
      : sql_(sql), options_(options), out_(out) {}

  void walk(const json::value& v);
  // A query node's body (type = "SelectStmt", "InsertStmt", ...): its WITH clause is in scope for the
  // whole body; for INSERT/UPDATE/DELETE/MERGE the target "relation" is written.
  void query(std::string_view type, const json::object& body);
  // A RangeVar body. CTE names in scope are not tables.
  void relation(const json::object& range_var, bool written);
  void func_call(const json::object& call);
  bool too_deep() const { return too_deep_; }

 private:
  void object(const json::object& o);
  void typed(std::string_view type, const json::value& body);
  void with_clause(const json::object& with);
  void into_clause(const json::object& into);
  void locking(const json::object& clause);
  void sql_value_function(const json::object& f);
  void type_cast(const json::object& cast);
  void node_identity_setting(std::string_view name, const json::object& call);
  void function_effect(const std::string& name, FunctionEffect effect, const json::object& call);
  bool is_cte(std::string_view name) const;

  std::string_view sql_;
  const ClassifyOptions& options_;
  StatementClass& out_;
  std::vector<std::string> cte_scope_;
  int depth_ = 0;
  bool too_deep_ = false;
};

// Small readers over the JSON tree.
std::string_view str_field(const json::object& o, std::string_view key);
bool bool_field(const json::object& o, std::string_view key);
const json::object* obj_field(const json::object& o, std::string_view key);
// The single {"Type": body} pair of a Node object, or nullopt.
std::optional<std::pair<std::string_view, const json::object*>> node_of(const json::value& v);
// A constant argument as text: strings unquoted, numbers as written (read from `sql` at the location,
// since libpg_query 15-4.0 prints negative integers as {}), booleans true/false. nullopt otherwise.
std::optional<std::string> const_text(const json::value& v, std::string_view sql);
// Settings whose value tells a primary from a replica (SHOW / current_setting of them goes to the primary).
bool is_node_identity_setting(std::string_view name);
// 'it''s' quoting for a string constant (standard_conforming_strings = on).
std::string quote_literal(std::string_view s);
// "SELECT pg_catalog.set_config('name', 'value', false)": replays a set_config call.
std::string set_config_sql(std::string_view name, std::string_view value, bool is_local);

}  // namespace pgs::router::detail
