#include "cache/generations.h"

#include <algorithm>
#include <charconv>

#include "cache/policy.h"

namespace pgs::cache {

uint64_t GenerationMap::get(std::string_view table) const {
  auto it = gens_.find(table);
  return it == gens_.end() ? 0 : it->second;
}

bool GenerationMap::apply(std::string_view table, uint64_t generation) {
  if (table.empty()) return false;
  auto it = gens_.find(table);
  if (it == gens_.end()) {
    gens_.emplace(std::string(table), generation);
  } else if (generation > it->second) {
    it->second = generation;
  } else {
    return false;
  }
  ++updates_;
  return true;
}

bool GenerationMap::apply_message(std::string_view payload) {
  auto parsed = parse_generation_message(payload);
  if (!parsed) return false;
  apply(parsed->first, parsed->second);
  return true;
}

std::optional<std::pair<std::string_view, uint64_t>> parse_generation_message(std::string_view payload) {
  size_t sp = payload.rfind(' ');
  if (sp == std::string_view::npos || sp == 0 || sp + 1 >= payload.size()) return std::nullopt;
  std::string_view num = payload.substr(sp + 1);
  uint64_t g = 0;
  auto [end, ec] = std::from_chars(num.data(), num.data() + num.size(), g);
  if (ec != std::errc{} || end != num.data() + num.size()) return std::nullopt;
  return std::make_pair(payload.substr(0, sp), g);
}

std::string lsn_hash_name(std::string_view generations_hash) {
  std::string out(generations_hash);
  out += ":lsn";
  return out;
}

std::optional<std::pair<uint64_t, uint64_t>> parse_lsn_entry(std::string_view entry) {
  size_t sp = entry.find(' ');
  if (sp == std::string_view::npos) return std::nullopt;
  auto number = [](std::string_view s) -> std::optional<uint64_t> {
    uint64_t v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
    return v;
  };
  auto g = number(entry.substr(0, sp));
  auto l = number(entry.substr(sp + 1));
  if (!g || !l) return std::nullopt;
  return std::make_pair(*g, *l);
}

std::optional<uint64_t> replica_floor(std::span<const uint64_t> generations,
                                      std::span<const std::optional<std::string>> entries) {
  if (generations.size() != entries.size()) return std::nullopt;
  uint64_t floor = 0;
  for (size_t i = 0; i < generations.size(); ++i) {
    if (!entries[i]) {
      if (generations[i] != 0) return std::nullopt;  // bumped, LSN unknown
      continue;
    }
    auto e = parse_lsn_entry(*entries[i]);
    if (!e || e->first != generations[i]) return std::nullopt;
    floor = std::max(floor, e->second);
  }
  return floor;
}

}  // namespace pgs::cache
