// make_key(): every input that changes a result changes the key; identical inputs give identical keys.
#include <gtest/gtest.h>

#include <functional>
#include <set>

#include "cache/generations.h"
#include "cache/key.h"
#include "cache/lookup.h"
#include "cache/policy.h"

namespace pgs::cache {
namespace {

struct Fixture {
  std::vector<Setting> settings = {{"timezone", "UTC"}, {"datestyle", "ISO, MDY"}};
  std::vector<uint8_t> params = {0, 1, 0, 1, 0, 0, 0, 1, '7', 0, 0};
  std::vector<int16_t> formats = {0};
  std::vector<TableGeneration> gens = {{"core.users", 3}, {kAllTables, 0}};
  KeyInput input() const {
    KeyInput k;
    k.shape = ReplyShape::extended_described;
    k.database = "flopods";
    k.role = "flopods";
    k.search_path = "\"$user\", public";
    k.settings = settings;
    k.statement = "SELECT * FROM core.users WHERE id = $1";
    k.params_region = params;
    k.result_formats = formats;
    k.generations = gens;
    return k;
  }
};

TEST(CacheKey, SameInputSameKey) {
  Fixture a, b;
  EXPECT_EQ(make_key(a.input()), make_key(b.input()));
  EXPECT_EQ(make_key(a.input()).hex().size(), 32u);
}

TEST(CacheKey, OrderOfSettingsAndGenerationsDoesNotMatter) {
  Fixture a, b;
  std::swap(b.settings[0], b.settings[1]);
  std::swap(b.gens[0], b.gens[1]);
  EXPECT_EQ(make_key(a.input()), make_key(b.input()));
}

TEST(CacheKey, EveryFieldChangesTheKey) {
  const std::vector<std::pair<const char*, std::function<void(Fixture&, KeyInput&)>>> changes = {
      {"role", [](Fixture&, KeyInput& k) { k.role = "other_user"; }},
      {"database", [](Fixture&, KeyInput& k) { k.database = "other"; }},
      {"search_path", [](Fixture&, KeyInput& k) { k.search_path = "core"; }},
      {"shape", [](Fixture&, KeyInput& k) { k.shape = ReplyShape::extended; }},
      {"shape simple", [](Fixture&, KeyInput& k) { k.shape = ReplyShape::simple; }},
      {"statement", [](Fixture&, KeyInput& k) { k.statement = "SELECT * FROM core.users WHERE id = $1 "; }},
      {"param value", [](Fixture& f, KeyInput& k) { f.params[8] = '8'; k.params_region = f.params; }},
      {"param format", [](Fixture& f, KeyInput& k) { f.params[3] = 0; k.params_region = f.params; }},
      {"result format", [](Fixture& f, KeyInput& k) { f.formats[0] = 1; k.result_formats = f.formats; }},
      {"no result formats", [](Fixture&, KeyInput& k) { k.result_formats = {}; }},
      {"generation", [](Fixture& f, KeyInput& k) { f.gens[0].generation = 4; k.generations = f.gens; }},
      {"all-tables generation", [](Fixture& f, KeyInput& k) { f.gens[1].generation = 1; k.generations = f.gens; }},
      {"timezone", [](Fixture& f, KeyInput& k) { f.settings[0].second = "Europe/Paris"; k.settings = f.settings; }},
      {"extra setting", [](Fixture& f, KeyInput& k) { f.settings.push_back({"bytea_output", "escape"}); k.settings = f.settings; }},
  };
  Fixture base;
  std::set<std::string> keys = {make_key(base.input()).hex()};
  for (const auto& [name, change] : changes) {
    Fixture f;
    KeyInput k = f.input();
    change(f, k);
    EXPECT_TRUE(keys.insert(make_key(k).hex()).second) << name;
  }
}

TEST(CacheKey, FieldBoundariesAreUnambiguous) {
  Fixture a, b;
  KeyInput ka = a.input(), kb = b.input();
  ka.database = "ab";
  ka.role = "c";
  kb.database = "a";
  kb.role = "bc";
  EXPECT_NE(make_key(ka), make_key(kb));
}

TEST(CacheKey, HexAndRedisNames) {
  CacheKey k{0x0123456789abcdefull, 0xfedcba9876543210ull};
  EXPECT_EQ(k.hex(), "0123456789abcdeffedcba9876543210");
  RedisNames names("t1:");
  EXPECT_EQ(names.result_key(k, "workspace"), "t1:pgsc:v1:r:workspace:0123456789abcdeffedcba9876543210");
  EXPECT_EQ(names.class_of(names.result_key(k, "workspace")), "workspace");
  EXPECT_EQ(names.class_of("t1:pgsc:v1:gens"), "");
  EXPECT_EQ(names.class_of("t2:pgsc:v1:r:workspace:0123456789abcdeffedcba9876543210"), "") << "another prefix";
  EXPECT_EQ(names.class_of("t1:pgsc:v1:r:workspace:0123"), "");
  EXPECT_EQ(names.generations, "t1:pgsc:v1:gens");
  EXPECT_EQ(names.channel, "t1:pgsc:v1:gen");
  EXPECT_EQ(RedisNames().channel, "pgsc:v1:gen");
}

}  // namespace
}  // namespace pgs::cache

namespace pgs::cache {
namespace {

TEST(CacheLookup, SlotIgnoresGenerationsFingerprintFollowsThem) {
  CacheDecision d;
  d.cacheable = true;
  d.ttl = std::chrono::milliseconds(1000);
  d.class_name = "user_profile";
  d.tables = {"core.users", "core.workspaces"};
  KeyInput base;
  base.database = "flopods";
  base.role = "flopods";
  base.statement = "SELECT 1 FROM core.users, core.workspaces";
  RedisNames names("p:");
  Lookup first = make_lookup(d, base, names);
  EXPECT_EQ(first.redis_key, "p:pgsc:v1:r:user_profile:" + first.slot.hex());
  EXPECT_EQ(first.generations, (std::vector<std::string>{"core.users", "core.workspaces", "*"}));
  std::vector<TableGeneration> some = {{"core.users", 5}};
  base.generations = some;
  EXPECT_EQ(make_lookup(d, base, names).slot, first.slot) << "generations are not part of the slot";
  // A bump of any table read, or of "*", changes the fingerprint and the Inflight key.
  std::set<uint64_t> prints;
  std::set<std::string> inflight;
  std::vector<uint64_t> gens = {0, 0, 0};
  prints.insert(generations_fingerprint(first, gens));
  inflight.insert(inflight_key(first, generations_fingerprint(first, gens)).hex());
  for (size_t i = 0; i < gens.size(); ++i) {
    gens[i] += 1;
    uint64_t fp = generations_fingerprint(first, gens);
    EXPECT_TRUE(prints.insert(fp).second) << i;
    EXPECT_TRUE(inflight.insert(inflight_key(first, fp).hex()).second) << i;
  }
  EXPECT_EQ(generations_fingerprint(first, gens), generations_fingerprint(first, gens)) << "stable";
  // Another statement under the same generations: another slot, another Inflight key.
  base.statement = "SELECT 2 FROM core.users, core.workspaces";
  Lookup other = make_lookup(d, base, names);
  EXPECT_NE(other.slot, first.slot);
  EXPECT_NE(inflight_key(other, 7).hex(), inflight_key(first, 7).hex());
}

}  // namespace
}  // namespace pgs::cache
