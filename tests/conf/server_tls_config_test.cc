// TLS to the servers in the config (issue 13, item 2): [tls] server_tls and server_tls_ca_file are the
// defaults of every node, a node's own keys win, verify-* needs a CA file, a relative CA path is resolved
// against the config file's directory, and the libpq keywords follow.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <unistd.h>

#include "conf/config.h"
#include "tests/conf/load_errors.h"

namespace pgs::conf {
namespace {

TEST(ServerTlsConfig, DefaultsAreDisableAndNoCleartext) {
  LoadResult r = load_config_string("[[databases]]\nname = \"app\"\n[[replicas]]\n");
  ASSERT_NE(r.config, nullptr) << errors_of(r);
  EXPECT_EQ(r.config->primary.server_tls, ServerTls::disable);
  EXPECT_EQ(r.config->replicas.at(0).server_tls, ServerTls::disable);
  EXPECT_FALSE(r.config->primary.server_allow_cleartext);
  EXPECT_EQ(libpq_tls(r.config->primary).sslmode, "disable");
}

TEST(ServerTlsConfig, TlsTableIsTheDefaultAndANodeOverridesIt) {
  LoadResult r = load_config_string(R"(
[[databases]]
name = "app"
[tls]
server_tls = "verify-full"
server_tls_ca_file = "/etc/ssl/rds.pem"
[primary]
server_allow_cleartext = true
[[replicas]]
server_tls = "require"
server_tls_ca_file = "/etc/ssl/other.pem"
[[replicas]]
server_tls = "verify-ca"
)");
  ASSERT_NE(r.config, nullptr) << errors_of(r);
  const Config& c = *r.config;
  EXPECT_EQ(c.primary.server_tls, ServerTls::verify_full);
  EXPECT_EQ(c.primary.server_tls_ca_file, "/etc/ssl/rds.pem");
  EXPECT_TRUE(c.primary.server_allow_cleartext);
  EXPECT_EQ(c.replicas.at(0).server_tls, ServerTls::require);
  EXPECT_EQ(c.replicas.at(0).server_tls_ca_file, "/etc/ssl/other.pem");
  EXPECT_EQ(c.replicas.at(1).server_tls, ServerTls::verify_ca);
  EXPECT_EQ(c.replicas.at(1).server_tls_ca_file, "/etc/ssl/rds.pem");
  LibpqTls tls = libpq_tls(c.primary);
  EXPECT_EQ(tls.sslmode, "verify-full");
  EXPECT_EQ(tls.sslrootcert, "/etc/ssl/rds.pem");
}

TEST(ServerTlsConfig, VerifyModesNeedACaFile) {
  LoadResult r = load_config_string("[[databases]]\nname = \"app\"\n[primary]\nserver_tls = \"verify-full\"\n");
  ASSERT_EQ(r.config, nullptr);
  EXPECT_NE(errors_of(r).find("primary.server_tls_ca_file: required when server_tls is \"verify-full\""),
            std::string::npos)
      << errors_of(r);
  r = load_config_string("[[databases]]\nname = \"app\"\n[[replicas]]\nserver_tls = \"verify-ca\"\n");
  EXPECT_NE(errors_of(r).find("replicas[0].server_tls_ca_file"), std::string::npos) << errors_of(r);
  r = load_config_string("[[databases]]\nname = \"app\"\n[primary]\nserver_tls = \"verify\"\n");
  EXPECT_NE(errors_of(r).find("primary.server_tls"), std::string::npos) << errors_of(r);
}

TEST(ServerTlsConfig, ARelativeCaFileIsResolvedAgainstTheConfigFile) {
  std::filesystem::path dir = std::filesystem::temp_directory_path() / ("pgs-conf-tls-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir / "conf");
  {
    std::ofstream f(dir / "conf" / "p.toml");
    f << "[[databases]]\nname = \"app\"\n[primary]\nserver_tls = \"verify-full\"\n"
         "server_tls_ca_file = \"../.dev/tls/ca.crt\"\n";
  }
  LoadResult r = load_config_file((dir / "conf" / "p.toml").string());
  ASSERT_NE(r.config, nullptr) << errors_of(r);
  EXPECT_EQ(r.config->primary.server_tls_ca_file, (dir / ".dev" / "tls" / "ca.crt").string());
  std::filesystem::remove_all(dir);
}

// A node's host may be a DNS name (RDS endpoints are), resolved when server connections open; anything
// that is neither an address nor a name is refused at load, naming the key.
TEST(ServerHostConfig, NamesAndAddressesAreAcceptedAndGarbageIsNot) {
  for (const char* host : {"localhost", "mydb.abc123.eu-west-1.rds.amazonaws.com", "db-1", "pg_primary",
                           "10.0.0.5", "::1", "fe80::1", "db.example.com."}) {
    LoadResult r = load_config_string(std::string("[[databases]]\nname = \"app\"\n[primary]\nhost = \"") + host +
                                      "\"\n[[replicas]]\nhost = \"" + host + "\"\n");
    ASSERT_NE(r.config, nullptr) << host << ": " << errors_of(r);
    EXPECT_EQ(r.config->primary.host, host);
    EXPECT_EQ(r.config->replicas.at(0).host, host);
  }
  for (const char* host : {"db host", "-db", "db-", "a..b", "/var/run/postgresql", "db:5432", "[::1]", "10.0.0.5/32",
                           "db.example.com..", "exa\u00e9mple"}) {
    LoadResult r = load_config_string(std::string("[[databases]]\nname = \"app\"\n[[replicas]]\nhost = \"") + host +
                                      "\"\n");
    EXPECT_EQ(r.config, nullptr) << host;
    EXPECT_NE(errors_of(r).find("replicas[0].host"), std::string::npos) << host << ": " << errors_of(r);
    EXPECT_NE(errors_of(r).find("neither an IP address nor a DNS host name"), std::string::npos) << errors_of(r);
  }
  std::string long_label(64, 'a');
  LoadResult r = load_config_string("[[databases]]\nname = \"app\"\n[primary]\nhost = \"" + long_label + ".com\"\n");
  EXPECT_EQ(r.config, nullptr);
  EXPECT_NE(errors_of(r).find("primary.host"), std::string::npos) << errors_of(r);
}

}  // namespace
}  // namespace pgs::conf
