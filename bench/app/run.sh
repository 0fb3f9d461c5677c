#!/usr/bin/env bash
# HTTP benchmark of flopods-api (issue 7): the same realistic mix (bench/app/mix.lua: 90% reads, 10%
# writes) against two app instances, one through pgsidecar (the running dev proxy on :6432, which
# routes reads to the replica with read-your-writes) and one straight to the primary (:15432), with wrk
# at several concurrencies. Rounds alternate the target order; the table shows per-target medians of
# req/s, p50, p95 and p99 over the rounds. Rate limits are off in both instances.
#
#   bench/app/run.sh      (needs ./dev up: Postgres, Redis, the proxy; and a built flopods-api)
#
# Environment: BENCH_APP_ROUNDS (3), BENCH_APP_SECONDS (15), BENCH_APP_WARMUP (3, 0 = none),
# BENCH_APP_CONCURRENCY ("16 64 256"), BENCH_APP_THREADS (wrk threads, 2), BENCH_APP_TARGETS
# ("pgsidecar direct"), BENCH_APP_USERS (seeded users used, 20), BENCH_APP_POOL (libpq connections per
# app instance, 16), BENCH_APP_IO_THREADS (2), FLOPODS_API_BIN (default $BUILD_DIR/app/flopods-api),
# BENCH_APP_PORT_BASE (18180: the instances listen on +1 pgsidecar, +2 direct), BENCH_APP_WRITES
# (percent of writes in the mix, 10; 0 = reads only).
# With pgsidecar as a target it also prints the proxy's routing decisions during the bench (deltas of
# pgsidecar_routing_decisions_total from :9930/metrics): how many reads the replica served, and how
# many went to the primary because the replica had not yet replayed the session's last write.
# Results: .dev/bench/app-<UTC time>/ (results.tsv, summary.txt, data.lua, wrk and app logs).
set -euo pipefail

BENCH_APP_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/lib.sh
source "$BENCH_APP_DIR/../../scripts/lib.sh"
# shellcheck source=scripts/postgres.sh
source "$PGS_ROOT/scripts/postgres.sh"
# shellcheck source=bench/app/lib.sh
source "$BENCH_APP_DIR/lib.sh"

ROUNDS="${BENCH_APP_ROUNDS:-3}"
SECONDS_PER_RUN="${BENCH_APP_SECONDS:-15}"
WARMUP="${BENCH_APP_WARMUP:-3}"
CONCURRENCY="${BENCH_APP_CONCURRENCY:-16 64 256}"
WRK_THREADS="${BENCH_APP_THREADS:-2}"
TARGETS="${BENCH_APP_TARGETS:-pgsidecar direct}"
USERS="${BENCH_APP_USERS:-20}"
POOL="${BENCH_APP_POOL:-16}"
IO_THREADS="${BENCH_APP_IO_THREADS:-2}"
API_BIN="${FLOPODS_API_BIN:-$BUILD_DIR/app/flopods-api}"
PORT_BASE="${BENCH_APP_PORT_BASE:-18180}"
WRITES="${BENCH_APP_WRITES:-10}"
DIRECT_DB="host=127.0.0.1 port=$PRIMARY_PORT dbname=$DB_NAME user=$DB_USER password=$DB_PASSWORD"
PROXY_DB="host=127.0.0.1 port=$PROXY_PORT dbname=$DB_NAME user=$DB_USER password=$DB_PASSWORD"
APP_PIDS=()

target_db() { if [[ $1 == pgsidecar ]]; then echo "$PROXY_DB"; else echo "$DIRECT_DB"; fi; }
target_port() { if [[ $1 == pgsidecar ]]; then echo $((PORT_BASE + 1)); else echo $((PORT_BASE + 2)); fi; }
proxy_answers() { PGPASSWORD="$DB_PASSWORD" "$PG_BIN/psql" -X -At -h 127.0.0.1 -p "$PROXY_PORT" -U "$DB_USER" -d "$DB_NAME" -c 'SELECT 1' >/dev/null 2>&1; }

check_prerequisites() {
  command -v wrk >/dev/null || die "wrk is not installed"
  [[ -x "$API_BIN" ]] || die "flopods-api not built at $API_BIN (set FLOPODS_API_BIN)"
  [[ " $TARGETS " != *" pgsidecar "* ]] || proxy_answers ||
    die "pgsidecar does not answer on :$PROXY_PORT (./dev up), or drop it from BENCH_APP_TARGETS"
}

