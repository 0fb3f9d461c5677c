// Schema migrations: app/schema/NNN_name.sql, embedded into the binary at build time, applied in
// order, each in its own transaction together with its row in public.flopods_schema_migrations
// (version, name, SHA-256 of the text). An applied migration whose text changed is an error. An
// advisory lock serialises concurrent `migrate` runs.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "app/pg.h"

namespace pgs::app {

struct Migration {
  int version = 0;
  std::string_view name;  // file name, e.g. "001_core.sql"
  std::string_view sql;
};

// The embedded migrations, ordered by version (generated: schema_files.cc).
const std::vector<Migration>& embedded_migrations();

// Applies what is missing; returns the number applied now. Also creates the partitions of this
// month and the three ahead.
Outcome<int, DbError> migrate(PgConn& conn);

}  // namespace pgs::app
