# shellcheck shell=bash
# shellcheck disable=SC2034  # read by bench/run.sh, which sources this file
# Select-only over the simple query protocol (one 'Q' message per statement).
WORKLOAD_DESCRIPTION="pgbench -S -M simple: select-only, simple protocol"
WORKLOAD_PGBENCH_ARGS=(-S -M simple)
