#include "cache/redis/blocking_cluster.h"

#include <hiredis/hiredis.h>

#include <algorithm>

namespace pgs::cache::redis {

namespace {

std::string_view error_of(const redisReply* r) {
  return r != nullptr && r->type == REDIS_REPLY_ERROR ? std::string_view(r->str, r->len) : std::string_view();
}

}  // namespace

BlockingCluster::BlockingCluster(BlockingClusterOptions options) : options_(std::move(options)) {}

BlockingCluster::~BlockingCluster() = default;

void BlockingCluster::drop() {
  nodes_.clear();
  loaded_ = false;
}

BlockingRedis* BlockingCluster::node(const NodeAddress& at) {
  auto it = nodes_.find(at.text());
  if (it == nodes_.end()) {
    ConnOptions o = options_.conn;
    o.host = at.host;
    o.port = at.port;
    it = nodes_.emplace(at.text(), std::make_unique<BlockingRedis>(std::move(o))).first;
  }
  if (it->second->connect()) return it->second.get();
  last_error_ = at.text() + ": " + it->second->last_error();
  return nullptr;
}

// A command that got no reply dropped its connection: the cluster may have changed, ask for the map again.
std::optional<BlockingCluster::Reply> BlockingCluster::run(BlockingRedis* conn, const std::vector<std::string>& args) {
  std::vector<std::string_view> views(args.begin(), args.end());
  std::optional<Reply> r = conn->command(views);
  if (!r) {
    loaded_ = false;
    last_error_ = conn->last_error();
  }
  return r;
}

bool BlockingCluster::refresh() {
  std::vector<NodeAddress> candidates = map_.masters();
  candidates.insert(candidates.end(), options_.seeds.begin(), options_.seeds.end());
  for (const NodeAddress& at : candidates) {
    BlockingRedis* conn = node(at);
    if (conn == nullptr) continue;
    std::optional<Reply> r = run(conn, {"CLUSTER", "SLOTS"});
    if (!r) continue;
    SlotsParse p = parse_cluster_slots(r->get(), at);
    if (p.map && p.map->complete()) {
      map_ = std::move(*p.map);
      loaded_ = true;
      return true;
    }
    last_error_ = at.text() + ": CLUSTER SLOTS: " + (p.error.empty() ? "the map does not cover every slot" : p.error);
  }
  return false;
}

bool BlockingCluster::connect() { return loaded_ || refresh(); }

std::optional<BlockingCluster::Reply> BlockingCluster::route(std::string_view route_key,
                                                             const std::vector<std::string>& args,
                                                             NodeAddress& answered) {
  if (!connect()) return std::nullopt;
  const NodeAddress* owner = map_.master(key_slot(route_key));
  if (owner == nullptr) {
    last_error_ = "no master for slot " + std::to_string(key_slot(route_key));
    return std::nullopt;
  }
  NodeAddress at = *owner;
  bool asking = false;
  for (int redirects = 0;; ++redirects) {
    BlockingRedis* conn = node(at);
    if (conn == nullptr) {
      loaded_ = false;
      return std::nullopt;
    }
    if (asking && !run(conn, {"ASKING"})) return std::nullopt;
    std::optional<Reply> r = run(conn, args);
    if (!r) return std::nullopt;
    std::optional<Redirect> to = parse_redirect(error_of(r->get()));
    if (!to || redirects >= options_.max_redirects) {
      if (error_of(r->get()).starts_with("CLUSTERDOWN")) loaded_ = false;
      answered = at;
      return r;
    }
    if (to->kind == Redirect::Kind::moved) {
      map_.assign(to->slot, to->node);
      loaded_ = false;  // one slot learnt; the whole map is read again before the next command
    }
    asking = to->kind == Redirect::Kind::ask;
    at = to->node;
  }
}

std::optional<BlockingCluster::Reply> BlockingCluster::command(std::string_view route_key,
                                                               const std::vector<std::string>& args) {
  NodeAddress answered;
  return route(route_key, args, answered);
}

std::optional<BlockingCluster::Reply> BlockingCluster::command_replicated(std::string_view route_key,
                                                                          const std::vector<std::string>& args,
                                                                          int replicas, bool& replicated) {
  replicated = false;
  NodeAddress answered;
  std::optional<Reply> r = route(route_key, args, answered);
  if (!r || (*r)->type == REDIS_REPLY_ERROR) return r;
  size_t n = std::min<size_t>(static_cast<size_t>(std::max(replicas, 0)), map_.replicas(answered));
  if (n == 0) {
    replicated = true;
    return r;
  }
  BlockingRedis* conn = node(answered);
  std::optional<Reply> w = conn == nullptr ? std::nullopt
                                           : run(conn, {"WAIT", std::to_string(n),
                                                        std::to_string(std::max<long long>(1, options_.conn.timeout.count() / 2))});
  replicated = w && (*w)->type == REDIS_REPLY_INTEGER && (*w)->integer >= static_cast<long long>(n);
  return r;
}

}  // namespace pgs::cache::redis
