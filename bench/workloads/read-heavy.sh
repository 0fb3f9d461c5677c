# shellcheck shell=bash
# shellcheck disable=SC2034  # read by bench/run.sh, which sources this file
# Read-heavy mix through pgsidecar with read/write routing: pgbench's select-only script with weight
# READ_HEAVY_READS (19) and simple-update with weight READ_HEAVY_WRITES (1; 0 = reads only),
# -M extended. It shows where the reads ran: pg_stat_statements call counts of pgbench's
# "SELECT abalance FROM pgbench_accounts WHERE aid = $1" on the primary and on the replica, taken
# before the workload and reported when bench/run.sh exits (also in $BENCH_OUT/read-heavy-nodes.txt).
# Counts are deltas (nothing is reset), so other traffic on the dev servers at the same time is
# included. Under routing.consistency = "session" every pgbench client is the same (database, user),
# so each write raises the read-your-writes floor for all of them: with writes in the mix, expect a
# share of the reads on the primary; with READ_HEAVY_WRITES=0, expect nearly all on the replica.
#
#   bench/workloads/read-heavy.sh             runs bench/run.sh with this workload against pgsidecar
#   BENCH_WORKLOADS=read-heavy bench/run.sh   the same, inside a larger run
WORKLOAD_DESCRIPTION="select-only@${READ_HEAVY_READS:-19} + simple-update@${READ_HEAVY_WRITES:-1}, -M extended, reads routed to the replica"
WORKLOAD_TARGETS=(pgsidecar)
WORKLOAD_PGBENCH_ARGS=(-M extended -b "select-only@${READ_HEAVY_READS:-19}")
if ((${READ_HEAVY_WRITES:-1} > 0)); then WORKLOAD_PGBENCH_ARGS+=(-b "simple-update@${READ_HEAVY_WRITES:-1}"); fi

# shellcheck disable=SC2016  # $1 is pg_stat_statements' placeholder, not a shell variable
READ_HEAVY_SELECT='SELECT abalance FROM pgbench_accounts WHERE aid = $1'
# shellcheck disable=SC2016
READ_HEAVY_UPDATE='UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2'

# read_heavy_calls PORT QUERY: pg_stat_statements calls of exactly QUERY (normalised text) on a node.
read_heavy_calls() {
  # psql interpolates :'q' (quoted safely) only in input it reads, not in -c.
  psql_local "$1" "$DB_NAME" -At -v q="$2" 2>/dev/null \
    <<<"SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE query = :'q';" || echo "?"
}

read_heavy_snapshot() {
  printf '%s %s %s\n' "$(read_heavy_calls "$PRIMARY_PORT" "$READ_HEAVY_SELECT")" \
    "$(read_heavy_calls "$REPLICA_PORT" "$READ_HEAVY_SELECT")" \
    "$(read_heavy_calls "$PRIMARY_PORT" "$READ_HEAVY_UPDATE")"
}

# read_heavy_report: per-node deltas since workload_prepare, to stderr and read-heavy-nodes.txt.
read_heavy_report() {
  local p0 r0 u0 p1 r1 u1
  read -r p0 r0 u0 <<<"$READ_HEAVY_BASELINE"
  read -r p1 r1 u1 <<<"$(read_heavy_snapshot)"
  if [[ "$p0$r0$u0$p1$r1$u1" == *"?"* ]]; then
    warn "read-heavy: pg_stat_statements unreadable; no per-node counts"
    return 0
  fi
  local primary=$((p1 - p0)) replica=$((r1 - r0)) updates=$((u1 - u0))
  local share
  share="$(awk -v p="$primary" -v r="$replica" 'BEGIN { printf "%.1f", (p + r) ? 100 * r / (p + r) : 0 }')"
  printf 'read-heavy per node (pg_stat_statements deltas):\n  reads on primary: %s\n  reads on replica: %s (%s%%)\n  updates on primary: %s\n' \
    "$primary" "$replica" "$share" "$updates" | tee "$BENCH_OUT/read-heavy-nodes.txt" >&2
}

# workload_prepare: needs pg_stat_statements on both nodes; records the baseline and reports at exit
# (chained in front of bench/run.sh's own EXIT trap, which is `cleanup`).
workload_prepare() {
  READ_HEAVY_BASELINE="$(read_heavy_snapshot)"
  if [[ "$READ_HEAVY_BASELINE" == *"?"* ]]; then
    warn "read-heavy: pg_stat_statements unreadable on the primary or the replica"
    return 1
  fi
  trap 'read_heavy_report; cleanup' EXIT
}

# Run directly: this workload only, against pgsidecar.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  BENCH_WORKLOADS=read-heavy BENCH_TARGETS=pgsidecar exec "$(dirname "$0")/../run.sh" "$@"
fi
