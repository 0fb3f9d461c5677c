# shellcheck shell=bash
# `./dev up --redis cluster` / `./dev services --redis cluster`: a local Redis Cluster of 3 masters with
# one replica each on 127.0.0.1:$REDIS_CLUSTER_PORT..+5 (cluster bus on port + 100: Redis' default, port +
# 10000, lies in Linux's ephemeral range, where any outgoing connection may hold it), as ElastiCache in
# cluster mode with in-transit encryption and AUTH: TLS only (no plaintext port; the cluster bus and
# replication over TLS too; clients are not asked for a certificate) with a certificate signed by the dev
# CA (.dev/tls/redis.crt, SAN DNS:localhost, IP:127.0.0.1), and an ACL login: the default user is off, the
# user $REDIS_CLUSTER_USER's password (made once) is in .dev/redis-cluster/password, replicas log in to
# their masters with it. No persistence, state under .dev/redis-cluster/. Also the proxy config and the
# app's flags pointed at it. Sourced by ./dev after scripts/postgres.sh (the dev CA). The single plaintext
# Redis (:16379) stays the default and keeps running beside it (the test suites use it).

REDIS_CLUSTER_PORT="${PGS_REDIS_CLUSTER_PORT:-17000}"
REDIS_CLUSTER_DIR="$DEV_DIR/redis-cluster"
REDIS_CLUSTER_NODES=6
REDIS_CLUSTER_BUS_OFFSET=100
REDIS_CLUSTER_USER=pgsidecar
REDIS_CLUSTER_PASSWORD_FILE="$REDIS_CLUSTER_DIR/password"
REDIS_CLUSTER_CERT="$DEV_DIR/tls/redis.crt"
REDIS_CLUSTER_KEY="$DEV_DIR/tls/redis.key"
# Settings shared by every node, secrets included (masterauth), so they stay off the command line.
REDIS_CLUSTER_CONF="$REDIS_CLUSTER_DIR/node.conf"

redis_cluster_ports() { seq "$REDIS_CLUSTER_PORT" $((REDIS_CLUSTER_PORT + REDIS_CLUSTER_NODES - 1)); }
redis_cluster_pidfile() { echo "$REDIS_CLUSTER_DIR/redis-$1.pid"; }
redis_cluster_nodes_csv() { redis_cluster_ports | sed 's/^/127.0.0.1:/' | paste -sd, -; }

# redis_cluster_cli PORT ARGS...: redis-cli over TLS (verified against the dev CA), logged in as the ACL
# user; the password goes through the environment, never the command line. At most REDIS_CLI_TIMEOUT
# seconds (default 10): a TLS handshake with a plaintext server would wait for ever.
redis_cluster_cli() {
  local p="$1"
  shift
  REDISCLI_AUTH="$(cat "$REDIS_CLUSTER_PASSWORD_FILE" 2>/dev/null)" timeout "${REDIS_CLI_TIMEOUT:-10}" redis-cli -h 127.0.0.1 -p "$p" --tls \
    --cacert "$DEV_CA_COPY" --sni localhost --user "$REDIS_CLUSTER_USER" "$@"
}
redis_cluster_ping() { [[ "$(redis_cluster_cli "$1" ping 2>/dev/null)" == PONG ]]; }

# Every slot served, every master with a synced replica.
redis_cluster_ok() {
  local p info
  info="$(redis_cluster_cli "$REDIS_CLUSTER_PORT" cluster info 2>/dev/null | tr -d '\r')" || return 1
  grep -q '^cluster_state:ok' <<<"$info" || return 1
  [[ "$(sed -n 's/^cluster_slots_ok://p' <<<"$info")" == 16384 ]] || return 1
  for p in $(redis_cluster_ports); do
    if redis_cluster_cli "$p" role 2>/dev/null | head -n1 | grep -qx master; then
      [[ "$(redis_cluster_cli "$p" wait 1 200 2>/dev/null)" == 1 ]] || return 1
    fi
  done
}

