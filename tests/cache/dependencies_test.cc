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

}  // namespace
}  // namespace pgs::cache
