// The slot map of a Redis Cluster: which master serves each of the 16384 slots, read from a
// CLUSTER SLOTS reply (cache/README.md "Redis Cluster"). Pure apart from reading hiredis's reply type.
//
// Only each range's first node (its master) is kept: replicas are never read (a replica may be behind
// the bumps its master confirmed). The reply is trusted in nothing: a range out of bounds, reversed or
// overlapping another, a node entry of the wrong shape, a port out of 1..65535 or more ranges than slots
// is an error (the caller keeps its old map). A node whose address is "?" or NULL (unknown endpoint) or
// a host name (hiredis would resolve it with a blocking getaddrinfo) leaves its ranges uncovered; an
// empty address means the node that was asked (Redis's convention).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cache/cluster_keys.h"

struct redisReply;

namespace pgs::cache::redis {

class SlotMap {
 public:
  static constexpr uint16_t kNone = 0xffff;
  SlotMap() { owner_.fill(kNone); }
  // The master of `slot`, or null when the slot is uncovered.
  const NodeAddress* master(uint16_t slot) const;
  // Records that `slot` is now served by `node` (a MOVED redirection).
  void assign(uint16_t slot, const NodeAddress& node);
  void assign_range(uint16_t first, uint16_t last, const NodeAddress& node);
  // Replicas CLUSTER SLOTS listed for `node`'s ranges (the fewest over its ranges); SIZE_MAX when
  // unknown (a node the map learnt from a MOVED, or not a master of it): callers then ask for all they want.
  size_t replicas(const NodeAddress& node) const;
  void set_replicas(const NodeAddress& node, size_t n);
  bool complete() const;  // every slot has a master
  const std::vector<NodeAddress>& masters() const { return masters_; }  // every node named (may hold none now)
  size_t covered() const;

 private:
  uint16_t index_of(const NodeAddress& node);
  std::array<uint16_t, kClusterSlots> owner_;
  std::vector<NodeAddress> masters_;
  std::vector<size_t> replicas_;  // by index in masters_; SIZE_MAX = no range read yet
};

struct SlotsParse {
  std::optional<SlotMap> map;  // set on success
  std::string error;           // why not, on failure
};
// `asked`: the node the CLUSTER SLOTS was sent to (an empty address in the reply means it).
SlotsParse parse_cluster_slots(const redisReply* reply, const NodeAddress& asked);

}  // namespace pgs::cache::redis
