# shellcheck shell=bash
# Local Postgres 15: a primary on :15432 and a streaming replica on :15433 under .dev/pg/.
# Sourced by ./dev after scripts/lib.sh. Every step is idempotent.

PRIMARY_DATA="$PG_STATE_DIR/pg/primary"
REPLICA_DATA="$PG_STATE_DIR/pg/replica"
REPLICA_SLOT=dev_replica
# The dev CA and the nodes' certificate (SAN DNS:localhost, IP:127.0.0.1), made once and reused. The
# proxy reads the CA's copy at a fixed repo-relative place, $DEV_DIR/tls/ca.crt (.dev/tls/ca.crt), which
# conf/pgsidecar.toml names relative to itself (server_tls_ca_file = "../.dev/tls/ca.crt"), and serves
# its clients with a copy of the nodes' certificate and key (.dev/tls/proxy.crt, proxy.key).
PG_TLS_DIR="$PG_STATE_DIR/tls"
DEV_CA_COPY="$DEV_DIR/tls/ca.crt"
DEV_PROXY_CERT="$DEV_DIR/tls/proxy.crt"
DEV_PROXY_KEY="$DEV_DIR/tls/proxy.key"

# psql_local PORT DB SQL...: superuser psql over the unix socket (pg_hba: local trust for postgres).
psql_local() {
  local port="$1" db="$2"
  shift 2
  as_postgres env PGOPTIONS="-c client_min_messages=warning" "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCK_DIR" -p "$port" -U postgres -d "$db" "$@"
}

pg_ready() { "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$1" -d postgres -t 2; }

pg_running() { as_postgres "$PG_BIN/pg_ctl" status -D "$1" >/dev/null 2>&1; }

# dev_sign_cert DIR NAME: DIR/NAME.key and DIR/NAME.crt, a certificate for DNS:localhost and IP:127.0.0.1
# signed by the dev CA ($PG_TLS_DIR/ca.crt, ca.key). Output goes to the caller's log.
dev_sign_cert() {
  local dir="$1" name="$2"
  openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout "$dir/$name.key" -out "$dir/$name.csr" &&
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$dir/$name.ext" &&
    openssl x509 -req -in "$dir/$name.csr" -CA "$PG_TLS_DIR/ca.crt" -CAkey "$PG_TLS_DIR/ca.key" -CAcreateserial \
      -days 3650 -extfile "$dir/$name.ext" -out "$dir/$name.crt" &&
    rm -f "$dir/$name.csr" "$dir/$name.ext"
}

# make_dev_tls: a CA and a server certificate for both nodes under $PG_TLS_DIR (kept once made; delete
# the directory to make new ones), and the CA's copy for the proxy and the tests.
make_dev_tls() {
  if [[ ! -s "$PG_TLS_DIR/server.crt" || ! -s "$PG_TLS_DIR/server.key" || ! -s "$PG_TLS_DIR/ca.crt" ]]; then
    log "making the dev CA and server certificate in $PG_TLS_DIR"
    install -d -m 0755 "$PG_TLS_DIR"
    (
      set -e
      cd "$PG_TLS_DIR"
      openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=pgsidecar-dev-ca \
        -keyout ca.key -out ca.crt
      dev_sign_cert "$PG_TLS_DIR" server
    ) >"$LOG_DIR/dev-tls.log" 2>&1 || die "making the dev certificates failed; see $LOG_DIR/dev-tls.log"
  fi
  chown postgres:postgres "$PG_TLS_DIR/server.key" "$PG_TLS_DIR/server.crt"
  chmod 0600 "$PG_TLS_DIR/server.key" "$PG_TLS_DIR/ca.key"
  chmod 0644 "$PG_TLS_DIR/server.crt" "$PG_TLS_DIR/ca.crt"
  dev_tls_copies
}

