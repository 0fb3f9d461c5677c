#include "app/cli.h"

#include <charconv>
#include <cstdlib>
#include <functional>
#include <map>

#include "cache/cluster_keys.h"

namespace pgs::app {
namespace {

Outcome<long long, std::string> number(const std::string& flag, const std::string& text, long long min, long long max) {
  long long v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v < min || v > max) {
    return flag + " expects an integer in " + std::to_string(min) + ".." + std::to_string(max) + ", got \"" + text + "\"";
  }
  return v;
}

// "host:port" -> parts; the host may be empty (then `fallback_host`).
Outcome<std::pair<std::string, int>, std::string> host_port(const std::string& flag, const std::string& text) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos) return flag + " expects HOST:PORT, got \"" + text + "\"";
  auto port = number(flag, text.substr(colon + 1), 0, 65535);
  if (!port) return port.error();
  return std::make_pair(colon == 0 ? std::string("127.0.0.1") : text.substr(0, colon), static_cast<int>(*port));
}

// "ip:port,ip:port,..." (IP addresses, as the proxy's redis_nodes): the seed nodes of a Redis Cluster.
std::optional<std::string> set_cluster_nodes(CliOptions& o, const std::string& text) {
  o.redis.cluster_nodes.clear();
  for (std::size_t at = 0; at <= text.size();) {
    std::size_t comma = std::min(text.find(',', at), text.size());
    const std::string node = text.substr(at, comma - at);
    if (!cache::parse_node_address(node)) {
      return "--redis-cluster expects IP:PORT[,IP:PORT...] (IP addresses), got \"" + node + "\"";
    }
    o.redis.cluster_nodes.push_back(node);
    at = comma + 1;
  }
  return std::nullopt;
}

// Read as the proxy reads its *_file keys (conf::read_secret_file): the whole file less a trailing newline.
std::optional<std::string> set_password_file(CliOptions& o, const std::string& path) {
  constexpr size_t kMaxBytes = 4096;
  std::optional<std::string> password = conf::read_secret_file(path, kMaxBytes);
  if (!password) return "--redis-password-file: cannot read " + path;
  if (password->empty()) return "--redis-password-file: " + path + " is empty";
  if (password->size() > kMaxBytes) return "--redis-password-file: " + path + " holds more than 4096 bytes";
  o.redis.password = std::move(*password);
  return std::nullopt;
}

std::optional<std::string> set_redis_tls(CliOptions& o, const std::string& v) {
  auto mode = conf::redis_tls_from_string(v);
  if (!mode) return "--redis-tls expects disable, require, verify-ca or verify-full, got \"" + v + "\"";
  o.redis.tls = *mode;
  return std::nullopt;
}

using Setter = std::function<std::optional<std::string>(CliOptions&, const std::string&)>;

template <typename T>
Setter int_flag(T CliOptions::*group, int T::*field, long long min, long long max, const char* flag) {
  return [=](CliOptions& o, const std::string& v) -> std::optional<std::string> {
    auto n = number(flag, v, min, max);
    if (!n) return n.error();
    (o.*group).*field = static_cast<int>(*n);
    return std::nullopt;
  };
}

Setter ms_flag(std::chrono::milliseconds ServerOptions::*field, const char* flag) {
  return [=](CliOptions& o, const std::string& v) -> std::optional<std::string> {
    auto n = number(flag, v, 1, 3'600'000);
    if (!n) return n.error();
    o.server.*field = std::chrono::milliseconds(*n);
    return std::nullopt;
  };
}

