// classify(sql): the statement's kind, tables, flags, session-state changes and hints, from the real
// Postgres parser (libpg_query). Pure: no I/O, no globals of ours.
//
// Thread safety: safe to call from several threads at once. libpg_query keeps its memory contexts and
// parser state in thread-local storage (initialised on first use per thread, freed at thread exit), and
// this module has no mutable shared state.
//
// Stack: libpg_query turns the parse tree into JSON recursively (~110 bytes of stack per nesting level;
// "SELECT 1+1+...+1" nests once per '+'). Statements are therefore parsed only when they are at most
// max_parse_bytes long AND a cheap lexical scan counts at most max_parse_tokens tokens that can nest
// (operators, words, brackets; literals and commas don't count). With the defaults the parser needs
// under 2 MB of stack (tested on a 2 MB thread); worker threads need at least that.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "router/classification.h"

namespace pgs::router {

struct ClassifyOptions {
  size_t max_parse_bytes = 256 * 1024;  // longer statements are not parsed (flags.oversized)
  size_t max_parse_tokens = 10000;      // more nesting-capable tokens: not parsed (flags.oversized)
  // Functions the operator declares safe to run on a replica, on top of the built-in list. Match is on
  // the name as written: "app.report" matches app.report(...), "report" matches unqualified report(...).
  std::vector<std::string> replica_safe_functions;

  bool operator==(const ClassifyOptions&) const = default;  // config reload: reset caches only on change
};

Classification classify(std::string_view sql, const ClassifyOptions& options = {});

// Only the leading-comment hints (cheap, no parser): what classify() puts in Classification::hint.
Hint parse_hints(std::string_view sql);

// Value of `SET pgsidecar.route = ...` as a hint: "primary" | "replica" | "auto"/"default"/"" (none).
// nullopt for anything else (the proxy should reject the SET with 22023).
std::optional<RouteHint> parse_route_hint(std::string_view value);

}  // namespace pgs::router
