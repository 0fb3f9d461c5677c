#include "cache/redis/redis_store.h"

#include <hiredis/hiredis.h>

#include <string_view>

namespace pgs::cache::redis {

RedisStore::RedisStore(uv_loop_t* loop, ConnOptions options) : conn_(loop, std::move(options)) {}

bool RedisStore::get(const std::string& key, GetCallback done) {
  std::string_view args[] = {"GET", key};
  bool sent = conn_.command(args, [this, done = std::move(done)](const redisReply* r, ReplyError err) {
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

bool RedisStore::set(const std::string& key, std::string value, std::chrono::milliseconds ttl) {
  std::string px = std::to_string(ttl.count() > 0 ? ttl.count() : 1);
  std::string_view args[] = {"SET", key, value, "PX", px};
  bool sent = conn_.command(args, [this](const redisReply* r, ReplyError err) {
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