# redis_cluster_secrets: the node certificate (made again when the dev CA no longer signs it), the ACL
# user's password (made once, kept across runs), the ACL file (only the password's SHA-256) and the
# shared node settings.
redis_cluster_secrets() {
  make_dev_tls
  if ! openssl verify -CAfile "$DEV_CA_COPY" "$REDIS_CLUSTER_CERT" >/dev/null 2>&1 || [[ ! -s "$REDIS_CLUSTER_KEY" ]]; then
    log "making the redis cluster's certificate $REDIS_CLUSTER_CERT (signed by the dev CA)"
    dev_sign_cert "$(dirname "$REDIS_CLUSTER_CERT")" redis >>"$LOG_DIR/dev-tls.log" 2>&1 ||
      die "making the redis certificate failed; see $LOG_DIR/dev-tls.log"
    chmod 0644 "$REDIS_CLUSTER_CERT"
    chmod 0600 "$REDIS_CLUSTER_KEY"
  fi
  if [[ ! -s "$REDIS_CLUSTER_PASSWORD_FILE" ]]; then
    (umask 077 && openssl rand -hex 24 >"$REDIS_CLUSTER_PASSWORD_FILE")
  fi
  chmod 0600 "$REDIS_CLUSTER_PASSWORD_FILE"
  local password sha
  password="$(cat "$REDIS_CLUSTER_PASSWORD_FILE")"
  sha="$(printf '%s' "$password" | sha256sum | cut -d' ' -f1)"
  (
    umask 077
    printf 'user default off\nuser %s on #%s ~* &* +@all\n' "$REDIS_CLUSTER_USER" "$sha" >"$REDIS_CLUSTER_DIR/users.acl"
    cat >"$REDIS_CLUSTER_CONF" <<CONF
# Written by ./dev (scripts/redis_cluster.sh) on every run; shared by every node of the dev Redis Cluster.
bind 127.0.0.1
port 0
tls-cluster yes
tls-replication yes
tls-cert-file $REDIS_CLUSTER_CERT
tls-key-file $REDIS_CLUSTER_KEY
tls-ca-cert-file $DEV_CA_COPY
tls-auth-clients no
aclfile $REDIS_CLUSTER_DIR/users.acl
masteruser $REDIS_CLUSTER_USER
masterauth $password
CONF
  )
}

redis_cluster_start_node() {
  local p="$1"
  if pid_alive "$(redis_cluster_pidfile "$p")" && redis_cluster_ping "$p"; then return 0; fi
  local bus=$((p + REDIS_CLUSTER_BUS_OFFSET))
  if port_busy "$p" || port_busy "$bus"; then
    die "port $p or its cluster bus port $bus is taken: $(ss -Hltnp "( sport = :$p or sport = :$bus )" | head -n1)"
  fi
  redis-server "$REDIS_CLUSTER_CONF" --tls-port "$p" --daemonize yes --cluster-enabled yes --cluster-port "$bus" \
    --cluster-config-file "$REDIS_CLUSTER_DIR/nodes-$p.conf" --cluster-node-timeout 2000 \
    --dir "$REDIS_CLUSTER_DIR" --pidfile "$(redis_cluster_pidfile "$p")" --logfile "$LOG_DIR/redis-cluster-$p.log" \
    --save '' --appendonly no --maxclients 10000 --maxmemory 128mb --maxmemory-policy volatile-lru \
    --repl-diskless-sync-delay 0 ||
    die "redis-server on :$p failed to start; see $LOG_DIR/redis-cluster-$p.log"
}

redis_cluster_up() {
  mkdir -p "$REDIS_CLUSTER_DIR"
  redis_cluster_secrets
  if redis_cluster_ok; then
    log "redis cluster already running on 127.0.0.1:$REDIS_CLUSTER_PORT-$((REDIS_CLUSTER_PORT + 5)) (TLS, user $REDIS_CLUSTER_USER)"
    return 0
  fi
  local p nodes=()
  # Nodes of ours that do not answer a TLS login (an earlier plaintext dev cluster, another password):
  # start the cluster afresh.
  for p in $(redis_cluster_ports); do
    if pid_alive "$(redis_cluster_pidfile "$p")" && ! redis_cluster_ping "$p"; then
      warn "redis cluster node :$p runs but does not answer over TLS as $REDIS_CLUSTER_USER; restarting the cluster"
      redis_cluster_down
      break
    fi
  done
  log "starting a redis cluster (3 masters + 3 replicas, TLS, ACL user $REDIS_CLUSTER_USER) on 127.0.0.1:$REDIS_CLUSTER_PORT-$((REDIS_CLUSTER_PORT + 5))"
  for p in $(redis_cluster_ports); do
    redis_cluster_start_node "$p"
    nodes+=("127.0.0.1:$p")
  done
  for p in $(redis_cluster_ports); do
    wait_until "$WAIT_REDIS" "redis cluster node :$p" redis_cluster_ping "$p" ||
      die "redis cluster node :$p does not answer PING; see $LOG_DIR/redis-cluster-$p.log"
  done
  # A node that already knows others (state kept from an earlier run) is not created again.
  if [[ "$(redis_cluster_cli "$REDIS_CLUSTER_PORT" cluster info | tr -d '\r' | sed -n 's/^cluster_known_nodes://p')" == 1 ]]; then
    REDIS_CLI_TIMEOUT=120 redis_cluster_cli "$REDIS_CLUSTER_PORT" --cluster create "${nodes[@]}" --cluster-replicas 1 --cluster-yes \
      >"$LOG_DIR/redis-cluster-create.log" 2>&1 ||
      die "redis-cli --cluster create failed; see $LOG_DIR/redis-cluster-create.log"
  fi
  wait_until "$((WAIT_REDIS * 2))" "the redis cluster to serve every slot with synced replicas" redis_cluster_ok ||
    die "the redis cluster is not healthy; see $LOG_DIR/redis-cluster-*.log and $(redis_cluster_cli_hint) cluster nodes"
}

