#include "router/fingerprint.h"

#include <pg_query.h>

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

std::string normalize(std::string_view sql, const ClassifyOptions& limits) {
  if (auto placeholder = refuse(sql, limits)) return std::string(*placeholder);
  std::string text(sql);
  PgQueryNormalizeResult r = pg_query_normalize(text.c_str());
  std::string out = r.error || !r.normalized_query ? std::string(kUnparseableStatement) : r.normalized_query;
  pg_query_free_normalize_result(r);
  return out;
}

}  // namespace pgs::router
