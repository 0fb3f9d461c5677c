#include "conf/units.h"

#include <array>
#include <cctype>
#include <limits>

namespace pgs::conf {
namespace {

struct Unit {
  std::string_view name;
  uint64_t factor;
};

// Reads a run of decimal digits at `pos`; nullopt if there is none or it overflows uint64.
std::optional<uint64_t> read_digits(std::string_view text, size_t& pos) {
  size_t start = pos;
  uint64_t value = 0;
  while (pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos]))) {
    uint64_t digit = static_cast<uint64_t>(text[pos] - '0');
    if (value > (std::numeric_limits<uint64_t>::max() - digit) / 10) return std::nullopt;
    value = value * 10 + digit;
    ++pos;
  }
  if (pos == start) return std::nullopt;
  return value;
}

bool checked_mul_add(uint64_t& acc, uint64_t value, uint64_t factor, uint64_t limit) {
  if (factor != 0 && value > limit / factor) return false;
  uint64_t add = value * factor;
  if (acc > limit - add) return false;
  acc += add;
  return true;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

constexpr std::array<Unit, 5> kDurationUnits{{
    {"ms", 1}, {"s", 1000}, {"m", 60'000}, {"h", 3'600'000}, {"d", 86'400'000}}};

constexpr uint64_t kKiB = 1024;
constexpr std::array<Unit, 9> kSizeUnits{{
    {"b", 1},
    {"kb", kKiB}, {"kib", kKiB},
    {"mb", kKiB * kKiB}, {"mib", kKiB * kKiB},
    {"gb", kKiB * kKiB * kKiB}, {"gib", kKiB * kKiB * kKiB},
    {"tb", kKiB * kKiB * kKiB * kKiB}, {"tib", kKiB * kKiB * kKiB * kKiB}}};

}  // namespace

std::optional<Millis> parse_duration(std::string_view text) {
  if (text == "0") return Millis{0};
  // Millis is int64: keep the total below its maximum.
  const uint64_t limit = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  uint64_t total = 0;
  size_t pos = 0;
  if (text.empty()) return std::nullopt;
  while (pos < text.size()) {
    auto value = read_digits(text, pos);
    if (!value) return std::nullopt;
    size_t unit_start = pos;
    while (pos < text.size() && std::isalpha(static_cast<unsigned char>(text[pos]))) ++pos;
    std::string_view unit = text.substr(unit_start, pos - unit_start);
    const Unit* found = nullptr;
    for (const Unit& u : kDurationUnits) {
      if (u.name == unit) found = &u;
    }
    if (found == nullptr || !checked_mul_add(total, *value, found->factor, limit)) return std::nullopt;
  }
  return Millis{static_cast<int64_t>(total)};
}

std::optional<uint64_t> parse_size(std::string_view text) {
  size_t pos = 0;
  auto value = read_digits(text, pos);
  if (!value) return std::nullopt;
  bool spaced = pos < text.size() && text[pos] == ' ';
  if (spaced) ++pos;
  std::string_view unit = text.substr(pos);
  if (unit.empty()) return spaced ? std::nullopt : value;
  for (const Unit& u : kSizeUnits) {
    if (!iequals(u.name, unit)) continue;
    uint64_t total = 0;
    if (!checked_mul_add(total, *value, u.factor, std::numeric_limits<uint64_t>::max())) return std::nullopt;
    return total;
  }
  return std::nullopt;
}

std::string format_duration(Millis d) {
  int64_t ms = d.count();
  if (ms == 0) return "0";
  if (ms < 0) return std::to_string(ms) + "ms";
  for (auto it = kDurationUnits.rbegin(); it != kDurationUnits.rend(); ++it) {
    int64_t f = static_cast<int64_t>(it->factor);
    if (ms % f == 0) return std::to_string(ms / f) + std::string(it->name);
  }
  return std::to_string(ms) + "ms";
}

std::string format_size(uint64_t bytes) {
  if (bytes == 0) return "0";
  static constexpr std::array<Unit, 4> kShown{{
      {"TB", kKiB * kKiB * kKiB * kKiB}, {"GB", kKiB * kKiB * kKiB}, {"MB", kKiB * kKiB}, {"kB", kKiB}}};
  for (const Unit& u : kShown) {
    if (bytes % u.factor == 0) return std::to_string(bytes / u.factor) + std::string(u.name);
  }
  return std::to_string(bytes) + "B";
}

std::optional<HostPort> parse_host_port(std::string_view text) {
  std::string_view host;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return std::nullopt;
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) return std::nullopt;  // bare IPv6 needs brackets
  }
  size_t pos = 0;
  auto value = read_digits(port, pos);
  if (host.empty() || !value || pos != port.size() || *value < 1 || *value > 65535) return std::nullopt;
  return HostPort{std::string(host), static_cast<uint16_t>(*value)};
}

}  // namespace pgs::conf
