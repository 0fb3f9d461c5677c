# shellcheck shell=bash
# shellcheck disable=SC2034  # read by bench/run.sh, which sources this file
# Hot keys (issue 12): every client reads one of only HOTKEY_KEYS (10) workspaces, the ones with the
# smallest ids, with their member count, over the extended protocol: the same statement as
# cache-workspaces, so it is in the "workspace" TTL class of conf/pgsidecar.toml and pgsidecar answers it
# from Redis. With BENCH_CLIENTS (64, the default) clients on 10 keys, many misses of one key arrive
# together (right after the start, and after each entry's TTL or an invalidation): the first runs the
# query, the others wait for its result (stampede control), and a hit is the common case. PgBouncer and
# direct always run the query. After the rounds it prints the proxy's cache counters for the class (hits,
# misses, waits by result) as deltas over the workload (warm-up included; other traffic on the dev proxy
# at the same time is included too). Needs the app schema and seed data (./dev up runs flopods-api
# migrate + seed).
#
#   BENCH_WORKLOADS=cache-hotkey bench/run.sh
WORKLOAD_DESCRIPTION="${HOTKEY_KEYS:-10} hot workspaces + member count by id (cacheable), -M extended"
WORKLOAD_PGBENCH_ARGS=()

# hotkey_counters: "name labels value" lines of the proxy's cache counters for the workspace class and
# its waits (none when the proxy is unreachable).
hotkey_counters() {
  local page
  page="$(curl -s -m 2 "http://127.0.0.1:$METRICS_PORT/metrics" 2>/dev/null)" || return 0
  sed -n -e 's/^\(pgsidecar_cache_requests_total\){\(class="workspace",result="[a-z_]*"\)} \([0-9.e+]*\)$/\1 \2 \3/p' \
    -e 's/^\(pgsidecar_cache_waits_total\){\(result="[a-z_]*"\)} \([0-9.e+]*\)$/\1 \2 \3/p' <<<"$page"
}

# workload_prepare: the hot ids (the HOTKEY_KEYS smallest) into a pgbench script that picks one of them
# at random (a CASE over a random index: seeded ids need not be contiguous); fails (skipping the
# workload) when there are not that many workspaces.
workload_prepare() {
  local keys="${HOTKEY_KEYS:-10}" ids i=1 id pick=""
  ids="$(psql_local "$PRIMARY_PORT" "$DB_NAME" -At -c \
    "SELECT id FROM core.workspaces ORDER BY id LIMIT $keys" 2>/dev/null)" || ids=""
  if (($(wc -w <<<"$ids") < keys)); then
    warn "cache-hotkey: fewer than $keys rows in core.workspaces (run ./dev up to migrate and seed the app)"
    return 1
  fi
  for id in $ids; do
    pick+=" when :k = $i then $id"
    i=$((i + 1))
  done
  local script="$BENCH_OUT/cache-hotkey.sql"
  cat >"$script" <<SQL
\\set k random(1, $keys)
\\set id case$pick end
SELECT w.id, w.name, w.plan, count(m.user_id) AS members
  FROM core.workspaces w LEFT JOIN core.workspace_members m ON m.workspace_id = w.id
 WHERE w.id = :id GROUP BY w.id, w.name, w.plan;
SQL
  WORKLOAD_PGBENCH_ARGS=(-M extended -f "$script")
  HOTKEY_BASELINE="$(hotkey_counters)"
}

# workload_finish (kept in cache-hotkey.report and summary.txt): the cache's work for the hot keys.
workload_finish() {
  printf 'pgsidecar cache, class workspace (deltas over warm-up and rounds):\n'
  awk 'NR == FNR { before[$1 " " $2] = $3; next }
       { n = $3 - before[$1 " " $2]; if (n > 0) printf "  %-34s %-36s %d\n", $1, $2, n }' \
    <(printf '%s\n' "$HOTKEY_BASELINE") <(hotkey_counters)
}
