#include "app/partitions.h"

#include <chrono>
#include <cstdio>

namespace pgs::app {

YearMonth YearMonth::plus(int months) const {
  const int index = year * 12 + (month - 1) + months;
  return YearMonth{index / 12, index % 12 + 1};
}

YearMonth current_utc_month() {
  using namespace std::chrono;
  const year_month_day ymd{floor<days>(system_clock::now())};
  return YearMonth{static_cast<int>(ymd.year()), static_cast<int>(static_cast<unsigned>(ymd.month()))};
}

const std::vector<std::string>& partitioned_tables() {
  static const std::vector<std::string> tables{
      "canvas.pod_executions",
      "canvas.flow_activity_logs",
      "billing.pod_usage_logs",
      "documents.document_api_logs",
  };
  return tables;
}

std::string partition_name(const std::string& table, YearMonth ym) {
  char suffix[16];
  std::snprintf(suffix, sizeof suffix, "_y%04dm%02d", ym.year, ym.month);
  return table + suffix;
}

std::string partition_ddl(const std::string& table, YearMonth ym) {
  const YearMonth next = ym.plus(1);
  char bounds[96];
  std::snprintf(bounds, sizeof bounds, "FROM ('%04d-%02d-01 00:00:00+00') TO ('%04d-%02d-01 00:00:00+00')", ym.year,
                ym.month, next.year, next.month);
  return "CREATE TABLE IF NOT EXISTS " + partition_name(table, ym) + " PARTITION OF " + table + " FOR VALUES " +
         bounds;
}

Outcome<int, DbError> ensure_partitions(PgConn& conn, YearMonth first, int count) {
  // Key of the advisory lock: any constant unique to this purpose.
  constexpr std::string_view kLock = "SELECT pg_advisory_xact_lock(7346162530001)";
  std::string script = "BEGIN;\n" + std::string(kLock) + ";\n";
  for (int i = 0; i < count; ++i) {
    for (const auto& table : partitioned_tables()) script += partition_ddl(table, first.plus(i)) + ";\n";
  }
  script += "COMMIT;\n";
  auto done = conn.exec_script(script);
  if (!done) {
    if (conn.in_transaction()) (void)conn.exec("ROLLBACK");
    return done.error();
  }
  return count * static_cast<int>(partitioned_tables().size());
}

}  // namespace pgs::app
