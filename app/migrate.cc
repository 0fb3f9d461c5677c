#include "app/migrate.h"

#include "app/auth.h"
#include "app/log.h"
#include "app/partitions.h"

namespace pgs::app {
namespace {

constexpr std::string_view kLock = "SELECT pg_advisory_xact_lock(7346162530000)";

Outcome<bool, DbError> apply_one(PgConn& conn, const Migration& m) {
  const std::string checksum = sha256_hex(m.sql);
  auto begun = conn.exec("BEGIN");
  if (!begun) return begun.error();
  auto locked = conn.exec(kLock);
  if (!locked) return locked.error();
  auto seen = conn.exec("SELECT checksum FROM public.flopods_schema_migrations WHERE version = $1",
                        {param(m.version)});
  if (!seen) return seen.error();
  if (!seen->empty()) {
    (void)conn.exec("ROLLBACK");
    if (seen->text(0, 0) != checksum) {
      return DbError{DbError::Kind::other, "", "migration " + std::string(m.name) + " changed after it was applied"};
    }
    return false;
  }
  auto applied = conn.exec_script(m.sql);
  if (!applied) return applied.error();
  auto recorded = conn.exec(
      "INSERT INTO public.flopods_schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
      {param(m.version), param(m.name), param(checksum)});
  if (!recorded) return recorded.error();
  auto committed = conn.exec("COMMIT");
  if (!committed) return committed.error();
  return true;
}

}  // namespace

Outcome<int, DbError> migrate(PgConn& conn) {
  auto table = conn.exec(
      "CREATE TABLE IF NOT EXISTS public.flopods_schema_migrations (version integer PRIMARY KEY, "
      "name text NOT NULL, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())");
  if (!table) return table.error();
  int count = 0;
  for (const Migration& m : embedded_migrations()) {
    auto done = apply_one(conn, m);
    if (!done) {
      if (conn.in_transaction()) (void)conn.exec("ROLLBACK");
      return DbError{done.error().kind, done.error().sqlstate,
                     std::string(m.name) + ": " + done.error().message};
    }
    if (*done) {
      log::info("applied migration " + std::string(m.name));
      ++count;
    }
  }
  auto parts = ensure_partitions(conn, current_utc_month(), 4);
  if (!parts) return parts.error();
  return count;
}

}  // namespace pgs::app
