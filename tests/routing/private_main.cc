// main() of routing_private_test: runs the tests, then stops and deletes the private replica even when
// tests failed.
#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>
#include <string>

#include "tests/routing/private_env.h"

namespace pgs::it::routing {
namespace {
std::unique_ptr<PrivateReplica> g_replica;
std::string g_failure;  // why the replica could not be made (one base backup attempt per process)
}  // namespace

PrivateReplica& private_replica() {
  if (!g_failure.empty()) throw std::runtime_error("private replica unavailable: " + g_failure);
  if (!g_replica) {
    try {
      g_replica = std::make_unique<PrivateReplica>();
    } catch (const std::exception& e) {
      g_failure = e.what();
      throw;
    }
  }
  return *g_replica;
}

}  // namespace pgs::it::routing

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  int rc = RUN_ALL_TESTS();
  pgs::it::routing::g_replica.reset();
  return rc;
}
