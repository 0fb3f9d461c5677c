#!/usr/bin/env bash
# scripts/pgbouncer.sh's TLS to the servers, as the bench sets it (BENCH_SERVER_TLS=config makes both
# poolers encrypt; bench/lib.sh): a PgBouncer of this test's own (port PGS_PGBOUNCER_TLS_TEST_PORT, 28470,
# state in a temporary directory) on the running dev primary, started with PGBOUNCER_SERVER_TLS=verify-full
# and then with the default; a query through it reads pg_stat_ssl for the server connection it was given.
# Also bench/lib.sh config_server_tls, the mode that run gives PgBouncer: the primary's in the config.
# Exit 0 pass, 1 fail, 77 skipped (no services, no dev CA, or no pgbouncer).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export PGS_PGBOUNCER_PORT="${PGS_PGBOUNCER_TLS_TEST_PORT:-28470}"
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"
# shellcheck source=scripts/process.sh
source "$ROOT/scripts/process.sh"
# shellcheck source=scripts/postgres.sh
source "$ROOT/scripts/postgres.sh"
# shellcheck source=scripts/pgbouncer.sh
source "$ROOT/scripts/pgbouncer.sh"
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

if [[ ! -S "$PG_SOCK_DIR/.s.PGSQL.$PRIMARY_PORT" ]]; then
  echo "SKIP: no primary socket in $PG_SOCK_DIR"
  exit 77
fi
if [[ ! -s "$PG_TLS_DIR/ca.crt" ]] || ! command -v pgbouncer >/dev/null; then
  echo "SKIP: no dev CA ($PG_TLS_DIR/ca.crt) or no pgbouncer"
  exit 77
fi

PGBOUNCER_DIR="$(mktemp -d /tmp/pgs-pgbouncer-tls-test.XXXXXX)"
PGBOUNCER_PIDFILE="$PGBOUNCER_DIR/pgbouncer.pid"
PG_LOG_DIR="$PGBOUNCER_DIR"
FAILED=0
fail() { printf 'FAIL: %s\n' "$*" >&2; FAILED=1; }
cleanup() {
  pgbouncer_down >/dev/null 2>&1 || true
  if ((FAILED)); then echo "kept $PGBOUNCER_DIR" >&2; else rm -rf "$PGBOUNCER_DIR"; fi
}
trap cleanup EXIT

# config_server_tls: the mode BENCH_SERVER_TLS=config gives PgBouncer is the primary's in the config.
config_case() {  # config_case WANT TOML
  printf '%b' "$2" >"$PGBOUNCER_DIR/case.toml"
  local got
  got="$(config_server_tls "$PGBOUNCER_DIR/case.toml")"
  [[ "$got" == "$1" ]] || fail "config_server_tls of '$2': '$got', want '$1'"
}
[[ "$(config_server_tls "$ROOT/conf/pgsidecar.toml")" == verify-full ]] || fail "config_server_tls of conf/pgsidecar.toml"
config_case require '[tls]\nserver_tls = "require"\n[primary]\nhost = "h"\n'
config_case verify-ca '[tls]\nserver_tls = "require"\n[primary]\nserver_tls = "verify-ca"\n[[replicas]]\nserver_tls = "disable"\n'
config_case disable '[primary]\nport = 5432\n'

# The server connection PgBouncer gives this query: encrypted or not ("t" / "f").
server_ssl() {
  PGSSLMODE=disable PGPASSWORD="$DB_PASSWORD" "$PG_BIN/psql" -X -At -h 127.0.0.1 -p "$PGBOUNCER_PORT" \
    -U "$DB_USER" -d "$DB_NAME" -c "SELECT ssl FROM pg_catalog.pg_stat_ssl WHERE pid = pg_catalog.pg_backend_pid()"
}

for mode in verify-full disable; do
  PGBOUNCER_SERVER_TLS="$mode" pgbouncer_up >/dev/null
  want=t
  [[ "$mode" == disable ]] && want=f
  got="$(server_ssl 2>&1)" || true
  [[ "$got" == "$want" ]] || fail "PGBOUNCER_SERVER_TLS=$mode: server connection ssl = '$got', want '$want'"
  if [[ "$mode" != disable ]]; then
    grep -q "^server_tls_ca_file = $PG_TLS_DIR/ca.crt$" "$PGBOUNCER_DIR/pgbouncer.ini" ||
      fail "PGBOUNCER_SERVER_TLS=$mode: pgbouncer.ini names no CA file"
  fi
  pgbouncer_down >/dev/null
done
((FAILED)) && exit 1
echo "PASS"
