#include "router/classifier_cache.h"

#include <xxhash.h>

#include <algorithm>
#include <iterator>

#include "router/sql_scan.h"

namespace pgs::router {

ClassifierCache::ClassifierCache(size_t max_entries, ClassifyOptions options, size_t max_text_bytes,
                                 size_t max_total_text_bytes)
    : max_entries_(max_entries),
      max_text_bytes_(std::min(max_text_bytes, max_total_text_bytes)),
      max_total_text_bytes_(max_total_text_bytes),
      options_(std::move(options)) {}

namespace {
// Hash seed of shape keys: a shape and a statement text never share a key.
constexpr uint64_t kShapeSeed = 0x5348415045ull;

// Nothing in `c` can depend on the value of a numeric constant (see the header).
bool shape_safe(const Classification& c) {
  if (c.statements.size() != 1 || !c.error.empty() || c.flags.parse_error || c.flags.oversized ||
      c.flags.opaque_session || c.flags.session_state || !c.session_changes.empty() || !c.functions.empty() ||
      !c.unsafe_functions.empty()) {
    return false;
  }
  switch (c.kind) {
    case Kind::select: case Kind::values: case Kind::table: case Kind::insert: case Kind::update: case Kind::delete_:
      return true;
    default:
      return false;
  }
}
}  // namespace

std::shared_ptr<const Classification> ClassifierCache::find(uint64_t hash, bool shape, std::string_view text) {
  auto it = index_.find(hash);
  if (it == index_.end() || it->second->shape != shape || it->second->text != text) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second);
  return it->second->value;
}

std::shared_ptr<const Classification> ClassifierCache::classify(std::string_view sql) {
  if (last_value_ && sql == last_text_) {
    ++stats_.hits;
    ++stats_.repeats;
    return last_value_;
  }
  auto value = classify_uncached(sql);
  if (sql.size() <= max_text_bytes_ && max_entries_ > 0) {
    last_text_.assign(sql);
    last_value_ = value;
  }
  return value;
}

// A text with numeric constants is looked up by its shape first: such texts (sent with their values
// inline: pgbench, ORMs without bind parameters) rarely repeat exactly, and a shape-safe one is only
// ever stored under its shape, so the exact-text probe would be a miss on a cold hash bucket per
// statement. Only a shape that is not shape-safe (or not stored yet) goes on to the exact text: such a
// text (a SET with a number, a function call with a numeric literal) pays a shape and a probe more than
// before, the price of sparing every inline-value read and write one.
std::shared_ptr<const Classification> ClassifierCache::classify_uncached(std::string_view sql) {
  const bool storable = sql.size() <= max_text_bytes_ && max_entries_ > 0;
  const bool shaped = storable && detail::numeric_shape(sql, shape_);
  uint64_t shape_hash = 0;
  if (shaped) {
    // The text's length is part of the key: a shared classification's location and length fields are
    // then exactly the text's, and it is served as is (no copy per statement).
    shape_ += '\x01';
    shape_ += std::to_string(sql.size());
    shape_hash = XXH3_64bits_withSeed(shape_.data(), shape_.size(), kShapeSeed);
    if (auto value = find(shape_hash, true, shape_)) {
      ++stats_.misses;  // of the exact text (Stats: shape hits are counted among the misses)
      ++stats_.shape_hits;
      return value;
    }
  }
  uint64_t h = XXH3_64bits(sql.data(), sql.size());
  if (auto value = find(h, false, sql)) {
    ++stats_.hits;
    return value;
  }
  ++stats_.misses;
  auto value = std::make_shared<const Classification>(router::classify(sql, options_));
  if (!storable) {
    ++stats_.uncached;
    return value;
  }
  if (shaped && shape_safe(*value)) {
    insert(shape_hash, true, shape_, value);  // the shape serves this text too: one entry, not two
  } else {
    insert(h, false, sql, value);
  }
  return value;
}

void ClassifierCache::insert(uint64_t hash, bool shape, std::string_view text,
                             std::shared_ptr<const Classification> value) {
  if (auto it = index_.find(hash); it != index_.end()) erase(it->second);  // a collision: newer text wins
  while (!lru_.empty() && (index_.size() >= max_entries_ || text_bytes_ + text.size() > max_total_text_bytes_)) {
    erase(std::prev(lru_.end()));
    ++stats_.evictions;
  }
  lru_.push_front(Entry{hash, shape, std::string(text), std::move(value)});
  index_.emplace(hash, lru_.begin());
  text_bytes_ += text.size();
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
  last_text_.clear();
  last_value_.reset();
}

}  // namespace pgs::router
