# shellcheck shell=bash
# shellcheck disable=SC2034  # read by bench/run.sh, which sources this file
# Many sidecars (issue 13 item 6): the app's HTTP load (bench/app/mix.lua: 90% reads, 10% writes) split
# evenly over every sidecar that `./dev up --sidecars N` runs, each through an app instance of its own,
# all at once; and what each sidecar costs. The sidecars are found from ./dev's pid files, so run the
# bench with the same PGS_DEV_DIR and PGS_*_PORT environment as ./dev up. The bench starts its own
# flopods-api per sidecar (rate limits off, as bench/app/run.sh does; ./dev's own instances keep
# theirs and stay idle) on BENCH_SIDECARS_APP_PORT + i, and one wrk per app instance.
#
#   ./dev up --sidecars 3
#   BENCH_WORKLOADS=sidecars BENCH_TARGETS=pgsidecar BENCH_SECONDS=8 bench/run.sh
#
# Per sidecar, over BENCH_ROUNDS rounds of BENCH_SECONDS (after a BENCH_WARMUP), from the deltas of its
# /metrics and /proc: wrk connections and the app's libpq connections to it (clients), HTTP requests/s,
# statements and transactions per request (pgsidecar_queries_total, the count of
# pgsidecar_transaction_duration_seconds), cache hit ratio, Redis commands per request and per second
# (pgsidecar_redis_commands_total), CPU µs of the proxy and of its app per request, the statements per
# second the primary (replica) ran, their mean duration and so the connections busy on average (Little's
# law), the server connections bound on average (pgsidecar_transaction_duration_seconds), and those it
# holds at the end (pgsidecar_server_connections, by role). The fleet's line adds them up.
# Environment: BENCH_CLIENTS (wrk connections in all, 64), BENCH_SIDECARS_APP_PORT (18280),
# BENCH_APP_POOL (libpq connections per app instance, 16), BENCH_APP_IO_THREADS (1), BENCH_APP_WRITES
# (10), BENCH_APP_USERS (20). Rows: $BENCH_OUT/sidecars.tsv; report: sidecars.report and summary.txt.
WORKLOAD_DESCRIPTION="the app's mix split over every running sidecar, each through its own app instance"
WORKLOAD_TARGETS=(pgsidecar)
# shellcheck source=bench/app/lib.sh
source "$BENCH_DIR/app/lib.sh"

SIDECARS_APP_PORT="${BENCH_SIDECARS_APP_PORT:-18280}"

