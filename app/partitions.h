// Monthly range partitions of the large logs. Partition names are <table>_yYYYYmMM and bounds are
// UTC month starts. Creation is idempotent (IF NOT EXISTS) and serialised between concurrent app
// instances by a transaction-level advisory lock.
#pragma once

#include <string>
#include <vector>

#include "app/pg.h"

namespace pgs::app {

struct YearMonth {
  int year = 1970;
  int month = 1;  // 1..12
  YearMonth plus(int months) const;
  bool operator==(const YearMonth&) const = default;
};

YearMonth current_utc_month();

// The partitioned tables: "schema.table".
const std::vector<std::string>& partitioned_tables();

// "canvas.pod_executions", 2026-11 -> "canvas.pod_executions_y2026m11".
std::string partition_name(const std::string& table, YearMonth ym);

// The DDL for one table and month (pure, for tests).
std::string partition_ddl(const std::string& table, YearMonth ym);

// Creates the partitions of every partitioned table for `first` and the `count - 1` months after it.
Outcome<int, DbError> ensure_partitions(PgConn& conn, YearMonth first, int count);

}  // namespace pgs::app
