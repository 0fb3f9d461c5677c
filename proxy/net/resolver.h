// The servers' host names, resolved on a worker's loop without blocking it (issue 13: RDS endpoints are
// DNS names whose address changes on failover). uv_getaddrinfo runs the system's getaddrinfo (files, then
// DNS, as /etc/nsswitch.conf says) on libuv's thread pool; the answer comes back on the loop's thread.
//
// Each name's answer is kept for kResolveTtl, so that a burst of new server connections asks once and a
// failover's new address is seen by the connections opened after at most that long; a failure is not kept
// (the pool's retry backoff paces the next attempt). Concurrent requests for one name share one lookup.
// A numeric host (an IPv4 or IPv6 literal) never reaches getaddrinfo. How long a lookup may take is
// bounded by its caller (a server connection by server_connect_timeout), which then cancels its request;
// getaddrinfo itself cannot be interrupted and finishes on the thread pool.
// Thread affinity: the loop's thread.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <uv.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace pgs::proxy {

using ResolveClock = std::chrono::steady_clock;
inline constexpr std::chrono::milliseconds kResolveTtl{5000};
inline constexpr size_t kMaxResolvedAddresses = 16;  // of one name, tried in order
inline constexpr size_t kMaxResolvedNames = 64;      // names kept (the nodes of every config since start)

// A host's addresses in getaddrinfo's order (duplicates removed), each with the port asked for.
struct Resolution {
  std::vector<sockaddr_storage> addresses;  // empty when the name did not resolve
  std::string error;                        // why not ("Name or service not known"); empty on success
};

// The address of a numeric host (IPv4 dotted quad or IPv6 literal) with `port`; nullopt for a name.
std::optional<sockaddr_storage> numeric_address(const std::string& host, uint16_t port);
// "10.0.0.5" or "::1" (no port): for log lines and libpq's hostaddr.
std::string address_text(const sockaddr_storage& address);
uint16_t address_port(const sockaddr_storage& address);

// The answers kept (pure): each is fresh for `ttl` after it was stored; at most kMaxResolvedNames, the
// oldest answer goes first. Addresses are kept with port 0.
class ResolveCache {
 public:
  explicit ResolveCache(std::chrono::milliseconds ttl = kResolveTtl) : ttl_(ttl) {}
  // A fresh answer for `host`, or nullptr (none, or expired: it is dropped).
  const std::vector<sockaddr_storage>* find(const std::string& host, ResolveClock::time_point now);
  void store(const std::string& host, std::vector<sockaddr_storage> addresses, ResolveClock::time_point now);
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    std::vector<sockaddr_storage> addresses;
    ResolveClock::time_point expires;
  };
  std::chrono::milliseconds ttl_;
  std::map<std::string, Entry> entries_;
};

class HostResolver {
 public:
  using Done = std::function<void(const Resolution&)>;

  explicit HostResolver(uv_loop_t* loop, std::chrono::milliseconds ttl = kResolveTtl);
  ~HostResolver();  // lookups still running finish on their own and are dropped
  HostResolver(const HostResolver&) = delete;
  HostResolver& operator=(const HostResolver&) = delete;

  // Calls `done` once with the addresses of `host` (port set to `port`): at once for a numeric host or a
  // fresh answer (then 0 is returned, after `done` ran), else when the lookup ends (a ticket for
  // cancel() is returned). `done` may start another resolve().
  uint64_t resolve(const std::string& host, uint16_t port, Done done);
  // `done` of that ticket will not be called (a connection closed while it waited). Unknown tickets
  // (already answered) are ignored.
  void cancel(uint64_t ticket) noexcept;
  // Lookups still queued on the thread pool are cancelled (shutdown: nobody waits for them any more).
  void shutdown() noexcept;
  size_t lookups_running() const { return lookups_.size(); }
  size_t lookups_started() const { return lookups_started_; }

 private:
  struct Waiter {
    uint64_t ticket;
    uint16_t port;
    Done done;
  };
  struct Lookup {
    uv_getaddrinfo_t req{};
    HostResolver* owner = nullptr;  // nullptr once the resolver is gone: the callback only frees it
    std::string host;
    std::vector<Waiter> waiters;
  };
  static void lookup_cb(uv_getaddrinfo_t* req, int status, addrinfo* res) noexcept;
  void on_lookup_done(Lookup* lookup, int status, const addrinfo* res);

  uv_loop_t* loop_;
  ResolveCache cache_;
  std::map<std::string, Lookup*> lookups_;  // by host: one lookup per name at a time
  std::vector<Waiter>* delivering_ = nullptr;  // the waiters of the lookup being answered now
  uint64_t next_ticket_ = 1;
  size_t lookups_started_ = 0;
};

}  // namespace pgs::proxy
