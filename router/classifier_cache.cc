#include "router/classifier_cache.h"

#include <xxhash.h>

namespace pgs::router {

ClassifierCache::ClassifierCache(size_t max_entries, ClassifyOptions options, size_t max_text_bytes)
    : max_entries_(max_entries), max_text_bytes_(max_text_bytes), options_(std::move(options)) {}

std::shared_ptr<const Classification> ClassifierCache::classify(std::string_view sql) {
  uint64_t h = XXH3_64bits(sql.data(), sql.size());
  if (auto it = index_.find(h); it != index_.end() && it->second->text == sql) {
    ++stats_.hits;
    lru_.splice(lru_.begin(), lru_, it->second);
    return it->second->value;
  }
  ++stats_.misses;
  auto value = std::make_shared<const Classification>(router::classify(sql, options_));
  if (sql.size() > max_text_bytes_ || max_entries_ == 0) {
    ++stats_.uncached;
  } else {
    insert(h, sql, value);
  }
  return value;
}

void ClassifierCache::insert(uint64_t hash, std::string_view sql, std::shared_ptr<const Classification> value) {
  if (auto it = index_.find(hash); it != index_.end()) {  // a collision: the newer text wins
    lru_.erase(it->second);
    index_.erase(it);
  }
  while (index_.size() >= max_entries_ && !lru_.empty()) {
    index_.erase(lru_.back().hash);
    lru_.pop_back();
    ++stats_.evictions;
  }
  lru_.push_front(Entry{hash, std::string(sql), std::move(value)});
  index_.emplace(hash, lru_.begin());
}

void ClassifierCache::reset(ClassifyOptions options) {
  options_ = std::move(options);
  clear();
}

void ClassifierCache::clear() {
  lru_.clear();
  index_.clear();
}

}  // namespace pgs::router
