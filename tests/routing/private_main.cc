// main() of routing_private_test: runs the tests, then stops and deletes the private replica even when
// tests failed.
#include <gtest/gtest.h>

#include <memory>

#include "tests/routing/private_env.h"

namespace pgs::it::routing {
namespace {
std::unique_ptr<PrivateReplica> g_replica;
}

PrivateReplica& private_replica() {
  if (!g_replica) g_replica = std::make_unique<PrivateReplica>();
  return *g_replica;
}

}  // namespace pgs::it::routing

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  int rc = RUN_ALL_TESTS();
  pgs::it::routing::g_replica.reset();
  return rc;
}
