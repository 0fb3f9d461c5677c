#include "conf/config.h"

#include <filesystem>
#include <fstream>
#include <ostream>
#include <sstream>

#include "conf/diagnostics.h"
#include "conf/enum_names.h"
#include "conf/sections.h"
#include "conf/validate.h"

namespace pgs::conf {

const DatabaseConfig* Config::find_database(std::string_view name) const {
  for (const DatabaseConfig& db : databases) {
    if (db.name == name) return &db;
  }
  return nullptr;
}

const UserConfig* Config::find_user(std::string_view name) const {
  for (const UserConfig& user : users) {
    if (user.name == name) return &user;
  }
  return nullptr;
}

PoolConfig Config::pool_for(const DatabaseConfig& db, const UserConfig& user) const {
  PoolConfig effective = pool;
  if (db.pool_size) effective.pool_size = *db.pool_size;
  if (db.pool_mode) effective.pool_mode = *db.pool_mode;
  if (user.pool_size) effective.pool_size = *user.pool_size;
  if (user.pool_mode) effective.pool_mode = *user.pool_mode;
  return effective;
}

const CacheClass* CacheConfig::class_for_table(std::string_view table) const {
  for (const CacheClass& cls : classes) {
    for (const std::string& t : cls.tables) {
      if (t == table) return &cls;
    }
  }
  return nullptr;
}

std::string ConfigError::to_string() const {
  std::string out = "line " + std::to_string(line);
  if (column > 0) out += ", column " + std::to_string(column);
  if (!key.empty()) out += ": " + key;
  return out + ": " + message;
}

LoadResult load_config_string(std::string_view toml_text, std::string source_name) {
  detail::Diagnostics diag;
  auto config = std::make_shared<Config>();
  config->source_path = source_name;
  try {
    toml::table root = toml::parse(toml_text, source_name);
    detail::read_document(root, *config, diag);
    detail::validate(*config, diag);
  } catch (const toml::parse_error& e) {
    diag.syntax_error(static_cast<int>(e.source().begin.line), static_cast<int>(e.source().begin.column),
                      "TOML syntax error: " + std::string(e.description()));
  }
  LoadResult result;
  if (diag.empty()) {
    result.config = std::move(config);
  } else {
    result.errors = diag.take();
  }
  return result;
}

LoadResult load_config_file(const std::string& path) {
  // A config file is small; anything larger is a mistake (a log file passed by accident, say).
  constexpr std::uintmax_t kMaxFileBytes = 16u << 20;
  auto fail = [](std::string message) {
    LoadResult result;
    result.errors.push_back(ConfigError{"", 0, std::move(message)});
    return result;
  };
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return fail("cannot open config file " + path + ": no such regular file");
  }
  std::uintmax_t size = std::filesystem::file_size(path, ec);
  if (!ec && size > kMaxFileBytes) return fail("config file " + path + " is larger than 16MB");
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail("cannot open config file " + path);
  std::stringstream text;
  text << in.rdbuf();
  return load_config_string(text.str(), path);
}

bool check_config_file(const std::string& path, std::ostream& out) {
  LoadResult result = load_config_file(path);
  if (result.errors.empty()) {
    out << "OK\n";
    return true;
  }
  for (const ConfigError& e : result.errors) {
    out << path;
    if (e.line > 0) out << ":" << e.line;
    if (e.column > 0) out << ":" << e.column;
    out << ": ";
    if (!e.key.empty()) out << e.key << ": ";
    out << e.message << "\n";
  }
  return false;
}

SecretKind secret_kind(std::string_view password) {
  if (password.starts_with("SCRAM-SHA-256$")) return SecretKind::scram_verifier;
  // Postgres: "md5" followed by exactly 32 lowercase hex digits is a stored md5 hash.
  if (password.size() == 35 && password.starts_with("md5") &&
      password.find_first_not_of("0123456789abcdef", 3) == std::string_view::npos) {
    return SecretKind::md5_hash;
  }
  return SecretKind::cleartext;
}

std::string_view to_string(PoolMode v) { return detail::name_of(detail::kPoolModes, v); }
std::string_view to_string(ClientTls v) { return detail::name_of(detail::kClientTls, v); }
std::string_view to_string(ServerTls v) { return detail::name_of(detail::kServerTls, v); }
std::string_view to_string(RedisTls v) { return detail::name_of(detail::kRedisTls, v); }
std::optional<RedisTls> redis_tls_from_string(std::string_view name) { return detail::value_of(detail::kRedisTls, name); }

std::optional<std::string> read_secret_file(const std::string& path, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::string contents(max_bytes + 3, '\0');
  in.read(contents.data(), static_cast<std::streamsize>(contents.size()));
  if (!in && !in.eof()) return std::nullopt;
  contents.resize(static_cast<size_t>(in.gcount()));
  if (!contents.empty() && contents.back() == '\n') contents.pop_back();
  if (!contents.empty() && contents.back() == '\r') contents.pop_back();
  return contents;
}

LibpqTls libpq_tls(const ServerEndpoint& node) {
  return {std::string(to_string(node.server_tls)), node.server_tls_ca_file};
}
std::string_view to_string(AuthType v) { return detail::name_of(detail::kAuthTypes, v); }
std::string_view to_string(Consistency v) { return detail::name_of(detail::kConsistencies, v); }
std::string_view to_string(LoadBalance v) { return detail::name_of(detail::kLoadBalances, v); }
std::string_view to_string(LogLevel v) { return detail::name_of(detail::kLogLevels, v); }
std::string_view to_string(Pinning v) { return detail::name_of(detail::kPinnings, v); }

}  // namespace pgs::conf
