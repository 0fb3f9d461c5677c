// Login secrets that must never be predictable: cancel keys (fail closed when the random source
// fails) and the SCRAM salts unknown users are offered (stable per name, unrelated across names,
// shaped like a configured user's).
#include <gtest/gtest.h>

#include <cstring>

#include "proxy/core/secrets.h"
#include "proxy/pool/cancel.h"

namespace pgs::proxy {
namespace {

int failing_source(unsigned char*, int) { return 0; }
int fixed_source(unsigned char* out, int size) {
  std::memset(out, 0x5a, static_cast<size_t>(size));
  return 1;
}

// Before the fix RAND_bytes' result was ignored and the login went on with whatever the secret held.
TEST(CancelKey, FailsClosedWhenTheRandomSourceFails) {
  int32_t secret = 12345;
  EXPECT_FALSE(random_cancel_secret(secret, &failing_source));
  EXPECT_EQ(secret, 0);
  ASSERT_TRUE(random_cancel_secret(secret, &fixed_source));
  EXPECT_EQ(static_cast<uint32_t>(secret), 0x5a5a5a5au);
}

TEST(CancelKey, DefaultSourceIsRandom) {
  int32_t a = 0, b = 0;
  ASSERT_TRUE(random_cancel_secret(a));
  ASSERT_TRUE(random_cancel_secret(b));
  EXPECT_NE(a, b);  // 2^-32 chance of a false failure
}

std::shared_ptr<const Snapshot> snapshot_with(std::vector<conf::UserConfig> users) {
  auto config = std::make_shared<conf::Config>();
  config->users = std::move(users);
  return make_snapshot(config);
}

TEST(DecoyVerifier, StablePerNameDistinctAcrossNamesAndReloads) {
  auto s1 = snapshot_with({{.name = "alice", .password = "alice-pw"}});
  auto s2 = snapshot_with({{.name = "alice", .password = "alice-pw"}});  // a reload
  const auto a = s1->decoy_verifier("nobody-a"), a_again = s2->decoy_verifier("nobody-a");
  const auto b = s1->decoy_verifier("nobody-b");
  EXPECT_EQ(a.salt, a_again.salt);
  EXPECT_NE(a.salt, b.salt);
  // Shaped like a configured user's verifier: same salt length and iteration count.
  const UserSecrets* alice = s1->secrets_for("alice");
  ASSERT_NE(alice, nullptr);
  ASSERT_TRUE(alice->has_scram);
  EXPECT_EQ(a.salt.size(), alice->scram.salt.size());
  EXPECT_EQ(a.iterations, alice->scram.iterations);
  // A configured user's salt is stable across reloads too (no tell-tale change on SIGHUP).
  EXPECT_EQ(alice->scram.salt, s2->secrets_for("alice")->scram.salt);
  EXPECT_NE(alice->scram.salt, a.salt);
}

// Postgres verifiers stored in the config carry their own iteration count: decoys take the most
// common one, so an unknown name does not stand out by "i=".
TEST(DecoyVerifier, TakesTheIterationCountMostUsersHave) {
  auto v = protocol::scram::Verifier::from_password("pw", "0123456789abcdef", 10000).to_string();
  auto s = snapshot_with({{.name = "a", .password = v}, {.name = "b", .password = v}, {.name = "c", .password = "c-pw"}});
  EXPECT_EQ(s->decoy_iterations, 10000);
  EXPECT_EQ(s->decoy_verifier("nobody").iterations, 10000);
  EXPECT_EQ(snapshot_with({})->decoy_iterations, protocol::scram::kDefaultIterations);
}

}  // namespace
}  // namespace pgs::proxy
