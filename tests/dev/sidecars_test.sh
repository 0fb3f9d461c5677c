#!/usr/bin/env bash
# ./dev up --sidecars N (issue 13 item 6), as ctest DevSidecars runs it: `up --sidecars 3` starts three
# sidecars, each with its own app instance talking to it, with exactly one invalidation stream leader
# among them; `up --sidecars 2` then stops the third and keeps the other two (one leader still);
# `./dev down` stops every one of them. The fleet is a second one beside the dev services: its own state
# directory, ports from PGS_SIDECARS_TEST_PORT (28400: proxies 28400.., metrics +100.., apps +200..),
# its own cache key prefix and stream slot, on the Postgres and Redis already running
# (PGS_SERVICES=running; PGS_PG_STATE_DIR names their state directory, by default this checkout's).
#
#   tests/dev/sidecars_test.sh BUILD_DIR      (ctest passes its build directory)
# Its state directory (./dev's output in dev.out, the logs) is removed unless it failed or PGS_IT_KEEP is set.
# Exit 0 pass, 1 fail, 77 skipped (binaries not built).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="${1:-$ROOT/build}"
# The services' state directory, from the caller's environment, before this test's own overrides.
SERVICES_STATE="${PGS_PG_STATE_DIR:-$(cd "$ROOT" && bash -c 'source scripts/lib.sh && echo "$PG_STATE_DIR"')}"

if [[ ! -x "$BUILD/proxy/pgsidecar" || ! -x "$BUILD/app/flopods-api" ]]; then
  echo "SKIP: pgsidecar or flopods-api not built in $BUILD"
  exit 77
fi

BASE="${PGS_SIDECARS_TEST_PORT:-28400}"
export PGS_PROXY_PORT="$BASE" PGS_METRICS_PORT=$((BASE + 100)) PGS_APP_PORT=$((BASE + 200))
export PGS_SERVICES=running PGS_PG_STATE_DIR="$SERVICES_STATE" PGS_NO_BUILD=1 PGS_BUILD_DIR="$BUILD"
export PGS_CACHE_KEY_PREFIX="pgsc-sidecars-test:" PGS_STREAM_SLOT="pgs_sidecars_test"
PGS_DEV_DIR="$(mktemp -d /tmp/pgs-sidecars-test.XXXXXX)"
export PGS_DEV_DIR
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"
# shellcheck source=scripts/postgres.sh
source "$ROOT/scripts/postgres.sh"

FAILED=0
fail() { printf 'FAIL: %s\n' "$*" >&2; FAILED=1; }
# must CMD...: a step the rest depends on; its failure ends the test (the cleanup still runs).
must() { "$@" || { fail "$*"; exit 1; }; }
dev() { "$ROOT/dev" "$@" >>"$PGS_DEV_DIR/dev.out" 2>&1; }

proxy_port() { echo $((PGS_PROXY_PORT + $1)); }
metrics_port() { echo $((PGS_METRICS_PORT + $1)); }
app_port() { echo $((PGS_APP_PORT + $1)); }
proc_name() { if (($2 == 0)); then echo "$1"; else echo "$1-$2"; fi; }
pid_file() { echo "$RUN_DIR/$(proc_name "$1" "$2").pid"; }
# pid_in NAME I: the pid in the process's pid file, 0 when there is none.
pid_in() { if [[ -s "$(pid_file "$1" "$2")" ]]; then pid_of "$(pid_file "$1" "$2")"; else echo 0; fi; }

# stream_slots: the slots of the fleet's stream (./dev down drops them).
stream_slots() {
  psql_local "$PRIMARY_PORT" postgres -At -c \
    "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '${PGS_STREAM_SLOT}_${DB_NAME}'"
}
# Another fleet's slot whose name starts with this fleet's (PGS_STREAM_SLOT "a" and "a_b"): ./dev down
# must leave it alone.
OTHER_SLOT="${PGS_STREAM_SLOT}_b_${DB_NAME}"
other_slot_present() {
  psql_local "$PRIMARY_PORT" postgres -At -c "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '$OTHER_SLOT'"
}
drop_other_slot() {
  psql_local "$PRIMARY_PORT" postgres -At -c \
    "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '$OTHER_SLOT'" >/dev/null
}

# The fleet's Redis keys go too.
cleanup() {
  dev down || true
  drop_other_slot || true
  redis-cli -p "$REDIS_PORT" --scan --pattern "${PGS_CACHE_KEY_PREFIX}*" | xargs -r redis-cli -p "$REDIS_PORT" del >/dev/null || true
  if ((FAILED)); then
    printf -- '--- ./dev output\n' >&2
    tail -n 60 "$PGS_DEV_DIR/dev.out" >&2 || true
    tail -n 20 "$LOG_DIR"/pgsidecar*.log >&2 || true
  elif [[ -z "${PGS_IT_KEEP:-}" ]]; then
    rm -rf "$PGS_DEV_DIR"
  fi
}
trap cleanup EXIT

