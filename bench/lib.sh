# shellcheck shell=bash
# Benchmark helpers: targets, one pgbench run, CPU accounting. Sourced by bench/run.sh after
# scripts/lib.sh, postgres.sh, process.sh, proxy.sh and pgbouncer.sh.

BENCH_CLIENTS="${BENCH_CLIENTS:-64}"
BENCH_THREADS="${BENCH_THREADS:-2}"
BENCH_SECONDS="${BENCH_SECONDS:-20}"
BENCH_WARMUP="${BENCH_WARMUP:-3}"
BENCH_BACKEND_WARMUP="${BENCH_BACKEND_WARMUP:-10}"
BENCH_SCALE="${BENCH_SCALE:-10}"
CLK_TCK="$(getconf CLK_TCK)"

# target_port NAME: where a target listens. Targets: pgsidecar, pgsidecar-plain (the same binary and
# config without replicas and with the cache off: the plain pooler), pgbouncer, direct (primary), replica.
target_port() {
  case "$1" in
    pgsidecar) echo "$PROXY_PORT" ;;
    pgsidecar-plain) echo "$BENCH_PLAIN_PROXY_PORT" ;;
    pgbouncer) echo "$PGBOUNCER_PORT" ;;
    direct) echo "$PRIMARY_PORT" ;;
    replica) echo "$REPLICA_PORT" ;;
    *) die "unknown bench target: $1" ;;
  esac
}

# target_pid NAME: the process serving a proxy target's port, whoever started it ("" for Postgres
# itself: no CPU accounting there). pgsidecar's workers share one process (SO_REUSEPORT threads).
target_pid() {
  case "$1" in
    pgsidecar | pgsidecar-plain | pgbouncer)
      ss -Hltnp "sport = :$(target_port "$1")" | grep -oE 'pid=[0-9]+' | head -n1 | cut -d= -f2 ;;
    *) echo "" ;;
  esac
}

target_start() {
  case "$1" in
    pgsidecar)
      proxy_up || die "pgsidecar is not built or not configured (set BENCH_TARGETS to bench without it)" ;;
    pgsidecar-plain) plain_proxy_start ;;
    pgbouncer) pgbouncer_up ;;
    direct | replica) ;;
    *) die "unknown bench target: $1" ;;
  esac
}

# cpu_ticks PID: utime + stime of the whole process (all threads), in clock ticks. The fields are
# counted after the last ')' because the command name may hold spaces (proc(5): fields 14 and 15).
cpu_ticks() {
  sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}

