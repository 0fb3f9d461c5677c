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

// The replies the proxy writes around stored messages on a hit: [ParseComplete] [BindComplete].
void write_cache_hit_prefix(const CacheableRequest& r, std::string& out);

}  // namespace pgs::proxy