const std::map<std::string, Setter>& setters() {
  static const std::map<std::string, Setter> table{
      {"--db", [](CliOptions& o, const std::string& v) { o.db = v; return std::optional<std::string>(); }},
      {"--users", int_flag(&CliOptions::seed, &SeedOptions::users, 1, 10'000'000, "--users")},
      {"--print-tokens", int_flag(&CliOptions::seed, &SeedOptions::print_tokens, 0, 1000, "--print-tokens")},
      {"--secret", [](CliOptions& o, const std::string& v) { o.seed.secret = v; return std::optional<std::string>(); }},
      {"--threads", int_flag(&CliOptions::server, &ServerOptions::io_threads, 1, 256, "--threads")},
      {"--handler-threads", int_flag(&CliOptions::server, &ServerOptions::handler_threads, 1, 1024, "--handler-threads")},
      {"--pool", int_flag(&CliOptions::pool, &DbPoolOptions::size, 1, 1024, "--pool")},
      {"--rate-anon", int_flag(&CliOptions::api, &ApiOptions::anonymous_per_window, 0, 1'000'000'000, "--rate-anon")},
      {"--rate-user", int_flag(&CliOptions::api, &ApiOptions::user_per_window, 0, 1'000'000'000, "--rate-user")},
      {"--readyz", [](CliOptions& o, const std::string& v) { o.api.readyz_url = v; return std::optional<std::string>(); }},
      {"--redis-prefix", [](CliOptions& o, const std::string& v) { o.redis.prefix = v; return std::optional<std::string>(); }},
      {"--redis-cluster", set_cluster_nodes},
      {"--redis-user", [](CliOptions& o, const std::string& v) { o.redis.user = v; return std::optional<std::string>(); }},
      {"--redis-password-file", set_password_file},
      {"--redis-tls", set_redis_tls},
      {"--redis-tls-ca", [](CliOptions& o, const std::string& v) { o.redis.tls_ca_file = v; return std::optional<std::string>(); }},
      {"--redis-tls-server-name", [](CliOptions& o, const std::string& v) {
         o.redis.tls_server_name = v;
         return std::optional<std::string>();
       }},
      {"--access-log", [](CliOptions& o, const std::string& v) { o.access_log = v; return std::optional<std::string>(); }},
      {"--read-timeout-ms", ms_flag(&ServerOptions::read_timeout, "--read-timeout-ms")},
      {"--idle-timeout-ms", ms_flag(&ServerOptions::idle_timeout, "--idle-timeout-ms")},
      {"--pool-wait-ms", [](CliOptions& o, const std::string& v) -> std::optional<std::string> {
         auto n = number("--pool-wait-ms", v, 1, 600'000);
         if (!n) return n.error();
         o.pool.wait = std::chrono::milliseconds(*n);
         return std::nullopt;
       }},
      {"--body-limit", [](CliOptions& o, const std::string& v) -> std::optional<std::string> {
         auto n = number("--body-limit", v, 1, 64 << 20);
         if (!n) return n.error();
         o.server.body_limit = static_cast<std::size_t>(*n);
         return std::nullopt;
       }},
      {"--listen", [](CliOptions& o, const std::string& v) -> std::optional<std::string> {
         auto hp = host_port("--listen", v);
         if (!hp) return hp.error();
         o.server.address = hp->first;
         o.server.port = static_cast<unsigned short>(hp->second);
         return std::nullopt;
       }},
      {"--redis", [](CliOptions& o, const std::string& v) -> std::optional<std::string> {
         auto hp = host_port("--redis", v);
         if (!hp) return hp.error();
         o.redis.host = hp->first;
         o.redis.port = hp->second;
         return std::nullopt;
       }},
  };
  return table;
}

}  // namespace

const char* usage() {
  return "usage:\n"
         "  flopods-api migrate --db CONNINFO\n"
         "  flopods-api seed --users N --db CONNINFO [--secret S] [--print-tokens K]\n"
         "  flopods-api serve --listen HOST:PORT --db CONNINFO --redis HOST:PORT [--readyz URL]\n"
         "                    [--threads N] [--pool N] [--handler-threads N] [--pool-wait-ms MS] [--prepared]\n"
         "                    [--redis-prefix P] [--rate-anon N] [--rate-user N] [--access-log -|none|PATH]\n"
         "                    [--body-limit BYTES] [--read-timeout-ms MS] [--idle-timeout-ms MS]\n"
         "                    [--redis-cluster IP:PORT,...] [--redis-user NAME] [--redis-password-file PATH]\n"
         "                    [--redis-tls disable|require|verify-ca|verify-full] [--redis-tls-ca PEM]\n"
         "                    [--redis-tls-server-name NAME]\n";
}

Outcome<CliOptions, std::string> parse_cli(const std::vector<std::string>& args) {
  CliOptions o;
  if (args.empty()) return std::string("missing command");
  o.command = args[0];
  if (o.command == "help" || o.command == "--help" || o.command == "-h") {
    o.command = "help";
    return o;
  }
  if (o.command != "migrate" && o.command != "seed" && o.command != "serve") return "unknown command: " + o.command;
  const char* env_db = std::getenv("FLOPODS_DB");
  o.db = env_db != nullptr ? env_db : "host=127.0.0.1 port=6432 dbname=flopods user=flopods";
  const char* env_redis_password = std::getenv("FLOPODS_REDIS_PASSWORD");
  if (env_redis_password != nullptr) o.redis.password = env_redis_password;
  bool handler_threads_set = false;
  for (std::size_t i = 1; i < args.size(); ++i) {
    const std::string& flag = args[i];
    if (flag == "--prepared") {
      o.pool.prepared = true;
      continue;
    }
    const auto it = setters().find(flag);
    if (it == setters().end()) return "unknown option: " + flag;
    if (i + 1 >= args.size()) return flag + " needs a value";
    if (auto bad = it->second(o, args[++i])) return *bad;
    handler_threads_set = handler_threads_set || flag == "--handler-threads";
  }
  if (o.redis.tls == conf::RedisTls::disable && (!o.redis.tls_ca_file.empty() || !o.redis.tls_server_name.empty())) {
    return std::string("--redis-tls-ca and --redis-tls-server-name need --redis-tls");
  }
  o.pool.conninfo = o.db;
  // One handler thread per pooled connection unless told otherwise: a handler holds at most one.
  if (!handler_threads_set) o.server.handler_threads = o.pool.size;
  return o;
}

}  // namespace pgs::app
