# shellcheck shell=bash
# shellcheck disable=SC2034  # read by bench/run.sh, which sources this file
# Read-only traffic that pgsidecar may route to the streaming replica (no writes, so session
# consistency allows it), against the replica directly as the baseline: the pgsidecar/replica ratio.
WORKLOAD_DESCRIPTION="pgbench -S -M extended, pgsidecar (read routing) vs the replica directly"
WORKLOAD_PGBENCH_ARGS=(-S -M extended)
WORKLOAD_TARGETS=(pgsidecar replica)
