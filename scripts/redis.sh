# shellcheck shell=bash
# Local Redis on 127.0.0.1:16379, no persistence, state under .dev/redis. Sourced by ./dev.

REDIS_PIDFILE="$DEV_DIR/redis/redis.pid"

redis_ready() { [[ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]; }

redis_up() {
  if pid_alive "$REDIS_PIDFILE" && redis_ready; then
    log "redis already running on 127.0.0.1:$REDIS_PORT"
    return 0
  fi
  if port_busy "$REDIS_PORT"; then
    die "port $REDIS_PORT is taken by another process: $(ss -Hltnp "sport = :$REDIS_PORT" | head -n1)"
  fi
  rm -f "$REDIS_PIDFILE"
  log "starting redis on 127.0.0.1:$REDIS_PORT (log $LOG_DIR/redis.log)"
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --daemonize yes \
    --dir "$DEV_DIR/redis" --pidfile "$REDIS_PIDFILE" --logfile "$LOG_DIR/redis.log" \
    --save '' --appendonly no --maxclients 10000 --maxmemory 256mb --maxmemory-policy volatile-lru \
    --notify-keyspace-events Ee ||
    die "redis-server failed to start; see $LOG_DIR/redis.log"
  wait_until "$WAIT_REDIS" "redis on :$REDIS_PORT" redis_ready ||
    die "redis does not answer PING on :$REDIS_PORT; see $LOG_DIR/redis.log"
}

redis_down() {
  if redis_ready && pid_alive "$REDIS_PIDFILE"; then
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  fi
  stop_pidfile "$REDIS_PIDFILE" redis
}

redis_status() {
  if pid_alive "$REDIS_PIDFILE" && redis_ready; then
    status_line "redis" up "127.0.0.1:$REDIS_PORT"
  else
    status_line "redis" down "(127.0.0.1:$REDIS_PORT)"
  fi
}
