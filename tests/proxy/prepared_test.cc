#include "proxy/session/prepared.h"

#include <gtest/gtest.h>

namespace pgs::proxy {
namespace {

TEST(Prepared, NameDependsOnTextAndTypes) {
  auto a = make_prepared("select $1", {23});
  auto b = make_prepared("select $1", {23});
  auto c = make_prepared("select $1", {25});
  auto d = make_prepared("select $2", {23});
  EXPECT_EQ(a->server_name, b->server_name);
  EXPECT_NE(a->server_name, c->server_name);
  EXPECT_NE(a->server_name, d->server_name);
  EXPECT_EQ(a->server_name.rfind("pgsidecar_", 0), 0u);
  EXPECT_LE(a->server_name.size(), 63u);  // NAMEDATALEN - 1
}

TEST(ServerStatements, EvictsLeastRecentlyUsed) {
  ServerStatements s(2);
  EXPECT_FALSE(s.insert("a"));
  EXPECT_FALSE(s.insert("b"));
  s.touch("a");
  auto victim = s.insert("c");
  ASSERT_TRUE(victim);
  EXPECT_EQ(*victim, "b");
  EXPECT_TRUE(s.contains("a"));
  EXPECT_TRUE(s.contains("c"));
  EXPECT_FALSE(s.contains("b"));
  EXPECT_FALSE(s.insert("a"));  // already there: no eviction
  s.erase("a");
  EXPECT_EQ(s.size(), 1u);
  s.clear();
  EXPECT_EQ(s.size(), 0u);
}

}  // namespace
}  // namespace pgs::proxy
