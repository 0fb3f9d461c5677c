# shellcheck shell=bash
# shellcheck disable=SC2034  # read by bench/run.sh, which sources this file
# Memory of idle clients (issue 11): BENCH_IDLE_CLIENTS (10000) clients log in (SCRAM) through the proxy
# and stay idle; the proxy's RSS is read before they connect, while they are all logged in, and
# BENCH_IDLE_SETTLE (3) seconds after the last one left. pgsidecar runs as a process of its own,
# started from this checkout's build on BENCH_IDLE_PROXY_PORT (16532; metrics on
# BENCH_IDLE_METRICS_PORT, 19932) with the proxy config, so that the figures are this build's and
# start from a fresh process; PgBouncer is restarted (a fresh process too) with max_client_conn raised
# to fit, and stopped at the end. The clients are one
# asyncio process (bench/idle_clients.py). No pgbench rounds: the figures are in idle-clients.report.
#
#   BENCH_WORKLOADS=idle-clients bench/run.sh
WORKLOAD_DESCRIPTION="${BENCH_IDLE_CLIENTS:-10000} idle logged-in clients: proxy RSS before, with them, after they left"
WORKLOAD_TARGETS=(pgsidecar pgbouncer)

# workload_custom TARGETS...: replaces the pgbench rounds; stdout is the report.
workload_custom() {
  local t
  trap idle_proxy_stop EXIT  # a subshell (its output is piped): stop our proxy on any exit
  idle_report_header
  for t in "$@"; do idle_clients_measure "$t"; done
}
