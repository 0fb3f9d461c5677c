#include "proxy/stream/stream_lease.h"

#include <hiredis/hiredis.h>

#include <string_view>

namespace pgs::proxy {

namespace {

// Both timed scripts start the same way: ARGV[1] token, ARGV[2] max_delay ms, ARGV[3] the instant the
// command was issued in Redis's clock ("" = unknown), ARGV[4] late_after ms. They return {outcome, now}:
// 1 done, 0 refused, -1 late; `now` is Redis's TIME in ms, which the caller learns its clock from.
// replicate_commands(): Redis before 5 refuses a write after TIME without it (a no-op since).
#define PGS_LEASE_PROLOGUE                                                                 \
  "if redis.replicate_commands then redis.replicate_commands() end "                       \
  "local t = redis.call('TIME') "                                                          \
  "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) "                 \
  "local issued = tonumber(ARGV[3]) "                                                      \
  "if issued and now - issued > tonumber(ARGV[4]) then return {-1, now} end "

constexpr const char* kAcquireScript =
    PGS_LEASE_PROLOGUE
    "if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return {1, now} end "
    "return {0, now}";

// ARGV[5] "1": set the heartbeat too, until max_delay after the command was issued.
constexpr const char* kRenewScript =
    PGS_LEASE_PROLOGUE
    "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {0, now} end "
    "local beat_ms = tonumber(ARGV[2]) "
    "if issued then beat_ms = beat_ms - math.max(0, now - issued) end "
    "if beat_ms < 1 then return {-1, now} end "
    "redis.call('PEXPIRE', KEYS[1], ARGV[2]) "
    "if ARGV[5] == '1' then redis.call('SET', KEYS[2], ARGV[1], 'PX', beat_ms) end "
    "return {1, now}";

#undef PGS_LEASE_PROLOGUE

constexpr const char* kReleaseScript =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";

// {token, PTTL of the heartbeat} when the heartbeat holds the token of the lease now held, else nil. A
// heartbeat whose token no longer matches the lease (expired, or taken again under a new token) proves
// nothing.
constexpr const char* kLiveScript =
    "local l = redis.call('GET', KEYS[1]) "
    "if l and l == redis.call('GET', KEYS[2]) then return {l, redis.call('PTTL', KEYS[2])} end return false";

}  // namespace

StreamLease::StreamLease(Keys keys, std::chrono::milliseconds max_delay, std::chrono::milliseconds late_after)
    : keys_(std::move(keys)), max_delay_(max_delay), late_after_(late_after) {}

std::optional<int64_t> StreamLease::redis_now_ms() const {
  if (!redis_ms_) return std::nullopt;
  auto passed = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - learnt_at_);
  // The reply arrived after Redis read its TIME, so this is never ahead of Redis's clock: a script
  // finds the command at least as old as it is (never later than the truth, by default-deny).
  return *redis_ms_ + passed.count();
}

StreamLease::Outcome StreamLease::run_timed(const Command& redis, const char* script, std::vector<std::string> keys,
                                            std::vector<std::string> args) {
  std::optional<int64_t> issued = redis_now_ms();
  std::vector<std::string> cmd = {"EVAL", script, std::to_string(keys.size())};
  cmd.insert(cmd.end(), keys.begin(), keys.end());
  cmd.push_back(args.at(0));  // token
  cmd.push_back(std::to_string(max_delay_.count()));
  cmd.push_back(issued ? std::to_string(*issued) : std::string());
  cmd.push_back(std::to_string(late_after_.count()));
  cmd.insert(cmd.end(), args.begin() + 1, args.end());
  std::optional<Reply> r = redis(cmd);
  auto received = std::chrono::steady_clock::now();
  if (!r) return Outcome::no_reply;
  const redisReply* reply = r->get();
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 || reply->element[0]->type != REDIS_REPLY_INTEGER ||
      reply->element[1]->type != REDIS_REPLY_INTEGER) {
    return Outcome::no_reply;  // an error reply (a script refused, NOSCRIPT, a cluster redirect given up)
  }
  redis_ms_ = reply->element[1]->integer;
  learnt_at_ = received;
  switch (reply->element[0]->integer) {
    case 1:
      return Outcome::done;
    case 0:
      return Outcome::refused;
    default:
      return Outcome::late;
  }
}

StreamLease::Outcome StreamLease::acquire(const Command& redis, const std::string& token) {
  return run_timed(redis, kAcquireScript, {keys_.lease}, {token});
}

StreamLease::Outcome StreamLease::renew(const Command& redis, const std::string& token, bool beat) {
  return run_timed(redis, kRenewScript, {keys_.lease, keys_.beat}, {token, beat ? "1" : "0"});
}

StreamLease::Outcome StreamLease::release(const Command& redis, const std::string& token) {
  std::optional<Reply> r = redis({"EVAL", kReleaseScript, "1", keys_.lease, token});
  if (!r) return Outcome::no_reply;
  return (*r)->type == REDIS_REPLY_INTEGER && (*r)->integer == 1 ? Outcome::done : Outcome::refused;
}

std::optional<StreamLease::Heartbeat> StreamLease::live_heartbeat(const Command& redis, const Keys& keys) {
  std::optional<Reply> r = redis({"EVAL", kLiveScript, "2", keys.lease, keys.beat});
  if (!r) return std::nullopt;
  const redisReply* reply = r->get();
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 || reply->element[0]->type != REDIS_REPLY_STRING ||
      reply->element[1]->type != REDIS_REPLY_INTEGER || reply->element[1]->integer <= 0) {
    return std::nullopt;  // none, an error, or a heartbeat without an expiry (never set so by a leader)
  }
  return Heartbeat{std::string(reply->element[0]->str, reply->element[0]->len),
                   std::chrono::milliseconds(reply->element[1]->integer)};
}

}  // namespace pgs::proxy