# thread_ticks PID: "name ticks" per thread name of the process (utime + stime, summed over threads of
# one name). pgsidecar names its threads (pgs-worker-N, pgs-inval-strm, pgs-health, ...), so the report
# can say which part of the proxy spent the CPU. The name is what stands between the first '(' and the
# last ')' of each task's stat; the fields after it are numbered as in proc(5) minus 2.
thread_ticks() {
  local stat
  for stat in /proc/"$1"/task/*/stat; do
    if [[ -r "$stat" ]]; then sed 's/^[0-9]* (\(.*\)) [A-Za-z] /\1 /' "$stat" 2>/dev/null || true; fi
  done | awk '{ ticks[$1] += $12 + $13 } END { for (name in ticks) print name, ticks[name] }' | sort
}

# thread_rows WORKLOAD ROUND TARGET TRANSACTIONS BEFORE AFTER: rows of threads.tsv (workload round target
# thread us_per_txn) from two thread_ticks snapshots; a thread that appeared between them counts from 0.
thread_rows() {
  local workload="$1" round="$2" target="$3" txns="$4" before="$5" after="$6"
  awk -v w="$workload" -v r="$round" -v t="$target" -v n="$txns" -v hz="$CLK_TCK" '
    NR == FNR { start[$1] = $2; next }
    { printf "%s\t%s\t%s\t%s\t%.2f\n", w, r, t, $1, ($2 - start[$1]) / hz * 1e6 / n }' \
    <(printf '%s\n' "$before") <(printf '%s\n' "$after")
}

# machine_busy_ticks: CPU time the whole machine spent busy (every process, the kernel's interrupts),
# in clock ticks: user + nice + system + irq + softirq + steal of /proc/stat's "cpu" line (guest time is
# inside user). A proxy's cost to the machine is its own CPU plus what it makes Postgres and the client
# spend (wake-ups, context switches): only this total shows that.
machine_busy_ticks() {
  awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat
}

# postgres_ticks: CPU time of the Postgres clusters in clock ticks: the primary's and the replica's
# postmasters with every process they started (backends, walsenders, the replica's startup process). A
# backend that exits during the run (the direct target's) is counted too: once reaped, its time is in its
# postmaster's cutime/cstime (one reaped after its postmaster's line was read and before its own is
# missed by that reading: a window of a few milliseconds). On a saturated 2-core machine the TPS ratios follow this column more than
# the proxies' own CPU. It also holds the background work that happens to overlap a run (autovacuum, a
# checkpoint, pruning of dead rows an earlier workload left): one round is no evidence, medians of
# per-round ratios are (report.awk).
postgres_ticks() {
  local data pm stats=()
  for data in "$PRIMARY_DATA" "$REPLICA_DATA"; do
    [[ -r "$data/postmaster.pid" ]] || continue
    pm="$(head -1 "$data/postmaster.pid")"
    stats+=("/proc/$pm/stat")
    mapfile -t -O "${#stats[@]}" stats < <(pgrep -P "$pm" | sed 's|.*|/proc/&/stat|')
  done
  ((${#stats[@]} > 0)) || { echo 0; return 0; }  # no cluster running (cat would read stdin)
  # One read of every stat file (a child that exited meanwhile is skipped); only the postmasters' lines
  # have cutime and cstime (their reaped children). Fields counted after the last ')' as in cpu_ticks.
  { cat "${stats[@]}" 2>/dev/null || true; } | sed 's/.*) //' | awk '{ t += $12 + $13 + $14 + $15 } END { print t + 0 }'
}

# fresh_server_connections: every pooler target starts a workload with server connections of one age.
# A Postgres backend's first minute costs it much more CPU per statement than its later ones: it maps the
# shared buffers into its own page table one page at a time, each a page fault. Measured here (select-only,
# 16 clients, 5 s runs after a restart of the proxy): its backends took 0.41, then 0.05, then 0.01 minor
# faults per transaction and spent 138, 88, 75 us per transaction, against 0.00 and 63-81 us for a
# PgBouncer whose backends were hours old. So a target with new backends (pgsidecar-plain, which the bench
# starts) lost TPS to one left running since an earlier bench (PgBouncer, the reused dev pgsidecar). Before
# each workload's warm-up this ends the backends of $DB_USER in $DB_NAME on the primary and the replica
# (every session of that user in that database, a psql straight to Postgres included: the bench owns the
# dev database while it runs); every pooler opens new ones (an idle server that ends is dropped by both poolers) and they age together
# over the interleaved rounds.
# fresh_server_connections [USER [DATABASE]] (default $DB_USER, $DB_NAME: the bench's); returns once no
# backend of theirs older than the call is left, or warns.
fresh_server_connections() {
  local user="${1:-$DB_USER}" db="${2:-$DB_NAME}" port since
  for port in "$PRIMARY_PORT" "$REPLICA_PORT"; do
    since="$(psql_local "$port" postgres -At -c "SELECT now()")" || { warn "cannot reach Postgres on :$port"; continue; }
    psql_local "$port" postgres -At -c "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
      WHERE backend_type = 'client backend' AND usename = '$user' AND datname = '$db'" >/dev/null ||
      warn "could not end the backends of $user on :$port"
    wait_until "$WAIT_PG" "the ended backends of $user on :$port to exit" old_backends_gone "$port" "$since" "$user" "$db" ||
      warn "backends of $user on :$port older than the workload remain"
  done
}
# old_backends_gone PORT SINCE USER DATABASE
old_backends_gone() {
  [[ "$(psql_local "$1" postgres -At -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'
    AND usename = '$3' AND datname = '$4' AND backend_start < '$2'")" == 0 ]]
}

pgbench_tables_present() {
  [[ "$(psql_local "$PRIMARY_PORT" "$DB_NAME" -At -c \
    "SELECT count(*) FROM pg_tables WHERE tablename IN ('pgbench_accounts','pgbench_branches','pgbench_tellers','pgbench_history')")" == 4 ]]
}

# Tables for pgbench's built-in scripts, created once (directly on the primary, as the app user).
pgbench_init() {
  if pgbench_tables_present; then
    log "pgbench tables present in $DB_NAME"
    return 0
  fi
  log "pgbench -i -s $BENCH_SCALE into $DB_NAME (log $BENCH_OUT/pgbench-init.log)"
  PGPASSWORD="$DB_PASSWORD" "$PG_BIN/pgbench" -i -q -s "$BENCH_SCALE" -h 127.0.0.1 -p "$PRIMARY_PORT" \
    -U "$DB_USER" "$DB_NAME" >"$BENCH_OUT/pgbench-init.log" 2>&1 ||
    die "pgbench -i failed; see $BENCH_OUT/pgbench-init.log"
}

# pgbench_run PORT SECONDS LOGFILE ARGS...: one pgbench run; its output goes to LOGFILE.
pgbench_run() {
  local port="$1" seconds="$2" logfile="$3"
  shift 3
  # A workload may ask for TLS (WORKLOAD_PGSSLMODE=require: tls-churn); the others run in plaintext.
  PGSSLMODE="${WORKLOAD_PGSSLMODE:-disable}" PGPASSWORD="$DB_PASSWORD" "$PG_BIN/pgbench" -n -h 127.0.0.1 -p "$port" -U "$DB_USER" \
    -c "$BENCH_CLIENTS" -j "$BENCH_THREADS" -T "$seconds" "$@" "$DB_NAME" >"$logfile" 2>&1
}

# What the cache's invalidation stream costs the primary ([cache] invalidation_stream): the CPU of the
# walsenders that serve its slots (application_name pgsidecar-stream), and the WAL its slots keep.
stream_walsender_pids() {
  psql_local "$PRIMARY_PORT" postgres -At -c \
    "SELECT pid FROM pg_stat_replication WHERE application_name = 'pgsidecar-stream'" 2>/dev/null || true
}
stream_walsender_ticks() {
  local pid total=0
  for pid in "$@"; do [[ -r "/proc/$pid/stat" ]] && total=$((total + $(cpu_ticks "$pid"))); done
  echo "$total"
}
stream_wal_kept() {
  psql_local "$PRIMARY_PORT" postgres -At -c \
    "SELECT coalesce(max(pg_current_wal_lsn() - restart_lsn), 0)::bigint FROM pg_replication_slots
     WHERE slot_name LIKE 'pgsidecar_cache_%'" 2>/dev/null || echo 0
}

# run_one WORKLOAD ROUND TARGET: measure one run and append a row to $BENCH_OUT/results.tsv:
# workload round position target tps transactions cpu_ticks cpu_us_per_txn status machine_us_per_txn
# postgres_us_per_txn
run_one() {
  local workload="$1" round="$2" position="$3" target="$4"
  local port pid before=0 after=0 status=ok
  port="$(target_port "$target")"
  pid="$(target_pid "$target")"
  if [[ -z "$pid" && "$target" =~ ^(pgsidecar|pgbouncer)$ ]]; then
    die "$target is not listening on :$port"
  fi
  local logfile="$BENCH_OUT/$workload-r$round-$target.log"
  local walsenders=() ws_before=0 ws_after=0
  if [[ "$target" == pgsidecar ]]; then
    mapfile -t walsenders < <(stream_walsender_pids)
    ws_before="$(stream_walsender_ticks "${walsenders[@]}")"
  fi
  local threads_before="" threads_after=""
  [[ -n "$pid" && "$target" == pgsidecar* ]] && threads_before="$(thread_ticks "$pid")"
  [[ -n "$pid" ]] && before="$(cpu_ticks "$pid")"
  local machine_before machine_after postgres_before postgres_after
  postgres_before="$(postgres_ticks)"
  machine_before="$(machine_busy_ticks)"
  pgbench_run "$port" "$BENCH_SECONDS" "$logfile" "${WORKLOAD_PGBENCH_ARGS[@]}" || status=failed
  machine_after="$(machine_busy_ticks)"
  postgres_after="$(postgres_ticks)"
  [[ -n "$pid" ]] && after="$(cpu_ticks "$pid")"
  [[ -n "$threads_before" ]] && threads_after="$(thread_ticks "$pid")"
  ((${#walsenders[@]} > 0)) && ws_after="$(stream_walsender_ticks "${walsenders[@]}")"
  local tps txns
  tps="$(sed -n 's/^tps = \([0-9.]*\) (\(without initial connection time\|including reconnection times\))$/\1/p' "$logfile")"
  txns="$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$logfile")"
  if grep -qE '^number of failed transactions: [1-9]' "$logfile"; then status=failed; fi
  [[ -n "$tps" && -n "$txns" ]] || { status=failed; tps=0; txns=0; }
  local cpu_us="-" machine_us="-" postgres_us="-"
  if [[ -n "$pid" ]] && ((txns > 0)); then
    cpu_us="$(awk -v t="$((after - before))" -v hz="$CLK_TCK" -v n="$txns" 'BEGIN { printf "%.2f", t / hz * 1e6 / n }')"
  fi
  if ((txns > 0)); then
    machine_us="$(awk -v t="$((machine_after - machine_before))" -v hz="$CLK_TCK" -v n="$txns" 'BEGIN { printf "%.2f", t / hz * 1e6 / n }')"
    postgres_us="$(awk -v t="$((postgres_after - postgres_before))" -v hz="$CLK_TCK" -v n="$txns" 'BEGIN { printf "%.2f", t / hz * 1e6 / n }')"
  fi
  [[ "$status" == ok ]] || warn "$workload round $round $target: pgbench failed; see $logfile"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$workload" "$round" "$position" "$target" "$tps" "$txns" \
    "$((after - before))" "$cpu_us" "$status" "$machine_us" "$postgres_us" >>"$BENCH_OUT/results.tsv"
  log "$workload round $round: $target $tps tps, cpu ${cpu_us} us/txn, machine ${machine_us} us/txn, postgres ${postgres_us} us/txn"
  if [[ -n "$threads_after" ]] && ((txns > 0)); then
    thread_rows "$workload" "$round" "$target" "$txns" "$threads_before" "$threads_after" >>"$BENCH_OUT/threads.tsv"
  fi
  if ((${#walsenders[@]} > 0 && txns > 0)); then
    local ws_us kept
    ws_us="$(awk -v t="$((ws_after - ws_before))" -v hz="$CLK_TCK" -v n="$txns" 'BEGIN { printf "%.2f", t / hz * 1e6 / n }')"
    kept="$(stream_wal_kept)"
    printf '%s\t%s\t%s\t%s\n' "$workload" "$round" "$ws_us" "$kept" >>"$BENCH_OUT/stream.tsv"
    log "$workload round $round: invalidation stream on the primary: walsender cpu ${ws_us} us/txn, WAL kept ${kept} bytes"
  fi
}

# bench_config_paths: a sed script that makes the relative paths of PROXY_CONFIG absolute (they are
# resolved against the config file's directory, and the bench writes its configs elsewhere).
bench_config_paths() { config_paths_sed "$PROXY_CONFIG"; }

# config_server_tls CONFIG: the primary's server_tls in a pgsidecar config ([primary], else the [tls]
# default, else "disable"); libpq's sslmode names, which PgBouncer's server_tls_sslmode shares.
config_server_tls() {
  awk '/^\[/ { section = $0 }
       /^server_tls = / { v = $3; gsub(/"/, "", v); if (section == "[primary]") primary = v; else if (section == "[tls]") dflt = v }
       END { print primary != "" ? primary : (dflt != "" ? dflt : "disable") }' "$1"
}

# bench_server_tls: with BENCH_SERVER_TLS=disable (the default) the pgsidecar targets run with PROXY_CONFIG
# minus TLS to the servers ($BENCH_OUT/pgsidecar.toml), like the bench's PgBouncer (server_tls_sslmode =
# disable): the comparison is then of pooling, not of encryption. "config" keeps PROXY_CONFIG as it is
# (verify-full with the dev CA in dev) and gives PgBouncer the same mode (config_server_tls; with the dev
# CA: scripts/pgbouncer.sh): both encrypt alike.
bench_server_tls() {
  case "${BENCH_SERVER_TLS:-disable}" in
    config)
      PGBOUNCER_SERVER_TLS="$(config_server_tls "$PROXY_CONFIG")"
      export PGBOUNCER_SERVER_TLS
      return 0 ;;
    disable) export PGBOUNCER_SERVER_TLS=disable ;;
    *) die "BENCH_SERVER_TLS must be disable or config" ;;
  esac
  local config="$BENCH_OUT/pgsidecar.toml"
  sed -e 's/^server_tls = .*/server_tls = "disable"/' -e "$(bench_config_paths)" "$PROXY_CONFIG" >"$config"
  PROXY_CONFIG="$config"
}

