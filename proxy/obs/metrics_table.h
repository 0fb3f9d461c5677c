// Every metric pgsidecar exports, declared once (STYLE.md 11). The table generates the MetricId enum,
// the definitions used by the per-worker storage, the Prometheus exposition and the admin SHOW rows.
//
// Row: X(id, kind, unit, name, help, (label names...), (histogram bucket upper bounds...))
//  - kind: counter | gauge | histogram.
//  - unit: none | seconds | bytes. A name carries its unit ("_seconds", "_bytes"); counters end in
//    "_total" (checked by tests/obs/metrics_table_test.cc, and by `promtool check metrics`).
//  - labels: at most kMaxLabels names; values are interned at run time in a bounded SeriesRegistry.
//  - buckets: strictly increasing upper bounds in the metric's unit, at most kMaxBuckets; "+Inf" is
//    implicit. Empty for counters and gauges.
//  - Gauges are summed across shards (workers): a per-worker gauge (connections) adds up, and a gauge
//    with one writer (replica lag, set by the health monitor's shard) is that writer's value.
#pragma once

// Latency buckets in seconds: 100 µs .. 60 s, roughly x2.5 apart (Prometheus-style).
#define PGS_OBS_LATENCY_BUCKETS \
  (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

// Pool waits are usually zero or short; the queue timeout default is 120 s.
#define PGS_OBS_WAIT_BUCKETS \
  (0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 120)

#define PGS_OBS_METRICS(X)                                                                              \
  X(client_connections, gauge, none, "pgsidecar_client_connections",                                    \
    "Client connections by state (waiting = waiting for a server).", ("state"), ())                    \
  X(server_connections, gauge, none, "pgsidecar_server_connections",                                    \
    "Server connections by pool, role (primary/replica) and state.", ("pool", "role", "state"), ())     \
  X(pool_clients, gauge, none, "pgsidecar_pool_clients",                                                \
    "Logged-in clients by pool, node and state, as SHOW POOLS counts them (active = bound to a server "  \
    "or idle, waiting = queued for a server).", ("pool", "node", "state"), ())                          \
  X(pool_wait_seconds, histogram, seconds, "pgsidecar_pool_wait_seconds",                               \
    "Time a client waited for a server connection.", ("pool"), PGS_OBS_WAIT_BUCKETS)                    \
  X(query_duration_seconds, histogram, seconds, "pgsidecar_query_duration_seconds",                     \
    "Statement duration as seen by the proxy, by target (primary/replica/cache/admin).", ("target"),     \
    PGS_OBS_LATENCY_BUCKETS)                                                                            \
  X(transaction_duration_seconds, histogram, seconds, "pgsidecar_transaction_duration_seconds",         \
    "Transaction duration (first message to ReadyForQuery idle), by target.", ("target"),               \
    PGS_OBS_LATENCY_BUCKETS)                                                                            \
  X(queries_total, counter, none, "pgsidecar_queries_total", "Statements executed, by target.",          \
    ("target"), ())                                                                                     \
  X(errors_total, counter, none, "pgsidecar_errors_total",                                              \
    "ErrorResponses sent to clients, by SQLSTATE class (first two characters).", ("sqlstate_class"), ()) \
  X(client_bytes_received_total, counter, bytes, "pgsidecar_client_bytes_received_total",               \
    "Bytes received from clients.", (), ())                                                             \
  X(client_bytes_sent_total, counter, bytes, "pgsidecar_client_bytes_sent_total",                       \
    "Bytes sent to clients.", (), ())                                                                   \
  X(routing_decisions_total, counter, none, "pgsidecar_routing_decisions_total",                        \
    "Routing decisions, by target and reason.", ("target", "reason"), ())                               \
  X(cache_requests_total, counter, none, "pgsidecar_cache_requests_total",                              \
    "Result-cache lookups of cacheable statements, by TTL class and result (hit/miss).", ("class", "result"), ())        \
  X(cache_bypass_total, counter, none, "pgsidecar_cache_bypass_total",                                  \
    "Statements that skipped the result cache, by reason.", ("reason"), ())                             \
  X(cache_invalidations_total, counter, none, "pgsidecar_cache_invalidations_total",                    \
    "Table generation bumps that invalidated cached results, by TTL class.", ("class"), ())             \
  X(classifier_lookups_total, counter, none, "pgsidecar_classifier_lookups_total",                      \
    "Statements classified for routing, caching and session tracking, by result: hit (the same text "   \
    "was classified before), shape_hit (a text differing only in numeric constants was), parsed.",     \
    ("result"), ())                                                                                     \
  X(redis_errors_total, counter, none, "pgsidecar_redis_errors_total",                                  \
    "Redis commands that failed or timed out (each one was served as a cache miss).", (), ())           \
  X(redis_commands_total, counter, none, "pgsidecar_redis_commands_total",                              \
    "Redis commands the workers sent (lookups, stores, bumps, generation reads; not the invalidation "  \
    "stream's): the cache's Redis load per statement, with queries_total.", (), ())                     \
  X(cache_stores_total, counter, none, "pgsidecar_cache_stores_total",                                  \
    "Cache misses whose result was sent to Redis (stored) or could not be kept (skipped), by class.",   \
    ("class", "result"), ())                                                                            \
  X(cache_evictions_total, counter, none, "pgsidecar_cache_evictions_total",                            \
    "Cached results Redis evicted under maxmemory, by class (needs notify-keyspace-events Ee).",        \
    ("class"), ())                                                                                      \
  X(cache_waits_total, counter, none, "pgsidecar_cache_waits_total",                                    \
    "Misses that waited for an identical query in flight, by outcome (served, fell_through).",          \
    ("result"), ())                                                                                     \
  X(cache_corrupt_entries_total, counter, none, "pgsidecar_cache_corrupt_entries_total",                \
    "Values read from Redis that failed validation (served as misses).", (), ())                        \
  X(cache_catalog_reads_total, counter, none, "pgsidecar_cache_catalog_reads_total",                    \
    "Complete reads of the catalog: write dependencies and relations that run user code.", (), ()) \
  X(cache_stream_leader, gauge, none, "pgsidecar_cache_stream_leader",                                  \
    "1 while this sidecar leads the cache's invalidation stream (reads the primary's replication slots).", \
    (), ())                                                                                             \
  X(cache_stream_live, gauge, none, "pgsidecar_cache_stream_live",                                      \
    "1 while the invalidation stream is proven live (a leader's heartbeat); 0: every lookup misses.",   \
    (), ())                                                                                             \
  X(cache_stream_lag_bytes, gauge, bytes, "pgsidecar_cache_stream_lag_bytes",                           \
    "WAL the leader was sent and has not confirmed (its bumps are behind by this much); 0 elsewhere.",  \
    (), ())                                                                                             \
  X(cache_stream_transactions_total, counter, none, "pgsidecar_cache_stream_transactions_total",        \
    "Committed transactions this sidecar read from the stream while leading.", (), ())                 \
  X(cache_stream_bumped_tables_total, counter, none, "pgsidecar_cache_stream_bumped_tables_total",      \
    "Table generations this sidecar bumped for them.", (), ())                                          \
  X(cache_stream_leaderships_total, counter, none, "pgsidecar_cache_stream_leaderships_total",          \
    "Times this sidecar took the stream's lease.", (), ())                                              \
  X(cache_stream_errors_total, counter, none, "pgsidecar_cache_stream_errors_total",                    \
    "Stream failures: a slot that would not open or was lost, a bump Redis did not confirm, a lost lease.", \
    (), ())                                                                                             \
  X(cache_ready, gauge, none, "pgsidecar_cache_ready",                                                  \
    "1 when the cache is on and every worker's table generations are in sync with Redis.", (), ())      \
  X(replica_lag_bytes, gauge, bytes, "pgsidecar_replica_lag_bytes",                                     \
    "Replica replay lag behind the primary's WAL position.", ("replica"), ())                           \
  X(replica_lag_seconds, gauge, seconds, "pgsidecar_replica_lag_seconds",                               \
    "Replica replay lag in time (now - pg_last_xact_replay_timestamp()).", ("replica"), ())             \
  X(replica_healthy, gauge, none, "pgsidecar_replica_healthy",                                          \
    "1 if the replica is reachable and within the lag limit, else 0.", ("replica"), ())                 \
  X(pinned_clients, gauge, none, "pgsidecar_pinned_clients",                                            \
    "Clients pinned to their server connection, by reason (listen, advisory_lock, temp_table, ...).",   \
    ("reason"), ())                                                                                     \
  X(slow_queries_total, counter, none, "pgsidecar_slow_queries_total",                                  \
    "Statements slower than the slow-query threshold.", (), ())                                         \
  X(slow_log_dropped_total, counter, none, "pgsidecar_slow_log_dropped_total",                          \
    "Slow-query log lines dropped because the writer queue was full.", (), ())                          \
  X(config_reloads_total, counter, none, "pgsidecar_config_reloads_total",                              \
    "Configuration reloads, by result (ok/error).", ("result"), ())                                     \
  X(login_failures_total, counter, none, "pgsidecar_login_failures_total",                              \
    "Client logins refused, by reason.", ("reason"), ())                                                \
  X(protocol_errors_total, counter, none, "pgsidecar_protocol_errors_total",                            \
    "Connections closed for a protocol violation, by reason.", ("reason"), ())                          \
  X(clients_accepted_total, counter, none, "pgsidecar_clients_accepted_total",                          \
    "Client connections accepted, before any login (refused ones are in login_failures_total).", (), ()) \
  X(server_connects_total, counter, none, "pgsidecar_server_connects_total",                            \
    "Server connections the pools opened (to the primary and the replicas).", (), ())                  \
  X(server_connect_failures_total, counter, none, "pgsidecar_server_connect_failures_total",            \
    "Server connections that failed to connect or log in.", (), ())                                     \
  X(servers_failed_check_total, counter, none, "pgsidecar_servers_failed_check_total",                  \
    "Idle servers dropped when about to be handed out ([pool] server_check_delay): they had sent "       \
    "something (a FATAL) or closed.", (), ())                                                           \
  X(cancels_forwarded_total, counter, none, "pgsidecar_cancels_forwarded_total",                        \
    "CancelRequests sent on to a server (a client's, or the proxy's for a client that left).", (), ())  \
  X(auth_query_lookups_total, counter, none, "pgsidecar_auth_query_lookups_total",                      \
    "auth_query verifier requests of client logins, by result: cache_hit, joined (waited for another "  \
    "client's lookup), refused (too many in progress), and lookups run on the server: found, unknown "  \
    "(no usable SCRAM verifier: the login fails as a wrong password), failed (the lookup failed).",     \
    ("result"), ())                                                                                     \
  X(auth_query_cache_entries, gauge, none, "pgsidecar_auth_query_cache_entries",                        \
    "auth_query answers held in the workers' caches (summed; found and unknown alike, expired ones "   \
    "until replaced).", (), ())                                                                         \
  X(session_probes_total, counter, none, "pgsidecar_session_probes_total",                              \
    "Session-state probes run after a statement whose effect on the session could not be proven.",     \
    (), ())                                                                                             \
  X(lsn_probes_total, counter, none, "pgsidecar_lsn_probes_total",                                      \
    "Reads of the primary's WAL position after a transaction that may have written (read-your-writes "  \
    "floors, the cache's commit LSN), by when: with_request (sent behind its COMMIT, no extra round "    \
    "trip) or at_release (one round trip after it).",                                                   \
    ("when"), ())                                                                                       \
  X(replica_retries_total, counter, none, "pgsidecar_replica_retries_total",                            \
    "Reads re-run on the primary because their replica failed before answering.", (), ())              \
  X(metric_series_overflow_total, counter, none, "pgsidecar_metric_series_overflow_total",              \
    "Label sets folded into the \"other\" series because a metric reached its series limit.", (), ())   \
  X(uptime_seconds, gauge, seconds, "pgsidecar_uptime_seconds",                                         \
    "Seconds since the process started.", (), ())