# sidecars_metrics_line I: "queries transactions redis_commands hits misses servers_primary
# servers_replica clients primary_statements primary_statement_us replica_statements replica_statement_us
# bound_transactions bound_us" from sidecar I's /metrics. Statements by target come from
# pgsidecar_query_duration_seconds; bound transactions (a server held, primary or replica, from the first
# message to the release) from pgsidecar_transaction_duration_seconds, whose target label says "primary"
# for every one of them.
sidecars_metrics_line() {
  curl -s -m 2 "http://127.0.0.1:$(sidecar_metrics_port "$1")/metrics" | awk '
    function add(k, v) { s[k] += v }
    $1 ~ /^pgsidecar_queries_total(\{|$)/ { add("q", $2) }
    $1 ~ /^pgsidecar_transaction_duration_seconds_count/ { add("t", $2) }
    $1 == "pgsidecar_redis_commands_total" { add("r", $2) }
    $1 ~ /^pgsidecar_cache_requests_total\{.*result="hit"/ { add("h", $2) }
    $1 ~ /^pgsidecar_cache_requests_total\{.*result="miss"/ { add("m", $2) }
    $1 ~ /^pgsidecar_server_connections\{.*role="primary"/ { add("sp", $2) }
    $1 ~ /^pgsidecar_server_connections\{.*role="replica"/ { add("sr", $2) }
    $1 ~ /^pgsidecar_client_connections/ { add("c", $2) }
    $1 == "pgsidecar_query_duration_seconds_count{target=\"primary\"}" { add("pc", $2) }
    $1 == "pgsidecar_query_duration_seconds_sum{target=\"primary\"}" { add("ps", $2 * 1e6) }
    $1 == "pgsidecar_query_duration_seconds_count{target=\"replica\"}" { add("rc", $2) }
    $1 == "pgsidecar_query_duration_seconds_sum{target=\"replica\"}" { add("rs", $2 * 1e6) }
    $1 ~ /^pgsidecar_transaction_duration_seconds_sum/ { add("ts", $2 * 1e6) }
    END {
      printf "%d %d %d %d %d %d %d %d %d %d %d %d %d\n", s["q"], s["t"], s["r"], s["h"], s["m"], s["sp"], s["sr"], s["c"],
        s["pc"], s["ps"], s["rc"], s["rs"], s["ts"]
    }'
}

sidecars_redis_processed() {
  redis-cli -p "$REDIS_PORT" info stats 2>/dev/null | tr -d '\r' | sed -n 's/^total_commands_processed://p'
}

# sidecars_apps_start I...: one flopods-api per sidecar; pids in SIDECARS_APP_PIDS (by sidecar index).
sidecars_apps_start() {
  local i
  for i in "$@"; do
    start_app "sidecar-$i" $((SIDECARS_APP_PORT + i)) "$(app_db "$(sidecar_proxy_port "$i")")"
    SIDECARS_APP_PIDS[i]="${APP_PIDS[-1]}"
  done
}

# sidecars_round LABEL SECONDS I...: every app instance loaded at once for SECONDS (wrk, its share of
# BENCH_CLIENTS); one row per sidecar in $OUT/sidecars.tsv unless LABEL is "warmup".
sidecars_round() {
  local label="$1" seconds="$2"
  shift 2
  local n=$# i conns=$((BENCH_CLIENTS / $#)) before=() wrk_pids=() proxy_pid
  ((conns >= 1)) || conns=1
  for i in "$@"; do
    proxy_pid="$(pid_of "$RUN_DIR/$(sidecar_name pgsidecar "$i").pid")"
    before[i]="$(cpu_ticks "$proxy_pid") $(cpu_ticks "${SIDECARS_APP_PIDS[i]}") $(sidecars_metrics_line "$i")"
  done
  for i in "$@"; do
    FLOPODS_BENCH_DATA="$OUT/data.lua" FLOPODS_BENCH_WRITES="${BENCH_APP_WRITES:-10}" wrk -t 1 -c "$conns" \
      -d "${seconds}s" --timeout 10s -s "$BENCH_DIR/app/mix.lua" "http://127.0.0.1:$((SIDECARS_APP_PORT + i))" \
      >"$OUT/wrk-$label-$i.log" 2>&1 &
    wrk_pids[i]=$!
  done
  for i in "$@"; do wait "${wrk_pids[i]}" || warn "sidecars: wrk for sidecar $i failed; see $OUT/wrk-$label-$i.log"; done
  [[ "$label" != warmup ]] || return 0
  local result after b a req rps p50 p99 err non2xx
  for i in "$@"; do
    proxy_pid="$(pid_of "$RUN_DIR/$(sidecar_name pgsidecar "$i").pid")"
    after="$(cpu_ticks "$proxy_pid") $(cpu_ticks "${SIDECARS_APP_PIDS[i]}") $(sidecars_metrics_line "$i")"
    result="$(awk '$1 == "RESULT" { $1 = ""; print substr($0, 2) }' "$OUT/wrk-$label-$i.log")"
    [[ -n "$result" ]] || result="0 0 0 0 0 0 0"
    read -ra b <<<"${before[i]}"
    read -ra a <<<"$after"
    # round sidecar wrk_conns clients requests req/s p50 p99 errors proxy_ticks app_ticks queries txns
    # redis hits misses servers_primary servers_replica primary_stmts primary_stmt_us replica_stmts
    # replica_stmt_us bound_txn_us
    read -r req rps p50 _ p99 err non2xx <<<"$result"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "$i" "$conns" \
      "${a[9]}" "$req" "$rps" "$p50" "$p99" "$((err + non2xx))" "$((a[0] - b[0]))" "$((a[1] - b[1]))" "$((a[2] - b[2]))" \
      "$((a[3] - b[3]))" "$((a[4] - b[4]))" "$((a[5] - b[5]))" "$((a[6] - b[6]))" "${a[7]}" "${a[8]}" "$((a[10] - b[10]))" \
      "$((a[11] - b[11]))" "$((a[12] - b[12]))" "$((a[13] - b[13]))" "$((a[14] - b[14]))" >>"$OUT/sidecars.tsv"
  done
  log "sidecars round $label: $(awk -F'\t' -v l="$label" '$1 == l { r += $6 } END { printf "%.0f", r }' "$OUT/sidecars.tsv") req/s over $n sidecars"
}

# sidecars_report SECONDS: per sidecar and for the fleet, from the rounds' sums.
sidecars_report() {
  awk -F'\t' -v secs="$1" -v hz="$CLK_TCK" -v redis_delta="$2" '
    function line(name, k) {
      t = secs * rounds[k]; rq = req[k] > 0 ? req[k] : 1
      printf "%-7s %4d %4d %7.1f %7.2f %7.2f %6.1f%% %7.2f %7.1f %8.0f %7.0f %6.1f %6.1f %7.1f %5.2f %5.1f %7.1f %5.2f %5.1f %5.1f %4d %4d %5d\n", name,
        conns[k], clients[k], req[k] / t, q[k] / rq, tx[k] / rq,
        (h[k] + m[k]) ? 100 * h[k] / (h[k] + m[k]) : 0, r[k] / rq, r[k] / t,
        pt[k] / hz * 1e6 / rq, at[k] / hz * 1e6 / rq, p50[k] / rounds[k], p99[k] / rounds[k],
        pc[k] / t, pc[k] ? ps[k] / pc[k] / 1000 : 0, ps[k] / 1e6 / t, rc[k] / t, rc[k] ? rs[k] / rc[k] / 1000 : 0, rs[k] / 1e6 / t,
        bt[k] / 1e6 / t, sp[k], sr[k], err[k]
    }
    {
      k = $2; if (!(k in rounds)) ids[++n] = k
      rounds[k]++; conns[k] = $3; clients[k] = $4; req[k] += $5; p50[k] += $7; p99[k] += $8; err[k] += $9
      pt[k] += $10; at[k] += $11; q[k] += $12; tx[k] += $13; r[k] += $14; h[k] += $15; m[k] += $16
      if ($17 > sp[k]) sp[k] = $17; if ($18 > sr[k]) sr[k] = $18
      pc[k] += $19; ps[k] += $20; rc[k] += $21; rs[k] += $22; bt[k] += $23
    }
    END {
      printf "%-7s %4s %4s %7s %7s %7s %7s %7s %7s %8s %7s %6s %6s %7s %5s %5s %7s %5s %5s %5s %4s %4s %5s\n", "sidecar", "wrk",
        "pgcl", "req/s", "stmt/rq", "txn/rq", "hit", "rds/rq", "rds/s", "proxy_us", "app_us", "p50ms", "p99ms",
        "Pstm/s", "Pms", "Pbusy", "Rstm/s", "Rms", "Rbusy", "Sbusy", "srvP", "srvR", "errs"
      for (i = 1; i <= n; i++) {
        k = ids[i]; line(k, k)
        F = "fleet"; rounds[F] = rounds[k]; conns[F] += conns[k]; clients[F] += clients[k]; req[F] += req[k]
        p50[F] += p50[k] / n; p99[F] += p99[k] / n; err[F] += err[k]; pt[F] += pt[k]; at[F] += at[k]; q[F] += q[k]
        tx[F] += tx[k]; r[F] += r[k]; h[F] += h[k]; m[F] += m[k]; sp[F] += sp[k]; sr[F] += sr[k]
        pc[F] += pc[k]; ps[F] += ps[k]; rc[F] += rc[k]; rs[F] += rs[k]; bt[F] += bt[k]
      }
      if (n > 1) line("fleet", "fleet")
      if (redis_delta != "") printf "Redis server side: %.0f commands/s during the rounds (every client of that Redis, not only these sidecars)\n", redis_delta / (secs * rounds[ids[1]])
    }' "$OUT/sidecars.tsv"
  cat <<'LEGEND'
wrk: HTTP connections on the sidecar's app; pgcl: client connections the sidecar holds at the end (its
app's libpq pool and ./dev's idle app); stmt/rq, rds/rq: statements (cache hits included) and Redis
commands per HTTP request; txn/rq: transactions that bound a server connection per request; hit: cache
hits / lookups; rds/s: Redis commands per second; proxy_us, app_us: CPU µs (user + system) of the sidecar
and of its app per HTTP request; p50ms, p99ms: wrk latency (mean over rounds); Pstm/s, Pms, Pbusy:
statements per second the primary ran, their mean duration in ms as the proxy saw it, and so the
primary connections busy running them on average (Little's law: Pstm/s x Pms); Rstm/s, Rms, Rbusy: the
same for the replica; Sbusy: server connections bound on average, either role (a transaction holds its
connection from its first message to its end, round trips to the app included); srvP, srvR: server
connections the sidecar holds to the primary and the replica at the end (the most seen; idle ones stay
open for server_idle_timeout); errs: wrk socket errors + non-2xx answers.
LEGEND
}

# workload_custom TARGETS: replaces the pgbench rounds; stdout is the report.
workload_custom() {
  local sidecars
  mapfile -t sidecars < <(sidecars_running)
  if ((${#sidecars[@]} == 0)); then
    warn "sidecars: no sidecar of ./dev runs (in $RUN_DIR): start them with ./dev up --sidecars N"
    return 0
  fi
  command -v wrk >/dev/null || die "sidecars: wrk is not installed"
  # bench/app/lib.sh's inputs.
  OUT="$BENCH_OUT/sidecars"
  API_BIN="${FLOPODS_API_BIN:-$BUILD_DIR/app/flopods-api}"
  DIRECT_DB="host=127.0.0.1 port=$PRIMARY_PORT dbname=$DB_NAME user=$DB_USER password=$DB_PASSWORD"
  USERS="${BENCH_APP_USERS:-20}"
  POOL="${BENCH_APP_POOL:-16}"
  IO_THREADS="${BENCH_APP_IO_THREADS:-1}"
  [[ -x "$API_BIN" ]] || die "sidecars: flopods-api not built at $API_BIN"
  mkdir -p "$OUT"
  : >"$OUT/sidecars.tsv"
  SIDECARS_APP_PIDS=()
  APP_PIDS=()
  trap stop_apps EXIT  # a subshell (its output is piped): stop our apps on any exit
  prepare_data
  sidecars_apps_start "${sidecars[@]}"
  log "sidecars: ${#sidecars[@]} sidecars (${sidecars[*]}), $BENCH_CLIENTS wrk connections in all, $BENCH_ROUNDS rounds x ${BENCH_SECONDS}s"
  if ((BENCH_WARMUP > 0)); then sidecars_round warmup "$BENCH_WARMUP" "${sidecars[@]}"; fi
  local round redis_before redis_after
  redis_before="$(sidecars_redis_processed)"
  for ((round = 1; round <= BENCH_ROUNDS; round++)); do sidecars_round "$round" "$BENCH_SECONDS" "${sidecars[@]}"; done
  redis_after="$(sidecars_redis_processed)"
  printf '%s sidecars, %s wrk connections in all (mix: %s%% writes), %s rounds x %ss, app --pool %s --threads %s, %s cores\n' \
    "${#sidecars[@]}" "$BENCH_CLIENTS" "${BENCH_APP_WRITES:-10}" "$BENCH_ROUNDS" "$BENCH_SECONDS" "$POOL" "$IO_THREADS" "$(nproc)"
  sidecars_report "$BENCH_SECONDS" "$([[ -n "$redis_before" && -n "$redis_after" ]] && echo $((redis_after - redis_before)))"
}
