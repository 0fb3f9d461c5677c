// Helpers for the end-to-end result-cache tests (issue 5): a proxy with the cache on, pointed at a
// Redis (the dev one with a per-test key prefix, or a private one), tables created for one test, and
// the number of times Postgres itself executed a statement (pg_stat_statements on the primary).
#pragma once

#include <string>

#include "tests/integration/harness.h"
#include "tests/support/redis_server.h"

namespace pgs::it::cache_proxy {

// A table `name` (public schema, owned by flopods) with rows (id, v) for id 1..rows, v = 'v<id>'.
void create_table(const std::string& name, int rows = 10);
void drop_table(const std::string& name);

// Options for a proxy with the cache on: Redis at `redis_port` with `prefix`, one class per entry of
// `classes` ("name:ttl:table"), one worker unless told otherwise.
ProxyOptions cache_options(uint16_t redis_port, const std::string& prefix, const std::vector<std::string>& classes,
                           int workers = 1);

// Waits (up to 10 s) until the proxy read the catalog once: before that it caches nothing (it does not
// know which tables have row-level security). False when it did not.
bool wait_catalog_read(const Proxy& p);

// Calls of every statement that mentions `needle`, as counted by pg_stat_statements on the primary.
long statement_calls(const std::string& needle);

// The [cache] keys of an invalidation stream on replication slot `slot` (the admin user, a 1 s bound).
std::string stream_toml(const std::string& slot);
// Row 1 of `table` (create_table) read through `c` until a read no longer reaches Postgres (cached), then
// written straight to the primary (v = 'direct'): "" once a read through `c` sees it within 5 s (the
// stream's bump reached the cache), else what went wrong ("row 1 was never cached", "still v1").
std::string direct_write_reaches(Pg& c, const std::string& table);
// Drops the replication slots named `slot`* that no sidecar holds any more.
void drop_stream_slots(const std::string& slot);

// "pgsc-e2e-<pid>-<counter>:": a Redis key prefix unique to one test.
std::string unique_prefix();

// redis_keys(port, prefix) and redis_delete_prefix(port, prefix) are tests/support/redis_server.h.

}  // namespace pgs::it::cache_proxy