# sidecar_works I: sidecar I answers a query, its app answers an authenticated request through the
# database, and that app's connections go to sidecar I.
sidecar_works() {
  local i="$1" token app_pid
  [[ "$(PGPASSWORD="$DB_PASSWORD" "$PG_BIN/psql" -X -At -h 127.0.0.1 -p "$(proxy_port "$i")" -U "$DB_USER" -d "$DB_NAME" \
    -c 'SELECT 40 + 2')" == 42 ]] || { fail "sidecar $i does not answer on :$(proxy_port "$i")"; return; }
  token="$(awk '/^token for / { print $NF; exit }' "$DEV_DIR/app/seed.txt")"
  curl -sf -m 5 -H "Authorization: Bearer $token" "http://127.0.0.1:$(app_port "$i")/api/v1/me" >/dev/null ||
    { fail "app $i does not answer /api/v1/me on :$(app_port "$i")"; return; }
  app_pid="$(pid_in flopods-api "$i")"
  ss -Htnp state established "dport = :$(proxy_port "$i")" | grep -q "pid=$app_pid," ||
    fail "app $i (pid $app_pid) holds no connection to sidecar $i (:$(proxy_port "$i"))"
}

# leaders_and_live N: "leaders live": the sums of pgsidecar_cache_stream_leader and _live over the
# /metrics pages of sidecars 0..N-1.
leaders_and_live() {
  local i
  for ((i = 0; i < $1; i++)); do curl -s -m 2 "http://127.0.0.1:$(metrics_port "$i")/metrics"; done |
    awk '$1 == "pgsidecar_cache_stream_leader" { l += $2 } $1 == "pgsidecar_cache_stream_live" { v += $2 }
         END { print l + 0, v + 0 }'
}
one_leader() { [[ "$(leaders_and_live "$1")" == "1 $1" ]]; }

check_fleet() {
  local n="$1" i
  for ((i = 0; i < n; i++)); do
    pid_alive "$(pid_file pgsidecar "$i")" || fail "sidecar $i has no live pid file"
    pid_alive "$(pid_file flopods-api "$i")" || fail "app $i has no live pid file"
    sidecar_works "$i"
  done
  wait_until 30 "exactly one stream leader among $n sidecars, all live" one_leader "$n" ||
    fail "stream leaders, live sidecars of $n: $(leaders_and_live "$n")"
}

# gone PID PORT: the process is dead and nothing listens on the port.
gone() { ! kill -0 "$1" 2>/dev/null && ! port_busy "$2"; }

echo "fleet in $PGS_DEV_DIR on :$PGS_PROXY_PORT.. (metrics :$PGS_METRICS_PORT.., apps :$PGS_APP_PORT..), services state $SERVICES_STATE"
must dev up --sidecars 3
check_fleet 3
declare -A pids
for i in 0 1 2; do
  pids[proxy$i]="$(pid_in pgsidecar "$i")"
  pids[app$i]="$(pid_in flopods-api "$i")"
done

must dev up --sidecars 2
wait_until 30 "sidecar 2 and its app to stop" bash -c \
  "! kill -0 ${pids[proxy2]} 2>/dev/null && ! kill -0 ${pids[app2]} 2>/dev/null" || fail "sidecar 2 of the earlier run still runs"
[[ ! -e "$(pid_file pgsidecar 2)" && ! -e "$(pid_file flopods-api 2)" ]] || fail "sidecar 2's pid files are left"
for i in 0 1; do
  [[ "$(pid_in pgsidecar "$i")" == "${pids[proxy$i]}" ]] || fail "sidecar $i was restarted"
done
check_fleet 2

# down after a larger run: every process of the fleet, whichever run started it.
must dev up --sidecars 3
all=()
for i in 0 1 2; do
  all+=("$(pid_in pgsidecar "$i") $(proxy_port "$i")" "$(pid_in flopods-api "$i") $(app_port "$i")")
done
psql_local "$PRIMARY_PORT" postgres -At -c \
  "SELECT pg_create_logical_replication_slot('$OTHER_SLOT', 'test_decoding')" >/dev/null || fail "cannot make $OTHER_SLOT"
must dev down
for entry in "${all[@]}"; do
  read -r pid port <<<"$entry"
  wait_until 30 "pid $pid to exit and :$port to be free" gone "$pid" "$port" || fail "pid $pid / :$port left running by ./dev down"
done
pg_ready "$PRIMARY_PORT" || fail "./dev down with PGS_SERVICES=running stopped the primary"
[[ "$(stream_slots)" == 0 ]] || fail "./dev down left the fleet's stream slot ${PGS_STREAM_SLOT}_* on the primary"
[[ "$(other_slot_present)" == 1 ]] || fail "./dev down dropped another fleet's slot $OTHER_SLOT"
drop_other_slot
[[ "$(redis-cli -p "$REDIS_PORT" ping)" == PONG ]] || fail "./dev down with PGS_SERVICES=running stopped Redis"

if ((FAILED)); then echo "DevSidecars: FAILED"; exit 1; fi
echo "DevSidecars: passed"