redis_cluster_down() {
  local p
  for p in $(redis_cluster_ports); do
    if pid_alive "$(redis_cluster_pidfile "$p")"; then
      redis_cluster_cli "$p" shutdown nosave >/dev/null 2>&1 || true
      stop_pidfile "$(redis_cluster_pidfile "$p")" "redis cluster node :$p"
    fi
  done
  # No persistence: the node files would only name a cluster whose data is gone.
  rm -f "$REDIS_CLUSTER_DIR"/nodes-*.conf
}

redis_cluster_status() {
  local p up=0
  for p in $(redis_cluster_ports); do
    pid_alive "$(redis_cluster_pidfile "$p")" && up=$((up + 1))
  done
  ((up > 0)) || return 0
  if redis_cluster_ok; then
    status_line "redis cluster" up "127.0.0.1:$REDIS_CLUSTER_PORT-$((REDIS_CLUSTER_PORT + 5)) ($up nodes, TLS, user $REDIS_CLUSTER_USER)"
  else
    status_line "redis cluster" down "127.0.0.1:$REDIS_CLUSTER_PORT-$((REDIS_CLUSTER_PORT + 5)) ($up of 6 nodes running, not healthy)"
  fi
}

# redis_cluster_cli_hint: the redis-cli command line a person types to reach the cluster.
redis_cluster_cli_hint() {
  echo "REDISCLI_AUTH=\$(cat $REDIS_CLUSTER_PASSWORD_FILE) redis-cli -c --tls --cacert $DEV_CA_COPY --user $REDIS_CLUSTER_USER -p $REDIS_CLUSTER_PORT"
}

# redis_cluster_proxy_config SOURCE: writes the proxy config for the cluster (SOURCE with the [cache]
# keys that name a Redis replaced: redis_cluster, redis_nodes, TLS verify-full against the dev CA, the ACL
# user with its password file) and prints its path.
redis_cluster_proxy_config() {
  local src="$1" out="$RUN_DIR/pgsidecar-redis-cluster.toml" p node_list=""
  for p in $(redis_cluster_ports); do node_list+="${node_list:+, }\"127.0.0.1:$p\""; done
  # Relative file paths (certificates, CA files) are resolved against the config's own directory: the
  # copy lives elsewhere, so they are made absolute against the source's (config_paths_sed, lib.sh).
  awk -v nodes="$node_list" -v ca="$DEV_CA_COPY" -v user="$REDIS_CLUSTER_USER" -v pwfile="$REDIS_CLUSTER_PASSWORD_FILE" '
    /^\[/ { in_cache = ($0 ~ /^\[cache\][[:space:]]*$/) }
    in_cache && /^(redis_cluster|redis_nodes|redis_tls|redis_tls_ca_file|redis_tls_server_name|redis_user|redis_password|redis_password_file|redis_password_env)[[:space:]]*=/ { next }
    { print }
    /^\[cache\][[:space:]]*$/ {
      print "# Written by ./dev up --redis cluster: the dev Redis Cluster, TLS and an ACL login."
      print "redis_cluster = true"
      print "redis_nodes = [" nodes "]"
      print "redis_tls = \"verify-full\""
      print "redis_tls_ca_file = \"" ca "\""
      print "redis_tls_server_name = \"localhost\""
      print "redis_user = \"" user "\""
      print "redis_password_file = \"" pwfile "\""
    }
  ' "$src" | sed -e "$(config_paths_sed "$src")" >"$out.tmp"
  grep -q '^redis_cluster = true' "$out.tmp" || die "$src has no [cache] table to point at the redis cluster"
  mv "$out.tmp" "$out"
  echo "$out"
}

# redis_cluster_app_args: the flags that point flopods-api's rate limiter at the cluster, one per line.
redis_cluster_app_args() {
  printf '%s\n' --redis-cluster "$(redis_cluster_nodes_csv)" --redis-tls verify-full --redis-tls-ca "$DEV_CA_COPY" \
    --redis-tls-server-name localhost --redis-user "$REDIS_CLUSTER_USER" --redis-password-file "$REDIS_CLUSTER_PASSWORD_FILE"
}
