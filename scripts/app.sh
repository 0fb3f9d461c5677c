# shellcheck shell=bash
# The flopods-api companion app: migrate, seed once, serve on :8080 through the proxy; instance i of
# `./dev up --sidecars N` on APP_PORT + i through sidecar i (scripts/sidecars.sh). Sourced by ./dev.

APP_BIN="${PGS_APP_BIN:-$BUILD_DIR/app/flopods-api}"
# app_db [PORT]: the app's libpq connection string to the proxy on PORT (default sidecar 0's).
app_db() { echo "host=127.0.0.1 port=${1:-$PROXY_PORT} dbname=$DB_NAME user=$DB_USER password=$DB_PASSWORD"; }
APP_DB="$(app_db)"
# Output of `flopods-api seed` (it prints the users' tokens); its first line names the primary it seeded.
APP_SEED_FILE="$DEV_DIR/app/seed.txt"

# app_ready [PORT]: the app on PORT (default instance 0's) answers HTTP.
app_ready() {
  local code
  code="$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:${1:-$APP_PORT}/healthz" || true)"
  [[ -n "$code" && "$code" != 000 ]]
}

# The primary's system identifier: changes when .dev/pg is re-created, which invalidates the seed.
primary_system_id() {
  psql_local "$PRIMARY_PORT" postgres -At -c 'SELECT system_identifier FROM pg_control_system()'
}

app_seed() {
  local sysid
  sysid="$(primary_system_id)"
  if [[ -s "$APP_SEED_FILE" && "$(head -n1 "$APP_SEED_FILE")" == "# primary $sysid" ]]; then
    log "app already seeded (tokens in $APP_SEED_FILE)"
    return 0
  fi
  mkdir -p "$(dirname "$APP_SEED_FILE")"
  log "seeding 20 users"
  local out
  out="$("$APP_BIN" seed --users 20 --db "$APP_DB" 2>>"$LOG_DIR/flopods-api-seed.log")" ||
    die "flopods-api seed failed; see $LOG_DIR/flopods-api-seed.log"
  printf '# primary %s\n%s\n' "$sysid" "$out" >"$APP_SEED_FILE"
}

# app_up [I]: app instance I (default 0), through sidecar I; instance 0 migrates and seeds first. Returns
# 2 (after a warning) when the binary is missing, so callers carry on; dies on any other failure.
app_up() {
  local i="${1:-0}" name port
  if [[ ! -x "$APP_BIN" ]]; then
    warn "app binary $APP_BIN not built; skipping the app"
    return 2
  fi
  if ((i == 0)); then
    log "migrating the app schema"
    "$APP_BIN" migrate --db "$APP_DB" >>"$LOG_DIR/flopods-api-migrate.log" 2>&1 ||
      die "flopods-api migrate failed; see $LOG_DIR/flopods-api-migrate.log"
    app_seed
  fi
  name="$(sidecar_name flopods-api "$i")"
  port="$(sidecar_app_port "$i")"
  if ! managed_running "$name" && port_busy "$port"; then
    die "port $port is taken by another process: $(ss -Hltnp "sport = :$port" | head -n1)"
  fi
  local args=(serve --listen "127.0.0.1:$port" --db "$(app_db "$(sidecar_proxy_port "$i")")" --redis "127.0.0.1:$REDIS_PORT"
    --readyz "http://127.0.0.1:$(sidecar_metrics_port "$i")/readyz")
  # --redis cluster: the rate limiter uses the cluster too (TLS, the ACL user; scripts/redis_cluster.sh).
  if [[ "${REDIS_MODE:-single}" == cluster ]]; then
    local cluster_args
    mapfile -t cluster_args < <(redis_cluster_app_args)
    args+=("${cluster_args[@]}")
  fi
  managed_up "$name" "$(file_sum "$APP_BIN") ${args[*]}" "$WAIT_APP" "app_ready $port" "$APP_BIN" "${args[@]}"
}

app_down() { managed_down "$(sidecar_name flopods-api "${1:-0}")"; }

# A token printed by the seed ("token for user1@flopods.dev: fp_..."), for the curl example.
app_token() {
  [[ -s "$APP_SEED_FILE" ]] || return 0
  awk '/^token for / { print $NF; exit }' "$APP_SEED_FILE"
}

# app_status [I]
app_status() {
  local i="${1:-0}" name port
  name="$(sidecar_name flopods-api "$i")"
  port="$(sidecar_app_port "$i")"
  if app_ready "$port"; then
    status_line "$name" up "http://127.0.0.1:$port$(managed_running "$name" || echo ' (not started by ./dev)')"
  else
    status_line "$name" down "(127.0.0.1:$port)"
  fi
}