# bench_proxy_start VAR CONFIG LOG PORT READY_FN LABEL: this build with CONFIG as a background process of
# the bench (not ./dev's), its pid in VAR; waits until READY_FN says it accepts.
bench_proxy_start() {
  local var="$1" config="$2" logfile="$3" port="$4" ready="$5" label="$6"
  "$PROXY_BIN" --config "$config" >"$logfile" 2>&1 </dev/null &
  printf -v "$var" '%s' "$!"
  wait_until "$WAIT_PROXY" "$label on :$port" "$ready" || die "$label did not start; see $logfile"
}

# bench_proxy_stop VAR: stops what bench_proxy_start put in VAR (nothing when empty).
bench_proxy_stop() {
  local var="$1"
  [[ -n "${!var}" ]] || return 0
  kill -TERM "${!var}" 2>/dev/null || true
  wait "${!var}" 2>/dev/null || true
  printf -v "$var" '%s' ""
}

# ---- pgsidecar-plain: the plain pooler beside the configured one, in the same interleaved run ----
BENCH_PLAIN_PROXY_PORT="${BENCH_PLAIN_PROXY_PORT:-16533}"
BENCH_PLAIN_METRICS_PORT="${BENCH_PLAIN_METRICS_PORT:-19933}"
PLAIN_PROXY_PID=""

