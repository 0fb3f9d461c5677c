// Loopback sockets for tests: free ports, plain TCP connects, and which TCP connections a process
// holds (from /proc).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <utility>
#include <optional>
#include <vector>

namespace pgs::test {

// A port that was free a moment ago (bind 127.0.0.1:0, read it back, close).
uint16_t free_port();

// True when `port` lies in the kernel's range for outgoing connections' local ports
// (/proc/sys/net/ipv4/ip_local_port_range; Linux's default 32768-60999 when unreadable): a fixed port
// there may be held by any process's connection, even one in TIME-WAIT, at any moment.
bool in_ephemeral_range(uint16_t port);
// That range, as {lowest, highest}.
std::pair<uint16_t, uint16_t> ephemeral_port_range();

// A listening TCP socket on 127.0.0.1 at a port the kernel chose (set in `port`), or -1.
int listen_loopback(uint16_t& port, int backlog = 16);

// A connected TCP socket to 127.0.0.1:`port` (blocking, close-on-exec), or -1 when the connect fails.
int connect_loopback(uint16_t port);

// Established TCP connections of process `pid` to 127.0.0.1:`remote_port` (IPv4).
int tcp_connections(pid_t pid, uint16_t remote_port);
// Local ports of those connections (to match pg_stat_activity.client_port).
std::vector<uint16_t> tcp_local_ports(pid_t pid, uint16_t remote_port);

// The IPv4 TCP socket 127.0.0.1:`local_port` -> :`remote_port` as the kernel sees it (/proc/net/tcp): its
// state and how many received bytes its owner has not read yet. Lets a test wait until input has really
// reached another process's socket (loopback delivery may be deferred to a softirq thread).
struct TcpSocketQueue {
  int state = 0;          // TCP_ESTABLISHED 1, TCP_CLOSE_WAIT 8 (the peer's FIN arrived), ...
  uint64_t unread = 0;    // rx_queue
};
std::optional<TcpSocketQueue> tcp_socket_queue(uint16_t local_port, uint16_t remote_port);
constexpr int kTcpCloseWait = 8;

}  // namespace pgs::test
