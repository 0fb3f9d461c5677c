// DDL statements: what they create, change or drop is "written" (so cached results over it are
// invalidated); relations they only mention (a view's query, a foreign key's target) are "read".
#include <string_view>
#include <unordered_set>

#include "router/statement.h"

namespace pgs::router::detail {
namespace {

bool is_target_field(std::string_view key) {
  return key == "relation" || key == "relations" || key == "view" || key == "sequence" || key == "table";
}

bool temp(const json::object& rv) { return str_field(rv, "relpersistence") == "t"; }

void add_temp(Ctx& c, const json::object& rv, bool on_commit_drop) {
  SessionChange ch{SessionOp::temp_object, std::string(str_field(rv, "relname"))};
  ch.transaction_scoped = on_commit_drop;
  c.out.session_changes.push_back(std::move(ch));
}

void target(Ctx& c, const json::value& v) {
  if (v.is_object() && v.get_object().contains("relname")) {
    c.walker.relation(v.get_object(), true);
  } else if (v.is_array()) {
    for (const auto& e : v.get_array()) {
      if (auto n = node_of(e); n && n->first == "RangeVar") {
        c.walker.relation(*n->second, true);
      } else {
        c.walker.walk(e);
      }
    }
  } else {
    c.walker.walk(v);
  }
}

bool drops_relations(std::string_view remove_type) {
  return remove_type == "OBJECT_TABLE" || remove_type == "OBJECT_VIEW" || remove_type == "OBJECT_MATVIEW" ||
         remove_type == "OBJECT_FOREIGN_TABLE" || remove_type == "OBJECT_SEQUENCE";
}

// DROP TABLE a, s.b: objects = [{"List": {"items": [{"String": {"sval": "a"}}]}}, ...].
void dropped(Ctx& c, const json::object& body) {
  const json::value* objects = body.if_contains("objects");
  if (!objects || !objects->is_array() || !drops_relations(str_field(body, "removeType"))) return;
  for (const auto& o : objects->get_array()) {
    auto list = node_of(o);
    if (!list || list->first != "List") continue;
    const json::value* items = list->second->if_contains("items");
    if (!items || !items->is_array()) continue;
    std::vector<std::string_view> parts;
    for (const auto& i : items->get_array()) {
      if (auto s = node_of(i); s && s->first == "String") parts.push_back(str_field(*s->second, "sval"));
    }
    if (parts.empty()) continue;
    TableRef t{parts.size() >= 2 ? std::string(parts[parts.size() - 2]) : "", std::string(parts.back())};
    if (t.schema.empty()) c.out.flags.unqualified_tables = true;
    c.out.tables_written.push_back(std::move(t));
  }
}

void temp_objects(Ctx& c, std::string_view type, const json::object& body) {
  if (type == "CreateStmt") {
    const json::object* rel = obj_field(body, "relation");
    if (rel && temp(*rel)) add_temp(c, *rel, str_field(body, "oncommit") == "ONCOMMIT_DROP");
  } else if (type == "ViewStmt" || type == "CreateSeqStmt") {
    const json::object* rel = obj_field(body, type == "ViewStmt" ? "view" : "sequence");
    if (rel && temp(*rel)) add_temp(c, *rel, false);
  } else if (type == "CreateTableAsStmt") {
    const json::object* into = obj_field(body, "into");
    const json::object* rel = into ? obj_field(*into, "rel") : nullptr;
    if (rel && temp(*rel)) add_temp(c, *rel, str_field(*into, "onCommit") == "ONCOMMIT_DROP");
  }
}

}  // namespace

bool is_ddl(std::string_view type) {
  static const std::unordered_set<std::string_view> others = {
      "GrantStmt", "GrantRoleStmt", "RenameStmt", "CommentStmt", "TruncateStmt", "IndexStmt",
      "ViewStmt", "RuleStmt", "RefreshMatViewStmt", "SecLabelStmt", "CompositeTypeStmt",
      "DefineStmt", "ImportForeignSchemaStmt", "ReassignOwnedStmt", "DropOwnedStmt"};
  return type.starts_with("Create") || type.starts_with("Alter") || type.starts_with("Drop") ||
         others.contains(type);
}

void ddl_stmt(Ctx& c, std::string_view type, const json::object& body) {
  c.out.kind = Kind::ddl;
  temp_objects(c, type, body);
  if (type == "DropStmt") dropped(c, body);
  for (const auto& kv : body) {
    std::string_view key = kv.key();
    if (is_target_field(key)) {
      target(c, kv.value());
    } else if (key == "into" && kv.value().is_object()) {
      if (const auto* rel = obj_field(kv.value().get_object(), "rel")) c.walker.relation(*rel, true);
    } else if (key != "objects") {
      c.walker.walk(kv.value());
    }
  }
}

}  // namespace pgs::router::detail
