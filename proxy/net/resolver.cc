#include "proxy/net/resolver.h"

#include <arpa/inet.h>
#include <netdb.h>

#include <algorithm>
#include <cstring>

namespace pgs::proxy {

namespace {

bool same_address(const sockaddr_storage& a, const sockaddr_storage& b) {
  if (a.ss_family != b.ss_family) return false;
  if (a.ss_family == AF_INET) {
    const auto& x = reinterpret_cast<const sockaddr_in&>(a);
    const auto& y = reinterpret_cast<const sockaddr_in&>(b);
    return x.sin_addr.s_addr == y.sin_addr.s_addr;
  }
  const auto& x = reinterpret_cast<const sockaddr_in6&>(a);
  const auto& y = reinterpret_cast<const sockaddr_in6&>(b);
  return std::memcmp(&x.sin6_addr, &y.sin6_addr, sizeof x.sin6_addr) == 0 && x.sin6_scope_id == y.sin6_scope_id;
}

void set_port(sockaddr_storage& a, uint16_t port) {
  if (a.ss_family == AF_INET) reinterpret_cast<sockaddr_in&>(a).sin_port = htons(port);
  if (a.ss_family == AF_INET6) reinterpret_cast<sockaddr_in6&>(a).sin6_port = htons(port);
}

// getaddrinfo's list, in its order, IPv4 and IPv6 stream addresses only, without duplicates.
std::vector<sockaddr_storage> collect(const addrinfo* res) {
  std::vector<sockaddr_storage> out;
  for (const addrinfo* ai = res; ai != nullptr && out.size() < kMaxResolvedAddresses; ai = ai->ai_next) {
    if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
    if (ai->ai_addrlen > sizeof(sockaddr_storage)) continue;
    sockaddr_storage a{};
    std::memcpy(&a, ai->ai_addr, ai->ai_addrlen);
    set_port(a, 0);
    if (std::none_of(out.begin(), out.end(), [&](const sockaddr_storage& b) { return same_address(a, b); })) {
      out.push_back(a);
    }
  }
  return out;
}

Resolution with_port(std::vector<sockaddr_storage> addresses, uint16_t port) {
  Resolution r;
  r.addresses = std::move(addresses);
  for (auto& a : r.addresses) set_port(a, port);
  return r;
}

}  // namespace

std::optional<sockaddr_storage> numeric_address(const std::string& host, uint16_t port) {
  sockaddr_storage a{};
  if (uv_ip4_addr(host.c_str(), port, reinterpret_cast<sockaddr_in*>(&a)) == 0) return a;
  a = {};
  if (uv_ip6_addr(host.c_str(), port, reinterpret_cast<sockaddr_in6*>(&a)) == 0) return a;
  return std::nullopt;
}

std::string address_text(const sockaddr_storage& address) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (address.ss_family == AF_INET) {
    uv_ip4_name(reinterpret_cast<const sockaddr_in*>(&address), buf, sizeof buf);
  } else if (address.ss_family == AF_INET6) {
    uv_ip6_name(reinterpret_cast<const sockaddr_in6*>(&address), buf, sizeof buf);
  }
  return buf;
}

uint16_t address_port(const sockaddr_storage& address) {
  if (address.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in&>(address).sin_port);
  if (address.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6&>(address).sin6_port);
  return 0;
}

// ---- ResolveCache ----

const std::vector<sockaddr_storage>* ResolveCache::find(const std::string& host, ResolveClock::time_point now) {
  auto it = entries_.find(host);
  if (it == entries_.end()) return nullptr;
  if (now >= it->second.expires) {
    entries_.erase(it);
    return nullptr;
  }
  return &it->second.addresses;
}

void ResolveCache::store(const std::string& host, std::vector<sockaddr_storage> addresses,
                         ResolveClock::time_point now) {
  if (entries_.size() >= kMaxResolvedNames && entries_.count(host) == 0) {
    auto oldest = std::min_element(entries_.begin(), entries_.end(),
                                   [](const auto& a, const auto& b) { return a.second.expires < b.second.expires; });
    entries_.erase(oldest);
  }
  entries_[host] = Entry{std::move(addresses), now + ttl_};
}

