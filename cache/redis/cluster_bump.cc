// GenerationSync's bumps on a Redis Cluster (cache/README.md "Redis Cluster"): the bump script once per
// partition, each followed by WAIT on the same connection; confirmed only when every partition is.
#include <hiredis/hiredis.h>

#include <charconv>

#include "cache/redis/bump_script.h"
#include "cache/redis/generation_sync.h"

namespace pgs::cache::redis {

struct GenerationSync::ClusterBump {
  std::vector<std::string> tables;
  std::string lsn;  // "" = unknown
  std::function<void(bool)> done;
  size_t remaining = 0;
  bool ok = true;
  std::vector<uint64_t> first;  // partition 0's new generations (the local map follows partition 0)
};

namespace {

// The script's reply: one generation per table, as text.
std::optional<std::vector<uint64_t>> read_generations(const redisReply* r, size_t n) {
  if (r == nullptr || r->type != REDIS_REPLY_ARRAY || r->elements != n) return std::nullopt;
  std::vector<uint64_t> out(n);
  for (size_t i = 0; i < n; ++i) {
    const redisReply* e = r->element[i];
    if (e == nullptr || (e->type != REDIS_REPLY_STRING && e->type != REDIS_REPLY_STATUS)) return std::nullopt;
    auto [end, ec] = std::from_chars(e->str, e->str + e->len, out[i]);
    if (ec != std::errc{} || end != e->str + e->len) return std::nullopt;
  }
  return out;
}

}  // namespace

void GenerationSync::send_cluster_bump(const std::vector<std::string>& tables, std::optional<uint64_t> commit_lsn,
                                       std::function<void(bool)> done) {
  auto bump = std::make_shared<ClusterBump>();
  bump->tables = tables;
  bump->lsn = commit_lsn ? std::to_string(*commit_lsn) : std::string();
  bump->done = std::move(done);
  size_t n = std::max<size_t>(names_.partitions(), 1);
  bump->remaining = n;
  for (size_t p = 0; p < n; ++p) send_partition(bump, p, ScriptBy::digest);
}

void GenerationSync::send_partition(const std::shared_ptr<ClusterBump>& bump, size_t p, ScriptBy by) {
  const std::string& gens = names_.generations_of(p);
  std::string lsn_hash = lsn_hash_name(gens);
  std::vector<std::string_view> args = {by == ScriptBy::digest ? "EVALSHA" : "EVAL",
                                        by == ScriptBy::digest ? std::string_view(bump_script_sha1()) : bump_script(),
                                        "3", gens, names_.channel_of(p), lsn_hash, bump->lsn};
  for (const std::string& t : bump->tables) args.push_back(t);
  // Shared by the reply and the WAIT that follows it: a NOSCRIPT reply is sent again whole (that WAIT
  // is then ignored); otherwise the partition counts once WAIT answered.
  struct Attempt {
    bool resent = false;
    bool parsed = false;
  };
  auto attempt = std::make_shared<Attempt>();
  auto on_reply = [this, bump, p, attempt, by](const redisReply* r, ReplyError err) {
    if (err == ReplyError::none && by == ScriptBy::digest && r != nullptr && r->type == REDIS_REPLY_ERROR &&
        std::string_view(r->str, r->len).starts_with("NOSCRIPT")) {
      attempt->resent = true;
      send_partition(bump, p, ScriptBy::body);  // this node lost its scripts: send the body
      return;
    }
    std::optional<std::vector<uint64_t>> g = err == ReplyError::none ? read_generations(r, bump->tables.size())
                                                                      : std::nullopt;
    attempt->parsed = g.has_value();
    if (g && p == 0) bump->first = std::move(*g);
  };
  auto on_replicated = [this, bump, attempt](bool replicated) {
    if (attempt->resent) return;
    finish_partition(bump, attempt->parsed && replicated);
  };
  if (!cluster_->command_replicated(gens, args, on_reply, wait_replicas_, on_replicated)) finish_partition(bump, false);
}

void GenerationSync::finish_partition(const std::shared_ptr<ClusterBump>& bump, bool ok) {
  bump->ok = bump->ok && ok;
  if (--bump->remaining != 0) return;
  if (bump->ok) {
    for (size_t i = 0; i < bump->first.size() && i < bump->tables.size(); ++i) map_.apply(bump->tables[i], bump->first[i]);
    stats_.bumps += bump->tables.size();
  } else {
    bump_failed(bump->tables);
  }
  if (bump->done) bump->done(bump->ok);
}

}  // namespace pgs::cache::redis
