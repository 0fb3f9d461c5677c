#include "cache/key.h"

#include "cache/cluster_keys.h"

#define XXH_STATIC_LINKING_ONLY  // XXH3_state_t on the stack: no allocation per key
#include <xxhash.h>

#include <algorithm>

namespace pgs::cache {
namespace {

constexpr uint8_t kKeyVersion = 1;

// Streams length-prefixed fields into one XXH3-128 state.
class Hasher {
 public:
  Hasher() { XXH3_128bits_reset(&state_); }
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;

  void u64(uint64_t v) {
    uint8_t b[8];
    for (int i = 0; i < 8; ++i) b[i] = static_cast<uint8_t>(v >> (56 - 8 * i));
    XXH3_128bits_update(&state_, b, sizeof b);
  }
  void bytes(const void* data, size_t n) {
    u64(n);
    if (n > 0) XXH3_128bits_update(&state_, data, n);
  }
  void str(std::string_view s) { bytes(s.data(), s.size()); }
  CacheKey digest() const {
    XXH128_hash_t h = XXH3_128bits_digest(&state_);
    return CacheKey{h.high64, h.low64};
  }

 private:
  XXH3_state_t state_;
};

}  // namespace

std::string CacheKey::hex() const {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out(32, '0');
  for (int i = 0; i < 16; ++i) {
    out[static_cast<size_t>(15 - i)] = digits[(high >> (4 * i)) & 0xf];
    out[static_cast<size_t>(31 - i)] = digits[(low >> (4 * i)) & 0xf];
  }
  return out;
}

CacheKey make_key(const KeyInput& in) {
  Hasher h;
  h.u64(kKeyVersion);
  h.u64(static_cast<uint64_t>(in.shape));
  h.str(in.database);
  h.str(in.role);
  h.str(in.search_path);
  std::vector<Setting> settings(in.settings.begin(), in.settings.end());
  std::sort(settings.begin(), settings.end());
  h.u64(settings.size());
  for (const Setting& s : settings) {
    h.str(s.first);
    h.str(s.second);
  }
  h.str(in.statement);
  h.bytes(in.params_region.data(), in.params_region.size());
  h.u64(in.result_formats.size());
  for (int16_t f : in.result_formats) h.u64(static_cast<uint16_t>(f));
  std::vector<TableGeneration> gens(in.generations.begin(), in.generations.end());
  std::sort(gens.begin(), gens.end(), [](const TableGeneration& a, const TableGeneration& b) {
    return a.table != b.table ? a.table < b.table : a.generation < b.generation;
  });
  h.u64(gens.size());
  for (const TableGeneration& g : gens) {
    h.str(g.table);
    h.u64(g.generation);
  }
  return h.digest();
}

RedisNames::RedisNames(std::string_view prefix, size_t partitions)
    : base(std::string(prefix) + "pgsc:v1:"), generations(base + "gens"), channel(base + "gen") {
  if (partitions == 0) return;
  tags = partition_tags(partitions);
  for (const std::string& t : tags) {
    partition_gens.push_back(base + "{" + t + "}:gens");
    partition_channels.push_back(base + "{" + t + "}:gen");
  }
  if (!tags.empty()) {
    generations = partition_gens[0];
    channel = partition_channels[0];
  }
}

std::string RedisNames::result_key(const CacheKey& key, std::string_view class_name) const {
  std::string out;
  out.reserve(base.size() + 24 + class_name.size() + 1 + 32);
  out.append(base);
  if (!tags.empty()) out.append("{").append(tags[partition_of(key)]).append("}:");
  out.append("r:").append(class_name).push_back(':');
  out.append(key.hex());
  return out;
}

std::string_view RedisNames::class_of(std::string_view key) const {
  constexpr size_t kTail = 1 + 32;  // ":" and the hex digits
  if (key.size() < base.size() + 2 + 1 + kTail || key.substr(0, base.size()) != base) return {};
  size_t at = base.size();
  if (!tags.empty()) {  // "{tag}:" first
    size_t close = key.find("}:", at);
    if (key[at] != '{' || close == std::string_view::npos) return {};
    at = close + 2;
  }
  if (key.size() < at + 2 + 1 + kTail || key.substr(at, 2) != "r:" || key[key.size() - kTail] != ':') return {};
  return key.substr(at + 2, key.size() - kTail - at - 2);
}

}  // namespace pgs::cache
