# shellcheck shell=bash
# The pgsidecar proxy as a background process of ./dev (pid .dev/run/pgsidecar.pid,
# log .dev/log/pgsidecar.log). Sourced by ./dev and bench/run.sh.

PROXY_BIN="${PGS_PROXY_BIN:-$BUILD_DIR/proxy/pgsidecar}"
PROXY_CONFIG="${PGS_PROXY_CONFIG:-$PGS_ROOT/conf/pgsidecar.toml}"

# proxy_ready [PORT]: the proxy on PORT (default sidecar 0's) accepts a login.
proxy_ready() { "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "${1:-$PROXY_PORT}" -U "$DB_USER" -d "$DB_NAME" -t 2; }

# proxy_up [I]: sidecar I's proxy (default 0: the dev proxy; scripts/sidecars.sh). Returns 2 (after a
# warning) when the binary or config is missing, so callers carry on; dies on any other failure.
proxy_up() {
  local i="${1:-0}" name port config
  name="$(sidecar_name pgsidecar "$i")"
  port="$(sidecar_proxy_port "$i")"
  if ! managed_running "$name" && port_busy "$port"; then
    # Someone runs their own proxy (a developer's build): use it rather than fail, but say so.
    if proxy_ready "$port"; then
      warn "port $port is served by a process ./dev did not start; using it as is: $(ss -Hltnp "sport = :$port" | head -n1)"
      return 0
    fi
    die "port $port is taken by another process: $(ss -Hltnp "sport = :$port" | head -n1)"
  fi
  if [[ ! -x "$PROXY_BIN" ]]; then
    warn "proxy binary $PROXY_BIN not built; skipping the proxy"
    return 2
  fi
  if [[ ! -f "$PROXY_CONFIG" ]]; then
    warn "proxy config $PROXY_CONFIG missing; skipping the proxy"
    return 2
  fi
  config="$(sidecar_config "$i")"
  local check
  check="$("$PROXY_BIN" --check "$config" 2>&1)" || {
    printf '%s\n' "$check" >&2
    die "pgsidecar --check $config failed (errors above)"
  }
  managed_up "$name" "$(file_sum "$PROXY_BIN" "$config")" "$WAIT_PROXY" "proxy_ready $port" \
    "$PROXY_BIN" --config "$config"
}

proxy_down() { managed_down "$(sidecar_name pgsidecar "${1:-0}")"; }

# proxy_status [I]
proxy_status() {
  local i="${1:-0}" name port
  name="$(sidecar_name pgsidecar "$i")"
  port="$(sidecar_proxy_port "$i")"
  if proxy_ready "$port"; then
    status_line "$name" up "127.0.0.1:$port, metrics http://127.0.0.1:$(sidecar_metrics_port "$i")/metrics$(managed_running "$name" || echo ' (not started by ./dev)')"
  else
    status_line "$name" down "(127.0.0.1:$port)"
  fi
}
