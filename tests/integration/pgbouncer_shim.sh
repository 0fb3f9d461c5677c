#!/usr/bin/env bash
# Stand-in for `pgsidecar --config FILE` that runs PgBouncer instead, translating the config the
# harness generates (tests/integration/harness.cc render_config). Only for checking the harness and
# the tests themselves against a known pooler while the proxy is being written:
#   PGSIDECAR_BIN=$PWD/tests/integration/pgbouncer_shim.sh build/tests/integration/libpq_test
# PGS_SHIM_SUPERVISE=1 keeps a bash parent that translates SIGHUP/SIGTERM (for signals_test).
# PgBouncer differs from pgsidecar on purpose in places (it rejects `options` and `search_path`
# startup parameters, SIGTERM stops it at once, error texts), so some tests are expected to fail.
set -euo pipefail

[[ "${1:-}" == "--config" && -n "${2:-}" ]] || { echo "usage: $0 --config FILE" >&2; exit 2; }
config="$2"
dir="$(dirname "$config")"

# value SECTION KEY: the first `KEY = value` inside [SECTION] (quotes stripped).
value() {
  awk -v sec="[$1]" -v key="$2" '
    /^\[/ { in_sec = ($0 == sec) }
    in_sec && $1 == key { sub(/^[^=]*=[ \t]*/, ""); gsub(/"/, ""); print; exit }' "$config"
}
duration_s() {  # "5s" -> 5, "250ms" -> 1, "1m" -> 60
  local v="$1"
  case "$v" in
    *ms) echo $(( (${v%ms} + 999) / 1000 )) ;;
    *s) echo "${v%s}" ;;
    *m) echo $(( ${v%m} * 60 )) ;;
    *) echo "$v" ;;
  esac
}

generate() {
auth="$(value proxy auth_type)"
[[ "$auth" == "trust" || "$auth" == "md5" ]] || auth="scram-sha-256"
{
  echo "[databases]"
  awk '/^\[\[databases\]\]/ { d = 1; next } d && $1 == "name" { gsub(/"/, "", $3); print $3; d = 0 }' "$config" |
    while read -r db; do
      echo "$db = host=127.0.0.1 port=$(value primary port) dbname=$db"
    done
  cat <<INI
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $(value proxy listen_port)
unix_socket_dir =
auth_type = $auth
auth_file = $dir/userlist.txt
pool_mode = $(value pool pool_mode)
default_pool_size = $(value pool pool_size)
max_client_conn = $(value proxy max_client_conn)
query_wait_timeout = $(duration_s "$(value pool query_wait_timeout)")
client_login_timeout = $(duration_s "$(value proxy client_login_timeout)")
server_login_retry = 1
ignore_startup_parameters = extra_float_digits
pidfile = $dir/pgbouncer.pid
INI
} >"$dir/pgbouncer.ini"
awk '/^\[\[users\]\]/ { u = 1; next }
     u && $1 == "name" { gsub(/"/, "", $3); name = $3 }
     u && $1 == "password" { gsub(/"/, "", $3); printf "\"%s\" \"%s\"\n", name, $3; u = 0 }' \
  "$config" >"$dir/userlist.txt"
chmod 755 "$dir"
chmod 644 "$dir"/pgbouncer.ini "$dir"/userlist.txt
touch "$dir/pgbouncer.pid" && chown postgres "$dir/pgbouncer.pid" && rm -f "$dir/pgbouncer.pid"
chown postgres "$dir"
}

generate
run=(setpriv --reuid=postgres --regid=postgres --init-groups pgbouncer "$dir/pgbouncer.ini")
if [[ "${PGS_SHIM_SUPERVISE:-}" != 1 ]]; then
  # exec in place: the harness's pid is PgBouncer's (RSS, sockets); signals go straight to it.
  exec "${run[@]}"
fi
# Supervised: SIGHUP regenerates the files then reloads PgBouncer; SIGTERM becomes PgBouncer's
# SIGINT (safe shutdown: wait for transactions, refuse new clients) like pgsidecar's drain.
"${run[@]}" &
child=$!
trap 'generate; kill -HUP "$child"' HUP
trap 'kill -INT "$child"' TERM
rc=0
while true; do
  wait "$child" && rc=0 || rc=$?
  kill -0 "$child" 2>/dev/null || break
done
exit "$rc"
