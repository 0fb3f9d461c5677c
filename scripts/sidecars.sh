# shellcheck shell=bash
# `./dev up --sidecars N`: N pgsidecar processes, each with its own flopods-api instance, as the platform
# runs them (one sidecar beside each app instance), all on the same Postgres primary and replica and the
# same Redis or Redis Cluster: one fleet, one result cache, one invalidation stream leader.
#
# Sidecar 0 is the dev proxy and app as ever (ports PROXY_PORT, METRICS_PORT, APP_PORT; processes
# pgsidecar and flopods-api). Sidecar i (1..N-1) listens on each of those ports plus i, with its own
# config .dev/run/pgsidecar-i.toml (PROXY_CONFIG with listen_port and metrics_listen changed), its admin
# console on its own listener, processes pgsidecar-i and flopods-api-i (pid files .dev/run/NAME.pid, logs
# .dev/log/NAME.log). PGS_CACHE_KEY_PREFIX and PGS_STREAM_SLOT, when set, replace [cache] key_prefix and
# stream_slot in every sidecar's config (sidecar 0's too): a second fleet on the same Redis and primary
# then has a cache and a stream leader of its own. Sourced by ./dev and bench/.

SIDECARS_MAX=16
SIDECARS=1  # --sidecars N

sidecar_name() { if (($2 == 0)); then echo "$1"; else echo "$1-$2"; fi; }
sidecar_proxy_port() { echo $((PROXY_PORT + $1)); }
sidecar_metrics_port() { echo $((METRICS_PORT + $1)); }
sidecar_app_port() { echo $((APP_PORT + $1)); }

