# shellcheck shell=bash
# The pgsidecar proxy as a background process of ./dev (pid .dev/run/pgsidecar.pid,
# log .dev/log/pgsidecar.log). Sourced by ./dev and bench/run.sh.

PROXY_BIN="${PGS_PROXY_BIN:-$BUILD_DIR/proxy/pgsidecar}"
PROXY_CONFIG="${PGS_PROXY_CONFIG:-$PGS_ROOT/conf/pgsidecar.toml}"

proxy_ready() { "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PROXY_PORT" -U "$DB_USER" -d "$DB_NAME" -t 2; }

# proxy_up: returns 2 (after a warning) when the binary or config is missing, so callers carry on; dies on
# any other failure.
proxy_up() {
  if ! managed_running pgsidecar && port_busy "$PROXY_PORT"; then
    # Someone runs their own proxy (a developer's build): use it rather than fail, but say so.
    if proxy_ready; then
      warn "port $PROXY_PORT is served by a process ./dev did not start; using it as is: $(ss -Hltnp "sport = :$PROXY_PORT" | head -n1)"
      return 0
    fi
    die "port $PROXY_PORT is taken by another process: $(ss -Hltnp "sport = :$PROXY_PORT" | head -n1)"
  fi
  if [[ ! -x "$PROXY_BIN" ]]; then
    warn "proxy binary $PROXY_BIN not built; skipping the proxy"
    return 2
  fi
  if [[ ! -f "$PROXY_CONFIG" ]]; then
    warn "proxy config $PROXY_CONFIG missing; skipping the proxy"
    return 2
  fi
  local check
  check="$("$PROXY_BIN" --check "$PROXY_CONFIG" 2>&1)" || {
    printf '%s\n' "$check" >&2
    die "pgsidecar --check $PROXY_CONFIG failed (errors above)"
  }
  managed_up pgsidecar "$(file_sum "$PROXY_BIN" "$PROXY_CONFIG")" "$WAIT_PROXY" proxy_ready \
    "$PROXY_BIN" --config "$PROXY_CONFIG"
}

proxy_down() { managed_down pgsidecar; }

proxy_status() {
  if proxy_ready; then
    status_line "pgsidecar" up "127.0.0.1:$PROXY_PORT, metrics http://127.0.0.1:$METRICS_PORT/metrics$(managed_running pgsidecar || echo ' (not started by ./dev)')"
  else
    status_line "pgsidecar" down "(127.0.0.1:$PROXY_PORT)"
  fi
}