# dev_tls_copies: the CA's copy, and the proxy's certificate and key, from $PG_TLS_DIR into $DEV_DIR/tls.
dev_tls_copies() {
  install -d -m 0755 "$(dirname "$DEV_CA_COPY")"
  cmp -s "$PG_TLS_DIR/ca.crt" "$DEV_CA_COPY" || install -m 0644 "$PG_TLS_DIR/ca.crt" "$DEV_CA_COPY"
  # The proxy's own certificate for its clients ([tls] cert_file/key_file of conf/pgsidecar.toml): the
  # nodes' one (same SAN), readable by whoever runs ./dev and the proxy.
  cmp -s "$PG_TLS_DIR/server.crt" "$DEV_PROXY_CERT" || install -m 0644 "$PG_TLS_DIR/server.crt" "$DEV_PROXY_CERT"
  cmp -s "$PG_TLS_DIR/server.key" "$DEV_PROXY_KEY" || install -m 0600 "$PG_TLS_DIR/server.key" "$DEV_PROXY_KEY"
}

# write_node_conf DATADIR PORT: settings owned by ./dev, kept in dev.conf (included from
# postgresql.conf) and rewritten on every run; a changed value takes effect on restart.
write_node_conf() {
  local data="$1" port="$2"
  cat >"$data/dev.conf" <<CONF
# Written by ./dev on every run; edit scripts/postgres.sh instead.
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$PG_SOCK_DIR'
max_connections = 400
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track = all
password_encryption = 'scram-sha-256'
# logical: the proxy's cache invalidation reads a logical decoding slot ([cache] invalidation_stream).
wal_level = logical
# A slot nobody reads (every sidecar stopped) keeps at most this much WAL; then Postgres invalidates it
# and the next stream leader creates it again (and invalidates every cached table once).
max_slot_wal_keep_size = 1GB
max_wal_senders = 10
max_replication_slots = 10
hot_standby = on
hot_standby_feedback = on
# Dev/CI data is disposable: skip fsync so tests and pgbench -i do not wait on the disk.
fsync = off
full_page_writes = off
log_line_prefix = '%m [%p] %q%u@%d '
log_min_messages = warning
# TLS (reloadable: a running node takes it on pg_reload_conf). Plaintext stays allowed except for the
# TLS-only role (pg_hba.conf).
ssl = on
ssl_cert_file = '$PG_TLS_DIR/server.crt'
ssl_key_file = '$PG_TLS_DIR/server.key'
ssl_min_protocol_version = 'TLSv1.2'
CONF
  chown postgres:postgres "$data/dev.conf"
  grep -q "^include_if_exists = 'dev.conf'" "$data/postgresql.conf" ||
    echo "include_if_exists = 'dev.conf'" >>"$data/postgresql.conf"
}

write_hba() {
  local data="$1"
  cat >"$data/pg_hba.conf" <<HBA
# Written by ./dev. TYPE DATABASE USER ADDRESS METHOD
local   all          postgres                    trust
local   all          all                         scram-sha-256
# $TLS_ONLY_USER logs in over TLS only: its plaintext attempts match the reject line.
hostssl all          $TLS_ONLY_USER 127.0.0.1/32 scram-sha-256
host    all          $TLS_ONLY_USER 127.0.0.1/32 reject
host    all          all          127.0.0.1/32   scram-sha-256
host    replication  all          127.0.0.1/32   scram-sha-256
HBA
  chown postgres:postgres "$data/pg_hba.conf"
}

init_primary() {
  [[ -f "$PRIMARY_DATA/PG_VERSION" ]] && return 0
  log "initdb primary in $PRIMARY_DATA"
  rm -rf "$PRIMARY_DATA"
  install -d -o postgres -g postgres -m 0700 "$PRIMARY_DATA"
  local pwfile="$PG_STATE_DIR/pg/.pwfile"
  printf '%s\n' "$SUPERUSER_PASSWORD" >"$pwfile"
  chown postgres:postgres "$pwfile"
  chmod 0600 "$pwfile"
  as_postgres "$PG_BIN/initdb" -D "$PRIMARY_DATA" -U postgres --pwfile="$pwfile" \
    --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 \
    >"$LOG_DIR/initdb-primary.log" 2>&1 || die "initdb failed; see $LOG_DIR/initdb-primary.log"
  rm -f "$pwfile"
}

