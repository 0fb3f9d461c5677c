# shellcheck shell=bash
# Test clients from npm (node-postgres, ...) in tests/clients/, installed when package.json exists.
# Sourced by ./dev.

CLIENTS_DIR="$PGS_ROOT/tests/clients"

clients_install() {
  [[ -f "$CLIENTS_DIR/package.json" ]] || return 0
  command -v npm >/dev/null || die "tests/clients/package.json exists but npm is not installed"
  local stamp="$CLIENTS_DIR/node_modules/.pgs-stamp" want
  want="$(file_sum "$CLIENTS_DIR/package.json" "$CLIENTS_DIR/package-lock.json")"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    log "npm test clients up to date"
    return 0
  fi
  local verb=install
  [[ -f "$CLIENTS_DIR/package-lock.json" ]] && verb=ci
  log "npm $verb in tests/clients (log $LOG_DIR/npm.log)"
  (cd "$CLIENTS_DIR" && npm "$verb" --no-audit --no-fund) >"$LOG_DIR/npm.log" 2>&1 ||
    die "npm $verb failed in tests/clients; see $LOG_DIR/npm.log"
  echo "$want" >"$stamp"
}
