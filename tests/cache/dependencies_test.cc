// WriteDependencies: what else a write reaches (cascades, partitions), and "anything" for tables with
// triggers or rules.
#include "cache/dependencies.h"

#include <gtest/gtest.h>

#include "cache/policy.h"

namespace pgs::cache {
namespace {

using Tables = std::vector<std::string>;

WriteDependencies deps() {
  return WriteDependencies::from_rows({
      {"cascade", "core.workspaces", "core.workspace_members"},
      {"cascade", "core.workspaces", "canvas.flows"},
      {"cascade", "canvas.flows", "canvas.pods"},
      {"partition", "canvas.pod_executions_2026_11", "canvas.pod_executions"},
      {"partition", "canvas.pod_executions_2026_12", "canvas.pod_executions"},
      {"trigger", "audit.events", ""},
      {"rule", "legacy.t", ""},
      {"mystery", "x.y", "x.z"},  // unknown kinds are ignored
      {"cascade", "", "x.z"},     // malformed
  });
}

TEST(WriteDependencies, CascadesAreFollowedTransitively) {
  Tables t = {"core.workspaces"};
  deps().expand(t);
  EXPECT_EQ(t, (Tables{"canvas.flows", "canvas.pods", "core.workspace_members", "core.workspaces"}));
}

TEST(WriteDependencies, PartitionsReachTheirParentAndTheParentItsPartitions) {
  Tables child = {"canvas.pod_executions_2026_11"};
  deps().expand(child);
  EXPECT_EQ(child, (Tables{"canvas.pod_executions", "canvas.pod_executions_2026_11", "canvas.pod_executions_2026_12"}));
  Tables parent = {"canvas.pod_executions"};
  deps().expand(parent);
  EXPECT_EQ(parent.size(), 3u);
}

TEST(WriteDependencies, TriggersAndRulesMeanAnything) {
  Tables t = {"audit.events", "core.users"};
  deps().expand(t);
  EXPECT_EQ(t, Tables{std::string(kAllTables)});
  Tables r = {"legacy.t"};
  deps().expand(r);
  EXPECT_EQ(r, Tables{std::string(kAllTables)});
}

TEST(WriteDependencies, OthersAreUnchanged) {
  Tables t = {"core.users", "x.y"};
  deps().expand(t);
  EXPECT_EQ(t, (Tables{"core.users", "x.y"}));
  Tables empty;
  deps().expand(empty);
  EXPECT_TRUE(empty.empty());
  EXPECT_EQ(deps().edges(), 7u);
  Tables none = {"core.workspaces"};
  WriteDependencies().expand(none);
  EXPECT_EQ(none, Tables{"core.workspaces"});
}

// Views: a write to a relation changes every view reading it, through views of views; a write to an
// updatable view writes the relations under it (and so changes their other views); a view that merely
// changed writes nothing, so the other relations it reads are left alone.
TEST(WriteDependencies, ViewsChangeWithWhatTheyReadAndWriteWhatIsUnderThem) {
  WriteDependencies d = WriteDependencies::from_rows({
      {"view", "app.orders", "app.order_totals"},
      {"view", "app.customers", "app.order_totals"},
      {"view", "app.order_totals", "app.top_customers"},
      {"view", "app.orders", "app.open_orders"},
      {"trigger", "app.audited", ""},
      {"view", "app.audited", "app.audited_v"},
      {"view", "app.x", ""},  // malformed
  });
  EXPECT_EQ(d.edges(), 6u);
  Tables t = {"app.orders"};
  d.expand(t);
  EXPECT_EQ(t, (Tables{"app.open_orders", "app.order_totals", "app.orders", "app.top_customers"}));
  Tables c = {"app.customers"};
  d.expand(c);
  EXPECT_EQ(c, (Tables{"app.customers", "app.order_totals", "app.top_customers"}));
  Tables through_view = {"app.open_orders"};  // INSERT INTO app.open_orders ...
  d.expand(through_view);
  EXPECT_EQ(through_view, (Tables{"app.open_orders", "app.order_totals", "app.orders", "app.top_customers"}));
  Tables through_views = {"app.top_customers"};  // down through a view of a view
  d.expand(through_views);
  EXPECT_EQ(through_views, (Tables{"app.customers", "app.open_orders", "app.order_totals", "app.orders",
                                   "app.top_customers"}));
  Tables audited = {"app.audited_v"};  // writes a table with triggers: anything
  d.expand(audited);
  EXPECT_EQ(audited, Tables{std::string(kAllTables)});
}

}  // namespace
}  // namespace pgs::cache
