#include "tests/support/redis_cluster.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <sstream>

#include "tests/support/net.h"
#include "tests/support/redis_server.h"
#include "tests/support/wait.h"

namespace pgs::test {

namespace {

// True when 127.0.0.1:`port` can be bound now (SO_REUSEADDR, as redis-server binds).
bool port_bindable(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  close(fd);
  return ok;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

// "a-b", "a", or "[a->-id]" / "[a-<-id]" (a migration in progress: not a held slot).
void add_range(const std::string& field, std::vector<std::pair<int, int>>& out) {
  if (field.empty() || field[0] == '[') return;
  size_t dash = field.find('-');
  try {
    int a = std::stoi(field.substr(0, dash));
    int b = dash == std::string::npos ? a : std::stoi(field.substr(dash + 1));
    out.emplace_back(a, b);
  } catch (const std::exception&) {
  }
}

}  // namespace

PrivateRedisCluster::PrivateRedisCluster(uint16_t base_port, int node_timeout_ms, RedisServerOptions options)
    : base_(base_port), node_timeout_ms_(node_timeout_ms), options_(std::move(options)), dir_(make_temp_dir("pgs-cluster-")) {}

PrivateRedisCluster::~PrivateRedisCluster() {
  for (Child& c : children_) {
    c.signal(SIGCONT);
    c.signal(SIGKILL);
    c.wait_exit(Millis(5000));
  }
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

PrivateRedisCluster* PrivateRedisCluster::start_new(uint16_t base_port, std::string& error,
                                                   RedisServerOptions options) {
  auto* cluster = new PrivateRedisCluster(base_port, 1000, std::move(options));
  if (cluster->start()) return cluster;
  error = cluster->error();
  delete cluster;
  return nullptr;
}

std::vector<std::string> PrivateRedisCluster::seeds() const {
  std::vector<std::string> out;
  for (int i = 0; i < kNodes; ++i) out.push_back("127.0.0.1:" + std::to_string(port(i)));
  return out;
}

// A node listens on its port and on its cluster bus port, both below Linux's ephemeral range
// (32768-60999): Redis' default bus port (port + 10000) lay inside it, where any process's outgoing
// connection (a pooled one lives for minutes) could hold it, and the suite then failed to start.
bool PrivateRedisCluster::spawn_node(int i) {
  std::string p = std::to_string(port(i));
  std::vector<std::string> argv = {
      "redis-server", "--bind", "127.0.0.1", "--cluster-enabled", "yes", "--cluster-config-file",
      dir_ + "/nodes-" + p + ".conf", "--cluster-node-timeout", std::to_string(node_timeout_ms_),
      "--cluster-replica-validity-factor", "0", "--cluster-allow-replica-migration", "no", "--save", "",
      "--appendonly", "no", "--dir", dir_, "--daemonize", "no", "--loglevel", "warning",
      // A replica's first sync starts at once (Redis waits 5 s by default for more replicas to share
      // a diskless transfer: every cluster test paid it before its cluster was healthy).
      "--repl-diskless-sync-delay", "0", "--cluster-port", std::to_string(bus_port(i))};
  if (!options_.tls_cert.empty()) {
    argv.insert(argv.end(), {"--port", "0", "--tls-port", p, "--tls-cluster", "yes", "--tls-replication", "yes",
                             "--tls-cert-file", options_.tls_cert, "--tls-key-file", options_.tls_key,
                             "--tls-ca-cert-file", options_.tls_ca, "--tls-auth-clients", "no"});
  } else {
    argv.insert(argv.end(), {"--port", p});
  }
  for (const auto& [name, password] : options_.users) {
    argv.insert(argv.end(), {"--user", name, "on", ">" + password, "~*", "&*", "+@all"});
  }
  if (!options_.users.empty()) {
    argv.insert(argv.end(), {"--user", "default", "off", "--masteruser", options_.users[0].first, "--masterauth",
                             options_.users[0].second});
  }
  for (uint16_t taken : {port(i), bus_port(i)}) {
    if (!port_bindable(taken)) {
      error_ = "port " + std::to_string(taken) + " of node " + p + " is taken by another process";
      return false;
    }
  }
  children_[i] = Child::spawn(argv, {}, dir_ + "/redis-" + p + ".log");
  if (wait_until([&] { return answers(port(i)) || !children_[i].running(); }, Millis(10000)) &&
      children_[i].running()) {
    return true;
  }
  error_ = "node " + p + " does not answer PING: " + read_file_tail(dir_ + "/redis-" + p + ".log", 2000);
  return false;
}

bool PrivateRedisCluster::answers(uint16_t p) const {
  if (options_.tls_cert.empty() && options_.users.empty()) return redis_ping(p, Millis(500));
  std::vector<std::string> argv = cli_argv({"-p", std::to_string(p), "PING"});
  RunResult r = run_program(argv, {}, Millis(2000));
  return r.exit_code == 0 && r.out.rfind("PONG", 0) == 0;
}

std::vector<std::string> PrivateRedisCluster::cli_argv(std::vector<std::string> args) const {
  std::vector<std::string> argv = {"redis-cli", "-h", "127.0.0.1"};
  if (!options_.tls_cert.empty()) argv.insert(argv.end(), {"--tls", "--cacert", options_.tls_ca});
  if (!options_.users.empty()) {
    argv.insert(argv.end(), {"--user", options_.users[0].first, "--pass", options_.users[0].second, "--no-auth-warning"});
  }
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

bool PrivateRedisCluster::start() {
  children_.resize(kNodes);
  // Every port and bus first, before any node starts: a port in the ephemeral range starts on some runs
  // and not on others (an outgoing connection may hold it), so it is refused on every run instead.
  for (int i = 0; i < kNodes; ++i) {
    for (uint16_t p : {port(i), bus_port(i)}) {
      if (in_ephemeral_range(p)) {
        error_ = "port " + std::to_string(p) + " of node " + std::to_string(port(i)) + " lies in the ephemeral port range";
        return false;
      }
    }
  }
  for (int i = 0; i < kNodes; ++i) {
    if (!spawn_node(i)) return false;
  }
  std::vector<std::string> argv = cli_argv({"--cluster", "create"});
  for (const std::string& s : seeds()) argv.push_back(s);
  for (const char* a : {"--cluster-replicas", "1", "--cluster-yes"}) argv.emplace_back(a);
  RunResult r = run_program(argv, {}, Millis(30000));
  if (r.exit_code != 0) {
    error_ = "redis-cli --cluster create failed: " + r.describe();
    return false;
  }
  if (!wait_healthy(Millis(30000))) {
    error_ = "the cluster did not become healthy: " + cli(port(0), {"CLUSTER", "NODES"});
    return false;
  }
  return true;
}

std::string PrivateRedisCluster::cli(uint16_t p, const std::vector<std::string>& args) const {
  std::vector<std::string> argv = cli_argv({"-p", std::to_string(p)});
  argv.insert(argv.end(), args.begin(), args.end());
  RunResult r = run_program(argv, {}, Millis(10000));
  return r.exit_code == 0 ? trim(r.out) : std::string();
}

std::vector<ClusterNodeInfo> PrivateRedisCluster::nodes(std::optional<uint16_t> asked) const {
  std::string text;
  for (int i = 0; i < kNodes && text.empty(); ++i) {
    uint16_t p = asked.value_or(port(i));
    if (answers(p)) text = cli(p, {"CLUSTER", "NODES"});
    if (asked) break;
  }
  std::vector<ClusterNodeInfo> out;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream f(line);
    std::vector<std::string> fields;
    for (std::string w; f >> w;) fields.push_back(w);
    if (fields.size() < 8) continue;
    ClusterNodeInfo n;
    n.id = fields[0];
    size_t colon = fields[1].rfind(':', fields[1].find('@'));
    try {
      n.port = static_cast<uint16_t>(std::stoi(fields[1].substr(colon + 1)));
    } catch (const std::exception&) {
      continue;
    }
    n.master = fields[2].find("master") != std::string::npos;
    n.failed = fields[2].find("fail") != std::string::npos;
    n.master_id = fields[3];
    for (size_t i = 8; i < fields.size(); ++i) add_range(fields[i], n.ranges);
    out.push_back(std::move(n));
  }
  return out;
}

std::optional<ClusterNodeInfo> PrivateRedisCluster::master_of_slot(int slot) const {
  for (ClusterNodeInfo& n : nodes()) {
    if (!n.master || n.failed) continue;
    for (auto [a, b] : n.ranges) {
      if (slot >= a && slot <= b) return n;
    }
  }
  return std::nullopt;
}

std::optional<ClusterNodeInfo> PrivateRedisCluster::replica_of(const ClusterNodeInfo& master) const {
  for (ClusterNodeInfo& n : nodes()) {
    if (!n.master && !n.failed && n.master_id == master.id) return n;
  }
  return std::nullopt;
}

bool PrivateRedisCluster::healthy() const {
  std::vector<ClusterNodeInfo> all = nodes();
  long covered = 0;
  for (const ClusterNodeInfo& n : all) {
    if (!n.master || n.failed || n.ranges.empty()) continue;
    for (auto [a, b] : n.ranges) covered += b - a + 1;
    if (cli(n.port, {"CLUSTER", "INFO"}).find("cluster_state:ok") == std::string::npos) return false;
    if (cli(n.port, {"WAIT", "1", "200"}) != "1") return false;  // its replica is attached and synced
  }
  return covered == 16384;
}

bool PrivateRedisCluster::wait_healthy(Millis within) const {
  return wait_until([&] { return healthy(); }, within);
}

bool PrivateRedisCluster::begin_migration(int slot, uint16_t to) {
  std::optional<ClusterNodeInfo> from = master_of_slot(slot);
  std::vector<ClusterNodeInfo> all = nodes();
  std::string to_id;
  for (const ClusterNodeInfo& n : all) {
    if (n.port == to) to_id = n.id;
  }
  if (!from || to_id.empty() || from->port == to) return false;
  std::string s = std::to_string(slot);
  return cli(to, {"CLUSTER", "SETSLOT", s, "IMPORTING", from->id}) == "OK" &&
         cli(from->port, {"CLUSTER", "SETSLOT", s, "MIGRATING", to_id}) == "OK";
}

bool PrivateRedisCluster::migrate_keys(int slot, uint16_t to, int max_keys) {
  std::optional<ClusterNodeInfo> from = master_of_slot(slot);
  if (!from) return false;
  std::string keys = cli(from->port, {"CLUSTER", "GETKEYSINSLOT", std::to_string(slot), "100000"});
  std::istringstream lines(keys);
  int moved = 0;
  for (std::string k; std::getline(lines, k) && (max_keys == 0 || moved < max_keys);) {
    if (k.empty()) continue;
    std::vector<std::string> migrate = {"MIGRATE", "127.0.0.1", std::to_string(to), k, "0", "5000"};
    if (!options_.users.empty()) migrate.insert(migrate.end(), {"AUTH2", options_.users[0].first, options_.users[0].second});
    std::string r = cli(from->port, migrate);
    if (r != "OK" && r != "NOKEY") return false;
    ++moved;
  }
  return true;
}

bool PrivateRedisCluster::finish_migration(int slot, uint16_t to) {
  std::string to_id;
  for (const ClusterNodeInfo& n : nodes()) {
    if (n.port == to) to_id = n.id;
  }
  if (to_id.empty()) return false;
  bool ok = true;
  for (int i = 0; i < kNodes; ++i) {
    if (!answers(port(i))) continue;
    std::string r = cli(port(i), {"CLUSTER", "SETSLOT", std::to_string(slot), "NODE", to_id});
    // Replicas refuse SETSLOT; they follow their masters.
    if (r != "OK" && nodes(port(i)).empty()) ok = false;
  }
  return ok;
}

bool PrivateRedisCluster::manual_failover(uint16_t replica, Millis within) {
  if (cli(replica, {"CLUSTER", "FAILOVER"}) != "OK") return false;
  return wait_until([&] { return cli(replica, {"ROLE"}).rfind("master", 0) == 0; }, within);
}

void PrivateRedisCluster::kill_node(uint16_t p) {
  int i = p - base_;
  if (i < 0 || i >= static_cast<int>(children_.size())) return;
  children_[i].signal(SIGKILL);
  children_[i].wait_exit(Millis(5000));
}

void PrivateRedisCluster::pause_node(uint16_t p) {
  int i = p - base_;
  if (i >= 0 && i < static_cast<int>(children_.size())) children_[i].signal(SIGSTOP);
}

void PrivateRedisCluster::resume_node(uint16_t p) {
  int i = p - base_;
  if (i >= 0 && i < static_cast<int>(children_.size())) children_[i].signal(SIGCONT);
}

bool PrivateRedisCluster::alive(uint16_t p) {
  int i = p - base_;
  return i >= 0 && i < static_cast<int>(children_.size()) && children_[i].running();
}

}  // namespace pgs::test
