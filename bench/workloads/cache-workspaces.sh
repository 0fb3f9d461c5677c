# shellcheck shell=bash
# shellcheck disable=SC2034  # read by bench/run.sh, which sources this file
# A cache-friendly read: one workspace with its member count, by random id, over the extended protocol.
# core.workspaces and core.workspace_members form the "workspace" TTL class of conf/pgsidecar.toml, so
# with the cache enabled pgsidecar answers repeats from Redis; PgBouncer and direct always run the query.
# Needs the app schema and seed data (./dev up runs flopods-api migrate + seed).
WORKLOAD_DESCRIPTION="workspace + member count by id (cacheable), -M extended"
WORKLOAD_PGBENCH_ARGS=()

# workload_prepare: writes the pgbench script for the seeded id range; fails (skipping the workload)
# when the app tables are missing.
workload_prepare() {
  local range
  range="$(psql_local "$PRIMARY_PORT" "$DB_NAME" -At -F ' ' -c \
    "SELECT min(id), max(id) FROM core.workspaces" 2>/dev/null)" || range=""
  if [[ -z "$range" || "$range" == " " ]]; then
    warn "cache-workspaces: no rows in core.workspaces (run ./dev up to migrate and seed the app)"
    return 1
  fi
  local script="$BENCH_OUT/cache-workspaces.sql"
  cat >"$script" <<SQL
\\set id random(${range% *}, ${range#* })
SELECT w.id, w.name, w.plan, count(m.user_id) AS members
  FROM core.workspaces w LEFT JOIN core.workspace_members m ON m.workspace_id = w.id
 WHERE w.id = :id GROUP BY w.id, w.name, w.plan;
SQL
  WORKLOAD_PGBENCH_ARGS=(-M extended -f "$script")
}
