#!/usr/bin/env bash
# bench/lib.sh's Postgres helpers against the running dev primary and replica (the ones ./dev test
# started; PGS_PG_STATE_DIR names their state directory, by default this checkout's):
# - fresh_server_connections USER DB ends every session of USER in DB on both nodes and returns only once
#   none older than the call is left; another user's session in the same database is not touched;
# - postgres_ticks counts the CPU of a backend that ran a query and exited (its time is then only in the
#   postmaster's cutime): the count grows by at least half of that query's execution time (half: on a
#   busy machine the backend may be preempted during it; other processes' time only adds).
# Its own role (pgs_bench_test), dropped at the end. Exit 0 pass, 1 fail, 77 skipped (no services).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"
# shellcheck source=scripts/process.sh
source "$ROOT/scripts/process.sh"
# shellcheck source=scripts/postgres.sh
source "$ROOT/scripts/postgres.sh"
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

if [[ ! -S "$PG_SOCK_DIR/.s.PGSQL.$PRIMARY_PORT" || ! -S "$PG_SOCK_DIR/.s.PGSQL.$REPLICA_PORT" ]]; then
  echo "SKIP: no primary and replica sockets in $PG_SOCK_DIR"
  exit 77
fi

ROLE=pgs_bench_test
PASSWORD=pgs-bench-test
FAILED=0
PIDS=()
fail() { printf 'FAIL: %s\n' "$*" >&2; FAILED=1; }
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  psql_local "$PRIMARY_PORT" postgres -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
    WHERE application_name = 'pgs-bench-test'" >/dev/null 2>&1 || true
  psql_local "$PRIMARY_PORT" postgres -c "DROP ROLE IF EXISTS $ROLE" >/dev/null 2>&1 || true
}
trap cleanup EXIT

psql_local "$PRIMARY_PORT" postgres -c "DROP ROLE IF EXISTS $ROLE" -c "CREATE ROLE $ROLE LOGIN PASSWORD '$PASSWORD'"
role_on_replica() { [[ "$(psql_local "$REPLICA_PORT" postgres -At -c "SELECT count(*) FROM pg_roles WHERE rolname = '$ROLE'")" == 1 ]]; }
wait_until 30 "the role on the replica" role_on_replica || exit 1

# Two sessions of the role (one per node) and one of another user (postgres) in the same database.
sleeper() {  # sleeper PORT USER PASSWORD: a session that would last five minutes
  PGAPPNAME=pgs-bench-test PGPASSWORD="$3" PGSSLMODE=disable "$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$1" -U "$2" -d "$DB_NAME" \
    -c "SELECT pg_sleep(300)" >/dev/null 2>&1 &
  PIDS+=("$!")
}
sleeper "$PRIMARY_PORT" "$ROLE" "$PASSWORD"
sleeper "$REPLICA_PORT" "$ROLE" "$PASSWORD"
PGAPPNAME=pgs-bench-test as_postgres "$PG_BIN/psql" -X -q -h "$PG_SOCK_DIR" -p "$PRIMARY_PORT" -U postgres -d "$DB_NAME" \
  -c "SELECT pg_sleep(300)" >/dev/null 2>&1 &
BYSTANDER="$!"
PIDS+=("$BYSTANDER")
sessions() {  # sessions PORT USER: that user's sessions of this test on PORT
  psql_local "$1" postgres -At -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pgs-bench-test'
    AND usename = '$2' AND datname = '$DB_NAME'"
}
all_started() { [[ "$(sessions "$PRIMARY_PORT" "$ROLE")$(sessions "$REPLICA_PORT" "$ROLE")$(sessions "$PRIMARY_PORT" postgres)" == 111 ]]; }
wait_until 30 "the three sessions" all_started || exit 1

fresh_server_connections "$ROLE" "$DB_NAME"
[[ "$(sessions "$PRIMARY_PORT" "$ROLE")" == 0 ]] || fail "a session of $ROLE is left on the primary"
[[ "$(sessions "$REPLICA_PORT" "$ROLE")" == 0 ]] || fail "a session of $ROLE is left on the replica"
[[ "$(sessions "$PRIMARY_PORT" postgres)" == 1 ]] || fail "the other user's session was ended"
kill -0 "$BYSTANDER" 2>/dev/null || fail "the other user's psql exited"
clients_gone() { ! kill -0 "${PIDS[0]}" 2>/dev/null && ! kill -0 "${PIDS[1]}" 2>/dev/null; }
wait_until 30 "the ended sessions' psql to exit" clients_gone || fail "an ended session's psql is still running"

# A query of a few hundred milliseconds in a backend that then exits and is reaped, so that its time is
# nowhere but in its postmaster's cutime when postgres_ticks reads again.
before="$(postgres_ticks)"
out="$(psql_local "$PRIMARY_PORT" "$DB_NAME" -At -c "SELECT pg_backend_pid()" -c "EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON)
  SELECT count(*) FROM generate_series(1, 3000000)")"
backend="$(head -1 <<<"$out")"
ms="$(sed -n 's/.*"Execution Time": \([0-9.]*\).*/\1/p' <<<"$out")"
[[ "$backend" =~ ^[0-9]+$ && -n "$ms" ]] || { fail "no backend pid or execution time in: $out"; exit 1; }
reaped() { [[ ! -e "/proc/$backend" ]]; }
wait_until 10 "backend $backend to be reaped" reaped || exit 1
want=$(awk -v ms="$ms" -v hz="$CLK_TCK" 'BEGIN { printf "%d", 0.5 * ms / 1000 * hz }')
grew=$(($(postgres_ticks) - before))
((grew >= want)) || fail "postgres_ticks grew by $grew ticks for a backend that ran $ms ms (want >= $want)"

if ((FAILED)); then exit 1; fi
echo "bench postgres helpers: ok"
