#include "cache/cluster_keys.h"

#include <arpa/inet.h>

#include <array>
#include <charconv>

namespace pgs::cache {

namespace {

constexpr std::array<uint16_t, 256> make_table() {
  std::array<uint16_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t crc = i << 8;
    for (int b = 0; b < 8; ++b) crc = (crc & 0x8000) != 0 ? (crc << 1) ^ 0x1021 : crc << 1;
    t[i] = static_cast<uint16_t>(crc);
  }
  return t;
}
constexpr std::array<uint16_t, 256> kCrcTable = make_table();

template <typename T>
std::optional<T> to_number(std::string_view s) {
  T v{};
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace

uint16_t crc16_xmodem(std::string_view bytes) {
  uint16_t crc = 0;
  for (unsigned char c : bytes) crc = static_cast<uint16_t>((crc << 8) ^ kCrcTable[((crc >> 8) ^ c) & 0xff]);
  return crc;
}

uint16_t key_slot(std::string_view key) {
  size_t open = key.find('{');
  if (open != std::string_view::npos) {
    size_t close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1) key = key.substr(open + 1, close - open - 1);
  }
  return crc16_xmodem(key) % kClusterSlots;
}

std::vector<std::string> partition_tags(size_t partitions) {
  std::vector<std::string> tags;
  if (partitions == 0 || partitions > kClusterSlots) return tags;
  for (size_t p = 0; p < partitions; ++p) {
    size_t lo = p * kClusterSlots / partitions, hi = (p + 1) * kClusterSlots / partitions;
    // A range holds at least one slot; CRC16 spreads "p<p>.<n>" so that one is found within a few
    // hundred thousand tries at worst (16384 ranges of one slot); bounded anyway.
    for (uint32_t n = 0; n < 50'000'000; ++n) {
      std::string tag = "p" + std::to_string(p) + "." + std::to_string(n);
      uint16_t s = key_slot(tag);
      if (s >= lo && s < hi) {
        tags.push_back(std::move(tag));
        break;
      }
    }
    if (tags.size() != p + 1) return {};
  }
  return tags;
}

bool is_ip_literal(std::string_view host) {
  if (host.empty() || host.size() > 45) return false;
  std::string h(host);
  unsigned char buf[16];
  return inet_pton(AF_INET, h.c_str(), buf) == 1 || inet_pton(AF_INET6, h.c_str(), buf) == 1;
}

std::string NodeAddress::text() const {
  bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::optional<NodeAddress> parse_node_address(std::string_view text) {
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  std::string_view host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  std::optional<uint32_t> port = to_number<uint32_t>(text.substr(colon + 1));
  if (!port || *port == 0 || *port > 65535 || !is_ip_literal(host)) return std::nullopt;
  return NodeAddress{std::string(host), static_cast<uint16_t>(*port)};
}

std::optional<Redirect> parse_redirect(std::string_view error) {
  Redirect r;
  if (error.starts_with("MOVED ")) {
    r.kind = Redirect::Kind::moved;
    error.remove_prefix(6);
  } else if (error.starts_with("ASK ")) {
    r.kind = Redirect::Kind::ask;
    error.remove_prefix(4);
  } else {
    return std::nullopt;
  }
  size_t space = error.find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  std::optional<uint32_t> slot = to_number<uint32_t>(error.substr(0, space));
  std::optional<NodeAddress> node = parse_node_address(error.substr(space + 1));
  if (!slot || *slot >= kClusterSlots || !node) return std::nullopt;
  r.slot = static_cast<uint16_t>(*slot);
  r.node = std::move(*node);
  return r;
}

}  // namespace pgs::cache
