#include "cache/redis/generation_sync.h"

#include <openssl/sha.h>

#include <hiredis/hiredis.h>

#include <charconv>
#include <optional>
#include <string_view>

namespace pgs::cache::redis {
namespace {

// Keyspace notifications of evicted keys in database 0 (the one every connection here uses).
constexpr std::string_view kEvictedChannel = "__keyevent@0__:evicted";

// KEYS[1] = generations hash, KEYS[2] = channel, KEYS[3] = commit LSN hash; ARGV[1] = the commit
// LSN (decimal) or "" when unknown, ARGV[2..] = tables. Returns the new generations.
// The LSN entry "generation lsn" is the max of this LSN and the previous entry's when that entry
// belonged to the previous generation (so the LSN of every write whose bump made the generation is
// covered, whatever order the writers' probes ran in); an unknown LSN deletes it. LSNs are compared
// as decimal strings (Lua numbers are doubles: exact only below 2^53).
constexpr std::string_view kBumpScript = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local lsn = ARGV[1]
local function larger(a, b)
  if #a ~= #b then return #a > #b end
  return a > b
end
local out = {}
for i = 2, #ARGV do
  local tbl = ARGV[i]
  local olds = redis.call('HGET', KEYS[1], tbl)
  local old = tonumber(olds or '0') or 0
  local g = now
  if old >= g then g = old + 1 end
  local s = string.format('%.0f', g)
  redis.call('HSET', KEYS[1], tbl, s)
  if lsn == '' then
    redis.call('HDEL', KEYS[3], tbl)
  else
    local l = lsn
    local prev = redis.call('HGET', KEYS[3], tbl)
    if prev and olds then
      local pg, pl = string.match(prev, '^(%d+) (%d+)$')
      if pg == olds and pl and larger(pl, l) then l = pl end
    end
    redis.call('HSET', KEYS[3], tbl, s .. ' ' .. l)
  end
  redis.call('PUBLISH', KEYS[2], tbl .. ' ' .. s)
  out[#out + 1] = s
end
return out
)lua";

// EVALSHA names the script by this digest (40 bytes) instead of sending its ~900 on every bump, which
// hiredis would format and Redis hash again each time. Redis forgets scripts when it restarts or on
// SCRIPT FLUSH: that bump's NOSCRIPT reply is answered by sending it once more as EVAL, which loads it.
const std::string& bump_script_sha1() {
  static const std::string hex = [] {
    unsigned char digest[SHA_DIGEST_LENGTH];
    SHA1(reinterpret_cast<const unsigned char*>(kBumpScript.data()), kBumpScript.size(), digest);
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    for (unsigned char c : digest) {
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
    return out;
  }();
  return hex;
}

std::string_view text(const redisReply* r) { return {r->str, r->len}; }

bool is_noscript(const redisReply* r) {
  return r != nullptr && r->type == REDIS_REPLY_ERROR && text(r).starts_with("NOSCRIPT");
}

bool is_text(const redisReply* r) {
  return r != nullptr && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS);
}

std::optional<uint64_t> to_u64(std::string_view s) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace

GenerationSync::GenerationSync(uv_loop_t* loop, ConnOptions options, RedisNames names, GenerationMap& map,
                               bool count_evictions)
    : map_(map), names_(std::move(names)), lsn_hash_(lsn_hash_name(names_.generations)), sub_(loop, options), cmd_(loop, options),
      retry_timer_(loop, [this] { retry_failed(); }), count_evictions_(count_evictions) {
  sub_.on_connect = [this] { on_sub_connect(); };
  sub_.on_disconnect = [this] {
    subscribed_ = false;
    loaded_ = false;
  };
  cmd_.on_connect = [this] {
    if (subscribed_ && !loaded_) load_all();
    retry_failed();
  };
}

void GenerationSync::start() {
  sub_.start();
  cmd_.start();
}

void GenerationSync::on_sub_connect() {
  subscribed_ = false;
  loaded_ = false;
  if (!sub_.subscribe(names_.channel, [this](const redisReply* r) { on_push(r); })) {
    sub_.drop();
    return;
  }
  if (count_evictions_ && !sub_.subscribe(kEvictedChannel, [this](const redisReply* r) { on_push(r); })) sub_.drop();
}

// ["subscribe", channel, n] confirms; ["message", channel, payload] announces one bump (or, on the
// eviction channel, names an evicted key).
void GenerationSync::on_push(const redisReply* r) {
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 || !is_text(r->element[0]) || !is_text(r->element[1])) return;
  std::string_view kind = text(r->element[0]);
  std::string_view channel = text(r->element[1]);
  if (channel == kEvictedChannel) {
    if (kind != "message" || !is_text(r->element[2])) return;
    std::string_view cls = names_.class_of(text(r->element[2]));
    if (cls.empty()) return;  // not one of our result keys
    constexpr size_t kMaxClasses = 256;  // other fleets' names could be anything: stay bounded
    auto it = stats_.evictions.find(cls);
    if (it == stats_.evictions.end()) {
      it = stats_.evictions.emplace(stats_.evictions.size() < kMaxClasses ? std::string(cls) : "other", 0).first;
    }
    ++it->second;
    return;
  }
  if (kind == "subscribe") {
    subscribed_ = true;
    load_all();
  } else if (kind == "message" && is_text(r->element[2])) {
    if (map_.apply_message(text(r->element[2]))) {
      ++stats_.messages;
    } else {
      ++stats_.bad_messages;
    }
  }
}

void GenerationSync::load_all() {
  if (loading_) return;
  std::string_view args[] = {"HGETALL", names_.generations};
  loading_ = cmd_.command(args, [this](const redisReply* r, ReplyError err) {
    loading_ = false;
    if (err != ReplyError::none || r == nullptr || r->type != REDIS_REPLY_ARRAY) {
      ++stats_.resync_failures;
      sub_.drop();  // resubscribe and load again after the backoff
      return;
    }
    on_loaded(r);
  });
  // Not sent (command connection down): cmd_.on_connect loads when it comes up.
}

void GenerationSync::on_loaded(const redisReply* r) {
  for (size_t i = 0; i + 1 < r->elements; i += 2) {
    if (!is_text(r->element[i]) || !is_text(r->element[i + 1])) continue;
    if (std::optional<uint64_t> g = to_u64(text(r->element[i + 1]))) map_.apply(text(r->element[i]), *g);
  }
  loaded_ = subscribed_;
  ++stats_.resyncs;
}

void GenerationSync::bump(std::vector<std::string> tables, std::function<void(bool ok)> done) {
  bump(std::move(tables), std::nullopt, std::move(done));
}

void GenerationSync::bump(std::vector<std::string> tables, std::optional<uint64_t> commit_lsn,
                          std::function<void(bool ok)> done) {
  if (tables.empty()) {
    if (done) done(true);
    return;
  }
  if (commit_lsn) ++stats_.bumps_with_lsn;
  send_bump(std::move(tables), commit_lsn, std::move(done));
}

void GenerationSync::send_bump(std::vector<std::string> tables, std::optional<uint64_t> commit_lsn,
                               std::function<void(bool)> done, ScriptBy by) {
  std::string nkeys = "3";
  std::string lsn = commit_lsn ? std::to_string(*commit_lsn) : std::string();
  std::vector<std::string_view> args;
  args.reserve(7 + tables.size());
  if (by == ScriptBy::digest) {
    args = {"EVALSHA", bump_script_sha1(), nkeys, names_.generations, names_.channel, lsn_hash_, lsn};
  } else {
    args = {"EVAL", kBumpScript, nkeys, names_.generations, names_.channel, lsn_hash_, lsn};
  }
  for (const std::string& t : tables) args.push_back(t);
  auto fail = [this](const std::vector<std::string>& ts) {
    ++stats_.bump_failures;
    retry_.insert(ts.begin(), ts.end());
    if (!retry_timer_.active()) retry_timer_.start(retry_interval);
  };
  bool sent = cmd_.command(args, [this, tables, commit_lsn, done, fail, by](const redisReply* r, ReplyError err) {
    if (err == ReplyError::none && by == ScriptBy::digest && is_noscript(r)) {
      send_bump(tables, commit_lsn, done, ScriptBy::body);  // the script ran nowhere: send it whole
      return;
    }
    bool ok = err == ReplyError::none && r != nullptr && r->type == REDIS_REPLY_ARRAY && r->elements == tables.size();
    for (size_t i = 0; ok && i < tables.size(); ++i) {
      std::optional<uint64_t> g = is_text(r->element[i]) ? to_u64(text(r->element[i])) : std::nullopt;
      if (g) map_.apply(tables[i], *g);
      ok = g.has_value();
    }
    if (ok) {
      stats_.bumps += tables.size();
    } else {
      fail(tables);
    }
    if (done) done(ok);
  });
  if (!sent) {
    fail(tables);
    if (done) done(false);  // the Store contract does not apply here: bump() may call done() at once
  }
}

void GenerationSync::retry_failed() {
  if (retry_.empty()) return;
  if (!cmd_.connected()) {
    retry_timer_.start(retry_interval);
    return;
  }
  std::vector<std::string> tables(retry_.begin(), retry_.end());
  retry_.clear();
  send_bump(std::move(tables), std::nullopt, [this](bool ok) {  // which commit: unknown, so no LSN
    if (!ok && !retry_timer_.active()) retry_timer_.start(retry_interval);
  });
}

}  // namespace pgs::cache::redis