// ---- HostResolver ----

HostResolver::HostResolver(uv_loop_t* loop, std::chrono::milliseconds ttl) : loop_(loop), cache_(ttl) {}

HostResolver::~HostResolver() {
  for (auto& [host, lookup] : lookups_) {
    lookup->owner = nullptr;
    lookup->waiters.clear();
  }
}

uint64_t HostResolver::resolve(const std::string& host, uint16_t port, Done done) {
  if (auto a = numeric_address(host, port)) {
    Resolution r;
    r.addresses.push_back(*a);
    done(r);
    return 0;
  }
  if (const auto* kept = cache_.find(host, ResolveClock::now())) {
    done(with_port(*kept, port));
    return 0;
  }
  const uint64_t ticket = next_ticket_++;
  if (auto it = lookups_.find(host); it != lookups_.end()) {
    it->second->waiters.push_back(Waiter{ticket, port, std::move(done)});
    return ticket;
  }
  auto* lookup = new Lookup;
  lookup->owner = this;
  lookup->host = host;
  lookup->req.data = lookup;
  lookup->waiters.push_back(Waiter{ticket, port, std::move(done)});
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;  // as libpq: every address family the name has
  hints.ai_socktype = SOCK_STREAM;
  ++lookups_started_;
  if (int rc = uv_getaddrinfo(loop_, &lookup->req, &HostResolver::lookup_cb, host.c_str(), nullptr, &hints);
      rc != 0) {
    Resolution r;
    r.error = uv_strerror(rc);
    Done d = std::move(lookup->waiters.front().done);
    delete lookup;
    d(r);
    return 0;
  }
  lookups_[host] = lookup;
  return ticket;
}

void HostResolver::cancel(uint64_t ticket) noexcept {
  if (ticket == 0) return;
  auto drop = [ticket](std::vector<Waiter>& w) {
    auto it = std::find_if(w.begin(), w.end(), [ticket](const Waiter& x) { return x.ticket == ticket; });
    if (it == w.end()) return false;
    w.erase(it);
    return true;
  };
  if (delivering_ != nullptr && drop(*delivering_)) return;
  for (auto& [host, lookup] : lookups_) {
    if (drop(lookup->waiters)) return;
  }
}

void HostResolver::shutdown() noexcept {
  for (auto& [host, lookup] : lookups_) {
    lookup->waiters.clear();
    uv_cancel(reinterpret_cast<uv_req_t*>(&lookup->req));  // fails (harmless) once it runs
  }
}

void HostResolver::lookup_cb(uv_getaddrinfo_t* req, int status, addrinfo* res) noexcept {
  auto* lookup = static_cast<Lookup*>(req->data);
  if (lookup->owner != nullptr) lookup->owner->on_lookup_done(lookup, status, res);
  uv_freeaddrinfo(res);
  delete lookup;
}

void HostResolver::on_lookup_done(Lookup* lookup, int status, const addrinfo* res) {
  lookups_.erase(lookup->host);
  // A `done` may resolve again (a new lookup, or the answer just kept) or cancel a waiter not yet answered.
  std::vector<Waiter> waiters = std::move(lookup->waiters);
  std::vector<sockaddr_storage> found = status == 0 ? collect(res) : std::vector<sockaddr_storage>{};
  std::string error;
  if (status != 0) {
    error = uv_strerror(status);
  } else if (found.empty()) {
    error = "no IPv4 or IPv6 address";
  } else {
    cache_.store(lookup->host, found, ResolveClock::now());
  }
  delivering_ = &waiters;
  while (!waiters.empty()) {
    Waiter w = std::move(waiters.front());
    waiters.erase(waiters.begin());
    Resolution r = with_port(found, w.port);
    r.error = error;
    w.done(r);
  }
  delivering_ = nullptr;
}

}  // namespace pgs::proxy
