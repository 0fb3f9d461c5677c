# shellcheck shell=bash
# The data bench/app/mix.lua reads: seeded users, their tokens and what each may read and edit. Sourced by
# bench/app/run.sh and bench/workloads/sidecars.sh, after scripts/lib.sh and postgres.sh; they set OUT
# (results directory), API_BIN (flopods-api), DIRECT_DB (conninfo of the primary) and USERS.

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
