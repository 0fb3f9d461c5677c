#include "cache/redis/cluster_map.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <cstdint>
#include <string_view>

namespace pgs::cache::redis {

const NodeAddress* SlotMap::master(uint16_t slot) const {
  if (slot >= kClusterSlots || owner_[slot] == kNone) return nullptr;
  return &masters_[owner_[slot]];
}

uint16_t SlotMap::index_of(const NodeAddress& node) {
  for (size_t i = 0; i < masters_.size(); ++i) {
    if (masters_[i] == node) return static_cast<uint16_t>(i);
  }
  masters_.push_back(node);
  replicas_.push_back(SIZE_MAX);
  return static_cast<uint16_t>(masters_.size() - 1);
}

size_t SlotMap::replicas(const NodeAddress& node) const {
  for (size_t i = 0; i < masters_.size(); ++i) {
    if (masters_[i] == node) return replicas_[i];
  }
  return SIZE_MAX;
}

void SlotMap::set_replicas(const NodeAddress& node, size_t n) {
  size_t& r = replicas_[index_of(node)];
  r = std::min(r, n);
}

void SlotMap::assign(uint16_t slot, const NodeAddress& node) { assign_range(slot, slot, node); }

void SlotMap::assign_range(uint16_t first, uint16_t last, const NodeAddress& node) {
  if (first > last || last >= kClusterSlots) return;
  uint16_t i = index_of(node);
  for (uint32_t s = first; s <= last; ++s) owner_[s] = i;
}

size_t SlotMap::covered() const {
  size_t n = 0;
  for (uint16_t o : owner_) n += o != kNone;
  return n;
}

bool SlotMap::complete() const { return covered() == kClusterSlots; }

namespace {

bool is_int_in(const redisReply* r, long long lo, long long hi) {
  return r != nullptr && r->type == REDIS_REPLY_INTEGER && r->integer >= lo && r->integer <= hi;
}

// A node entry: [ip, port, id, ...]. Returns false when malformed; `out` empty when the node is known
// but unusable (unknown endpoint, host name).
bool read_node(const redisReply* n, const NodeAddress& asked, std::optional<NodeAddress>& out) {
  if (n == nullptr || n->type != REDIS_REPLY_ARRAY || n->elements < 2) return false;
  const redisReply* ip = n->element[0];
  if (!is_int_in(n->element[1], 0, 65535)) return false;
  auto port = static_cast<uint16_t>(n->element[1]->integer);
  out.reset();
  if (ip == nullptr) return false;
  if (ip->type == REDIS_REPLY_NIL) return true;
  if (ip->type != REDIS_REPLY_STRING) return false;
  std::string_view host(ip->str, ip->len);
  if (host.empty()) host = asked.host;
  if (port == 0 || !is_ip_literal(host)) return true;
  out = NodeAddress{std::string(host), port};
  return true;
}

}  // namespace

SlotsParse parse_cluster_slots(const redisReply* reply, const NodeAddress& asked) {
  SlotsParse result;
  if (reply == nullptr || reply->type != REDIS_REPLY_ARRAY) {
    result.error = "CLUSTER SLOTS: not an array";
    return result;
  }
  if (reply->elements > kClusterSlots) {
    result.error = "CLUSTER SLOTS: more ranges than slots";
    return result;
  }
  SlotMap map;
  std::vector<bool> seen(kClusterSlots, false);
  for (size_t i = 0; i < reply->elements; ++i) {
    const redisReply* range = reply->element[i];
    if (range == nullptr || range->type != REDIS_REPLY_ARRAY || range->elements < 3 ||
        !is_int_in(range->element[0], 0, kClusterSlots - 1) || !is_int_in(range->element[1], 0, kClusterSlots - 1) ||
        range->element[0]->integer > range->element[1]->integer) {
      result.error = "CLUSTER SLOTS: range " + std::to_string(i) + " is malformed";
      return result;
    }
    auto first = static_cast<uint16_t>(range->element[0]->integer);
    auto last = static_cast<uint16_t>(range->element[1]->integer);
    for (uint32_t s = first; s <= last; ++s) {
      if (seen[s]) {
        result.error = "CLUSTER SLOTS: slot " + std::to_string(s) + " is in two ranges";
        return result;
      }
      seen[s] = true;
    }
    std::optional<NodeAddress> node;
    for (size_t k = 2; k < range->elements; ++k) {  // replicas are checked for shape and counted, never used
      std::optional<NodeAddress> n;
      if (!read_node(range->element[k], asked, n)) {
        result.error = "CLUSTER SLOTS: node " + std::to_string(k - 2) + " of range " + std::to_string(i) + " is malformed";
        return result;
      }
      if (k == 2) node = std::move(n);
    }
    if (node) {
      map.assign_range(first, last, *node);
      map.set_replicas(*node, range->elements - 3);
    }
  }
  result.map = std::move(map);
  return result;
}

}  // namespace pgs::cache::redis
