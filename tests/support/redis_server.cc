#include "tests/support/redis_server.h"

#include <csignal>
#include <filesystem>
#include <sstream>

#include "tests/support/dev_env.h"
#include "tests/support/net.h"
#include "tests/support/raw_client.h"

namespace pgs::test {

bool redis_ping(uint16_t port, Millis deadline) {
  auto end = Clock::now() + deadline;
  try {
    RawConn c(kHost, port);
    if (!c.send("PING\r\n")) return false;
    std::string got;
    char buf[16];
    while (got.size() < 7) {
      size_t n = c.read_some(buf, sizeof buf, time_left(end));
      if (n == 0) break;
      got.append(buf, n);
    }
    return got.rfind("+PONG\r\n", 0) == 0;
  } catch (const std::exception&) {
    return false;  // connection refused: not up (yet)
  }
}

bool wait_for_redis(uint16_t port, Millis within) {
  return wait_until([&] { return redis_ping(port); }, within);
}

long redis_keys(uint16_t port, const std::string& prefix) {
  RunResult r = run_program({"redis-cli", "-p", std::to_string(port), "--scan", "--pattern", prefix + "*"}, {},
                            Millis(10000));
  if (r.exit_code != 0) return -1;
  long n = 0;
  for (char ch : r.out) n += ch == '\n';
  return n;
}

void redis_delete_prefix(uint16_t port, const std::string& prefix) {
  RunResult r = run_program({"redis-cli", "-p", std::to_string(port), "--scan", "--pattern", prefix + "*"}, {},
                            Millis(10000));
  if (r.exit_code != 0 || r.out.empty()) return;
  std::vector<std::string> argv = {"redis-cli", "-p", std::to_string(port), "DEL"};
  std::istringstream lines(r.out);
  for (std::string k; std::getline(lines, k);) {
    if (!k.empty()) argv.push_back(k);
  }
  if (argv.size() > 4) run_program(argv, {}, Millis(10000));
}

PrivateRedis::PrivateRedis(RedisServerOptions options) : options_(std::move(options)), port_(free_port()) {
  dir_ = make_temp_dir("pgs-redis-");
  log_path_ = dir_ + "/redis.log";
  start();
}

PrivateRedis::~PrivateRedis() {
  continue_process();
  kill_server();
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

bool PrivateRedis::start() {
  if (child_.running()) return true;
  std::vector<std::string> argv = {"redis-server", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                                   "--daemonize", "no", "--loglevel", "warning"};
  if (tls()) {
    argv.insert(argv.end(), {"--port", "0", "--tls-port", std::to_string(port_), "--tls-cert-file", options_.tls_cert,
                             "--tls-key-file", options_.tls_key, "--tls-ca-cert-file", options_.tls_ca,
                             "--tls-auth-clients", "no"});
  } else {
    argv.insert(argv.end(), {"--port", std::to_string(port_)});
  }
  for (const auto& [name, password] : options_.users) {
    argv.insert(argv.end(), {"--user", name, "on", ">" + password, "~*", "&*", "+@all"});
  }
  if (!options_.users.empty()) argv.insert(argv.end(), {"--user", "default", "off"});
  child_ = Child::spawn(argv, {}, log_path_);
  return wait_until([&] { return answers() || !child_.running(); }, Millis(10000)) && child_.running();
}

bool PrivateRedis::answers() const {
  if (!tls() && options_.users.empty()) return redis_ping(port_);
  RunResult r = cli({"PING"});
  return r.exit_code == 0 && r.out.rfind("PONG", 0) == 0;
}

RunResult PrivateRedis::cli(const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {"redis-cli", "-h", "127.0.0.1", "-p", std::to_string(port_)};
  if (tls()) argv.insert(argv.end(), {"--tls", "--cacert", options_.tls_ca});
  if (!options_.users.empty()) {
    argv.insert(argv.end(), {"--user", options_.users[0].first, "--pass", options_.users[0].second, "--no-auth-warning"});
  }
  argv.insert(argv.end(), args.begin(), args.end());
  return run_program(argv, {}, Millis(10000));
}

long PrivateRedis::keys(const std::string& prefix) const {
  RunResult r = cli({"--scan", "--pattern", prefix + "*"});
  if (r.exit_code != 0) return -1;
  long n = 0;
  for (char ch : r.out) n += ch == '\n';
  return n;
}

void PrivateRedis::stop(Millis grace) {
  continue_process();
  child_.stop(grace);
}

void PrivateRedis::kill_server() {
  continue_process();
  child_.signal(SIGKILL);
  child_.wait_exit(Millis(5000));
}

void PrivateRedis::stop_process() { child_.signal(SIGSTOP); }

void PrivateRedis::continue_process() { child_.signal(SIGCONT); }

}  // namespace pgs::test
