#include "cache/redis/generation_sync.h"

#include "cache/redis/bump_script.h"

#include <hiredis/hiredis.h>

#include <charconv>
#include <optional>
#include <string_view>

namespace pgs::cache::redis {
namespace {

// Keyspace notifications of evicted keys in database 0 (the one every connection here uses).
constexpr std::string_view kEvictedChannel = "__keyevent@0__:evicted";

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

GenerationSync::GenerationSync(uv_loop_t* loop, ConnOptions options, RedisNames names, GenerationMap& map,
                               ClusterClient* cluster, int wait_replicas)
    : GenerationSync(loop, std::move(options), std::move(names), map, false) {
  cluster_ = cluster;
  wait_replicas_ = wait_replicas;
}

void GenerationSync::start() {
  if (cluster_ != nullptr) return;  // the cluster client connects; no subscription (see the header)
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
  if (cluster_ != nullptr) {
    send_cluster_bump(tables, commit_lsn, std::move(done));
    return;
  }
  send_bump(std::move(tables), commit_lsn, std::move(done));
}

void GenerationSync::bump_failed(const std::vector<std::string>& tables) {
  ++stats_.bump_failures;
  retry_.insert(tables.begin(), tables.end());
  if (!retry_timer_.active()) retry_timer_.start(retry_interval);
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
    args = {"EVAL", bump_script(), nkeys, names_.generations, names_.channel, lsn_hash_, lsn};
  }
  for (const std::string& t : tables) args.push_back(t);
  auto fail = [this](const std::vector<std::string>& ts) { bump_failed(ts); };
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
  if (cluster_ != nullptr ? !cluster_->ready() : !cmd_.connected()) {
    retry_timer_.start(retry_interval);
    return;
  }
  std::vector<std::string> tables(retry_.begin(), retry_.end());
  retry_.clear();
  ++retrying_;
  auto again = [this](bool ok) {  // which commit: unknown, so no LSN
    --retrying_;
    if (!ok && !retry_timer_.active()) retry_timer_.start(retry_interval);
  };
  if (cluster_ != nullptr) {
    send_cluster_bump(tables, std::nullopt, again);
  } else {
    send_bump(std::move(tables), std::nullopt, again);
  }
}

}  // namespace pgs::cache::redis
