// The intrusive list a pool keeps per connection state (proxy/core/conn_list.h).
#include "proxy/core/conn_list.h"

#include <gtest/gtest.h>

#include <memory>
#include <vector>

namespace pgs::proxy {
namespace {

struct Node {
  int id = 0;
  ConnListHook<Node> hook;
  ConnListHook<Node>& list_hook() { return hook; }
  const ConnListHook<Node>& list_hook() const { return hook; }
};

std::vector<int> ids(const ConnList<Node>& list) {
  std::vector<int> out;
  for (Node* n : list.snapshot()) out.push_back(n->id);
  return out;
}

TEST(ConnListTest, KeepsOrderAndCountsMembers) {
  Node a{1}, b{2}, c{3};
  ConnList<Node> list;
  EXPECT_TRUE(list.empty());
  EXPECT_EQ(list.front(), nullptr);
  list.push_back(&a);
  list.push_back(&b);
  list.push_back(&c);
  EXPECT_EQ(list.size(), 3u);
  EXPECT_EQ(ids(list), (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(list.front(), &a);
  EXPECT_EQ(list.back(), &c);
  list.remove(&b);  // from the middle
  EXPECT_EQ(ids(list), (std::vector<int>{1, 3}));
  list.remove(&a);  // the head
  list.remove(&c);  // the last
  EXPECT_TRUE(list.empty());
  EXPECT_EQ(list.back(), nullptr);
}

TEST(ConnListTest, PushingAMemberOfAnotherListMovesIt) {
  Node a{1}, b{2};
  ConnList<Node> idle, active;
  idle.push_back(&a);
  idle.push_back(&b);
  active.push_back(&a);
  EXPECT_EQ(ids(idle), (std::vector<int>{2}));
  EXPECT_EQ(ids(active), (std::vector<int>{1}));
  EXPECT_TRUE(active.contains(&a));
  EXPECT_FALSE(idle.contains(&a));
  active.push_back(&a);  // again into its own list: moves to the end, counted once
  EXPECT_EQ(active.size(), 1u);
  idle.push_back(&a);
  EXPECT_EQ(ids(idle), (std::vector<int>{2, 1}));
  EXPECT_TRUE(active.empty());
}

TEST(ConnListTest, UnlinkIsSafeForANodeInNoList) {
  Node a{1};
  ConnList<Node>::unlink(&a);
  ConnList<Node> list;
  list.push_back(&a);
  ConnList<Node>::unlink(&a);
  EXPECT_TRUE(list.empty());
  EXPECT_EQ(a.hook.list, nullptr);
}

TEST(ConnListTest, AListDestroyedFirstLeavesItsMembersInNoList) {
  Node a{1}, b{2};
  {
    ConnList<Node> list;
    list.push_back(&a);
    list.push_back(&b);
  }
  EXPECT_EQ(a.hook.list, nullptr);
  EXPECT_EQ(b.hook.list, nullptr);
  ConnList<Node>::unlink(&a);  // no dangling list to touch
}

}  // namespace
}  // namespace pgs::proxy
