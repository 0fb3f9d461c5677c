# shellcheck shell=bash
# shellcheck disable=SC2034  # variables here are used by the scripts that source this file
# Shared helpers for ./dev and bench/: paths, ports, logging, waiting with a deadline.
# Sourced, never executed. Callers run with `set -euo pipefail`.

PGS_ROOT="${PGS_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
DEV_DIR="$(realpath -m "${PGS_DEV_DIR:-$PGS_ROOT/.dev}")"
LOG_DIR="$DEV_DIR/log"
RUN_DIR="$DEV_DIR/run"

# Postgres and PgBouncer run as the postgres OS user and must reach their files by path. When the
# checkout sits in a directory that user cannot traverse (a CI clone under /root, mode 0700), their
# state goes to /var/tmp instead, one directory per checkout; .dev/pgstate then links to it.
pg_state_dir() {
  if others_can_traverse "$(dirname "$DEV_DIR")"; then
    echo "$DEV_DIR"
  else
    echo "/var/tmp/pgsidecar-dev-$(printf '%s' "$DEV_DIR" | sha256sum | cut -c1-12)"
  fi
}

# others_can_traverse DIR: every directory from DIR up to / has the search bit for "others". Decided
# from the mode bits alone, so the answer is the same before the postgres user exists (first run).
others_can_traverse() {
  local dir="$1" mode
  while :; do
    mode="$(stat -c %A "$dir" 2>/dev/null)" || return 1
    [[ "${mode:9:1}" == [xt] ]] || return 1
    [[ "$dir" == / ]] && return 0
    dir="$(dirname "$dir")"
  done
}
PG_STATE_DIR="${PGS_PG_STATE_DIR:-$(pg_state_dir)}"
# Logs written by the postgres OS user (pg_ctl -l, PgBouncer's logfile).
PG_LOG_DIR="$PG_STATE_DIR/log"
# Unix sockets of both Postgres nodes live here (short path: sun_path is 107 bytes).
PG_SOCK_DIR="$PG_STATE_DIR/sock"
PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
BUILD_DIR="${PGS_BUILD_DIR:-$PGS_ROOT/build}"

PRIMARY_PORT="${PGS_PRIMARY_PORT:-15432}"
REPLICA_PORT="${PGS_REPLICA_PORT:-15433}"
REDIS_PORT="${PGS_REDIS_PORT:-16379}"
# Sidecar 0's proxy, metrics and app ports; sidecar i of `./dev up --sidecars N` uses each plus i
# (scripts/sidecars.sh). Overridable so that a second fleet (a test's, a helper's) runs beside the dev one.
PROXY_PORT="${PGS_PROXY_PORT:-6432}"
METRICS_PORT="${PGS_METRICS_PORT:-9930}"
APP_PORT="${PGS_APP_PORT:-8080}"
PGBOUNCER_PORT="${PGS_PGBOUNCER_PORT:-16432}"

DB_NAME=flopods
DB_USER=flopods
DB_PASSWORD=flopods-dev
SUPERUSER_PASSWORD=postgres-dev
MONITOR_USER=pgsidecar
MONITOR_PASSWORD=pgsidecar-dev
REPLICATION_USER=replicator
REPLICATION_PASSWORD=replicator-dev
AUTH_USER=pgsidecar_auth
AUTH_PASSWORD=pgsidecar-auth-dev
# A role that may log in only over TLS (pg_hba: hostssl for it, host ... reject before the generic line).
TLS_ONLY_USER=pgs_tls_only
TLS_ONLY_PASSWORD=pgs-tls-only-dev

# Deadlines (seconds) for readiness waits; override from the environment on slow machines.
WAIT_PG="${PGS_WAIT_PG:-60}"
WAIT_REDIS="${PGS_WAIT_REDIS:-20}"
WAIT_PROXY="${PGS_WAIT_PROXY:-30}"
WAIT_APP="${PGS_WAIT_APP:-30}"
# Open-file limit wanted for servers holding thousands of sockets; capped at the hard limit.
NOFILE_WANTED=65536

log()  { printf '\033[1;34m[dev]\033[0m %s\n' "$*" >&2; }
warn() { printf '\033[1;33m[dev] warning:\033[0m %s\n' "$*" >&2; }
die()  { printf '\033[1;31m[dev] error:\033[0m %s\n' "$*" >&2; exit 1; }

