#!/usr/bin/env bash
# Side-by-side benchmark: pgsidecar (:6432) vs PgBouncer (:16432) vs direct Postgres (:15432).
# pgbench, 64 clients, -j 2, ~20 s per run, rounds interleaved (A B C, B C A, C A B), medians of
# per-round ratios, and the CPU time each proxy spent per transaction.
#
# Environment: BENCH_ROUNDS (3), BENCH_SECONDS (20), BENCH_WARMUP (3, 0 = none), BENCH_BACKEND_WARMUP (10,
# 0 = none: select-only through each pooler first, see warm_backends), BENCH_CLIENTS (64),
# BENCH_THREADS (2), BENCH_SCALE (10), BENCH_WORKLOADS ("select-extended"; names of
# bench/workloads/*.sh), BENCH_TARGETS ("pgsidecar pgbouncer direct"; also "replica", and
# "pgsidecar-plain": a second pgsidecar process of the same build and config without replicas and cache),
# BENCH_SERVER_TLS ("disable": both poolers talk to the servers in plaintext; "config": pgsidecar as
# conf/pgsidecar.toml says, verify-full in dev, and PgBouncer verify-full with the dev CA too). Workloads present: select-extended,
# select-simple, select-prepared, select-replica, read-heavy, cache-workspaces, cache-hotkey, tpcb-like (pgbench's default
# script), connect-churn and tls-churn (a new login per transaction, in plaintext or over TLS), idle-clients (proxy memory with BENCH_IDLE_CLIENTS idle logged-in clients; see its file). BENCH_SERVICES=running
# uses the Postgres and Redis already running (started by another checkout) instead of `./dev services`;
# with PGS_PG_STATE_DIR pointing at that checkout's .dev (for the Unix sockets).
# Before each workload's warm-up the backends of the bench user are ended, so that every pooler's server
# connections are of one age (bench/lib.sh fresh_server_connections: a new backend costs Postgres more).
# Results: .dev/bench/<UTC time>/ (results.tsv, summary.txt, one pgbench log per run; a workload's own
# report, such as read-heavy's per-node counts, goes to <workload>.report and the end of summary.txt).
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/lib.sh
source "$BENCH_DIR/../scripts/lib.sh"
for part in postgres process sidecars proxy app pgbouncer; do
  # shellcheck source=/dev/null
  source "$PGS_ROOT/scripts/$part.sh"
done
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"

BENCH_ROUNDS="${BENCH_ROUNDS:-3}"
BENCH_WORKLOADS="${BENCH_WORKLOADS:-select-extended}"
BENCH_TARGETS="${BENCH_TARGETS:-pgsidecar pgbouncer direct}"
PGBOUNCER_STARTED_HERE=0

