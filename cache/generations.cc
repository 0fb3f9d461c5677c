#include "cache/generations.h"

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

}  // namespace pgs::cache
