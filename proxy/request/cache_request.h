// The first request buffered from a client, when it is one unit the result cache can answer (issue 5).
// Pure: reads frames in place, decides nothing about the SQL (the cache policy does that).
//
// A unit is either one Query, or one extended-protocol batch of exactly
//   [Parse] Bind [Describe(portal)] Execute Sync
// on the unnamed portal, with no row limit, where a Parse (unnamed or naming a new statement) is the
// statement the Bind uses. Anything else (a Describe of the statement, Flush, several Executes, a
// batch whose Sync has not arrived yet) is not a unit: it goes to a server as usual.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cache/key.h"
#include "protocol/frame.h"
#include "protocol/frontend.h"
#include "proxy/request/buffered_request.h"

namespace pgs::proxy {

struct CacheableRequest {
  cache::ReplyShape shape = cache::ReplyShape::simple;
  size_t bytes = 0;                  // the unit's frames at the start of the buffer, Sync included
  std::string_view sql;              // Query text, or the Parse's text ("" when only a Bind names it)
  std::optional<protocol::frontend::Parse> parse;  // the Parse, when the unit has one
  protocol::frontend::BindView bind;  // its Bind: the statement it uses ("" = unnamed) and the raw rest
};
// Read in place through protocol/frontend's views, without allocating (this runs on every request
// while the cache is on). A message that does not decode makes no unit: the session refuses it.

// nullopt when the first request is not a cacheable unit (or is not complete yet).
std::optional<CacheableRequest> scan_cacheable_request(const BufferedRequest& request);

// The request as the cache key sees it (issue 12 item 6): one entry per statement, whatever the client
// calls it. Built from the statement text, its declared parameter types (the Parse's, or those the
// named statement was parsed with; trailing unspecified (0) types dropped: Postgres treats them as not
// given), the Bind's parameter values and formats, and its result formats, each in a canonical form
// (all-text formats, given as no codes, one code or one per column, are one form). Never the statement
// or portal name. A statement without parameters whose results are all text is keyed and stored as the
// simple Query of the same text when it is described: the reply bytes are the same.
struct KeyedStatement {
  cache::ReplyShape entry_shape = cache::ReplyShape::simple;  // the shape the entry is stored under
  std::string statement;  // text, then "\0" and the canonical type block when types are declared
  std::string params;     // canonical parameter formats, values and result formats ("" for simple)
};
// `sql` is the statement the Bind uses: the Parse's in `r`, or a named one's, whose declared types are
// then `named_types` (null: the Parse's, read in place). nullopt when the Bind's rest is malformed (the
// server rejects it: not cached).
std::optional<KeyedStatement> keyed_statement(const CacheableRequest& r, std::string_view sql,
                                              const std::vector<uint32_t>* named_types);

// The replies the proxy writes around stored messages on a hit: [ParseComplete] [BindComplete].
void write_cache_hit_prefix(const CacheableRequest& r, std::string& out);

}  // namespace pgs::proxy