# start_node NAME DATADIR PORT: start if not running, then wait for readiness with a deadline.
start_node() {
  local name="$1" data="$2" port="$3" logfile="$PG_LOG_DIR/pg-$1.log"
  if pg_running "$data"; then
    wait_until "$WAIT_PG" "postgres $name on :$port" pg_ready "$port" ||
      die "postgres $name runs but does not accept on :$port; see $logfile"
    log "postgres $name already running on 127.0.0.1:$port"
    return 0
  fi
  if port_busy "$port"; then
    die "port $port is taken by another process (not $data): $(ss -Hltnp "sport = :$port" | head -n1)"
  fi
  touch "$logfile"
  chown postgres:postgres "$logfile"
  log "starting postgres $name on 127.0.0.1:$port (log $logfile)"
  as_postgres "$PG_BIN/pg_ctl" start -D "$data" -l "$logfile" -w -t "$WAIT_PG" >/dev/null ||
    die "pg_ctl start failed for $name; last log lines:
$(tail -n 20 "$logfile")"
  wait_until "$WAIT_PG" "postgres $name on :$port" pg_ready "$port" ||
    die "postgres $name does not accept on :$port; see $logfile"
}

# restart_if_pending NAME DATADIR PORT: a node that runs with an older wal_level than dev.conf asks for
# (a checkout that ran ./dev before the cache's invalidation stream needed "logical") is restarted, then
# waited for. wal_level only takes effect at start.
restart_if_pending() {
  local name="$1" data="$2" port="$3" running
  running="$(psql_local "$port" postgres -At -c "SHOW wal_level")"
  if [[ "$running" == logical ]]; then
    psql_local "$port" postgres -At -c "SELECT pg_reload_conf()" >/dev/null  # dev.conf's other settings
    return 0
  fi
  log "restarting postgres $name: wal_level $running -> logical"
  as_postgres "$PG_BIN/pg_ctl" restart -D "$data" -l "$PG_LOG_DIR/pg-$name.log" -m fast -w -t "$WAIT_PG" >/dev/null ||
    die "pg_ctl restart failed for $name; see $PG_LOG_DIR/pg-$name.log"
  wait_until "$WAIT_PG" "postgres $name on :$port" pg_ready "$port" ||
    die "postgres $name does not accept on :$port; see $PG_LOG_DIR/pg-$name.log"
}

# Roles, database and extensions; safe to re-run (passwords are re-set every time).
provision_primary() {
  psql_local "$PRIMARY_PORT" postgres <<SQL
ALTER ROLE postgres PASSWORD '$SUPERUSER_PASSWORD';
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$DB_USER') THEN
    CREATE ROLE $DB_USER LOGIN;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$MONITOR_USER') THEN
    CREATE ROLE $MONITOR_USER LOGIN;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$REPLICATION_USER') THEN
    CREATE ROLE $REPLICATION_USER LOGIN REPLICATION;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$TLS_ONLY_USER') THEN
    CREATE ROLE $TLS_ONLY_USER LOGIN;
  END IF;
END
\$\$;
ALTER ROLE $TLS_ONLY_USER LOGIN PASSWORD '$TLS_ONLY_PASSWORD';
ALTER ROLE $DB_USER LOGIN PASSWORD '$DB_PASSWORD';
ALTER ROLE $MONITOR_USER LOGIN PASSWORD '$MONITOR_PASSWORD';
ALTER ROLE $REPLICATION_USER LOGIN REPLICATION PASSWORD '$REPLICATION_PASSWORD';
GRANT pg_read_all_stats, pg_signal_backend TO $DB_USER;
GRANT pg_monitor TO $MONITOR_USER;
-- The cache's invalidation stream logs in as the monitor role: it reads a logical replication slot.
ALTER ROLE $MONITOR_USER REPLICATION;
SELECT 'CREATE DATABASE $DB_NAME OWNER $DB_USER'
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = '$DB_NAME') \gexec
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
SQL
  psql_local "$PRIMARY_PORT" "$DB_NAME" -c 'CREATE EXTENSION IF NOT EXISTS pg_stat_statements;'
  provision_auth_query
}

