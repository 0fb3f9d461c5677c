# shellcheck shell=bash
# shellcheck disable=SC2034  # read by bench/run.sh, which sources this file
# pgbench's default script (tpcb-like: three UPDATEs, a SELECT and an INSERT in one transaction), simple
# protocol, BENCH_CLIENTS (64) clients against a pool of 20 (the default of both proxies).
WORKLOAD_DESCRIPTION="pgbench default script (tpcb-like), simple protocol"
WORKLOAD_PGBENCH_ARGS=(-M simple)
