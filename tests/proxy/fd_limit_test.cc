// descriptors_needed: clients, every pool's servers on every node (rounded up to one per worker), a margin.
#include "proxy/core/fd_limit.h"

#include <gtest/gtest.h>

namespace pgs::proxy {
namespace {

conf::Config two_by_two() {
  conf::Config c;
  c.proxy.max_client_conn = 1000;
  c.pool.pool_size = 10;
  c.databases = {{"a", "a", std::nullopt, std::nullopt}, {"b", "b", 30, std::nullopt}};
  conf::UserConfig u;
  u.name = "app";
  u.server_password = "x";
  conf::UserConfig admin;
  admin.name = "console";
  admin.admin = true;  // no server password: opens no servers
  c.users = {u, admin};
  return c;
}

TEST(DescriptorsNeeded, CountsClientsServersAndMargin) {
  conf::Config c = two_by_two();
  uint64_t base = descriptors_needed(c, 2);
  EXPECT_GE(base, 1000u + 10 + 30);
  EXPECT_LT(base, 1000u + 10 + 30 + 200);
  c.replicas.push_back(conf::ServerEndpoint{"r1", "127.0.0.1", 5433, 1});
  EXPECT_EQ(descriptors_needed(c, 2), base + 40);  // the same pools on the replica
  c.proxy.max_client_conn = 5000;
  EXPECT_EQ(descriptors_needed(c, 2), base + 40 + 4000);
}

TEST(DescriptorsNeeded, EachWorkerHasAtLeastOneServerPerPool) {
  conf::Config c = two_by_two();
  c.pool.pool_size = 1;
  c.databases[1].pool_size = 1;
  uint64_t one_worker = descriptors_needed(c, 1);
  EXPECT_GE(descriptors_needed(c, 8) - one_worker, 2u * 7);  // two pools, seven more servers each
}

TEST(EnsureDescriptorLimit, NoWarningWhenTheLimitSuffices) {
  EXPECT_EQ(ensure_descriptor_limit(16), "");
}

}  // namespace
}  // namespace pgs::proxy
