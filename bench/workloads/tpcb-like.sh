# shellcheck shell=bash
# shellcheck disable=SC2034  # read by bench/run.sh, which sources this file
# pgbench's default script (tpcb-like: three UPDATEs, a SELECT and an INSERT in one transaction), simple
# protocol, BENCH_CLIENTS (64) clients against a pool of 20 (the default of both proxies).
WORKLOAD_DESCRIPTION="pgbench default script (tpcb-like), simple protocol"
WORKLOAD_PGBENCH_ARGS=(-M simple)

# Before each run, what pgbench itself does unless told -n (the bench passes -n: its connection may be a
# proxy): vacuum the tables the script updates and empty pgbench_history; then a CHECKPOINT. So every
# run, whichever target it measures, starts from the same state: otherwise the dead rows of the runs
# before pile up until an autovacuum, and the timed checkpoint (with its full-page writes after it), land
# inside whichever run comes next, and that target alone pays for them. About a second, on the primary
# over its socket, outside the measured window.
workload_before_run() {
  psql_local "$PRIMARY_PORT" "$DB_NAME" -c "VACUUM pgbench_accounts, pgbench_branches, pgbench_tellers" \
    -c "TRUNCATE pgbench_history" -c "CHECKPOINT" >/dev/null ||
    warn "tpcb-like: the vacuum and checkpoint before a run failed; that run may meet them"
}
