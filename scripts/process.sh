# shellcheck shell=bash
# Long-running foreground programs (proxy, app) kept in the background by ./dev: one pid file, one log
# and one stamp per program under .dev/. The stamp names what the process was started from (binary and
# config checksums, arguments); a different stamp means "restart". Sourced by ./dev.

# file_sum FILE...: one checksum over the files' contents ("-" for a missing file).
file_sum() {
  local f
  for f in "$@"; do
    if [[ -f "$f" ]]; then sha256sum "$f" | cut -d' ' -f1; else echo -; fi
  done | sha256sum | cut -d' ' -f1
}

# managed_up NAME STAMP SECONDS READY CMD...: ensure CMD runs as NAME and READY succeeds. READY is a
# function name and its arguments in one word list ("proxy_ready 6433"), split on spaces.
# Keeps a ready process with the same stamp; restarts one whose stamp changed or that does not become
# ready within SECONDS; starts one that is down. Dies with the log tail if the process exits early.
managed_up() {
  local name="$1" stamp="$2" seconds="$3" ready="$4"
  shift 4
  local pidfile="$RUN_DIR/$name.pid" stampfile="$RUN_DIR/$name.stamp" logfile="$LOG_DIR/$name.log"
  if pid_alive "$pidfile"; then
    # shellcheck disable=SC2086  # READY is split into a function and its arguments
    if [[ "$(cat "$stampfile" 2>/dev/null)" == "$stamp" ]] &&
      wait_until "$seconds" "$name to be ready" $ready 2>/dev/null; then
      log "$name already running (pid $(pid_of "$pidfile"))"
      return 0
    fi
    log "restarting $name (binary, config or arguments changed, or not ready)"
    stop_pidfile "$pidfile" "$name"
  fi
  log "starting $name (log $logfile): $*"
  printf '\n=== %s: starting %s\n' "$(date -u +%FT%TZ)" "$*" >>"$logfile"
  # setsid: its own session, so an interrupted ./dev or a finished CI step does not take it down.
  setsid "$@" >>"$logfile" 2>&1 </dev/null &
  echo "$!" >"$pidfile"
  echo "$stamp" >"$stampfile"
  managed_wait "$name" "$seconds" "$ready"
}

# managed_wait NAME SECONDS READY: wait for readiness, failing fast when the process exits.
managed_wait() {
  local name="$1" seconds="$2" ready="$3"
  local pidfile="$RUN_DIR/$name.pid" logfile="$LOG_DIR/$name.log"
  local deadline=$((SECONDS + seconds))
  # shellcheck disable=SC2086  # READY is split into a function and its arguments
  until $ready >/dev/null 2>&1; do
    if ! pid_alive "$pidfile"; then
      tail -n 20 "$logfile" >&2
      rm -f "$pidfile"
      die "$name exited during start-up; see $logfile"
    fi
    if ((SECONDS >= deadline)); then
      tail -n 20 "$logfile" >&2
      die "$name not ready after ${seconds}s (still running, pid $(pid_of "$pidfile")); see $logfile"
    fi
    sleep 0.2
  done
  log "$name ready (pid $(pid_of "$pidfile"))"
}

managed_down() { stop_pidfile "$RUN_DIR/$1.pid" "$1" "${2:-30}"; }

managed_running() { pid_alive "$RUN_DIR/$1.pid"; }
