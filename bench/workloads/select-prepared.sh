# shellcheck shell=bash
# shellcheck disable=SC2034  # read by bench/run.sh, which sources this file
# Select-only with named prepared statements (-M prepared). Not in the default list: PgBouncer 1.18
# (Debian 12) cannot carry named prepared statements in transaction mode, so it is left out.
WORKLOAD_DESCRIPTION="pgbench -S -M prepared: select-only, named prepared statements"
WORKLOAD_PGBENCH_ARGS=(-S -M prepared)
WORKLOAD_TARGETS=(pgsidecar direct)
