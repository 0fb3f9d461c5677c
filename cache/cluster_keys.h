// Redis Cluster key arithmetic (cache/README.md "Redis Cluster"). Pure: no sockets, no hiredis.
//
// key_slot(): the slot Redis Cluster assigns a key: CRC16 (XMODEM: polynomial 0x1021, initial 0) of the
// key, or of its hash tag, modulo 16384. The hash tag is the text between the first '{' and the first
// '}' after it, when that text is not empty (Redis cluster spec, "Hash tags").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pgs::cache {

inline constexpr uint16_t kClusterSlots = 16384;

uint16_t crc16_xmodem(std::string_view bytes);
uint16_t key_slot(std::string_view key);

// The hash tag of partition p of `partitions` (1..kClusterSlots): the first "p<p>.<n>" (n = 0, 1, ...)
// whose slot lies in [p * 16384 / partitions, (p + 1) * 16384 / partitions), so that partitions spread
// over the slots as evenly as Redis's default ranges spread over the masters. Deterministic: every
// sidecar computes the same tags. Empty vector for 0 or more than kClusterSlots partitions.
std::vector<std::string> partition_tags(size_t partitions);

// "ip:port" as Redis writes node addresses (MOVED/ASK, the last ':' splits, so "::1:6379" is IPv6).
// The host must be an IPv4 or IPv6 literal (hiredis resolves names with a blocking getaddrinfo) and
// the port 1..65535; "[::1]:6379" is accepted too.
struct NodeAddress {
  std::string host;
  uint16_t port = 0;
  bool operator==(const NodeAddress&) const = default;
  std::string text() const;  // "host:port" ("[v6]:port")
};
std::optional<NodeAddress> parse_node_address(std::string_view text);
bool is_ip_literal(std::string_view host);

// A redirection error from a cluster node: "MOVED <slot> <ip:port>" (the slot lives there now) or
// "ASK <slot> <ip:port>" (this key of a migrating slot: send ASKING then the command there, once).
// The reply text as hiredis gives it (without the leading '-'). nullopt for any other error or a
// malformed one (slot out of range, bad address, trailing text).
struct Redirect {
  enum class Kind : uint8_t { moved, ask };
  Kind kind = Kind::moved;
  uint16_t slot = 0;
  NodeAddress node;
};
std::optional<Redirect> parse_redirect(std::string_view error);

}  // namespace pgs::cache
