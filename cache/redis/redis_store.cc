#include "cache/redis/redis_store.h"

#include <hiredis/hiredis.h>

#include <charconv>
#include <string_view>

#include "cache/generations.h"

namespace pgs::cache::redis {

namespace {

// KEYS[1] = generations hash, KEYS[2] = result key, KEYS[3] = commit LSN hash; ARGV = tables.
// Returns {generations, value, lsn entries}: one script, so the LSNs belong to those generations.
// Deliberately *not* flagged no-writes, although it writes nothing: Redis then treats it as a write,
// so whatever stops bumps (CLIENT PAUSE WRITE, maxmemory with noeviction, a read-only replica) stops
// lookups too, and they are misses. A bump that fails that way can never be followed by a hit on the
// entries it should have invalidated (issue 12 item 3; cache/README.md).
constexpr std::string_view kLookupScript = R"lua(#!lua
local g = redis.call('HMGET', KEYS[1], unpack(ARGV))
local v = redis.call('GET', KEYS[2])
local l = redis.call('HMGET', KEYS[3], unpack(ARGV))
return {g, v, l}
)lua";

uint64_t generation_of(const redisReply* r) {
  if (r == nullptr || r->type != REDIS_REPLY_STRING) return 0;
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(r->str, r->str + r->len, v);
  return ec == std::errc{} && end == r->str + r->len ? v : 0;
}

}  // namespace

RedisStore::RedisStore(uv_loop_t* loop, ConnOptions options) : conn_(loop, std::move(options)) {}

RedisStore::RedisStore(uv_loop_t* loop, ConnOptions options, ClusterClient* cluster)
    : conn_(loop, std::move(options)), cluster_(cluster) {}

bool RedisStore::send(std::string_view route_key, std::span<const std::string_view> args,
                      RedisConn::ReplyCallback done) {
  return cluster_ != nullptr ? cluster_->command(route_key, args, std::move(done)) : conn_.command(args, std::move(done));
}

bool RedisStore::get(const std::string& key, GetCallback done) {
  std::string_view args[] = {"GET", key};
  bool sent = send(key, args, [this, done = std::move(done)](const redisReply* r, ReplyError err) {
    if (err == ReplyError::none && r != nullptr && r->type == REDIS_REPLY_STRING) {
      ++stats_.hits;
      done(GetStatus::hit, std::string(r->str, r->len));
    } else if (err == ReplyError::none && r != nullptr && r->type == REDIS_REPLY_NIL) {
      ++stats_.misses;
      done(GetStatus::miss, {});
    } else {
      ++stats_.get_errors;
      done(GetStatus::error, {});
    }
  });
  if (!sent) ++stats_.refused;
  return sent;
}

bool RedisStore::lookup(const std::string& generations_hash, std::span<const std::string> fields,
                        const std::string& key, LookupCallback done) {
  if (fields.empty()) return false;  // HMGET needs a field; callers always pass kAllTables
  std::string lsn_hash = lsn_hash_name(generations_hash);
  std::vector<std::string_view> args = {"EVAL", kLookupScript, "3", generations_hash, key, lsn_hash};
  for (const std::string& f : fields) args.push_back(f);
  size_t n = fields.size();
  // Cluster: routed by the result key; the generations and LSN hashes share its slot (RedisNames).
  bool sent = send(key, args, [this, n, done = std::move(done)](const redisReply* r, ReplyError err) {
    bool shaped = err == ReplyError::none && r != nullptr && r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
                  r->element[0]->type == REDIS_REPLY_ARRAY && r->element[0]->elements == n &&
                  r->element[2]->type == REDIS_REPLY_ARRAY && r->element[2]->elements == n;
    if (!shaped) {
      ++stats_.get_errors;
      done(GetStatus::error, {}, {}, std::nullopt);
      return;
    }
    std::vector<uint64_t> gens(n);
    std::vector<std::optional<std::string>> entries(n);
    for (size_t i = 0; i < n; ++i) {
      gens[i] = generation_of(r->element[0]->element[i]);
      const redisReply* e = r->element[2]->element[i];
      if (e->type == REDIS_REPLY_STRING) entries[i].emplace(e->str, e->len);
    }
    std::optional<uint64_t> floor = replica_floor(gens, entries);
    const redisReply* v = r->element[1];
    if (v->type == REDIS_REPLY_STRING) {
      ++stats_.hits;
      done(GetStatus::hit, std::move(gens), std::string(v->str, v->len), floor);
    } else {
      ++stats_.misses;
      done(GetStatus::miss, std::move(gens), {}, floor);
    }
  });
  if (!sent) ++stats_.refused;
  return sent;
}

bool RedisStore::set(const std::string& key, std::string value, std::chrono::milliseconds ttl) {
  std::string px = std::to_string(ttl.count() > 0 ? ttl.count() : 1);
  std::string_view args[] = {"SET", key, value, "PX", px};
  bool sent = send(key, args, [this](const redisReply* r, ReplyError err) {
    if (err == ReplyError::none && r != nullptr && r->type == REDIS_REPLY_STATUS) {
      ++stats_.stores;
    } else {
      ++stats_.store_errors;
    }
  });
  if (!sent) ++stats_.refused;
  return sent;
}

}  // namespace pgs::cache::redis
