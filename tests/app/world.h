// The shared set-up of the API tests: the schema migrated by the real binary, a few users with their
// own workspaces, flows, pods, notifications and documents (unique to this test run), and one
// flopods-api instance serving them. Built once per test binary, on first use.
#pragma once

#include <memory>
#include <string>

#include "tests/app/harness.h"

namespace pgs::app::test {

struct World {
  Db db;
  TestUser alice, bob, carol;          // carol is a viewer in alice's workspace
  std::string ws_alice, ws_bob;        // workspace ids
  std::string flow_alice, flow_bob;    // flow ids (alice's has two pods)
  std::string pod_alice, pod_bob;      // one pod of each flow
  std::string note_alice, note_bob;    // unread notifications
  std::string word;                    // a search word only this run's documents contain
  std::unique_ptr<ApiServer> api;

  static World& get();
  ~World();  // stops the server, then deletes this run's rows

 private:
  World();
};

}  // namespace pgs::app::test