# auth_query (conf/pgsidecar.toml [proxy] auth_user): the role the proxy looks verifiers up as, and the
# SECURITY DEFINER function it calls, in every database the proxy serves in dev (flopods) and in
# postgres. The role needs no superuser: only EXECUTE on the function, which reads pg_authid as its
# owner (postgres). Safe to re-run.
provision_auth_query() {
  psql_local "$PRIMARY_PORT" postgres <<SQL
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$AUTH_USER') THEN
    CREATE ROLE $AUTH_USER LOGIN;
  END IF;
END
\$\$;
ALTER ROLE $AUTH_USER LOGIN PASSWORD '$AUTH_PASSWORD';
SQL
  local db
  for db in postgres "$DB_NAME"; do
    psql_local "$PRIMARY_PORT" "$db" <<SQL
CREATE SCHEMA IF NOT EXISTS pgsidecar AUTHORIZATION postgres;
-- A role that may log in, with its password unless it expired (as pg_shadow shows it); no row for others.
CREATE OR REPLACE FUNCTION pgsidecar.user_lookup(i_username text, OUT usename name, OUT passwd text)
RETURNS SETOF record LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS \$\$
  SELECT rolname, CASE WHEN rolvaliduntil IS NULL OR rolvaliduntil > now() THEN rolpassword END
  FROM pg_catalog.pg_authid WHERE rolname = i_username AND rolcanlogin
\$\$;
REVOKE ALL ON FUNCTION pgsidecar.user_lookup(text) FROM PUBLIC;
GRANT USAGE ON SCHEMA pgsidecar TO $AUTH_USER;
GRANT EXECUTE ON FUNCTION pgsidecar.user_lookup(text) TO $AUTH_USER;
SQL
  done
}

init_replica() {
  [[ -f "$REPLICA_DATA/PG_VERSION" ]] && return 0
  log "pg_basebackup replica into $REPLICA_DATA"
  rm -rf "$REPLICA_DATA"
  install -d -o postgres -g postgres -m 0700 "$REPLICA_DATA"
  # A slot left by an earlier, deleted replica would make -C fail: drop it if nobody uses it.
  psql_local "$PRIMARY_PORT" postgres -c "SELECT pg_drop_replication_slot(slot_name)
    FROM pg_replication_slots WHERE slot_name = '$REPLICA_SLOT' AND NOT active;" >/dev/null
  as_postgres env PGPASSWORD="$REPLICATION_PASSWORD" PGSSLMODE=disable "$PG_BIN/pg_basebackup" \
    -h 127.0.0.1 -p "$PRIMARY_PORT" -U "$REPLICATION_USER" -D "$REPLICA_DATA" \
    -R -X stream -C -S "$REPLICA_SLOT" -c fast >"$LOG_DIR/basebackup.log" 2>&1 ||
    die "pg_basebackup failed; see $LOG_DIR/basebackup.log"
}

replica_streaming() {
  local state
  state="$(psql_local "$REPLICA_PORT" postgres -At -c \
    "SELECT pg_is_in_recovery() AND EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming')")"
  [[ "$state" == t ]]
}

postgres_up() {
  make_dev_tls
  init_primary
  write_node_conf "$PRIMARY_DATA" "$PRIMARY_PORT"
  write_hba "$PRIMARY_DATA"
  start_node primary "$PRIMARY_DATA" "$PRIMARY_PORT"
  restart_if_pending primary "$PRIMARY_DATA" "$PRIMARY_PORT"
  provision_primary
  init_replica
  write_node_conf "$REPLICA_DATA" "$REPLICA_PORT"
  write_hba "$REPLICA_DATA"
  start_node replica "$REPLICA_DATA" "$REPLICA_PORT"
  restart_if_pending replica "$REPLICA_DATA" "$REPLICA_PORT"
  wait_until "$WAIT_PG" "the replica to stream from the primary" replica_streaming ||
    die "replica on :$REPLICA_PORT is up but not streaming; see $PG_LOG_DIR/pg-replica.log"
}

stop_node() {
  local name="$1" data="$2"
  [[ -f "$data/PG_VERSION" ]] || return 0
  if pg_running "$data"; then
    log "stopping postgres $name"
    as_postgres "$PG_BIN/pg_ctl" stop -D "$data" -m fast -w -t 60 >/dev/null ||
      warn "pg_ctl stop $name failed"
  fi
}

postgres_down() {
  stop_node replica "$REPLICA_DATA"
  stop_node primary "$PRIMARY_DATA"
}

postgres_status() {
  local name data port
  for name in primary replica; do
    if [[ $name == primary ]]; then data="$PRIMARY_DATA" port="$PRIMARY_PORT"
    else data="$REPLICA_DATA" port="$REPLICA_PORT"; fi
    if pg_running "$data" && pg_ready "$port"; then
      status_line "postgres $name" up "127.0.0.1:$port"
    else
      status_line "postgres $name" down "(127.0.0.1:$port)"
    fi
  done
}
