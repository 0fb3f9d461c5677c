// Classifies one top-level statement of libpg_query's parse tree. Internal to router/.
#pragma once

#include <string_view>

#include "router/classification.h"
#include "router/classify.h"
#include "router/tree_walk.h"

namespace pgs::router::detail {

// `stmt` is the statement node ({"SelectStmt": {...}}), `sql` the whole text given to the parser and
// `text` this statement's slice of it. Fills kind, tables, flags, functions, session changes and
// read_only. Returns false when the tree was too deep to walk (the caller marks it oversized).
bool classify_node(std::string_view sql, std::string_view text, const json::value& stmt,
                   const ClassifyOptions& options, StatementClass& out);

// State shared by the per-statement handlers (statement.cc, statement_ddl.cc).
struct Ctx {
  std::string_view sql;    // the whole text given to the parser (locations are offsets into it)
  std::string_view text;   // this statement's slice
  const ClassifyOptions& options;
  StatementClass& out;
  TreeWalker& walker;
  bool read_only_decided = false;  // the handler set out.read_only itself (EXPLAIN)
  bool not_read_only = false;      // the handler knows it must run on the primary
  bool too_deep = false;
};

// DDL: CREATE/ALTER/DROP/GRANT/TRUNCATE/COMMENT/...: target relations written, others read.
bool is_ddl(std::string_view type);
void ddl_stmt(Ctx& c, std::string_view type, const json::object& body);

// Statement text without trailing whitespace and semicolons (replayable SQL).
std::string_view trim_statement(std::string_view text);

}  // namespace pgs::router::detail
