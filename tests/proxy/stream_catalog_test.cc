// The invalidation stream's catalog check (issue 12): which relations changed between two reads, when a
// user function changed, and which edges a decoded write follows (partitions' parents, views over what
// was written; not cascades or triggers, whose writes are in the stream themselves).
#include "proxy/stream/stream_catalog.h"

#include <gtest/gtest.h>

#include "cache/policy.h"

namespace pgs::proxy {
namespace {

using Names = std::set<std::string>;

TEST(StreamCatalog, ChangedRelationsAreTheAddedTheRemovedAndTheRedefined) {
  std::map<std::string, std::string> before = {{"app.a", "1/1/5/0/0"}, {"app.b", "2/2/5/0/0"}, {"app.v", "3/0/5/0/9"}};
  std::map<std::string, std::string> now = {{"app.a", "1/1/5/0/0"}, {"app.c", "4/4/6/0/0"}, {"app.v", "3/0/5/0/10"}};
  EXPECT_EQ(changed_relations(before, now), (Names{"app.b", "app.c", "app.v"}));
  EXPECT_TRUE(changed_relations(now, now).empty());
  EXPECT_EQ(changed_relations({}, now).size(), 3u);
}

TEST(StreamCatalog, OnlyTheFunctionsPartOfTheSumSaysAFunctionChanged) {
  EXPECT_FALSE(functions_changed("", "3/99|2/40"));  // the first read only records
  EXPECT_FALSE(functions_changed("3/99|2/40", "4/120|2/40"));
  EXPECT_TRUE(functions_changed("3/99|2/40", "3/99|2/41"));   // CREATE OR REPLACE FUNCTION: a new row version
  EXPECT_TRUE(functions_changed("3/99|2/40", "3/99|1/20"));   // dropped
}

TEST(StreamCatalog, ADecodedWriteReachesViewsAndParentsButNotCascadesOrAnythingForTriggers) {
  cache::WriteDependencies edges = stream_edges({
      {"view", "app.orders", "app.order_totals"},
      {"view", "app.order_totals", "app.top"},
      {"partition", "app.events_2026", "app.events"},
      {"cascade", "app.orders", "app.order_lines"},
      {"trigger", "app.orders", ""},
  });
  Names pending = {"app.orders"};
  expand_pending(pending, edges);
  EXPECT_EQ(pending, (Names{"app.order_totals", "app.orders", "app.top"}));
  Names partition = {"app.events_2026"};
  expand_pending(partition, edges);
  EXPECT_EQ(partition, (Names{"app.events", "app.events_2026"}));
  Names all = {std::string(cache::kAllTables), "app.orders"};
  expand_pending(all, edges);
  EXPECT_EQ(all.count(std::string(cache::kAllTables)), 1u);
  Names none;
  expand_pending(none, edges);
  EXPECT_TRUE(none.empty());
}

}  // namespace
}  // namespace pgs::proxy
