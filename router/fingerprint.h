// Statement digests for the slow-query log and /digests: a fingerprint that groups statements which
// differ only in constants, and a normalized text with constants replaced by $n. Neither ever returns
// literal values: text libpg_query cannot parse (or that is too big to parse safely, see classify.h)
// becomes a fixed placeholder. Thread-safe (libpg_query state is thread-local).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "router/classify.h"

namespace pgs::router {

inline constexpr std::string_view kUnparseableStatement = "<unparseable statement>";
inline constexpr std::string_view kOversizedStatement = "<oversized statement>";

struct Fingerprint {
  uint64_t value = 0;                   // pg_query_fingerprint; 0 when !ok
  std::string hex = "0000000000000000"; // 16 lower-case hex digits of value
  bool ok = false;
};

// Limits come from ClassifyOptions (max_parse_bytes, max_parse_tokens); normalize() also refuses text
// with more than 2,000 nesting-capable tokens (its recursion needs much more stack per level). Both
// run within a 2 MB thread stack for any input.
Fingerprint fingerprint(std::string_view sql, const ClassifyOptions& limits = {});
std::string normalize(std::string_view sql, const ClassifyOptions& limits = {});

}  // namespace pgs::router
