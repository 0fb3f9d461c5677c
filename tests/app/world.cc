#include "tests/app/world.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <sstream>

namespace pgs::app::test {

World& World::get() {
  static World world;
  return world;
}

World::World() {
  std::string out;
  const int rc = run_to_end(api_binary(), {"migrate", "--db", db_conninfo()}, &out, std::chrono::seconds(60));
  EXPECT_EQ(rc, 0) << out;
  alice = make_user(db, "alice");
  bob = make_user(db, "bob");
  carol = make_user(db, "carol");
  ws_alice = db.one("INSERT INTO core.workspaces (name, owner_id) VALUES ('Alice test', $1) RETURNING id", {alice.id});
  ws_bob = db.one("INSERT INTO core.workspaces (name, owner_id) VALUES ('Bob test', $1) RETURNING id", {bob.id});
  db.q("INSERT INTO core.workspace_members (workspace_id, user_id, role) VALUES ($1, $2, 'owner'), "
       "($1, $3, 'viewer'), ($4, $5, 'owner')",
       {ws_alice, alice.id, carol.id, ws_bob, bob.id});
  flow_alice = db.one("INSERT INTO canvas.flows (workspace_id, name, created_by) VALUES ($1, 'Seed flow', $2) "
                      "RETURNING id", {ws_alice, alice.id});
  flow_bob = db.one("INSERT INTO canvas.flows (workspace_id, name, created_by) VALUES ($1, 'Bob flow', $2) "
                    "RETURNING id", {ws_bob, bob.id});
  pod_alice = db.one("INSERT INTO canvas.pods (flow_id, name, kind, model) VALUES ($1, 'Ask', 'llm', 'gpt-4o') "
                     "RETURNING id", {flow_alice});
  db.q("INSERT INTO canvas.pods (flow_id, name, kind) VALUES ($1, 'In', 'input')", {flow_alice});
  pod_bob = db.one("INSERT INTO canvas.pods (flow_id, name, kind) VALUES ($1, 'In', 'input') RETURNING id", {flow_bob});
  note_alice = db.one("INSERT INTO core.notifications (user_id, kind, title) VALUES ($1, 'mention', 'Hi') "
                      "RETURNING id", {alice.id});
  db.q("INSERT INTO core.notifications (user_id, kind, title, read_at) VALUES ($1, 'invite', 'Old', now())",
       {alice.id});
  note_bob = db.one("INSERT INTO core.notifications (user_id, kind, title) VALUES ($1, 'mention', 'Hi') "
                    "RETURNING id", {bob.id});
  word = "zq" + std::to_string(getpid()) + alice.token.substr(3, 6);
  for (const auto& [ws, who] : {std::pair{ws_alice, alice.id}, std::pair{ws_bob, bob.id}}) {
    db.q("INSERT INTO documents.documents (workspace_id, name, description, mime_type, size_bytes, storage_key, "
         "uploaded_by) VALUES ($1, 'Quarterly ' || $3 || ' report', 'Numbers', 'application/pdf', 1000, 'k', $2)",
         {ws, who, word});
  }
  std::vector<std::string> args{"--threads", "2", "--pool", "4", "--redis-prefix",
                                "flopods-test-" + std::to_string(getpid()) + ":"};
  // e.g. FLOPODS_TEST_API_ARGS=--prepared runs the same suite with PQprepare'd statements.
  if (const char* extra = std::getenv("FLOPODS_TEST_API_ARGS"); extra != nullptr && *extra != '\0') {
    std::istringstream words(extra);
    for (std::string word; words >> word;) args.push_back(word);
  }
  api = std::make_unique<ApiServer>(args);
  // The set-up was written by another client than the app: if the app's reads go to a replica
  // (through the proxy), wait until the last row written above is visible to it.
  const bool visible = wait_for(
      [&] {
        auto r = http(api->port(), "GET", "/api/v1/documents/search?q=" + word, bob.token);
        return r.status == 200 && r.json.at("documents").as_array().size() == 1;
      },
      std::chrono::seconds(30));
  EXPECT_TRUE(visible) << "the app never saw the test data";
}

World::~World() {
  api.reset();
  const std::string users = "{" + alice.id + "," + bob.id + "," + carol.id + "}";
  const std::string workspaces = "{" + ws_alice + "," + ws_bob + "}";
  // The partitioned logs have no foreign keys (see 002_canvas.sql): delete their rows explicitly.
  for (const char* table : {"canvas.pod_executions", "billing.pod_usage_logs", "canvas.flow_activity_logs",
                            "documents.document_api_logs"}) {
    db.q(std::string("DELETE FROM ") + table + " WHERE workspace_id = ANY($1::bigint[])", {workspaces});
  }
  db.q("DELETE FROM core.workspaces WHERE id = ANY($1::bigint[])", {workspaces});
  db.q("DELETE FROM core.users WHERE id = ANY($1::bigint[])", {users});
}

}  // namespace pgs::app::test
