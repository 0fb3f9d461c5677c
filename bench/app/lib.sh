# shellcheck shell=bash
# What both app benchmarks share: the data bench/app/mix.lua reads (seeded users, their tokens and what
# each may read and edit) and the bench's own flopods-api instances. Sourced by bench/app/run.sh and
# bench/workloads/sidecars.sh, after scripts/lib.sh and postgres.sh; they set OUT (results directory),
# API_BIN (flopods-api), DIRECT_DB (conninfo of the primary), USERS, POOL and IO_THREADS.

# prepare_data: $OUT/data.lua, from the seeded users (seed is idempotent: it only adds missing users) and
# their tokens, as printed.
prepare_data() {
  "$API_BIN" migrate --db "$DIRECT_DB" >"$OUT/migrate.log" 2>&1 || die "migrate failed; see $OUT/migrate.log"
  "$API_BIN" seed --users "$USERS" --print-tokens "$USERS" --db "$DIRECT_DB" >"$OUT/seed.txt" 2>"$OUT/seed.log" ||
    die "seed failed; see $OUT/seed.log"
  write_data_lua "$OUT/data.lua"
}

# write_data_lua FILE: users (token, readable workspaces and flows, editable flows) as Lua tables.
# Postgres array text ("{1,2}") is also a Lua table constructor.
write_data_lua() {
  local file="$1" email token ws flows editable
  {
    echo "users = {"
    while read -r _ _ email token; do
      email="${email%:}"
      IFS='|' read -r ws flows editable < <(psql_local "$PRIMARY_PORT" "$DB_NAME" -At -v e="$email" <<'SQL'
SELECT coalesce(array_agg(DISTINCT m.workspace_id), '{}'),
       coalesce(array_agg(f.id), '{}'),
       coalesce(array_agg(f.id) FILTER (WHERE m.role IN ('owner', 'editor')), '{}')
FROM core.users u JOIN core.workspace_members m ON m.user_id = u.id
LEFT JOIN canvas.flows f ON f.workspace_id = m.workspace_id
WHERE u.email = :'e';
SQL
)
      [[ "$ws" != "{}" && "$flows" != "{}" ]] || continue
      printf '  { token = "%s", workspaces = %s, flows = %s, editable = %s },\n' "$token" "$ws" "$flows" "$editable"
    done < <(grep '^token for ' "$OUT/seed.txt")
    echo "}"
    echo 'words = { "revenue", "hiring", "security", "roadmap", "pricing", "vendor", "compliance", "churn",'
    echo '          "contract", "invoice", "finance%20team", "quarterly%20figures" }'
  } >"$file"
  grep -q 'token = ' "$file" || die "no usable seeded users (see $file)"
}

app_answers() { curl -sf -m 2 -o /dev/null "http://127.0.0.1:$1/healthz"; }

# start_app NAME PORT CONNINFO: a flopods-api of the bench on PORT through CONNINFO, rate limits off (the
# load is a few tokens), no access log; its pid is appended to APP_PIDS, its log is $OUT/app-NAME.log.
start_app() {
  local name="$1" port="$2" db="$3"
  ! port_busy "$port" || die "port $port is taken (see the bench's *_PORT* knobs)"
  "$API_BIN" serve --listen "127.0.0.1:$port" --db "$db" --redis "127.0.0.1:$REDIS_PORT" \
    --threads "$IO_THREADS" --pool "$POOL" --rate-user 0 --rate-anon 0 --access-log none \
    --redis-prefix "flopods-bench:" >"$OUT/app-$name.log" 2>&1 &
  APP_PIDS+=("$!")
  wait_until "$WAIT_APP" "flopods-api ($name) on :$port" app_answers "$port" || die "see $OUT/app-$name.log"
  log "flopods-api for $name on :$port (pid $!)"
}

stop_apps() {
  local pid
  for pid in "${APP_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${APP_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}