# wait_until SECONDS DESCRIPTION CMD...: run CMD every 0.2 s until it succeeds or the deadline
# passes. Returns 1 (after a message) on timeout; never a fixed sleep before the first try.
wait_until() {
  local seconds="$1" what="$2"
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      printf '\033[1;31m[dev] error:\033[0m timed out after %ss waiting for %s\n' "$seconds" "$what" >&2
      return 1
    fi
    sleep 0.2
  done
}

# pid_alive PIDFILE: true if the file names a live process.
pid_alive() {
  local pidfile="$1" pid
  [[ -s "$pidfile" ]] || return 1
  pid="$(head -n1 "$pidfile" | tr -dc '0-9')"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null
}

pid_of() { head -n1 "$1" | tr -dc '0-9'; }

# stop_pidfile PIDFILE NAME [SECONDS]: SIGTERM, wait with a deadline, then SIGKILL. Safe if not running.
stop_pidfile() {
  local pidfile="$1" name="$2" seconds="${3:-15}" pid
  if ! pid_alive "$pidfile"; then
    rm -f "$pidfile"
    return 0
  fi
  pid="$(pid_of "$pidfile")"
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  if ! wait_until "$seconds" "$name to exit" bash -c "! kill -0 $pid"; then
    warn "$name did not exit on SIGTERM; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    wait_until 5 "$name to die" bash -c "! kill -0 $pid" || true
  fi
  rm -f "$pidfile"
}

# nofile_target: the open-file limit to ask for (NOFILE_WANTED or the hard limit if lower).
nofile_target() {
  local hard
  hard="$(ulimit -Hn)"
  if [[ "$hard" == unlimited ]] || ((hard >= NOFILE_WANTED)); then
    echo "$NOFILE_WANTED"
  else
    echo "$hard"
  fi
}

# raise_nofile: raise this shell's soft open-file limit as far as allowed.
raise_nofile() { ulimit -n "$(nofile_target)" 2>/dev/null || true; }

# as_postgres CMD...: run CMD as the postgres OS user (servers refuse root) with a raised
# open-file limit (runuser sessions start at 1024), from / (the checkout may be unreadable to it).
as_postgres() {
  local nofile
  nofile="$(nofile_target)"
  # shellcheck disable=SC2016  # expanded by the inner bash, not here
  runuser -u postgres -- bash -c 'cd / && ulimit -n "$1" 2>/dev/null || ulimit -n "$(ulimit -Hn)"; shift; exec "$@"' \
    bash "$nofile" "$@"
}

port_busy() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }

ensure_dirs() {
  mkdir -p "$LOG_DIR" "$RUN_DIR" "$DEV_DIR/redis" "$PG_STATE_DIR/pg" "$PG_SOCK_DIR" "$PG_LOG_DIR"
  chown postgres:postgres "$PG_STATE_DIR/pg" "$PG_SOCK_DIR"
  chmod 0755 "$DEV_DIR" "$LOG_DIR" "$RUN_DIR" "$PG_STATE_DIR" "$PG_LOG_DIR"
  if [[ "$PG_STATE_DIR" != "$DEV_DIR" ]]; then ln -sfn "$PG_STATE_DIR" "$DEV_DIR/pgstate"; fi
}

# PGS_SERVICES=running: Postgres and Redis are the ones already running (started by another checkout,
# whose state directory PGS_PG_STATE_DIR names: its sockets and certificates). ./dev then only checks that
# they answer, never starts, provisions or stops them: `./dev up` / `./dev down` manage the sidecars and
# apps alone (a second fleet beside the dev one, as tests/dev/sidecars_test.sh runs).
services_running() { [[ "${PGS_SERVICES:-}" == running ]]; }

# config_paths_sed CONFIG: a sed script for a copy of CONFIG written elsewhere: its relative file paths
# (keys ending in _file) made absolute against CONFIG's directory, and the dev files it names in the
# checkout's default .dev (conf/pgsidecar.toml: "../.dev/tls/...") taken from DEV_DIR instead.
config_paths_sed() {
  local dir
  dir="$(cd "$(dirname "$1")" && pwd)"
  if [[ "$(realpath -m "$dir/../.dev")" == "$PGS_ROOT/.dev" ]]; then
    printf 's#^\\([a-z_]*_file\\) = "\\.\\./\\.dev/#\\1 = "%s/#;' "$DEV_DIR"
  fi
  printf 's#^\\([a-z_]*_file\\) = "\\([^/"][^"]*\\)"#\\1 = "%s/\\2"#' "$dir"
}

# status_line NAME up|down DETAIL: one aligned line of `./dev status`.
status_line() { printf '%-18s %-5s %s\n' "$1" "$2" "$3"; }
