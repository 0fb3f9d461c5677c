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

namespace pgs::proxy {

struct CacheableRequest {
  cache::ReplyShape shape = cache::ReplyShape::simple;
  size_t bytes = 0;                  // the unit's frames at the start of the buffer, Sync included
  std::string_view sql;              // Query text, or the Parse's text ("" when only a Bind names it)
  bool has_parse = false;
  std::string_view parse_name;       // the statement the Parse creates ("" = unnamed)
  protocol::Bytes param_types;       // the Parse's parameter-type block (count, then OIDs), raw
  std::string_view bind_statement;   // the statement the Bind uses ("" = unnamed)
  protocol::Bytes params_region;     // Bind's parameter formats, values and result formats, raw
};
// Read in place, without allocating (this runs on every request while the cache is on). Raw blocks are
// length-checked only as far as the key needs: a malformed one can only miss, and then the server
// rejects it.

// `buffered` starts at a message boundary. nullopt when the first request is not a cacheable unit
// (or is not complete yet).
std::optional<CacheableRequest> scan_cacheable_request(protocol::Bytes buffered, uint32_t max_message_bytes);

// The Parse's parameter types as a list (for a statement registered on a hit); nullopt if malformed.
std::optional<std::vector<uint32_t>> decode_param_types(protocol::Bytes block);

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
// `sql` and `param_types` are the statement the Bind uses (a Parse's in `r`, or a named one); nullopt
// when the Bind region is malformed (the server rejects it: not cached).
std::optional<KeyedStatement> keyed_statement(const CacheableRequest& r, std::string_view sql,
                                              const std::vector<uint32_t>& param_types);

// The replies the proxy writes around stored messages on a hit: [ParseComplete] [BindComplete].
void write_cache_hit_prefix(const CacheableRequest& r, std::string& out);

}  // namespace pgs::proxy
