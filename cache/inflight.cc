#include "cache/inflight.h"

#include <algorithm>

namespace pgs::cache {

Inflight::Role Inflight::join(const CacheKey& key, uint64_t waiter, Clock::time_point now) {
  auto it = table_.find(key);
  if (it == table_.end()) {
    if (table_.size() >= options_.max_keys) return Role::fall_through;
    table_.emplace(key, Entry{});
    return Role::leader;
  }
  if (it->second.waiters.size() >= options_.max_waiters_per_key) return Role::fall_through;
  it->second.waiters.push_back({waiter, now + options_.max_wait});
  return Role::wait;
}

std::vector<uint64_t> Inflight::finish(const CacheKey& key) {
  std::vector<uint64_t> out;
  auto it = table_.find(key);
  if (it == table_.end()) return out;
  out.reserve(it->second.waiters.size());
  for (const Waiter& w : it->second.waiters) out.push_back(w.id);
  table_.erase(it);
  return out;
}

bool Inflight::leave(const CacheKey& key, uint64_t waiter) {
  auto it = table_.find(key);
  if (it == table_.end()) return false;
  auto& ws = it->second.waiters;
  auto pos = std::find_if(ws.begin(), ws.end(), [&](const Waiter& w) { return w.id == waiter; });
  if (pos == ws.end()) return false;
  ws.erase(pos);
  return true;
}

std::vector<uint64_t> Inflight::expire(Clock::time_point now) {
  std::vector<uint64_t> out;
  for (auto& [key, entry] : table_) {
    auto& ws = entry.waiters;
    auto keep = std::stable_partition(ws.begin(), ws.end(), [&](const Waiter& w) { return w.deadline > now; });
    for (auto w = keep; w != ws.end(); ++w) out.push_back(w->id);
    ws.erase(keep, ws.end());
  }
  return out;
}

std::optional<Inflight::Clock::time_point> Inflight::next_deadline() const {
  std::optional<Clock::time_point> best;
  for (const auto& [key, entry] : table_) {
    for (const Waiter& w : entry.waiters) {
      if (!best || w.deadline < *best) best = w.deadline;
    }
  }
  return best;
}

size_t Inflight::waiters() const {
  size_t n = 0;
  for (const auto& [key, entry] : table_) n += entry.waiters.size();
  return n;
}

}  // namespace pgs::cache
