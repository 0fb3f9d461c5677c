#include "router/classifier_cache.h"

#include <xxhash.h>

#include <algorithm>
#include <iterator>

namespace pgs::router {

ClassifierCache::ClassifierCache(size_t max_entries, ClassifyOptions options, size_t max_text_bytes,
                                 size_t max_total_text_bytes)
    : max_entries_(max_entries),
      max_text_bytes_(std::min(max_text_bytes, max_total_text_bytes)),
      max_total_text_bytes_(max_total_text_bytes),
      options_(std::move(options)) {}

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
  if (auto it = index_.find(hash); it != index_.end()) erase(it->second);  // a collision: newer text wins
  while (!lru_.empty() && (index_.size() >= max_entries_ || text_bytes_ + sql.size() > max_total_text_bytes_)) {
    erase(std::prev(lru_.end()));
    ++stats_.evictions;
  }
  lru_.push_front(Entry{hash, std::string(sql), std::move(value)});
  index_.emplace(hash, lru_.begin());
  text_bytes_ += sql.size();
}

void ClassifierCache::erase(List::iterator it) {
  text_bytes_ -= it->text.size();
  index_.erase(it->hash);
  lru_.erase(it);
}

void ClassifierCache::reset(ClassifyOptions options) {
  options_ = std::move(options);
  clear();
}

void ClassifierCache::clear() {
  lru_.clear();
  index_.clear();
  text_bytes_ = 0;
}

}  // namespace pgs::router
