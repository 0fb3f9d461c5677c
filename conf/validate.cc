#include "conf/validate.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <string_view>

namespace pgs::conf::detail {
namespace {

std::string indexed(std::string_view array, size_t i, std::string_view key = {}) {
  std::string path = std::string(array) + "[" + std::to_string(i) + "]";
  if (!key.empty()) path += "." + std::string(key);
  return path;
}

// Reports at the key's own line, else at the line of the table that holds it.
void report(Diagnostics& diag, const std::string& key, const std::string& table, std::string message) {
  int line = diag.line_of(key);
  diag.error(key, line != 0 ? line : diag.line_of(table), std::move(message));
}

// Records `name` under `key`; a second use of the same name is reported at its own line.
class UniqueNames {
 public:
  UniqueNames(Diagnostics& diag, std::string_view what) : diag_(diag), what_(what) {}
  void add(const std::string& name, const std::string& key) {
    auto [it, fresh] = first_.emplace(name, key);
    if (fresh) return;
    diag_.error(key, diag_.line_of(key),
                "duplicate " + what_ + " \"" + name + "\" (first at line " +
                    std::to_string(diag_.line_of(it->second)) + ")");
  }

 private:
  Diagnostics& diag_;
  std::string what_;
  std::map<std::string, std::string> first_;
};

void check_pools(const Config& c, Diagnostics& diag) {
  if (c.pool.min_pool_size > c.pool.pool_size) {
    report(diag, "pool.min_pool_size", "pool",
           "must be <= pool.pool_size (" + std::to_string(c.pool.pool_size) + ")");
  }
  auto check_override = [&](const std::optional<int>& size, const std::string& key, const std::string& table) {
    if (size && *size < c.pool.min_pool_size) {
      report(diag, key, table, "must be >= pool.min_pool_size (" + std::to_string(c.pool.min_pool_size) + ")");
    }
  };
  for (size_t i = 0; i < c.databases.size(); ++i) {
    check_override(c.databases[i].pool_size, indexed("databases", i, "pool_size"), indexed("databases", i));
  }
  for (size_t i = 0; i < c.users.size(); ++i) {
    check_override(c.users[i].pool_size, indexed("users", i, "pool_size"), indexed("users", i));
  }
}

void check_servers(Config& c, Diagnostics& diag) {
  UniqueNames names(diag, "server name");
  names.add(c.primary.name, "primary.name");
  for (size_t i = 0; i < c.replicas.size(); ++i) {
    ServerEndpoint& r = c.replicas[i];
    if (r.name.empty()) r.name = "replica" + std::to_string(i + 1);
    std::string key = indexed("replicas", i, "name");
    if (diag.line_of(key) == 0) diag.note_line(key, diag.line_of(indexed("replicas", i)));
    names.add(r.name, key);
  }
}

void check_databases(Config& c, Diagnostics& diag) {
  if (c.databases.empty()) {
    diag.error("databases", 0, "at least one [[databases]] entry is required");
  }
  UniqueNames names(diag, "database name");
  for (size_t i = 0; i < c.databases.size(); ++i) {
    DatabaseConfig& db = c.databases[i];
    std::string key = indexed("databases", i, "name");
    if (db.name.empty()) {
      // Present but empty was already reported by the reader.
      if (diag.line_of(key) == 0) report(diag, key, indexed("databases", i), "is required");
      continue;
    }
    if (db.server_dbname.empty()) db.server_dbname = db.name;
    if (db.name == c.proxy.admin_database) {
      report(diag, key, indexed("databases", i), "\"" + db.name + "\" is the admin console (proxy.admin_database)");
    }
    names.add(db.name, key);
  }
}

void check_scram_verifier(const std::string& password, const std::string& key, Diagnostics& diag) {
  // SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>
  std::string_view rest = std::string_view(password).substr(std::string_view("SCRAM-SHA-256$").size());
  size_t colon1 = rest.find(':');
  size_t dollar = rest.find('$');
  size_t colon2 = dollar == std::string_view::npos ? dollar : rest.find(':', dollar);
  bool ok = colon1 != std::string_view::npos && dollar != std::string_view::npos && colon1 < dollar &&
            colon2 != std::string_view::npos && colon1 > 0 && dollar > colon1 + 1 && colon2 > dollar + 1 &&
            colon2 + 1 < rest.size() &&
            std::all_of(rest.begin(), rest.begin() + static_cast<long>(colon1),
                        [](unsigned char ch) { return std::isdigit(ch); });
  if (!ok) report(diag, key, key, "malformed SCRAM verifier; expected SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>");
}

// With auth_query on, a user may be listed without a password (for its pool overrides): its verifier is
// looked up. A SCRAM verifier needs no server_password: the proxy logs in with the client's keys.
void check_user_secrets(UserConfig& u, size_t i, AuthType auth, bool auth_query, Diagnostics& diag) {
  const std::string table = indexed("users", i);
  const std::string pw_key = indexed("users", i, "password");
  SecretKind kind = secret_kind(u.password);
  if (u.password.empty() && auth != AuthType::trust && !auth_query) {
    report(diag, pw_key, table, "is required unless proxy.auth_type = \"trust\"");
  } else if (kind == SecretKind::scram_verifier) {
    check_scram_verifier(u.password, pw_key, diag);
    if (auth == AuthType::md5) report(diag, pw_key, table, "a SCRAM verifier cannot check md5 authentication; give the cleartext password");
  } else if (kind == SecretKind::md5_hash && auth == AuthType::scram_sha_256) {
    report(diag, pw_key, table, "an md5 hash cannot check scram-sha-256 authentication; give the cleartext password or a SCRAM verifier");
  }
  const std::string sp_key = indexed("users", i, "server_password");
  if (!u.server_password.empty() && secret_kind(u.server_password) != SecretKind::cleartext) {
    report(diag, sp_key, table, "must be the cleartext password (the proxy logs in to servers with it)");
  }
  if (u.server_password.empty() && kind == SecretKind::cleartext) u.server_password = u.password;
  if (u.server_password.empty() && kind == SecretKind::md5_hash && !u.admin) {
    report(diag, sp_key, table, "is required when password is an md5 hash (the proxy needs the cleartext to log in to servers)");
  }
}

void check_users(Config& c, Diagnostics& diag) {
  UniqueNames names(diag, "user name");
  for (size_t i = 0; i < c.users.size(); ++i) {
    UserConfig& u = c.users[i];
    std::string key = indexed("users", i, "name");
    if (u.name.empty()) {
      if (diag.line_of(key) == 0) report(diag, key, indexed("users", i), "is required");
    } else {
      names.add(u.name, key);
    }
    check_user_secrets(u, i, c.proxy.auth_type, c.proxy.auth_query_enabled(), diag);
  }
}

void check_auth_query(const ProxyConfig& p, Diagnostics& diag) {
  if (!p.auth_query_enabled()) return;
  if (p.auth_type == AuthType::trust) {
    report(diag, "proxy.auth_user", "proxy", "auth_query needs auth_type \"scram-sha-256\" or \"md5\" (it looks up SCRAM verifiers)");
  }
  if (p.auth_query.find("$1") == std::string::npos) {
    report(diag, "proxy.auth_query", "proxy", "must take the user name as $1");
  }
  if (p.auth_query_negative_ttl > p.auth_query_ttl) {
    report(diag, "proxy.auth_query_negative_ttl", "proxy", "must not be longer than auth_query_ttl");
  }
}

// A relative file name in the config is made absolute against the config file's directory, so that the
// proxy (and its libpq connections) read the same file whatever the working directory.
void absolute_against_config(std::string& file, const std::string& source_path) {
  std::filesystem::path path(file);
  if (file.empty() || path.is_absolute() || source_path.empty()) return;
  std::filesystem::path base = std::filesystem::path(source_path).parent_path();
  std::error_code ec;
  std::filesystem::path resolved = std::filesystem::absolute(base / path, ec);
  file = (ec ? base / path : resolved).lexically_normal().string();
}

void check_tls(TlsConfig& tls, const std::string& source_path, Diagnostics& diag) {
  absolute_against_config(tls.cert_file, source_path);
  absolute_against_config(tls.key_file, source_path);
  if (tls.client_tls == ClientTls::disable) return;
  if (tls.cert_file.empty()) report(diag, "tls.cert_file", "tls", "required when client_tls is not \"disable\"");
  if (tls.key_file.empty()) report(diag, "tls.key_file", "tls", "required when client_tls is not \"disable\"");
}

// A node's host: an IPv4 or IPv6 address, or a DNS name (RFC 1123: dot-separated labels of 1 to 63
// letters, digits and hyphens, not starting or ending with a hyphen; 253 characters at most, a final dot
// allowed; underscores too, as container and service names have them). A name is resolved when server connections open (proxy/net/resolver.h); a Unix socket
// directory is not a host here (server connections are TCP).
bool valid_host(const std::string& host) {
  in6_addr a{};
  if (inet_pton(AF_INET, host.c_str(), &a) == 1 || inet_pton(AF_INET6, host.c_str(), &a) == 1) return true;
  std::string_view name = host;
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  if (name.empty() || name.size() > 253) return false;
  size_t label = 0;
  char prev = '.';
  for (char c : name) {
    if (c == '.') {
      if (label == 0 || prev == '-') return false;
      label = 0;
    } else if (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') {
      if (c == '-' && label == 0) return false;
      if (++label > 63) return false;
    } else {
      return false;
    }
    prev = c;
  }
  return label > 0 && prev != '-';
}

void check_server_host(const ServerEndpoint& node, const std::string& table, Diagnostics& diag) {
  if (!valid_host(node.host)) {
    report(diag, table + ".host", table,
           "\"" + node.host + "\" is neither an IP address nor a DNS host name (labels of letters, digits, hyphens, underscores)");
  }
}

// A node's TLS: verify-ca and verify-full need a CA file; a relative CA path is made absolute against the
// config file's directory.
void check_server_tls(ServerEndpoint& node, const std::string& table, const std::string& source_path,
                      Diagnostics& diag) {
  bool verifies = node.server_tls == ServerTls::verify_ca || node.server_tls == ServerTls::verify_full;
  if (verifies && node.server_tls_ca_file.empty()) {
    report(diag, table + ".server_tls_ca_file", table,
           "required when server_tls is \"" + std::string(to_string(node.server_tls)) +
               "\" (here or in [tls] server_tls_ca_file)");
  }
  absolute_against_config(node.server_tls_ca_file, source_path);
}

// Redis's TLS: a CA file or server name without redis_tls would leave a connection the reader believes
// encrypted in plaintext; a relative CA path is made absolute against the config file's directory.
void check_redis_tls(CacheConfig& cache, const std::string& source_path, Diagnostics& diag) {
  absolute_against_config(cache.redis_tls_ca_file, source_path);
  if (cache.redis_tls != RedisTls::disable) return;
  for (const auto& [key, value] : {std::pair{"cache.redis_tls_ca_file", &cache.redis_tls_ca_file},
                                   std::pair{"cache.redis_tls_server_name", &cache.redis_tls_server_name}}) {
    if (!value->empty()) report(diag, key, "cache", "is set but redis_tls is \"disable\" (set redis_tls)");
  }
}

}  // namespace

void validate(Config& config, Diagnostics& diag) {
  check_tls(config.tls, config.source_path, diag);
  check_auth_query(config.proxy, diag);
  check_server_tls(config.primary, "primary", config.source_path, diag);
  check_server_host(config.primary, "primary", diag);
  for (size_t i = 0; i < config.replicas.size(); ++i) {
    check_server_tls(config.replicas[i], indexed("replicas", i), config.source_path, diag);
    check_server_host(config.replicas[i], indexed("replicas", i), diag);
  }
  check_pools(config, diag);
  check_servers(config, diag);
  check_databases(config, diag);
  check_users(config, diag);
  check_cache(config.cache, diag);
  check_redis_tls(config.cache, config.source_path, diag);
  check_routing(config.routing, diag);
  check_observability(config.observability, diag);
}

}  // namespace pgs::conf::detail
