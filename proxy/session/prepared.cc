#include "proxy/session/prepared.h"

#include <algorithm>

#include "proxy/session/sql_prepared.h"

#include <xxhash.h>

#include <cstring>

namespace pgs::proxy {

PreparedRef make_prepared(std::string_view sql, const std::vector<uint32_t>& param_types, bool touches_session) {
  XXH3_state_t* st = XXH3_createState();
  XXH3_128bits_reset(st);
  XXH3_128bits_update(st, sql.data(), sql.size());
  uint32_t n = static_cast<uint32_t>(param_types.size());
  XXH3_128bits_update(st, &n, sizeof n);
  if (!param_types.empty()) XXH3_128bits_update(st, param_types.data(), param_types.size() * sizeof(uint32_t));
  XXH128_hash_t h = XXH3_128bits_digest(st);
  XXH3_freeState(st);
  char hex[33];
  std::snprintf(hex, sizeof hex, "%016llx%016llx", static_cast<unsigned long long>(h.high64),
                static_cast<unsigned long long>(h.low64));
  auto p = std::make_shared<PreparedStatement>();
  p->server_name = std::string("pgsidecar_") + hex;
  p->sql.assign(sql);
  p->param_types = param_types;
  p->touches_session = touches_session;
  p->names_sql_prepared = mentions_sql_prepared(sql);
  return p;
}

void ServerStatements::touch(const std::string& name) {
  auto it = index_.find(name);
  if (it == index_.end()) return;
  lru_.splice(lru_.begin(), lru_, it->second);
}

std::optional<std::string> ServerStatements::insert(const std::string& name) {
  auto it = index_.find(name);
  if (it != index_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second);
    return std::nullopt;
  }
  lru_.push_front(name);
  index_.emplace(name, lru_.begin());
  if (index_.size() <= capacity_) return std::nullopt;
  std::string victim = std::move(lru_.back());
  lru_.pop_back();
  index_.erase(victim);
  return victim;
}

void ServerStatements::erase(const std::string& name) {
  auto it = index_.find(name);
  if (it == index_.end()) return;
  lru_.erase(it->second);
  index_.erase(it);
}

void ServerStatements::keep_only(const std::vector<std::string>& held) {
  for (auto it = lru_.begin(); it != lru_.end();) {
    if (std::find(held.begin(), held.end(), *it) != held.end()) {
      ++it;
      continue;
    }
    index_.erase(*it);
    it = lru_.erase(it);
  }
}

void ServerStatements::clear() {
  lru_.clear();
  index_.clear();
}

}  // namespace pgs::proxy