plain_proxy_ready() { "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$BENCH_PLAIN_PROXY_PORT" -U "$DB_USER" -d "$DB_NAME" -t 2; }

# plain_proxy_start: this checkout's pgsidecar with PROXY_CONFIG minus every [[replicas]] table and with
# [cache] enabled = false, on BENCH_PLAIN_PROXY_PORT (started once per bench run).
plain_proxy_start() {
  [[ -n "$PLAIN_PROXY_PID" ]] && kill -0 "$PLAIN_PROXY_PID" 2>/dev/null && return 0
  [[ -x "$PROXY_BIN" ]] || die "pgsidecar-plain: $PROXY_BIN not built"
  port_busy "$BENCH_PLAIN_PROXY_PORT" && die "pgsidecar-plain: port $BENCH_PLAIN_PROXY_PORT is taken"
  local config="$BENCH_OUT/plain-pgsidecar.toml"
  awk -v port="$BENCH_PLAIN_PROXY_PORT" -v metrics="127.0.0.1:$BENCH_PLAIN_METRICS_PORT" '
    /^\[/ { table = $0 }
    /^\[\[replicas\]\]/ { skip = 1; next }
    /^\[/ { skip = 0 }
    skip { next }
    /^listen_port = / { print "listen_port = " port; next }
    /^metrics_listen = / { print "metrics_listen = \"" metrics "\""; next }
    table == "[cache]" && /^enabled = / { print "enabled = false"; next }
    { print }' "$PROXY_CONFIG" | sed -e "$(bench_config_paths)" >"$config"
  "$PROXY_BIN" --check "$config" >/dev/null || die "pgsidecar-plain: $config does not check"
  bench_proxy_start PLAIN_PROXY_PID "$config" "$BENCH_OUT/plain-pgsidecar.log" "$BENCH_PLAIN_PROXY_PORT" \
    plain_proxy_ready pgsidecar-plain
}

plain_proxy_stop() { bench_proxy_stop PLAIN_PROXY_PID; }

# ---- idle clients (bench/workloads/idle-clients.sh) ----
BENCH_IDLE_CLIENTS="${BENCH_IDLE_CLIENTS:-10000}"
BENCH_IDLE_SETTLE="${BENCH_IDLE_SETTLE:-3}"
BENCH_IDLE_PROXY_PORT="${BENCH_IDLE_PROXY_PORT:-16532}"
BENCH_IDLE_METRICS_PORT="${BENCH_IDLE_METRICS_PORT:-19932}"
IDLE_PROXY_PID=""

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# established_on PORT: client connections the listener on PORT holds now.
established_on() { ss -Htn state established "sport = :$1" | wc -l; }

idle_proxy_ready() { "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$BENCH_IDLE_PROXY_PORT" -U "$DB_USER" -d "$DB_NAME" -t 2; }

# idle_proxy_start: a pgsidecar of this checkout's build on BENCH_IDLE_PROXY_PORT, its own process (the
# dev proxy on :6432 may be another checkout's). Sets IDLE_PROXY_PID.
idle_proxy_start() {
  [[ -x "$PROXY_BIN" ]] || die "idle-clients: $PROXY_BIN not built"
  port_busy "$BENCH_IDLE_PROXY_PORT" && die "idle-clients: port $BENCH_IDLE_PROXY_PORT is taken"
  local config="$BENCH_OUT/idle-pgsidecar.toml"
  sed -e "s/^listen_port = .*/listen_port = $BENCH_IDLE_PROXY_PORT/" \
    -e "s/^metrics_listen = .*/metrics_listen = \"127.0.0.1:$BENCH_IDLE_METRICS_PORT\"/" \
    -e "s/^max_client_conn = .*/max_client_conn = $((BENCH_IDLE_CLIENTS + 100))/" \
    -e "$(bench_config_paths)" "$PROXY_CONFIG" >"$config"
  bench_proxy_start IDLE_PROXY_PID "$config" "$BENCH_OUT/idle-pgsidecar.log" "$BENCH_IDLE_PROXY_PORT" \
    idle_proxy_ready "idle-clients: pgsidecar"
}

idle_proxy_stop() { bench_proxy_stop IDLE_PROXY_PID; }

idle_report_header() {
  printf '%-10s %7s %13s %13s %13s %10s %9s\n' target clients rss_before rss_with rss_after per_client after/before
}

# idle_clients_measure TARGET: one line of the report (sizes in kB, per_client in bytes).
idle_clients_measure() {
  local target="$1" port pid before with after
  case "$target" in
    pgsidecar)
      idle_proxy_start
      port="$BENCH_IDLE_PROXY_PORT" pid="$IDLE_PROXY_PID" ;;
    pgbouncer)
      # A fresh process, as pgsidecar's (bench/run.sh stops it at the end).
      pgbouncer_down >&2
      PGBOUNCER_MAX_CLIENT_CONN=$((BENCH_IDLE_CLIENTS + 100)) pgbouncer_up >&2
      port="$PGBOUNCER_PORT" pid="$(target_pid pgbouncer)" ;;
    *) warn "idle-clients: no such target $target"; return 0 ;;
  esac
  # One login first, so the pool's first server (and its parameters) is not counted per client.
  PGPASSWORD="$DB_PASSWORD" "$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$port" -U "$DB_USER" -d "$DB_NAME" -c 'SELECT 1' >/dev/null
  before="$(rss_kb "$pid")"
  local line status=ok
  coproc IDLE { PGPASSWORD="$DB_PASSWORD" exec python3 "$BENCH_DIR/idle_clients.py" --port "$port" \
    --user "$DB_USER" --dbname "$DB_NAME" -n "$BENCH_IDLE_CLIENTS" 2>"$BENCH_OUT/idle-$target.err"; }
  local client_pid="$IDLE_PID"
  if read -r -t 600 line <&"${IDLE[0]}" && [[ "$line" == ready* ]]; then
    with="$(rss_kb "$pid")"
  else
    warn "idle-clients $target: ${line:-no answer from bench/idle_clients.py}; see $BENCH_OUT/idle-$target.err"
    status=failed with=0
  fi
  echo >&"${IDLE[1]}" || true
  read -r -t 120 line <&"${IDLE[0]}" || true
  wait "$client_pid" 2>/dev/null || true
  wait_until 60 "$target to see its idle clients go" bash -c "(( \$(ss -Htn state established 'sport = :$port' | wc -l) == 0 ))" || true
  sleep "$BENCH_IDLE_SETTLE"  # what the proxy frees on its own timers (bounded, then measured once)
  after="$(rss_kb "$pid")"
  [[ "$target" == pgsidecar ]] && idle_proxy_stop
  printf '%-10s %7s %10s kB %10s kB %10s kB %8s B %8s%% %s\n' "$target" "$BENCH_IDLE_CLIENTS" "$before" "$with" "$after" \
    "$(((with - before) * 1024 / BENCH_IDLE_CLIENTS))" "$(awk -v a="$after" -v b="$before" 'BEGIN { printf "%.0f", a * 100 / b }')" \
    "$([[ $status == ok ]] || echo FAILED)"
}
