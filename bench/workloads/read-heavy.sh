# shellcheck shell=bash
# shellcheck disable=SC2034  # read by bench/run.sh, which sources this file
# Read-heavy mix through pgsidecar with read/write routing: pgbench's select-only script with weight
# READ_HEAVY_READS (19) and simple-update with weight READ_HEAVY_WRITES (1; 0 = reads only),
# -M extended. It shows where the reads ran: pg_stat_statements call counts of pgbench's
# "SELECT abalance FROM pgbench_accounts WHERE aid = $1" on the primary and on the replica, and the
# proxy's routing decisions by reason, as deltas over the workload (warm-up included); printed after
# its rounds and kept in $BENCH_OUT/read-heavy.report and summary.txt. Nothing is reset, so other
# traffic on the dev servers at the same time is included. A pgbench transaction is one request here,
# so each is one routing decision. The proxy runs the dev config (conf/pgsidecar.toml): consistency =
# "session" with read_your_writes = "user", so every pgbench client (one database, one user) shares one
# floor and each commit of an update holds everyone's reads on the primary until the replica replayed
# it (reason lsn_floor): with writes in the mix expect a good share of the reads on the primary; with
# READ_HEAVY_WRITES=0 nearly all go to the replica. With read_your_writes = "client" only the writing
# client waits.
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

# read_heavy_decisions: "target reason count" lines of the proxy's routing counters (none if unreachable:
# before bench/run.sh starts the proxy, which then counts from 0).
read_heavy_decisions() {
  local page
  page="$(curl -s -m 2 "http://127.0.0.1:$METRICS_PORT/metrics" 2>/dev/null)" || return 0
  sed -n 's/^pgsidecar_routing_decisions_total{target="\([a-z_]*\)",reason="\([a-z_]*\)"} \([0-9.e+]*\)$/\1 \2 \3/p' <<<"$page"
}

# workload_finish (after the rounds; bench/run.sh keeps its output in read-heavy.report and
# summary.txt): TPS per round, then where the reads ran — pg_stat_statements deltas per node — and why,
# from the proxy's routing decisions (deltas of pgsidecar_routing_decisions_total).
workload_finish() {
  local p0 r0 u0 p1 r1 u1
  printf 'pgsidecar tps per round (read-heavy):'
  awk -F'\t' '$1 == "read-heavy" && $4 == "pgsidecar" { printf " %s%s", $5, ($9 == "ok" ? "" : " (FAILED)") }' \
    "$BENCH_OUT/results.tsv"
  printf '\n'
  read -r p0 r0 u0 <<<"$READ_HEAVY_BASELINE"
  read -r p1 r1 u1 <<<"$(read_heavy_snapshot)"
  if [[ "$p0$r0$u0$p1$r1$u1" == *"?"* ]]; then
    printf 'per-node counts: pg_stat_statements unreadable\n'
  else
    local primary=$((p1 - p0)) replica=$((r1 - r0)) updates=$((u1 - u0))
    printf 'queries per node (pg_stat_statements deltas over warm-up and rounds):\n'
    printf '  %-8s %12s %12s\n' node reads updates
    printf '  %-8s %12s %12s\n' primary "$primary" "$updates" replica "$replica" 0
    printf '  replica share of reads: %s%%\n' \
      "$(awk -v p="$primary" -v r="$replica" 'BEGIN { printf "%.1f", (p + r) ? 100 * r / (p + r) : 0 }')"
  fi
  printf 'routing decisions (delta of pgsidecar_routing_decisions_total; one per transaction):\n'
  awk 'NR == FNR { before[$1 " " $2] = $3; next }
       { n = $3 - before[$1 " " $2]; if (n > 0) printf "  %-8s %-16s %d\n", $1, $2, n }' \
    <(printf '%s\n' "$READ_HEAVY_DECISIONS") <(read_heavy_decisions)
}

# workload_prepare: needs pg_stat_statements on both nodes; records the baselines.
workload_prepare() {
  READ_HEAVY_BASELINE="$(read_heavy_snapshot)"
  if [[ "$READ_HEAVY_BASELINE" == *"?"* ]]; then
    warn "read-heavy: pg_stat_statements unreadable on the primary or the replica"
    return 1
  fi
  READ_HEAVY_DECISIONS="$(read_heavy_decisions)"
}

# Run directly: this workload only, against pgsidecar.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  BENCH_WORKLOADS=read-heavy BENCH_TARGETS=pgsidecar exec "$(dirname "$0")/../run.sh" "$@"
fi