start_apps() {
  local t
  for t in $TARGETS; do start_app "$t" "$(target_port "$t")" "$(target_db "$t")"; done
}

# run_wrk TARGET CONNECTIONS SECONDS LOG: prints the RESULT fields of mix.lua's done().
run_wrk() {
  local t="$1" c="$2" s="$3" logfile="$4" threads="$WRK_THREADS"
  ((threads <= c)) || threads="$c"
  FLOPODS_BENCH_DATA="$OUT/data.lua" FLOPODS_BENCH_WRITES="$WRITES" wrk -t "$threads" -c "$c" -d "${s}s" --timeout 10s \
    -s "$BENCH_APP_DIR/mix.lua" "http://127.0.0.1:$(target_port "$t")" >"$logfile" 2>&1 || return 1
  awk '$1 == "RESULT" { $1 = ""; print substr($0, 2) }' "$logfile"
}

run_all() {
  local targets round c i n line
  read -ra targets <<<"$TARGETS"
  n=${#targets[@]}
  if ((WARMUP > 0)); then
    for t in "${targets[@]}"; do run_wrk "$t" 64 "$WARMUP" "$OUT/warmup-$t.log" >/dev/null || warn "warm-up of $t failed"; done
  fi
  for ((round = 1; round <= ROUNDS; round++)); do
    for c in $CONCURRENCY; do
      for ((i = 0; i < n; i++)); do
        t="${targets[$(((i + round - 1) % n))]}"
        line="$(run_wrk "$t" "$c" "$SECONDS_PER_RUN" "$OUT/wrk-$t-c$c-r$round.log")" ||
          die "wrk failed; see $OUT/wrk-$t-c$c-r$round.log"
        [[ -n "$line" ]] || die "no RESULT line; see $OUT/wrk-$t-c$c-r$round.log"
        printf '%s\t%s\t%s\t%s\n' "$t" "$c" "$round" "${line// /$'\t'}" >>"$OUT/results.tsv"
        log "round $round, $c connections, $t: $line"
      done
    done
  done
}

# routing_decisions: "target reason count" lines of the proxy's routing counters (none if unreachable).
routing_decisions() {
  curl -s -m 2 "http://127.0.0.1:$METRICS_PORT/metrics" 2>/dev/null |
    sed -n 's/^pgsidecar_routing_decisions_total{target="\([a-z_]*\)",reason="\([a-z_]*\)"} \([0-9.e+]*\)$/\1 \2 \3/p'
}

# routing_report BEFORE AFTER: the deltas, one line per (target, reason).
routing_report() {
  printf 'pgsidecar routing decisions during the bench (delta of pgsidecar_routing_decisions_total):\n'
  awk 'NR == FNR { before[$1 " " $2] = $3; next } { printf "  %-8s %-14s %d\n", $1, $2, $3 - before[$1 " " $2] }' \
    <(printf '%s\n' "$1") <(printf '%s\n' "$2")
}

main() {
  raise_nofile
  check_prerequisites
  OUT="$DEV_DIR/bench/app-$(date -u +%Y%m%dT%H%M%SZ)"
  mkdir -p "$OUT"
  : >"$OUT/results.tsv"
  trap stop_apps EXIT
  log "results in $OUT ($ROUNDS rounds x ${SECONDS_PER_RUN}s, connections: $CONCURRENCY, targets: $TARGETS)"
  prepare_data
  start_apps
  local routing_before
  routing_before="$(routing_decisions)"
  run_all
  {
    printf 'flopods-api bench %s, commit %s, %s cores, %s rounds x %ss, wrk -t %s, app --pool %s --threads %s\n' \
      "$(date -u +%FT%TZ)" "$(git -C "$PGS_ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')" "$(nproc)" \
      "$ROUNDS" "$SECONDS_PER_RUN" "$WRK_THREADS" "$POOL" "$IO_THREADS"
    printf 'mix: %s%% reads (workspace, flows list, flow+pods, unread notifications, search), %s%% writes (PATCH flow, POST execution)\n' \
      "$((100 - WRITES))" "$WRITES"
    awk -F'\t' -f "$BENCH_APP_DIR/report.awk" "$OUT/results.tsv"
    if [[ " $TARGETS " == *" pgsidecar "* ]]; then routing_report "$routing_before" "$(routing_decisions)"; fi
  } | tee "$OUT/summary.txt"
  ln -sfn "$OUT" "$DEV_DIR/bench/app-latest"
}

main "$@"
