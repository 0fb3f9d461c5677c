// TLS to Redis in the config (issue 13, item 4): [cache] redis_tls, redis_tls_ca_file (resolved against
// the config file's directory) and redis_tls_server_name; a CA file or server name without redis_tls is
// an error; the keys need a restart.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <unistd.h>

#include "conf/config.h"
#include "tests/conf/load_errors.h"

namespace pgs::conf {
namespace {

LoadResult load_cache(const std::string& cache_keys) {
  return load_config_string("[[databases]]\nname = \"app\"\n[cache]\n" + cache_keys);
}

TEST(RedisTlsConfig, DefaultIsDisable) {
  LoadResult r = load_cache("");
  ASSERT_NE(r.config, nullptr) << errors_of(r);
  EXPECT_EQ(r.config->cache.redis_tls, RedisTls::disable);
  EXPECT_EQ(r.config->cache.redis_tls_ca_file, "");
  EXPECT_EQ(r.config->cache.redis_tls_server_name, "");
}

TEST(RedisTlsConfig, ModesAndServerName) {
  for (auto [text, mode] : {std::pair{"require", RedisTls::require}, std::pair{"verify-ca", RedisTls::verify_ca},
                            std::pair{"verify-full", RedisTls::verify_full}}) {
    LoadResult r = load_cache(std::string("redis_tls = \"") + text + "\"\nredis_tls_server_name = \"cache.example\"\n");
    ASSERT_NE(r.config, nullptr) << errors_of(r);
    EXPECT_EQ(r.config->cache.redis_tls, mode);
    EXPECT_EQ(r.config->cache.redis_tls_server_name, "cache.example");
    EXPECT_EQ(to_string(mode), text);
  }
  LoadResult bad = load_cache("redis_tls = \"prefer\"\n");
  EXPECT_EQ(bad.config, nullptr);
  EXPECT_NE(errors_of(bad).find("cache.redis_tls"), std::string::npos) << errors_of(bad);
}

TEST(RedisTlsConfig, ACaFileOrServerNameWithoutTlsIsAnError) {
  LoadResult r = load_cache("redis_tls_ca_file = \"/etc/ssl/ca.pem\"\nredis_tls_server_name = \"x\"\n");
  EXPECT_EQ(r.config, nullptr);
  EXPECT_NE(errors_of(r).find("cache.redis_tls_ca_file: is set but redis_tls is \"disable\""), std::string::npos)
      << errors_of(r);
  EXPECT_NE(errors_of(r).find("cache.redis_tls_server_name"), std::string::npos) << errors_of(r);
}

TEST(RedisTlsConfig, ARelativeCaFileIsResolvedAgainstTheConfigFile) {
  std::filesystem::path dir = std::filesystem::temp_directory_path() / ("pgs-conf-rtls-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir / "conf");
  {
    std::ofstream f(dir / "conf" / "p.toml");
    f << "[[databases]]\nname = \"app\"\n[cache]\nredis_tls = \"verify-full\"\nredis_tls_ca_file = \"../tls/ca.crt\"\n";
  }
  LoadResult r = load_config_file((dir / "conf" / "p.toml").string());
  ASSERT_NE(r.config, nullptr) << errors_of(r);
  EXPECT_EQ(r.config->cache.redis_tls_ca_file, (dir / "tls" / "ca.crt").string());
  std::filesystem::remove_all(dir);
}

TEST(RedisTlsConfig, TheKeysNeedARestart) {
  LoadResult a = load_cache("");
  LoadResult b = load_cache("redis_tls = \"verify-full\"\nredis_tls_ca_file = \"/ca.pem\"\nredis_tls_server_name = \"n\"\n");
  ASSERT_NE(a.config, nullptr);
  ASSERT_NE(b.config, nullptr) << errors_of(b);
  std::vector<std::string> changed = non_reloadable_changes(*a.config, *b.config);
  EXPECT_EQ(changed, (std::vector<std::string>{"cache.redis_tls", "cache.redis_tls_ca_file",
                                               "cache.redis_tls_server_name"}));
}

}  // namespace
}  // namespace pgs::conf
