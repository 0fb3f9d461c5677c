# shellcheck shell=bash
# shellcheck disable=SC2034  # read by bench/run.sh, which sources this file
# A new connection (startup, SCRAM login, one select, terminate) per transaction: pgbench -C, in
# plaintext. The login cost of each target; compare with tls-churn for what TLS adds.
WORKLOAD_DESCRIPTION="pgbench -S -C -M simple: a new plaintext login per select"
WORKLOAD_PGBENCH_ARGS=(-S -C -M simple)
