#include "router/fingerprint.h"

#include <pg_query.h>

#include <algorithm>
#include <cstdio>

#include "router/sql_scan.h"

namespace pgs::router {
namespace {

// nullopt when the text may be handed to libpg_query; else the placeholder to return.
std::optional<std::string_view> refuse(std::string_view sql, const ClassifyOptions& limits) {
  if (sql.size() > limits.max_parse_bytes) return kOversizedStatement;
  detail::ScanStats st = detail::scan_stats(sql);
  if (st.has_nul) return kUnparseableStatement;
  if (detail::too_complex(st, limits.max_parse_tokens)) return kOversizedStatement;
  return std::nullopt;
}

}  // namespace

Fingerprint fingerprint(std::string_view sql, const ClassifyOptions& limits) {
  Fingerprint f;
  if (refuse(sql, limits)) return f;
  std::string text(sql);
  PgQueryFingerprintResult r = pg_query_fingerprint(text.c_str());
  if (!r.error) {
    f.value = r.fingerprint;
    f.ok = true;
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(r.fingerprint));
    f.hex = buf;
  }
  pg_query_free_fingerprint_result(r);
  return f;
}

// pg_query_normalize walks the tree recursively with large frames (~700 bytes per level): 3,000 nested
// subqueries overflow a 2 MB thread stack. Cap its input harder than classify()'s.
constexpr size_t kMaxNormalizeTokens = 2000;

std::string normalize(std::string_view sql, const ClassifyOptions& limits) {
  ClassifyOptions tighter;
  tighter.max_parse_bytes = limits.max_parse_bytes;
  tighter.max_parse_tokens = std::min(limits.max_parse_tokens, kMaxNormalizeTokens);
  if (auto placeholder = refuse(sql, tighter)) return std::string(*placeholder);
  std::string text(sql);
  PgQueryNormalizeResult r = pg_query_normalize(text.c_str());
  std::string out = r.error || !r.normalized_query ? std::string(kUnparseableStatement) : r.normalized_query;
  pg_query_free_normalize_result(r);
  return out;
}

}  // namespace pgs::router
