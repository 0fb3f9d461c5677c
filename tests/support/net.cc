#include "tests/support/net.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>

namespace pgs::test {

namespace {
sockaddr_in loopback(uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  return a;
}
}  // namespace

int listen_loopback(uint16_t& port, int backlog) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a = loopback(0);
  socklen_t len = sizeof a;
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd, backlog) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    if (fd >= 0) close(fd);
    return -1;
  }
  port = ntohs(a.sin_port);
  return fd;
}

std::pair<uint16_t, uint16_t> ephemeral_port_range() {
  std::ifstream f("/proc/sys/net/ipv4/ip_local_port_range");
  unsigned a = 0, b = 0;
  if (f >> a >> b && a <= b && b <= 65535) return {static_cast<uint16_t>(a), static_cast<uint16_t>(b)};
  return {32768, 60999};
}

bool in_ephemeral_range(uint16_t port) {
  const auto [lo, hi] = ephemeral_port_range();
  return port >= lo && port <= hi;
}

uint16_t free_port() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket failed");
  sockaddr_in a = loopback(0);
  socklen_t len = sizeof a;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    close(fd);
    throw std::runtime_error("bind to port 0 failed");
  }
  close(fd);
  return ntohs(a.sin_port);
}

int connect_loopback(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in a = loopback(port);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

int tcp_connections(pid_t pid, uint16_t remote_port) {
  return static_cast<int>(tcp_local_ports(pid, remote_port).size());
}

namespace {
// One row of /proc/net/tcp (IPv4): "sl local_address rem_address st tx_queue:rx_queue tr tm->when retrnsmt
// uid timeout inode ...", addresses as hex "ADDR:PORT".
struct TcpRow {
  uint16_t local_port = 0, remote_port = 0;
  int state = 0;
  uint64_t unread = 0;
  std::string inode;
};

// Every row, or none when the file cannot be read or a row does not parse.
std::vector<TcpRow> read_proc_net_tcp() {
  std::ifstream tcp("/proc/net/tcp");
  std::string line;
  std::getline(tcp, line);  // the header
  std::vector<TcpRow> rows;
  auto port_of = [](const std::string& address) {
    return static_cast<uint16_t>(std::stoul(address.substr(address.size() - 4), nullptr, 16));
  };
  while (std::getline(tcp, line)) {
    std::istringstream is(line);
    std::string sl, local, remote, state, queues, tr, retr, uid, timeout, inode;
    is >> sl >> local >> remote >> state >> queues >> tr >> retr >> uid >> timeout >> inode;
    const size_t colon = queues.find(':');
    if (local.size() <= 5 || remote.size() <= 5 || colon == std::string::npos) continue;
    rows.push_back(TcpRow{port_of(local), port_of(remote), static_cast<int>(std::stoul(state, nullptr, 16)),
                          std::stoull(queues.substr(colon + 1), nullptr, 16), inode});
  }
  return rows;
}
}  // namespace

std::vector<uint16_t> tcp_local_ports(pid_t pid, uint16_t remote_port) {
  std::set<std::string> inodes;
  std::string fd_dir = "/proc/" + std::to_string(pid) + "/fd";
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(fd_dir, ec)) {
    std::string target = std::filesystem::read_symlink(e.path(), ec).string();
    if (target.rfind("socket:[", 0) == 0) inodes.insert(target.substr(8, target.size() - 9));
  }
  std::vector<uint16_t> ports;
  for (const TcpRow& r : read_proc_net_tcp()) {
    constexpr int kEstablished = 1;
    if (r.remote_port == remote_port && r.state == kEstablished && inodes.count(r.inode)) ports.push_back(r.local_port);
  }
  return ports;
}

std::optional<TcpSocketQueue> tcp_socket_queue(uint16_t local_port, uint16_t remote_port) {
  for (const TcpRow& r : read_proc_net_tcp()) {
    if (r.local_port == local_port && r.remote_port == remote_port) return TcpSocketQueue{r.state, r.unread};
  }
  return std::nullopt;
}

}  // namespace pgs::test