available_workloads() {
  local f
  for f in "$BENCH_DIR"/workloads/*.sh; do basename "$f" .sh; done | tr '\n' ' '
}

# load_workload NAME: defines WORKLOAD_DESCRIPTION, WORKLOAD_PGBENCH_ARGS, WORKLOAD_TARGETS and
# optionally WORKLOAD_PGSSLMODE (pgbench's sslmode; default disable) and workload_prepare (run once before the workload; non-zero = skip it), workload_before_run
# (run before each measured run, outside its window: the same for every target), workload_finish
# (run once after its rounds; what it prints to stdout is kept in $BENCH_OUT/NAME.report) and
# workload_custom (called with the targets instead of the pgbench rounds; it starts what it needs, and
# its stdout is the report: idle-clients).
load_workload() {
  local file="$BENCH_DIR/workloads/$1.sh"
  [[ -f "$file" ]] || die "no workload $1 (have: $(available_workloads))"
  WORKLOAD_DESCRIPTION="$1"
  WORKLOAD_PGBENCH_ARGS=()
  WORKLOAD_TARGETS=()
  WORKLOAD_PGSSLMODE=""
  unset -f workload_prepare workload_before_run workload_finish workload_custom
  # shellcheck source=/dev/null
  source "$file"
}

# workload_targets: BENCH_TARGETS, restricted to the workload's own list when it has one.
workload_targets() {
  local t
  for t in $BENCH_TARGETS; do
    if ((${#WORKLOAD_TARGETS[@]} == 0)) || [[ " ${WORKLOAD_TARGETS[*]} " == *" $t "* ]]; then
      echo "$t"
    fi
  done
}

start_targets() {
  local t
  for t in "$@"; do
    if [[ $t == pgbouncer ]] && ! pid_alive "$PGBOUNCER_PIDFILE"; then PGBOUNCER_STARTED_HERE=1; fi
    target_start "$t"
  done
}

# warm_backends TARGET...: select-only through every pooler target for BENCH_BACKEND_WARMUP seconds at the
# workload's client count, after fresh_server_connections, so that each pooler's new backends have mapped
# most of the shared buffers before anything is measured (on the dev VM a page fault is costly enough that
# a new backend's first few thousand selects cost Postgres up to twice the CPU of its later ones: 138, 88,
# then 75 us per transaction in three 5 s runs at 16 clients). Direct has new backends in every run by
# nature, and is not warmed.
warm_backends() {
  ((BENCH_BACKEND_WARMUP > 0)) || return 0
  local t
  for t in "$@"; do
    case "$t" in
      pgsidecar | pgsidecar-plain | pgbouncer) ;;
      *) continue ;;
    esac
    log "backend warm-up ${BENCH_BACKEND_WARMUP}s (select-only): $t"
    pgbench_run "$(target_port "$t")" "$BENCH_BACKEND_WARMUP" "$BENCH_OUT/backend-warmup-$t.log" -S -M simple ||
      warn "backend warm-up against $t failed; see $BENCH_OUT/backend-warmup-$t.log"
  done
}

warm_up() {
  ((BENCH_WARMUP > 0)) || return 0
  local t
  for t in "$@"; do
    log "warm-up ${BENCH_WARMUP}s: $t"
    pgbench_run "$(target_port "$t")" "$BENCH_WARMUP" "$BENCH_OUT/warmup-$t.log" "${WORKLOAD_PGBENCH_ARGS[@]}" ||
      warn "warm-up against $t failed; see $BENCH_OUT/warmup-$t.log"
  done
}

# run_workload NAME: every round runs each target once, the order rotated by one per round.
run_workload() {
  local name="$1" targets round i n
  load_workload "$name"
  if declare -F workload_prepare >/dev/null && ! workload_prepare; then
    warn "workload $name: not prepared; skipped"
    return 0
  fi
  mapfile -t targets < <(workload_targets)
  n=${#targets[@]}
  ((n > 0)) || { warn "workload $name: no target left of \"$BENCH_TARGETS\"; skipped"; return 0; }
  log "workload $name: $WORKLOAD_DESCRIPTION; targets: ${targets[*]}"
  if declare -F workload_custom >/dev/null; then
    # It runs in a subshell (piped): what it starts must be known here to be stopped at the end.
    if [[ " ${targets[*]} " == *" pgbouncer "* ]]; then PGBOUNCER_STARTED_HERE=1; fi
    workload_custom "${targets[@]}" | tee "$BENCH_OUT/$name.report" >&2
    return 0
  fi
  start_targets "${targets[@]}"
  fresh_server_connections "$DB_USER" "$DB_NAME"
  warm_backends "${targets[@]}"
  warm_up "${targets[@]}"
  for ((round = 1; round <= BENCH_ROUNDS; round++)); do
    for ((i = 0; i < n; i++)); do
      if declare -F workload_before_run >/dev/null; then workload_before_run; fi
      run_one "$name" "$round" "$((i + 1))" "${targets[$(((i + round - 1) % n))]}"
    done
  done
  if declare -F workload_finish >/dev/null; then workload_finish | tee "$BENCH_OUT/$name.report" >&2; fi
}

bench_header() {
  printf 'pgsidecar bench %s, commit %s, %s cores, %s rounds x %ss, %s clients, -j %s, scale %s\n' \
    "$(date -u +%FT%TZ)" "$(git -C "$PGS_ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')" "$(nproc)" \
    "$BENCH_ROUNDS" "$BENCH_SECONDS" "$BENCH_CLIENTS" "$BENCH_THREADS" "$BENCH_SCALE"
  printf 'cpu us/txn = (utime+stime of the proxy process during the run) / transactions\n'
}

cleanup() {
  idle_proxy_stop
  plain_proxy_stop
  if ((PGBOUNCER_STARTED_HERE)); then pgbouncer_down; fi
}

main() {
  [[ $EUID -eq 0 ]] || die "bench/run.sh must run as root (it starts PgBouncer as the postgres OS user)"
  export PGSSLMODE=disable
  raise_nofile
  if [[ "${BENCH_SERVICES:-}" == running ]]; then
    log "BENCH_SERVICES=running: using the primary :$PRIMARY_PORT, replica :$REPLICA_PORT and Redis as they are"
    # Without their sockets every superuser check fails, and pgbench_init would re-create the tables.
    [[ -S "$PG_SOCK_DIR/.s.PGSQL.$PRIMARY_PORT" ]] ||
      die "BENCH_SERVICES=running: no socket of the primary in $PG_SOCK_DIR; set PGS_PG_STATE_DIR to the state dir of the checkout that runs them (e.g. /work/main/.dev)"
    mkdir -p "$LOG_DIR" "$RUN_DIR"  # for the proxy this checkout starts
  else
    "$PGS_ROOT/dev" services
  fi
  BENCH_OUT="$DEV_DIR/bench/$(date -u +%Y%m%dT%H%M%SZ)"
  mkdir -p "$BENCH_OUT"
  : >"$BENCH_OUT/results.tsv"
  : >"$BENCH_OUT/stream.tsv"
  : >"$BENCH_OUT/threads.tsv"
  trap cleanup EXIT
  bench_server_tls
  log "results in $BENCH_OUT ($BENCH_ROUNDS rounds x ${BENCH_SECONDS}s, $BENCH_CLIENTS clients, -j $BENCH_THREADS)"
  pgbench_init
  local w
  for w in $BENCH_WORKLOADS; do run_workload "$w"; done
  {
    bench_header
    awk -F'\t' -f "$BENCH_DIR/report.awk" "$BENCH_OUT/results.tsv"
    if [[ -s "$BENCH_OUT/stream.tsv" ]]; then
      printf '\ninvalidation stream on the primary, during the pgsidecar runs (walsender CPU per transaction; WAL its slots kept at the end of each run)\n'
      sort -t$'\t' -k1,1 -k3,3n "$BENCH_OUT/stream.tsv" | awk -F'\t' '
        { w[$1] = w[$1] " " $3; if ($4 > kept[$1]) kept[$1] = $4 }
        END { for (k in w) printf "  %-18s walsender us/txn:%s  max WAL kept %d bytes\n", k, w[k], kept[k] }'
    fi
    if [[ -s "$BENCH_OUT/threads.tsv" ]]; then
      printf '\npgsidecar cpu us/txn per thread (median over rounds)\n'
      awk -F'\t' -f "$BENCH_DIR/threads.awk" "$BENCH_OUT/threads.tsv"
    fi
    local report
    for report in "$BENCH_OUT"/*.report; do
      if [[ -f "$report" ]]; then printf '\n== %s ==\n%s\n' "$(basename "$report" .report)" "$(cat "$report")"; fi
    done
  } | tee "$BENCH_OUT/summary.txt"
  ln -sfn "$BENCH_OUT" "$DEV_DIR/bench/latest"
  if awk -F'\t' '$9 != "ok" { bad = 1 } END { exit !bad }' "$BENCH_OUT/results.tsv"; then
    die "some runs failed (see above)"
  fi
}

main "$@"
