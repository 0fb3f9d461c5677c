#include "proxy/auth/auth_cache.h"

#include <string_view>

namespace pgs::proxy {

AuthAnswer answer_from_secret(const char* passwd) {
  AuthAnswer a;
  if (passwd == nullptr) return a;
  auto v = protocol::scram::Verifier::parse(passwd);
  if (!v.ok()) return a;
  auto secrets = std::make_shared<UserSecrets>();
  secrets->has_scram = true;
  secrets->scram = std::move(v).value();
  a.kind = AuthAnswer::Kind::found;
  a.secrets = std::move(secrets);
  return a;
}

std::string AuthCache::key(std::string_view database, std::string_view user) {
  std::string k(database);
  k.push_back('\0');  // neither name can hold a NUL (startup packet strings)
  k.append(user);
  return k;
}

void AuthCache::set_options(Options options) {
  options_ = options;
  trim();
}

AuthCache::BeginResult AuthCache::begin(const std::string& key, uint64_t waiter, Clock::time_point now) {
  auto it = entries_.find(key);
  if (it != entries_.end()) {
    if (now < it->second.expires) {
      lru_.splice(lru_.begin(), lru_, it->second.lru);
      return {Begin::hit, it->second.answer};
    }
    erase(it);
  }
  auto p = pending_.find(key);
  if (p != pending_.end()) {
    p->second.push_back(waiter);
    return {Begin::joined, {}};
  }
  if (pending_.size() >= options_.max_pending) return {Begin::full, {}};
  pending_.emplace(key, std::vector<uint64_t>{waiter});
  return {Begin::start, {}};
}

std::vector<uint64_t> AuthCache::complete(const std::string& key, const AuthAnswer& answer, Clock::time_point now) {
  std::vector<uint64_t> waiters;
  auto p = pending_.find(key);
  if (p != pending_.end()) {
    waiters = std::move(p->second);
    pending_.erase(p);
  }
  if (answer.kind == AuthAnswer::Kind::failed) return waiters;
  const auto ttl = answer.kind == AuthAnswer::Kind::found ? options_.ttl : options_.negative_ttl;
  if (ttl.count() <= 0) return waiters;
  auto it = entries_.find(key);
  if (it != entries_.end()) erase(it);
  lru_.push_front(key);
  entries_.emplace(key, Entry{answer, now + ttl, lru_.begin()});
  trim();
  return waiters;
}

void AuthCache::clear() {
  entries_.clear();
  lru_.clear();
}

void AuthCache::erase(std::unordered_map<std::string, Entry>::iterator it) {
  lru_.erase(it->second.lru);
  entries_.erase(it);
}

void AuthCache::trim() {
  while (entries_.size() > options_.max_entries && !lru_.empty()) {
    auto it = entries_.find(lru_.back());
    if (it == entries_.end()) {
      lru_.pop_back();
      continue;
    }
    erase(it);
  }
}

}  // namespace pgs::proxy
