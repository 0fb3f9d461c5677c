#include "tests/session/session_util.h"

#include <stdexcept>

namespace pgs::it::session {

ProxyOptions small_pool(int pool_size, const std::string& query_wait_timeout) {
  ProxyOptions o;
  o.pool_size = pool_size;
  o.workers = 1;
  o.query_wait_timeout = query_wait_timeout;
  return o;
}

int backend_pid(Pg& c) { return std::stoi(c.scalar("SELECT pg_backend_pid()")); }

Pg connect(const ConnSpec& spec) {
  Pg c(spec);
  if (!c.ok()) throw std::runtime_error("connect failed: " + c.error());
  return c;
}

std::string sqlstate_of(Pg& c, const std::string& sql) {
  PgResult r = c.exec(sql);
  return r.ok() ? "" : r.sqlstate();
}

bool wait_backend_gone(int pid, Millis deadline) {
  Pg su = superuser();
  return wait_until(
      [&] {
        return su.scalar("SELECT count(*) FROM pg_stat_activity WHERE pid = " +
                         std::to_string(pid)) == "0";
      },
      deadline, Millis(50));
}

int advisory_lock_rows(long key) {
  Pg su = superuser();
  // A one-bigint advisory key is stored as classid = high 32 bits, objid = low 32 bits, objsubid 1.
  return std::stoi(su.scalar(
      "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1 AND objid = " +
      std::to_string(key & 0xffffffffL) + " AND classid = " + std::to_string(key >> 32)));
}

}  // namespace pgs::it::session
