# shellcheck shell=bash
# `./dev up --redis cluster` / `./dev services --redis cluster`: a local Redis Cluster of 3 masters with
# one replica each on 127.0.0.1:$REDIS_CLUSTER_PORT..+5 (cluster bus on port + 10000), no persistence,
# state under .dev/redis-cluster/, and a proxy config pointed at it ([cache] redis_cluster = true,
# redis_nodes = ...). Sourced by ./dev. The single Redis (:16379) stays the default and keeps running
# beside it (the test suites use it).

REDIS_CLUSTER_PORT="${PGS_REDIS_CLUSTER_PORT:-17000}"
REDIS_CLUSTER_DIR="$DEV_DIR/redis-cluster"
REDIS_CLUSTER_NODES=6

redis_cluster_ports() { seq "$REDIS_CLUSTER_PORT" $((REDIS_CLUSTER_PORT + REDIS_CLUSTER_NODES - 1)); }
redis_cluster_pidfile() { echo "$REDIS_CLUSTER_DIR/redis-$1.pid"; }
redis_cluster_ping() { [[ "$(redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null)" == PONG ]]; }

# Every slot served, every master with a synced replica.
redis_cluster_ok() {
  local p
  redis-cli -h 127.0.0.1 -p "$REDIS_CLUSTER_PORT" cluster info 2>/dev/null | grep -q '^cluster_state:ok' || return 1
  [[ "$(redis-cli -h 127.0.0.1 -p "$REDIS_CLUSTER_PORT" cluster info | tr -d '\r' | sed -n 's/^cluster_slots_ok://p')" == 16384 ]] ||
    return 1
  for p in $(redis_cluster_ports); do
    if redis-cli -h 127.0.0.1 -p "$p" role 2>/dev/null | head -n1 | grep -qx master; then
      [[ "$(redis-cli -h 127.0.0.1 -p "$p" wait 1 200 2>/dev/null)" == 1 ]] || return 1
    fi
  done
}

redis_cluster_start_node() {
  local p="$1"
  if pid_alive "$(redis_cluster_pidfile "$p")" && redis_cluster_ping "$p"; then return 0; fi
  if port_busy "$p" || port_busy $((p + 10000)); then
    die "port $p or its cluster bus port $((p + 10000)) is taken: $(ss -Hltnp "( sport = :$p or sport = :$((p + 10000)) )" | head -n1)"
  fi
  redis-server --bind 127.0.0.1 --port "$p" --daemonize yes --cluster-enabled yes \
    --cluster-config-file "$REDIS_CLUSTER_DIR/nodes-$p.conf" --cluster-node-timeout 2000 \
    --dir "$REDIS_CLUSTER_DIR" --pidfile "$(redis_cluster_pidfile "$p")" --logfile "$LOG_DIR/redis-cluster-$p.log" \
    --save '' --appendonly no --maxclients 10000 --maxmemory 128mb --maxmemory-policy volatile-lru ||
    die "redis-server on :$p failed to start; see $LOG_DIR/redis-cluster-$p.log"
}

redis_cluster_up() {
  mkdir -p "$REDIS_CLUSTER_DIR"
  if redis_cluster_ok; then
    log "redis cluster already running on 127.0.0.1:$REDIS_CLUSTER_PORT-$((REDIS_CLUSTER_PORT + 5))"
    return 0
  fi
  local p nodes=()
  log "starting a redis cluster (3 masters + 3 replicas) on 127.0.0.1:$REDIS_CLUSTER_PORT-$((REDIS_CLUSTER_PORT + 5))"
  for p in $(redis_cluster_ports); do
    redis_cluster_start_node "$p"
    nodes+=("127.0.0.1:$p")
  done
  for p in $(redis_cluster_ports); do
    wait_until "$WAIT_REDIS" "redis cluster node :$p" redis_cluster_ping "$p" ||
      die "redis cluster node :$p does not answer PING; see $LOG_DIR/redis-cluster-$p.log"
  done
  # A node that already knows others (state kept from an earlier run) is not created again.
  if [[ "$(redis-cli -h 127.0.0.1 -p "$REDIS_CLUSTER_PORT" cluster info | tr -d '\r' | sed -n 's/^cluster_known_nodes://p')" == 1 ]]; then
    redis-cli --cluster create "${nodes[@]}" --cluster-replicas 1 --cluster-yes >"$LOG_DIR/redis-cluster-create.log" 2>&1 ||
      die "redis-cli --cluster create failed; see $LOG_DIR/redis-cluster-create.log"
  fi
  wait_until "$((WAIT_REDIS * 2))" "the redis cluster to serve every slot with synced replicas" redis_cluster_ok ||
    die "the redis cluster is not healthy; see $LOG_DIR/redis-cluster-*.log and redis-cli -p $REDIS_CLUSTER_PORT cluster nodes"
}

redis_cluster_down() {
  local p
  for p in $(redis_cluster_ports); do
    if pid_alive "$(redis_cluster_pidfile "$p")"; then
      redis-cli -h 127.0.0.1 -p "$p" shutdown nosave >/dev/null 2>&1 || true
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
    status_line "redis cluster" up "127.0.0.1:$REDIS_CLUSTER_PORT-$((REDIS_CLUSTER_PORT + 5)) ($up nodes)"
  else
    status_line "redis cluster" down "127.0.0.1:$REDIS_CLUSTER_PORT-$((REDIS_CLUSTER_PORT + 5)) ($up of 6 nodes running, not healthy)"
  fi
}

# redis_cluster_proxy_config SOURCE: writes the proxy config for the cluster (SOURCE with redis_cluster
# and redis_nodes set at the top of [cache]) and prints its path.
redis_cluster_proxy_config() {
  local src="$1" out="$RUN_DIR/pgsidecar-redis-cluster.toml" p nodes="" dir
  for p in $(redis_cluster_ports); do nodes+="${nodes:+, }\"127.0.0.1:$p\""; done
  # Relative file paths (certificates, CA files) are resolved against the config's own directory: the
  # copy lives elsewhere, so they are made absolute against the source's.
  dir="$(cd "$(dirname "$src")" && pwd)"
  awk -v nodes="$nodes" '
    { print }
    /^\[cache\][[:space:]]*$/ { print "# Written by ./dev up --redis cluster."; print "redis_cluster = true"; print "redis_nodes = [" nodes "]" }
  ' "$src" | sed "s#^\([a-z_]*_file\) = \"\([^/\"][^\"]*\)\"#\1 = \"$dir/\2\"#" >"$out.tmp"
  grep -q '^redis_cluster = true' "$out.tmp" || die "$src has no [cache] table to point at the redis cluster"
  mv "$out.tmp" "$out"
  echo "$out"
}
