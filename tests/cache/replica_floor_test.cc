// replica_floor(): the commit LSN a replica must have replayed before its answer may be stored, from
// the generations and the LSN entries read with them (issue 12; cache/README.md "No stale store").
#include <gtest/gtest.h>

#include "cache/generations.h"

namespace pgs::cache {
namespace {

using Entries = std::vector<std::optional<std::string>>;

TEST(ReplicaFloor, NeverBumpedNeedsNothing) {
  std::vector<uint64_t> gens = {0, 0};
  EXPECT_EQ(replica_floor(gens, Entries{std::nullopt, std::nullopt}), std::optional<uint64_t>(0));
}

TEST(ReplicaFloor, MaxOfTheEntriesOfTheCurrentGenerations) {
  std::vector<uint64_t> gens = {10, 20};
  EXPECT_EQ(replica_floor(gens, Entries{"10 500", "20 300"}), std::optional<uint64_t>(500));
}

TEST(ReplicaFloor, MissingStaleOrMalformedEntryIsUnknown) {
  std::vector<uint64_t> gens = {10, 20};
  EXPECT_EQ(replica_floor(gens, Entries{"10 500", std::nullopt}), std::nullopt) << "bumped without an LSN";
  EXPECT_EQ(replica_floor(gens, Entries{"10 500", "19 300"}), std::nullopt) << "an older generation's LSN";
  EXPECT_EQ(replica_floor(gens, Entries{"10 500", "20 x"}), std::nullopt);
  EXPECT_EQ(replica_floor(gens, Entries{"10 500", "20"}), std::nullopt);
  EXPECT_EQ(replica_floor(gens, Entries{"10 500"}), std::nullopt) << "sizes differ";
}

TEST(ReplicaFloor, EntryNames) {
  EXPECT_EQ(lsn_hash_name("p:pgsc:v1:gens"), "p:pgsc:v1:gens:lsn");
  auto e = parse_lsn_entry("1700000000000000 18446744073709551615");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->first, 1700000000000000u);
  EXPECT_EQ(e->second, 18446744073709551615ull);
  EXPECT_FALSE(parse_lsn_entry("12 ").has_value());
  EXPECT_FALSE(parse_lsn_entry(" 12").has_value());
}

}  // namespace
}  // namespace pgs::cache
