// TlsOnlyGate: a TCP gate in front of a Postgres server that lets through only the connections that open
// with an SSLRequest, as a network that requires TLS does (a TLS-only load balancer or pooler in front
// of RDS). Those then pass both ways unchanged: Postgres itself answers 'S' and does the TLS, so its
// certificate (the dev one: SAN localhost, 127.0.0.1) is what the client verifies. Anything else, a
// plaintext StartupMessage or a plaintext CancelRequest, is counted and closed without reaching the
// server. Listens on 127.0.0.1, a free port; one thread accepts, one per connection relays.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace pgs::it {

class TlsOnlyGate {
 public:
  explicit TlsOnlyGate(uint16_t upstream_port);
  ~TlsOnlyGate();
  TlsOnlyGate(const TlsOnlyGate&) = delete;
  TlsOnlyGate& operator=(const TlsOnlyGate&) = delete;

  uint16_t port() const { return port_; }
  int passed() const { return passed_.load(); }              // opened with an SSLRequest: relayed
  int refused_cancels() const { return refused_cancels_.load(); }  // plaintext CancelRequests dropped
  int refused_other() const { return refused_other_.load(); }      // any other plaintext opening dropped

 private:
  void accept_loop();
  void serve(int fd);

  uint16_t upstream_port_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> passed_{0}, refused_cancels_{0}, refused_other_{0};
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<std::thread> relays_;
};

}  // namespace pgs::it
