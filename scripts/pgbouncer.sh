# shellcheck shell=bash
# PgBouncer (Debian package) as a benchmark peer on 127.0.0.1:16432, run as the postgres OS user.
# Transaction mode, the same pool size as pgsidecar's default, SCRAM with verifiers read from pg_authid.
# Sourced by ./dev and bench/run.sh.

PGBOUNCER_DIR="$PG_STATE_DIR/pgbouncer"
PGBOUNCER_PIDFILE="$PGBOUNCER_DIR/pgbouncer.pid"
PGBOUNCER_POOL_SIZE="${PGBOUNCER_POOL_SIZE:-20}"
# Raised by the idle-clients benchmark (bench/workloads/idle-clients.sh) to hold its clients.
PGBOUNCER_MAX_CLIENT_CONN="${PGBOUNCER_MAX_CLIENT_CONN:-1000}"
# TLS to the servers: "disable" (the default), or a server_tls_sslmode such as verify-full (with the dev
# CA), which the bench sets with BENCH_SERVER_TLS=config so that both poolers encrypt (bench/lib.sh).
PGBOUNCER_SERVER_TLS="${PGBOUNCER_SERVER_TLS:-disable}"

pgbouncer_ready() { "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PGBOUNCER_PORT" -U "$DB_USER" -d "$DB_NAME" -t 2; }

# The auth file: "user" "SCRAM-SHA-256$..." for every role that has a password.
pgbouncer_write_userlist() {
  psql_local "$PRIMARY_PORT" postgres -At -c \
    "SELECT format('\"%s\" \"%s\"', rolname, rolpassword) FROM pg_authid
     WHERE rolpassword IS NOT NULL AND rolcanlogin ORDER BY rolname" >"$PGBOUNCER_DIR/userlist.txt"
  chown postgres:postgres "$PGBOUNCER_DIR/userlist.txt"
  chmod 0600 "$PGBOUNCER_DIR/userlist.txt"
}

# TLS to clients when allowed, with the dev nodes' certificate (./dev services makes it; the postgres OS
# user owns its key), as pgsidecar's dev config allows it: the tls-churn workload compares both.
pgbouncer_client_tls() {
  if [[ -s "${PG_TLS_DIR:-}/server.crt" && -s "${PG_TLS_DIR:-}/server.key" ]]; then
    printf 'client_tls_sslmode = allow\nclient_tls_cert_file = %s\nclient_tls_key_file = %s\n' \
      "$PG_TLS_DIR/server.crt" "$PG_TLS_DIR/server.key"
  fi
}

pgbouncer_server_tls() {
  printf 'server_tls_sslmode = %s\n' "$PGBOUNCER_SERVER_TLS"
  if [[ "$PGBOUNCER_SERVER_TLS" != disable && -s "${PG_TLS_DIR:-}/ca.crt" ]]; then
    printf 'server_tls_ca_file = %s\n' "$PG_TLS_DIR/ca.crt"
  fi
}

pgbouncer_write_ini() {
  cat >"$PGBOUNCER_DIR/pgbouncer.ini" <<INI
; Written by ./dev (scripts/pgbouncer.sh) on every start.
[databases]
$DB_NAME = host=127.0.0.1 port=$PRIMARY_PORT dbname=$DB_NAME

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PGBOUNCER_PORT
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $PGBOUNCER_DIR/userlist.txt
admin_users = postgres
pool_mode = transaction
default_pool_size = $PGBOUNCER_POOL_SIZE
max_client_conn = $PGBOUNCER_MAX_CLIENT_CONN
server_login_retry = 1
$(pgbouncer_server_tls)
$(pgbouncer_client_tls)
ignore_startup_parameters = extra_float_digits
logfile = $PG_LOG_DIR/pgbouncer.log
pidfile = $PGBOUNCER_PIDFILE
log_connections = 0
log_disconnections = 0
INI
  chown postgres:postgres "$PGBOUNCER_DIR/pgbouncer.ini"
}

pgbouncer_up() {
  install -d -o postgres -g postgres -m 0700 "$PGBOUNCER_DIR"
  touch "$PG_LOG_DIR/pgbouncer.log"
  chown postgres:postgres "$PG_LOG_DIR/pgbouncer.log"
  pgbouncer_write_userlist
  local before
  before="$(file_sum "$PGBOUNCER_DIR/pgbouncer.ini")"
  pgbouncer_write_ini
  if pid_alive "$PGBOUNCER_PIDFILE"; then
    if [[ "$before" == "$(file_sum "$PGBOUNCER_DIR/pgbouncer.ini")" ]] && pgbouncer_ready; then
      # The auth file may have changed (passwords re-set): RELOAD re-reads it.
      kill -HUP "$(pid_of "$PGBOUNCER_PIDFILE")"
      log "pgbouncer already running on 127.0.0.1:$PGBOUNCER_PORT"
      return 0
    fi
    pgbouncer_down
  fi
  if port_busy "$PGBOUNCER_PORT"; then
    die "port $PGBOUNCER_PORT is taken by another process: $(ss -Hltnp "sport = :$PGBOUNCER_PORT" | head -n1)"
  fi
  log "starting pgbouncer on 127.0.0.1:$PGBOUNCER_PORT (log $PG_LOG_DIR/pgbouncer.log)"
  as_postgres pgbouncer -d -q "$PGBOUNCER_DIR/pgbouncer.ini" ||
    die "pgbouncer failed to start; see $PG_LOG_DIR/pgbouncer.log"
  wait_until "$WAIT_PROXY" "pgbouncer on :$PGBOUNCER_PORT" pgbouncer_ready ||
    die "pgbouncer does not accept on :$PGBOUNCER_PORT; see $PG_LOG_DIR/pgbouncer.log"
}

pgbouncer_down() { stop_pidfile "$PGBOUNCER_PIDFILE" pgbouncer; }

pgbouncer_status() {
  if pid_alive "$PGBOUNCER_PIDFILE" && pgbouncer_ready; then
    status_line "pgbouncer" up "127.0.0.1:$PGBOUNCER_PORT (bench peer)"
  else
    status_line "pgbouncer" down "(127.0.0.1:$PGBOUNCER_PORT, started by ./dev bench)"
  fi
}
