#include "cache/redis/cluster_client.h"

#include <hiredis/hiredis.h>

#include <algorithm>

namespace pgs::cache::redis {

struct ClusterClient::Request {
  std::vector<std::string> args;
  RedisConn::ReplyCallback done;
  std::function<void(bool)> replicated;  // null: no WAIT
  int replicas = 0;
  milliseconds timeout{0};
  int redirects = 0;
  uint64_t attempt = 0;       // sends so far; replies of an earlier send are ignored
  uint64_t wait_attempt = 0;  // the send whose WAIT is in flight
  bool reply_ok = false;      // the reply given to done was not an error
  size_t waited = 0;          // replicas the current send's WAIT asks for
};

namespace {

std::string_view error_text(const redisReply* r) {
  return r != nullptr && r->type == REDIS_REPLY_ERROR ? std::string_view(r->str, r->len) : std::string_view();
}

}  // namespace

ClusterClient::ClusterClient(uv_loop_t* loop, ClusterOptions options)
    : loop_(loop), options_(std::move(options)), tick_(loop, [this] { on_tick(); }) {}

ClusterClient::~ClusterClient() = default;

void ClusterClient::start() {
  for (const NodeAddress& seed : options_.seeds) conn_for(seed);
  tick_.start(options_.refresh_interval);
}

bool ClusterClient::ready() const {
  if (!map_loaded_ || !complete_) return false;
  return std::all_of(routed_.begin(), routed_.end(), [](const RedisConn* c) { return c->connected(); });
}

// After every change of the map: whether it is complete, and the connections of the masters that hold
// a slot now (ready() is asked on every lookup: no walk over the slots there).
void ClusterClient::map_changed() {
  complete_ = map_.complete();
  std::vector<bool> holds(map_.masters().size(), false);
  for (uint32_t s = 0; s < kClusterSlots; ++s) {
    if (const NodeAddress* m = map_.master(static_cast<uint16_t>(s))) holds[m - map_.masters().data()] = true;
  }
  routed_.clear();
  for (size_t i = 0; i < holds.size(); ++i) {
    if (!holds[i]) continue;
    RedisConn* c = conn_for(map_.masters()[i]);
    if (c == nullptr) {  // past max_nodes: that master cannot be reached, so never ready
      complete_ = false;
      continue;
    }
    routed_.push_back(c);
  }
}

std::vector<const RedisConn*> ClusterClient::connections() const {
  std::vector<const RedisConn*> out;
  for (const auto& [name, conn] : nodes_) out.push_back(conn.get());
  return out;
}

RedisConn* ClusterClient::conn_for(const NodeAddress& node) {
  std::string name = node.text();
  if (auto it = nodes_.find(name); it != nodes_.end()) return it->second.get();
  if (nodes_.size() >= options_.max_nodes) return nullptr;
  ConnOptions o = options_.conn;
  o.host = node.host;
  o.port = node.port;
  auto conn = std::make_unique<RedisConn>(loop_, std::move(o));
  conn->on_connect = [this] {
    if (!map_loaded_ || !complete_) want_refresh();
  };
  conn->on_disconnect = [this] { want_refresh(); };
  RedisConn* raw = conn.get();
  nodes_.emplace(std::move(name), std::move(conn));
  raw->start();
  return raw;
}

bool ClusterClient::command(std::string_view route_key, std::span<const std::string_view> args,
                            RedisConn::ReplyCallback done, milliseconds timeout) {
  return command_replicated(route_key, args, std::move(done), 0, nullptr, timeout);
}

bool ClusterClient::command_replicated(std::string_view route_key, std::span<const std::string_view> args,
                                       RedisConn::ReplyCallback done, int replicas,
                                       std::function<void(bool ok)> replicated, milliseconds timeout) {
  const NodeAddress* node = map_loaded_ ? map_.master(key_slot(route_key)) : nullptr;
  if (node == nullptr) {
    ++stats_.unroutable;
    return false;
  }
  auto req = std::make_shared<Request>();
  req->args.assign(args.begin(), args.end());
  req->done = std::move(done);
  req->replicas = std::max(replicas, 0);
  req->replicated = std::move(replicated);
  req->timeout = timeout.count() > 0 ? timeout : options_.conn.timeout;
  NodeAddress target = *node;  // send() may grow the map's node list
  bool sent = send(req, target, false);
  if (!sent) ++stats_.unroutable;
  return sent;
}

bool ClusterClient::send(const std::shared_ptr<Request>& req, const NodeAddress& node, bool asking) {
  RedisConn* conn = conn_for(node);
  ++req->attempt;
  if (conn == nullptr || !conn->connected()) return false;
  std::vector<std::string_view> views(req->args.begin(), req->args.end());
  if (asking) {
    std::string_view ask[] = {"ASKING"};
    if (!conn->command(ask, [](const redisReply*, ReplyError) {}, req->timeout)) return false;
  }
  uint64_t attempt = req->attempt;
  if (!conn->command(views, [this, req, attempt](const redisReply* r, ReplyError e) { on_reply(req, attempt, r, e); },
                     req->timeout)) {
    return false;
  }
  // WAIT for no more replicas than the map lists for this master: a master without one (its replica
  // promoted after it died, none attached yet) has nobody a failover could promote, and WAIT would only
  // block this connection until its timeout.
  size_t listed = map_.replicas(node);
  req->waited = std::min<size_t>(static_cast<size_t>(req->replicas), listed);
  if (req->replicated && req->waited > 0) {
    std::string n = std::to_string(req->waited);
    std::string ms = std::to_string(std::max<long long>(1, req->timeout.count()));
    std::string_view wait[] = {"WAIT", n, ms};
    if (conn->command(wait, [this, req, attempt](const redisReply* r, ReplyError e) { on_wait(req, attempt, r, e); },
                      req->timeout * 2 + milliseconds(50))) {
      req->wait_attempt = attempt;
    }
  }
  return true;
}

void ClusterClient::on_reply(const std::shared_ptr<Request>& req, uint64_t attempt, const redisReply* reply,
                             ReplyError error) {
  if (attempt != req->attempt) return;
  if (error == ReplyError::disconnected) want_refresh();
  if (error == ReplyError::none && follow(req, reply)) return;
  deliver(req, reply, error);
}

// MOVED / ASK: resend (true), within max_redirects, when the target is connected.
bool ClusterClient::follow(const std::shared_ptr<Request>& req, const redisReply* reply) {
  std::string_view err = error_text(reply);
  if (err.empty()) return false;
  if (err.starts_with("CLUSTERDOWN")) want_refresh();
  std::optional<Redirect> to = parse_redirect(err);
  if (!to) return false;
  if (to->kind == Redirect::Kind::moved) {
    ++stats_.moved;
    map_.assign(to->slot, to->node);
    map_changed();
    want_refresh();
  } else {
    ++stats_.asks;
  }
  if (req->redirects >= options_.max_redirects) return false;
  ++req->redirects;
  return send(req, to->node, to->kind == Redirect::Kind::ask);
}

void ClusterClient::deliver(const std::shared_ptr<Request>& req, const redisReply* reply, ReplyError error) {
  req->reply_ok = error == ReplyError::none && reply != nullptr && reply->type != REDIS_REPLY_ERROR;
  if (req->done) {
    RedisConn::ReplyCallback done = std::move(req->done);
    req->done = nullptr;
    done(error == ReplyError::none ? reply : nullptr, error);
  }
  // No WAIT asked (0 replicas): confirmed with the reply. No WAIT of this send in flight: not confirmed.
  if (req->replicated && (req->waited == 0 || req->wait_attempt != req->attempt)) {
    std::function<void(bool)> replicated = std::move(req->replicated);
    req->replicated = nullptr;
    replicated(req->waited == 0 && req->reply_ok);
  }
}

void ClusterClient::on_wait(const std::shared_ptr<Request>& req, uint64_t attempt, const redisReply* reply,
                            ReplyError error) {
  if (attempt != req->attempt || !req->replicated || req->done) return;  // an earlier send's, or no reply yet
  bool counted = error == ReplyError::none && reply != nullptr && reply->type == REDIS_REPLY_INTEGER &&
                 reply->integer >= static_cast<long long>(req->waited);
  if (!counted) ++stats_.wait_short;
  std::function<void(bool)> replicated = std::move(req->replicated);
  req->replicated = nullptr;
  replicated(req->reply_ok && counted);
}

void ClusterClient::want_refresh() {
  refresh_wanted_ = true;
  if (!refreshing_) tick_.start(milliseconds(0));  // once this loop turn ends: wants coalesce
}

void ClusterClient::on_tick() {
  const bool due = uv_now(loop_) - last_refresh_ms_ >= static_cast<uint64_t>(options_.ready_refresh_interval.count());
  if (refresh_wanted_ || !ready() || due) refresh_now();
  tick_.start(options_.refresh_interval);
}

void ClusterClient::refresh_now() {
  if (refreshing_) return;
  // Ask a master of the current map first (it knows the newest configuration soonest), then anyone.
  RedisConn* asked = nullptr;
  NodeAddress asked_at;
  for (const NodeAddress& m : map_.masters()) {
    auto it = nodes_.find(m.text());
    if (it != nodes_.end() && it->second->connected()) {
      asked = it->second.get();
      asked_at = m;
      break;
    }
  }
  for (auto it = nodes_.begin(); asked == nullptr && it != nodes_.end(); ++it) {
    if (it->second->connected()) {
      asked = it->second.get();
      asked_at = NodeAddress{it->second->options().host, it->second->options().port};
    }
  }
  if (asked == nullptr) return;  // nobody connected: each connection's on_connect asks again
  std::string_view args[] = {"CLUSTER", "SLOTS"};
  refresh_wanted_ = false;
  last_refresh_ms_ = uv_now(loop_);
  refreshing_ = asked->command(args, [this, asked_at](const redisReply* r, ReplyError e) {
    refreshing_ = false;
    SlotsParse p = e == ReplyError::none ? parse_cluster_slots(r, asked_at) : SlotsParse{};
    if (!p.map) {
      ++stats_.refresh_failures;
      refresh_wanted_ = true;
      return;
    }
    map_ = std::move(*p.map);
    map_loaded_ = true;
    ++stats_.refreshes;
    map_changed();
  });
  if (!refreshing_) {
    ++stats_.refresh_failures;
    refresh_wanted_ = true;
  }
}

}  // namespace pgs::cache::redis
