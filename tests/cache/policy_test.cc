// decide(): table-driven cases over real classifications (router::classify) and a config with classes.
#include <gtest/gtest.h>

#include <set>

#include "cache/policy.h"
#include "row_security_stub.h"
#include "router/classify.h"

namespace pgs::cache {
namespace {

using std::chrono::milliseconds;

conf::CacheConfig test_config() {
  conf::CacheConfig c;
  c.enabled = true;
  c.classes = {
      {"workspace", milliseconds(300000), {"core.workspaces", "core.workspace_members"}},
      {"user_profile", milliseconds(900000), {"core.users"}},
      {"document_list", milliseconds(30000), {"documents.documents"}},
      {"public_things", milliseconds(60000), {"public.things"}},
  };
  return c;
}

struct Case {
  const char* sql;
  bool cacheable;
  BypassReason reason;     // when !cacheable
  long ttl_ms;             // when cacheable
  const char* class_name;  // when cacheable
};

void check(const Case& k, const SessionFacts& facts, const conf::CacheConfig& config) {
  SCOPED_TRACE(k.sql);
  CacheDecision d = decide(router::classify(k.sql), facts, config);
  EXPECT_EQ(d.cacheable, k.cacheable) << bypass_reason_name(d.reason);
  if (k.cacheable) {
    EXPECT_EQ(d.ttl.count(), k.ttl_ms);
    EXPECT_EQ(d.class_name, k.class_name);
  } else {
    EXPECT_EQ(bypass_reason_name(d.reason), bypass_reason_name(k.reason));
  }
}

TEST(CachePolicy, StatementsOutsideTransactions) {
  const Case cases[] = {
      {"SELECT * FROM core.users WHERE id = $1", true, {}, 900000, "user_profile"},
      {"SELECT w.* FROM core.workspaces w JOIN core.workspace_members m ON m.workspace_id = w.id", true, {},
       300000, "workspace"},
      // Smallest TTL of the classes read wins.
      {"SELECT u.name, d.title FROM core.users u JOIN documents.documents d ON d.owner = u.id", true, {}, 30000,
       "document_list"},
      {"TABLE core.users", true, {}, 900000, "user_profile"},
      {"SELECT * FROM core.users u WHERE EXISTS (SELECT 1 FROM canvas.flows f WHERE f.owner = u.id)", false,
       BypassReason::table_not_in_class, 0, ""},
      {"SELECT 1", false, BypassReason::no_tables, 0, ""},
      {"SELECT now(), id FROM core.users", false, BypassReason::volatile_function, 0, ""},
      {"SELECT random() FROM core.users", false, BypassReason::volatile_function, 0, ""},
      {"SELECT nextval('s')", false, BypassReason::not_read_only, 0, ""},  // nextval writes
      {"SELECT relname FROM pg_class", false, BypassReason::volatile_function, 0, ""},
      {"SELECT * FROM core.users FOR UPDATE", false, BypassReason::not_read_only, 0, ""},
      {"UPDATE core.users SET name = 'x'", false, BypassReason::not_select, 0, ""},
      {"WITH d AS (DELETE FROM core.users RETURNING *) SELECT * FROM d", false, BypassReason::not_read_only, 0, ""},
      {"SELECT * INTO core.copy FROM core.users", false, BypassReason::not_read_only, 0, ""},
      {"SELECT 1 FROM core.users; SELECT 2 FROM core.users", false, BypassReason::multi_statement, 0, ""},
      {"SELEKT * FROM core.users", false, BypassReason::not_parsed, 0, ""},
      {"SHOW search_path", false, BypassReason::not_select, 0, ""},
      {"SELECT set_config('a.b', 'c', false) FROM core.users", false, BypassReason::not_read_only, 0, ""},
      // Hints.
      {"/* pgsidecar: no cache */ SELECT * FROM core.users", false, BypassReason::hint_no_cache, 0, ""},
      {"/* pgsidecar: cache ttl=30s */ SELECT * FROM core.users", true, {}, 30000, "user_profile"},
      {"/* pgsidecar: cache ttl=2m */ SELECT * FROM canvas.flows", true, {}, 120000, "hint"},
      {"/* pgsidecar: cache ttl=5s */ SELECT 42", true, {}, 5000, "hint"},
      {"/* pgsidecar: cache class=document_list */ SELECT * FROM canvas.flows", true, {}, 30000, "document_list"},
      {"/* pgsidecar: cache class=workspace ttl=10s */ SELECT * FROM core.users", true, {}, 10000, "workspace"},
      {"/* pgsidecar: cache class=nope */ SELECT * FROM core.users", false, BypassReason::hint_unknown_class, 0, ""},
      {"/* pgsidecar: cache ttl=30s */ SELECT now() FROM core.users", false, BypassReason::volatile_function, 0,
       ""},
  };
  SessionFacts facts = testing::known_facts();
  facts.role = "flopods";
  for (const Case& k : cases) check(k, facts, test_config());
}

TEST(CachePolicy, DisabledAndUnsynced) {
  conf::CacheConfig config = test_config();
  SessionFacts facts = testing::known_facts();
  config.enabled = false;
  check({"SELECT * FROM core.users", false, BypassReason::disabled, 0, ""}, facts, config);
  config.enabled = true;
  facts.generations_synced = false;
  check({"SELECT * FROM core.users", false, BypassReason::generations_unsynced, 0, ""}, facts, config);
}

TEST(CachePolicy, Transactions) {
  const conf::CacheConfig config = test_config();
  SessionFacts facts = testing::known_facts();
  facts.in_transaction = true;  // read-write by default (unknown)
  check({"SELECT * FROM core.users", false, BypassReason::in_transaction, 0, ""}, facts, config);
  facts.transaction_read_write = false;
  check({"SELECT * FROM core.users", false, BypassReason::in_snapshot_transaction, 0, ""}, facts, config);
  facts.transaction_read_committed = true;
  check({"SELECT * FROM core.users", true, {}, 900000, "user_profile"}, facts, config);
}

TEST(CachePolicy, UnqualifiedTablesResolveThroughSearchPath) {
  const conf::CacheConfig config = test_config();
  SessionFacts facts = testing::known_facts();
  // The catalog of the client's database: no public.users, no schema named after the role.
  testing::FixedRowSecurity catalog;
  catalog.only = {"core.users", "core.workspaces", "public.things", "documents.documents", "Core.members"};
  facts.row_security = &catalog;
  facts.role = "flopods";
  struct PathCase {
    const char* search_path;
    const char* sql;
    bool cacheable;
  } cases[] = {
      {"core", "SELECT * FROM users", true},
      {"core, public", "SELECT * FROM users", true},
      {"'core', public", "SELECT * FROM users", true},
      {"\"core\"", "SELECT * FROM users", true},
      {"pg_catalog, core", "SELECT * FROM users", true},
      {"public, core", "SELECT * FROM users", true},  // the catalog has no public.users: Postgres takes core's
      {"\"$user\", public", "SELECT * FROM things", true},  // no flopods.things (issue 12 item 5)
      {"\"$user\", public", "SELECT * FROM users", false},   // in core only: not on the path
      {"\"Core\", public", "SELECT * FROM members", false},  // Core.members exists, in no class
      {"public", "SELECT * FROM things", true},
      {"\"Core\"", "SELECT * FROM users", false},  // a different schema ("Core" is case-sensitive)
      {"core,", "SELECT * FROM users", false},     // unparsable path
      {"", "SELECT * FROM users", false},
  };
  for (const PathCase& p : cases) {
    SCOPED_TRACE(p.search_path);
    facts.search_path = p.search_path;
    CacheDecision d = decide(router::classify(p.sql), facts, config);
    EXPECT_EQ(d.cacheable, p.cacheable) << bypass_reason_name(d.reason);
    if (!p.cacheable && std::string_view(p.sql).find("members") == std::string_view::npos) {
      EXPECT_EQ(d.reason, BypassReason::unqualified_table_unresolved);
    }
  }
  // A relation of that name in an earlier schema shadows the listed one, whatever its class.
  catalog.only.insert("public.users");
  facts.search_path = "public, core";
  EXPECT_EQ(decide(router::classify("SELECT * FROM users"), facts, config).reason, BypassReason::table_not_in_class);
  catalog.only.erase("public.users");
  // Without a catalog, only a listed first candidate resolves.
  facts.row_security = nullptr;
  facts.search_path = "\"$user\", public";
  EXPECT_EQ(resolve_table({"", "things"}, facts, config), "");
  facts.search_path = "core";
  EXPECT_EQ(resolve_table({"", "users"}, facts, config), "core.users");
  facts.row_security = &catalog;
  facts.search_path = "core";
  router::TableRef pg_named{"", "pg_users"};  // pg_catalog is searched first: could shadow core.pg_users
  EXPECT_EQ(resolve_table(pg_named, facts, config), "");
  facts.may_have_temp_tables = true;
  EXPECT_FALSE(decide(router::classify("SELECT * FROM users"), facts, config).cacheable);
  facts.may_have_temp_tables = false;
  facts.role = "core";
  facts.search_path = "\"$user\"";
  CacheDecision d = decide(router::classify("SELECT * FROM users"), facts, config);
  ASSERT_TRUE(d.cacheable);
  EXPECT_EQ(d.tables, std::vector<std::string>{"core.users"});
}

TEST(CachePolicy, DecisionListsResolvedTablesSortedUnique) {
  SessionFacts facts = testing::known_facts();
  facts.search_path = "core";
  CacheDecision d = decide(router::classify("SELECT * FROM users u, core.users v, core.workspaces w"), facts,
                           test_config());
  ASSERT_TRUE(d.cacheable) << bypass_reason_name(d.reason);
  EXPECT_EQ(d.tables, (std::vector<std::string>{"core.users", "core.workspaces"}));
}

TEST(CachePolicy, TablesToBump) {
  SessionFacts facts = testing::known_facts();
  facts.role = "app";
  facts.search_path = "\"$user\", public";
  EXPECT_EQ(tables_to_bump(router::classify("UPDATE core.users SET a = 1"), facts),
            std::vector<std::string>{"core.users"});
  EXPECT_EQ(tables_to_bump(router::classify("INSERT INTO things VALUES (1)"), facts),
            (std::vector<std::string>{"app.things", "public.things"}));
  EXPECT_EQ(tables_to_bump(router::classify("SELECT * FROM core.users"), facts), std::vector<std::string>{});
  std::vector<std::string> call = tables_to_bump(router::classify("CALL do_things()"), facts);
  EXPECT_EQ(call, std::vector<std::string>{std::string(kAllTables)});
  EXPECT_EQ(tables_to_bump(router::classify("TRUNCATE core.users, documents.documents"), facts),
            (std::vector<std::string>{"core.users", "documents.documents"}));
}

// Issue 12 item 4: row-level security, default-deny. A relation with RLS (or a view over one) is never
// cached, hints or not; nor is one the catalog does not know, nor anything before the catalog is read.
TEST(CachePolicy, RowSecurityDefaultDeny) {
  const conf::CacheConfig config = test_config();
  testing::FixedRowSecurity catalog;
  catalog.on = {"core.users"};
  catalog.unknown = {"documents.documents"};
  SessionFacts facts = testing::known_facts();
  facts.row_security = &catalog;
  const Case cases[] = {
      {"SELECT * FROM core.users WHERE id = 1", false, BypassReason::row_security, 0, ""},
      {"SELECT * FROM core.workspaces w JOIN core.users u ON u.id = w.owner", false, BypassReason::row_security, 0,
       ""},
      {"/* pgsidecar: cache ttl=30s */ SELECT * FROM core.users", false, BypassReason::row_security, 0, ""},
      {"/* pgsidecar: cache class=workspace */ SELECT * FROM core.users", false, BypassReason::row_security, 0, ""},
      {"SELECT * FROM documents.documents", false, BypassReason::row_security_unknown, 0, ""},
      {"SELECT * FROM core.workspaces", true, {}, 300000, "workspace"},
      {"/* pgsidecar: cache ttl=5s */ SELECT 1", true, {}, 5000, "hint"},  // no table: nothing to protect
  };
  for (const Case& k : cases) check(k, facts, config);
  facts.row_security = nullptr;  // the catalog was not read yet
  check({"SELECT * FROM core.workspaces", false, BypassReason::row_security_unknown, 0, ""}, facts, config);
}

TEST(CachePolicy, ReasonNamesAreUnique) {
  std::set<std::string_view> seen;
  for (BypassReason r : kAllBypassReasons) EXPECT_TRUE(seen.insert(bypass_reason_name(r)).second);
  EXPECT_EQ(seen.size(), kBypassReasonNames.size());
}

}  // namespace
}  // namespace pgs::cache
