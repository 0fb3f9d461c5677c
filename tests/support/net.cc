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

std::vector<uint16_t> tcp_local_ports(pid_t pid, uint16_t remote_port) {
  std::set<std::string> inodes;
  std::string fd_dir = "/proc/" + std::to_string(pid) + "/fd";
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(fd_dir, ec)) {
    std::string target = std::filesystem::read_symlink(e.path(), ec).string();
    if (target.rfind("socket:[", 0) == 0) inodes.insert(target.substr(8, target.size() - 9));
  }
  // /proc/net/tcp columns: sl local_address rem_address st ... uid timeout inode
  std::ifstream tcp("/proc/net/tcp");
  std::string line;
  std::getline(tcp, line);
  char port_hex[8];
  std::snprintf(port_hex, sizeof port_hex, "%04X", remote_port);
  std::vector<uint16_t> ports;
  while (std::getline(tcp, line)) {
    std::istringstream is(line);
    std::string sl, local, remote, state, queues, tr, retr, uid, timeout, inode;
    is >> sl >> local >> remote >> state >> queues >> tr >> retr >> uid >> timeout >> inode;
    bool to_port = remote.size() > 5 && remote.substr(remote.size() - 4) == port_hex;
    if (to_port && state == "01" && inodes.count(inode) && local.size() > 5) {  // 01 = ESTABLISHED
      ports.push_back(static_cast<uint16_t>(std::stoul(local.substr(local.size() - 4), nullptr, 16)));
    }
  }
  return ports;
}

std::optional<TcpSocketQueue> tcp_socket_queue(uint16_t local_port, uint16_t remote_port) {
  std::ifstream tcp("/proc/net/tcp");
  std::string line;
  std::getline(tcp, line);
  char local_hex[8], remote_hex[8];
  std::snprintf(local_hex, sizeof local_hex, "%04X", local_port);
  std::snprintf(remote_hex, sizeof remote_hex, "%04X", remote_port);
  auto port_is = [](const std::string& address, const char* hex) {
    return address.size() > 5 && address.compare(address.size() - 4, 4, hex) == 0;
  };
  while (std::getline(tcp, line)) {
    std::istringstream is(line);
    std::string sl, local, remote, state, queues;
    is >> sl >> local >> remote >> state >> queues;
    const size_t colon = queues.find(':');
    if (!port_is(local, local_hex) || !port_is(remote, remote_hex) || colon == std::string::npos) continue;
    return TcpSocketQueue{static_cast<int>(std::stoul(state, nullptr, 16)),
                          std::stoull(queues.substr(colon + 1), nullptr, 16)};
  }
  return std::nullopt;
}

}  // namespace pgs::test
