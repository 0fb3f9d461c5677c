#include "app/seed.h"

#include <cstdio>

#include "app/auth.h"
#include "app/log.h"
#include "app/partitions.h"

namespace pgs::app {
namespace {

// The SQL mirror of derived_token(): $1 = id of the last user before this run, $2 = the secret.
constexpr const char* kTokens =
    "INSERT INTO core.api_tokens (user_id, token_hash, label) "
    "SELECT u.id, sha256(convert_to('fp_' || left(encode(sha256(convert_to($2 || ':' || u.email, 'UTF8')), 'hex'), "
    "40), 'UTF8')), 'seed' FROM core.users u WHERE u.id > $1 ON CONFLICT (token_hash) DO NOTHING";

// $1 = id of the last user before this run: every statement only adds rows for newer users.
// Pseudo-random but repeatable choices use hashint8() of ids; timestamps use random().
const char* const kSteps[] = {
    "INSERT INTO core.workspaces (name, owner_id, plan, created_at) "
    "SELECT split_part(u.name, ' ', 1) || '''s ' || (ARRAY['Lab','Studio','Team','Workspace','Sandbox'])"
    "[1 + (u.id + g) % 5], u.id, (ARRAY['free','pro','team'])[1 + u.id % 3], u.created_at "
    "FROM core.users u, generate_series(1, 1 + (u.id % 2)::int) g WHERE u.id > $1",

    "INSERT INTO core.workspace_members (workspace_id, user_id, role, joined_at) "
    "SELECT w.id, w.owner_id, 'owner', w.created_at FROM core.workspaces w WHERE w.owner_id > $1",

    // two collaborators per new workspace, picked among all users
    "INSERT INTO core.workspace_members (workspace_id, user_id, role) "
    "SELECT w.id, u.id, CASE WHEN k = 1 THEN 'editor' ELSE 'viewer' END "
    "FROM core.workspaces w CROSS JOIN generate_series(1, 2) k "
    "JOIN core.users u ON u.id = 1 + (w.owner_id + k * 7919) % (SELECT max(id) FROM core.users) "
    "WHERE w.owner_id > $1 AND u.id <> w.owner_id ON CONFLICT DO NOTHING",

    "INSERT INTO canvas.flows (workspace_id, name, description, visibility, created_by, version, created_at, updated_at) "
    "SELECT w.id, (ARRAY['Customer','Support','Invoice','Research','Lead','Meeting','Contract','Resume','Ticket',"
    "'Product','Blog','Code','Sales','Onboarding'])[1 + abs(hashint8(w.id * 100 + g)) % 14] || ' ' || "
    "(ARRAY['summarizer','classifier','triage','extractor','assistant','pipeline','router','translator','digest',"
    "'reviewer'])[1 + abs(hashint8(w.id * 31 + g)) % 10] || ' #' || g, "
    "'Takes ' || (ARRAY['emails','PDFs','chat transcripts','web pages','CSV exports','call notes'])"
    "[1 + abs(hashint8(g)) % 6] || ' and produces a structured summary for the team.', "
    "CASE WHEN g % 4 = 0 THEN 'public' ELSE 'private' END, w.owner_id, 1 + g % 5, t, t + random() * (now() - t) "
    "FROM core.workspaces w, generate_series(1, 8 + (w.id % 8)::int) g, "
    "LATERAL (SELECT w.created_at + random() * (now() - w.created_at) AS t) x WHERE w.owner_id > $1",

    "INSERT INTO canvas.pods (flow_id, name, kind, model, config, position_x, position_y) "
    "SELECT f.id, initcap(k.kind) || ' ' || g, k.kind, CASE WHEN k.kind = 'llm' THEN "
    "(ARRAY['gpt-4o-mini','gpt-4o','claude-3-5-sonnet','llama-3.1-70b'])[1 + abs(hashint8(f.id)) % 4] END, "
    "jsonb_build_object('temperature', 0.2, 'max_tokens', 1024), g * 240, (g % 2) * 120 "
    "FROM canvas.flows f JOIN core.workspaces w ON w.id = f.workspace_id AND w.owner_id > $1, "
    "generate_series(1, 3 + (f.id % 4)::int) g, "
    "LATERAL (SELECT (ARRAY['input','llm','retriever','tool','router','output'])[1 + (g - 1) % 6] AS kind) k",

    // executions over the last 60 days, each with its usage log (one statement, same started_at)
    "WITH e AS (INSERT INTO canvas.pod_executions (flow_id, pod_id, workspace_id, user_id, status, started_at, "
    "finished_at, duration_ms, input, output) "
    "SELECT f.id, (SELECT p.id FROM canvas.pods p WHERE p.flow_id = f.id AND p.kind = 'llm' ORDER BY p.id LIMIT 1), "
    "f.workspace_id, f.created_by, CASE WHEN abs(hashint8(f.id * 50 + g)) % 14 = 0 THEN 'failed' ELSE 'succeeded' END, "
    "t, t + d * interval '1 millisecond', d, jsonb_build_object('prompt', 'Summarize item ' || g), "
    "jsonb_build_object('summary', 'ok') "
    "FROM canvas.flows f JOIN core.workspaces w ON w.id = f.workspace_id AND w.owner_id > $1, "
    "generate_series(1, 20) g, LATERAL (SELECT now() - random() * interval '60 days' AS t, "
    "200 + abs(hashint8(f.id * 77 + g)) % 6000 AS d) x "
    "RETURNING id, flow_id, pod_id, workspace_id, user_id, started_at) "
    "INSERT INTO billing.pod_usage_logs (execution_id, workspace_id, user_id, flow_id, pod_id, model, tokens_in, "
    "tokens_out, cost_micro_usd, executed_at) "
    "SELECT id, workspace_id, user_id, flow_id, pod_id, 'gpt-4o-mini', 100 + abs(hashint8(id)) % 3000, "
    "50 + abs(hashint8(id * 31)) % 1500, round((100 + abs(hashint8(id)) % 3000) * 0.15 + "
    "(50 + abs(hashint8(id * 31)) % 1500) * 0.6), started_at FROM e",

    "INSERT INTO canvas.flow_activity_logs (flow_id, workspace_id, user_id, action, detail, created_at) "
    "SELECT f.id, f.workspace_id, f.created_by, CASE WHEN g = 1 THEN 'created' ELSE 'updated' END, "
    "jsonb_build_object('version', g), f.created_at + (g - 1) * (f.updated_at - f.created_at) / 3 "
    "FROM canvas.flows f JOIN core.workspaces w ON w.id = f.workspace_id AND w.owner_id > $1, "
    "generate_series(1, 3) g WHERE f.created_at > now() - interval '80 days'",

    "INSERT INTO core.notifications (user_id, kind, title, payload, created_at, read_at) "
    "SELECT u.id, k.kind, CASE k.kind WHEN 'execution_failed' THEN 'A flow run failed' WHEN 'mention' THEN "
    "'You were mentioned in a flow' WHEN 'invite' THEN 'You were invited to a workspace' ELSE "
    "'Monthly usage report is ready' END, jsonb_build_object('n', g), now() - g * interval '9 hours', "
    "CASE WHEN g % 3 = 0 THEN NULL ELSE now() - g * interval '8 hours' END "
    "FROM core.users u, generate_series(1, 12) g, LATERAL (SELECT (ARRAY['execution_failed','mention','invite',"
    "'usage_report'])[1 + (u.id + g) % 4] AS kind) k WHERE u.id > $1",

    "INSERT INTO documents.documents (workspace_id, name, description, mime_type, size_bytes, storage_key, "
    "uploaded_by, created_at) "
    "SELECT w.id, d.topic || ' ' || (ARRAY['report','notes','contract','handbook','invoice','specification'])"
    "[1 + abs(hashint8(w.id * 13 + g)) % 6] || ' ' || (2020 + g % 6) || '.pdf', "
    "'Quarterly ' || lower(d.topic) || ' figures, open questions and next steps for the ' || "
    "(ARRAY['finance','legal','product','support','marketing'])[1 + g % 5] || ' team.', 'application/pdf', "
    "10000 + abs(hashint8(w.id * 7 + g)) % 5000000, 'ws/' || w.id || '/doc-' || g, w.owner_id, "
    "now() - g * interval '2 days' "
    "FROM core.workspaces w, generate_series(1, 6 + (w.id % 5)::int) g, LATERAL (SELECT (ARRAY['Revenue',"
    "'Hiring','Security','Roadmap','Pricing','Vendor','Compliance','Churn'])[1 + abs(hashint8(w.id + g)) % 8] "
    "AS topic) d WHERE w.owner_id > $1",

    "INSERT INTO documents.document_api_logs (document_id, workspace_id, user_id, action, status_code, created_at) "
    "SELECT d.id, d.workspace_id, d.uploaded_by, (ARRAY['upload','read','search','embed'])[1 + (g - 1) % 4], 200, "
    "greatest(d.created_at, now() - interval '60 days') + g * interval '1 hour' "
    "FROM documents.documents d JOIN core.workspaces w ON w.id = d.workspace_id AND w.owner_id > $1, "
    "generate_series(1, 5) g",
};

Outcome<int, DbError> add_users(PgConn& c, int from, int to, const std::string& secret) {
  auto last = c.exec("SELECT coalesce(max(id), 0) FROM core.users");
  if (!last) return last.error();
  const std::string before(last->text(0, 0));
  auto users = c.exec(
      "INSERT INTO core.users (email, name, created_at) SELECT 'user' || i || '@flopods.dev', "
      "(ARRAY['Ada','Grace','Linus','Margaret','Ken','Barbara','Dennis','Frances','Edsger','Radia','Tim','Sophie',"
      "'Alan','Katherine','Donald','Hedy','John','Evelyn','Niklaus','Lynn'])[1 + i % 20] || ' ' || "
      "(ARRAY['Lovelace','Hopper','Torvalds','Hamilton','Thompson','Liskov','Ritchie','Allen','Dijkstra','Perlman',"
      "'Berners-Lee','Wilson','Turing','Johnson','Knuth','Lamarr','Backus','Boyd','Wirth','Conway'])"
      "[1 + (i * 7) % 20], now() - (i % 365) * interval '1 day' "
      "FROM generate_series($1::int, $2::int) i ON CONFLICT (email) DO NOTHING",
      {param(from), param(to)});
  if (!users) return users.error();
  auto tokens = c.exec(kTokens, {param(before), param(secret)});
  if (!tokens) return tokens.error();
  for (const char* step : kSteps) {
    auto done = c.exec(step, {param(before)});
    if (!done) {
      return DbError{done.error().kind, done.error().sqlstate,
                     done.error().message + " in: " + std::string(step).substr(0, 60)};
    }
  }
  return users->affected();
}

}  // namespace

Outcome<int, DbError> seed(PgConn& c, const SeedOptions& o) {
  // Executions go back 60 days: make sure those months have partitions.
  auto parts = ensure_partitions(c, current_utc_month().plus(-3), 7);
  if (!parts) return parts.error();
  auto begun = c.exec("BEGIN");
  if (!begun) return begun.error();
  auto locked = c.exec("SELECT pg_advisory_xact_lock(7346162530002)");
  if (!locked) return locked.error();
  auto existing = c.exec("SELECT count(*) FROM core.users WHERE email ~ '^user[0-9]+@flopods[.]dev$'");
  if (!existing) return existing.error();
  const int have = static_cast<int>(existing->int64(0, 0));
  int created = 0;
  if (have < o.users) {
    auto added = add_users(c, have + 1, o.users, o.secret);
    if (!added) {
      (void)c.exec("ROLLBACK");
      return added.error();
    }
    created = *added;
  }
  auto committed = c.exec("COMMIT");
  if (!committed) return committed.error();
  log::info("seed: " + std::to_string(created) + " users created, " + std::to_string(have) + " were there");
  for (int i = 1; i <= std::min(o.print_tokens, std::max(o.users, have)); ++i) {
    const std::string email = "user" + std::to_string(i) + "@flopods.dev";
    std::printf("token for %s: %s\n", email.c_str(), derived_token(o.secret, email).c_str());
  }
  std::fflush(stdout);
  return created;
}

}  // namespace pgs::app