# parse_sidecars VALUE: sets SIDECARS (1..SIDECARS_MAX).
parse_sidecars() {
  if ! [[ "$1" =~ ^[0-9]{1,3}$ ]] || ((10#$1 < 1 || 10#$1 > SIDECARS_MAX)); then
    die "--sidecars takes 1..$SIDECARS_MAX, not '$1'"
  fi
  # shellcheck disable=SC2034  # read by ./dev
  SIDECARS=$((10#$1))
}

# sidecar_config I: the config sidecar I runs with (printed). PROXY_CONFIG itself when it already says
# the sidecar's ports and nothing else is to change (the dev proxy as ever); else a copy in RUN_DIR.
sidecar_config() {
  local i="$1" port metrics out
  [[ "${PGS_STREAM_SLOT:-}" =~ ^[a-z0-9_]{0,40}$ ]] || die "PGS_STREAM_SLOT takes [a-z0-9_], 1..40 bytes, not '$PGS_STREAM_SLOT'"
  [[ "${PGS_CACHE_KEY_PREFIX:-}" =~ ^[A-Za-z0-9:._-]{0,64}$ ]] ||
    die "PGS_CACHE_KEY_PREFIX takes [A-Za-z0-9:._-], up to 64 bytes, not '$PGS_CACHE_KEY_PREFIX'"
  port="$(sidecar_proxy_port "$i")"
  metrics="127.0.0.1:$(sidecar_metrics_port "$i")"
  if grep -qx "listen_port = $port" "$PROXY_CONFIG" && grep -qx "metrics_listen = \"$metrics\"" "$PROXY_CONFIG" &&
    [[ -z "${PGS_CACHE_KEY_PREFIX:-}${PGS_STREAM_SLOT:-}" && "$DEV_DIR" == "$PGS_ROOT/.dev" ]]; then
    echo "$PROXY_CONFIG"
    return 0
  fi
  out="$RUN_DIR/$(sidecar_name pgsidecar "$i").toml"
  awk -v port="$port" -v metrics="$metrics" -v prefix="${PGS_CACHE_KEY_PREFIX:-}" -v slot="${PGS_STREAM_SLOT:-}" '
    NR == 1 { print "# Written by ./dev from " FILENAME " for sidecar '"$i"' (scripts/sidecars.sh)." }
    /^listen_port = / { print "listen_port = " port; next }
    /^metrics_listen = / { print "metrics_listen = \"" metrics "\""; next }
    /^key_prefix = / && prefix != "" { print "key_prefix = \"" prefix "\""; next }
    /^stream_slot = / && slot != "" { print "stream_slot = \"" slot "\""; next }
    { print }' "$PROXY_CONFIG" | sed -e "$(config_paths_sed "$PROXY_CONFIG")" >"$out.tmp"
  mv "$out.tmp" "$out"
  echo "$out"
}

# sidecars_stream_slot: the fleet's stream slot, PGS_STREAM_SLOT_<database> for the one database the dev
# config serves. Exactly that name: a prefix match would take another fleet's too ("a" and "a_b" share "a_").
sidecars_stream_slot() { echo "${PGS_STREAM_SLOT}_${DB_NAME}"; }

# sidecars_stream_slots_active: whether a walsender reads the fleet's stream slot now (1 or 0; "" when
# the primary cannot be asked).
sidecars_stream_slots_active() {
  psql_local "$PRIMARY_PORT" postgres -At -c \
    "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '$(sidecars_stream_slot)' AND active" 2>/dev/null
}
sidecars_stream_slots_idle() { [[ "$(sidecars_stream_slots_active)" == 0 ]]; }

# sidecars_drop_stream_slots: with PGS_STREAM_SLOT (a fleet of its own on a primary that outlives it,
# PGS_SERVICES=running), ./dev down drops the slots its stream leader made, once their walsender is gone:
# nobody would read them again, and a slot keeps WAL.
sidecars_drop_stream_slots() {
  [[ -n "${PGS_STREAM_SLOT:-}" ]] || return 0
  local slot dropped
  slot="$(sidecars_stream_slot)"
  wait_until "$WAIT_PROXY" "the stream slot $slot to be released" sidecars_stream_slots_idle ||
    warn "the stream slot $slot is still read; not dropped"
  dropped="$(psql_local "$PRIMARY_PORT" postgres -At -c \
    "SELECT slot_name FROM (SELECT slot_name, pg_drop_replication_slot(slot_name) FROM pg_replication_slots
     WHERE slot_name = '$slot' AND NOT active) AS dropped")" || warn "dropping the stream slot $slot failed"
  if [[ -n "$dropped" ]]; then log "dropped the stream slots: ${dropped//$'\n'/, }"; fi
}

# sidecars_extra: the indexes above 0 that have a pid file (a sidecar or app of this or an earlier run).
sidecars_extra() {
  local f n
  for f in "$RUN_DIR"/pgsidecar-*.pid "$RUN_DIR"/flopods-api-*.pid; do
    [[ -e "$f" ]] || continue
    n="${f##*-}"
    n="${n%.pid}"
    [[ "$n" =~ ^[0-9]+$ ]] && echo "$n"
  done | sort -un
}

# sidecars_running: the indexes of the sidecars whose proxy ./dev runs now (0 first).
sidecars_running() {
  local i
  managed_running pgsidecar && echo 0
  for i in $(sidecars_extra); do
    if managed_running "pgsidecar-$i"; then echo "$i"; fi
  done
}

# sidecar_down I: sidecar I's app, then its proxy.
sidecar_down() {
  app_down "$1"
  proxy_down "$1"
}

# sidecars_trim N: stops the sidecars (and apps) numbered N and above, left by an earlier, larger run.
sidecars_trim() {
  local i
  for i in $(sidecars_extra); do
    if ((i >= $1)); then sidecar_down "$i"; fi
  done
}

# sidecars_each N START STATUS: START i (proxy_up, app_up) for i = 0..N-1, each in a subshell (die stays
# in it); the variable named STATUS gets the first failure (0 up, 2 not built, else failed).
sidecars_each() {
  local n="$1" start="$2" i rc first=0
  for ((i = 0; i < n; i++)); do
    rc=0
    ("$start" "$i") || rc=$?
    if ((first == 0)); then first=$rc; fi
  done
  printf -v "$3" '%s' "$first"
}

# sidecar_metric I NAME: the value of the unlabelled series NAME on sidecar I's /metrics ("" if none).
sidecar_metric() {
  curl -s -m 2 "http://127.0.0.1:$(sidecar_metrics_port "$1")/metrics" 2>/dev/null | awk -v m="$2" '$1 == m { print $2 }'
}

# sidecars_stream_state N: "leaders live" over sidecars 0..N-1, from pgsidecar_cache_stream_leader (1 on
# the sidecar holding the invalidation stream's lease) and pgsidecar_cache_stream_live (1 on every
# sidecar that sees the leader's heartbeat).
sidecars_stream_state() {
  local i leaders=0 live=0
  for ((i = 0; i < $1; i++)); do
    [[ "$(sidecar_metric "$i" pgsidecar_cache_stream_leader)" == 1 ]] && leaders=$((leaders + 1))
    [[ "$(sidecar_metric "$i" pgsidecar_cache_stream_live)" == 1 ]] && live=$((live + 1))
  done
  echo "$leaders $live"
}

# sidecars_one_leader N: exactly one of sidecars 0..N-1 leads the stream, and all N see it live.
sidecars_one_leader() { [[ "$(sidecars_stream_state "$1")" == "1 $1" ]]; }

# sidecars_check_leader N: for more than one sidecar, when the fleet's config turns the invalidation
# stream on, waits until exactly one sidecar leads it and every one sees it live; returns 1 (after a
# message) if that does not happen. (One sidecar alone may share its Redis with a proxy ./dev did not
# start, which may lead: nothing is checked then.)
sidecars_check_leader() {
  local n="$1" config i
  ((n > 1)) || return 0
  config="$(sidecar_config 0)"
  grep -qx 'invalidation_stream = true' "$config" || return 0
  if ! wait_until "$WAIT_PROXY" "exactly one invalidation stream leader among $n sidecars" sidecars_one_leader "$n"; then
    warn "stream leaders, live sidecars: $(sidecars_stream_state "$n") (of $n)"
    return 1
  fi
  for ((i = 0; i < n; i++)); do
    if [[ "$(sidecar_metric "$i" pgsidecar_cache_stream_leader)" == 1 ]]; then
      log "invalidation stream: sidecar $i leads, all $n sidecars see it live"
    fi
  done
}

# sidecars_status: ./dev status lines of the sidecars above 0 that have a pid file.
sidecars_status() {
  local i
  for i in $(sidecars_extra); do
    proxy_status "$i"
    app_status "$i"
  done
}

# sidecars_info N: where sidecars 1..N-1 listen (for ./dev up's summary), each line after a newline.
sidecars_info() {
  local i
  for ((i = 1; i < $1; i++)); do
    printf '\n  sidecar %-2s         pgsidecar 127.0.0.1:%s (admin console: dbname=pgsidecar)   metrics http://127.0.0.1:%s/metrics   flopods-api http://127.0.0.1:%s   logs %s/{pgsidecar,flopods-api}-%s.log' \
      "$i" "$(sidecar_proxy_port "$i")" "$(sidecar_metrics_port "$i")" "$(sidecar_app_port "$i")" "$LOG_DIR" "$i"
  done
}
