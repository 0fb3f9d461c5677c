# shellcheck shell=bash
# shellcheck disable=SC2034  # read by bench/run.sh, which sources this file
# The default workload: pgbench's built-in select-only script over the extended protocol
# (Parse/Bind/Describe/Execute/Sync per statement, unnamed statement). Smallest transactions, so the
# proxy's per-message cost dominates.
WORKLOAD_DESCRIPTION="pgbench -S -M extended: select-only, extended protocol"
WORKLOAD_PGBENCH_ARGS=(-S -M extended)
