// Helpers shared by the issue-3 session tests: small pools on one worker (so which server a client
// gets is deterministic), backend pids, SQLSTATE assertions, holding a server in an open transaction.
#pragma once

#include <string>

#include "tests/integration/harness.h"

namespace pgs::it::session {

// A transaction pool of `pool_size` server connections on ONE worker (pools are per worker), with a
// short query_wait_timeout so a client that cannot get a server gets 57014 quickly instead of hanging.
ProxyOptions small_pool(int pool_size, const std::string& query_wait_timeout = "2s");

// pg_backend_pid() of the server connection the client's next statement runs on.
int backend_pid(Pg& c);

// Connects (throws with libpq's message when it fails).
Pg connect(const ConnSpec& spec);

// The SQLSTATE a statement failed with, "" when it succeeded.
std::string sqlstate_of(Pg& c, const std::string& sql);

// True when a backend with this pid is gone from pg_stat_activity within `deadline`.
bool wait_backend_gone(int pid, Millis deadline);

// Rows in pg_locks (on the primary) for the session advisory lock `key` (one bigint key).
int advisory_lock_rows(long key);

// /metrics: scrape_metrics(proxy) (tests/integration/harness.h) and metric_value(page, name, labels)
// (tests/support/metrics.h).

}  // namespace pgs::it::session
