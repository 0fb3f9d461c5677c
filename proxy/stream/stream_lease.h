// StreamLease: the invalidation stream's lease and heartbeat in Redis (StreamInvalidator, issue 12).
//
// The leader holds <ns>stream:leader (its token, PX max_delay) and, each round in which every slot
// streams, sets <ns>stream:beat to the same token; a follower serves cached results only while the
// heartbeat holds the token of the lease now held (live_heartbeat()), and until the heartbeat expires.
//
// Late commands. A leader whose Redis froze gives up on its commands (each has a timeout) and steps
// down, but Redis runs them once it resumes. A late lease renewal and heartbeat would make every
// follower trust a leadership that stopped streaming, for up to max_delay. So every command that takes
// or renews the lease carries the instant it was issued, in Redis's own clock (learnt from the reply to
// the previous command, plus the time passed since on this host); the script compares it with Redis's
// TIME when it runs and does nothing when it runs more than `late_after` (the command timeout) after
// that instant: the leader has given up on it by then. The heartbeat expires max_delay after the
// command was issued, not after it ran. Before the first reply nothing is known, so the first attempt
// at the lease carries no instant (a late one only holds the lease for max_delay: no heartbeat).
//
// Pure protocol over a command function (a BlockingRedis or BlockingCluster call): no thread of its own.
// Thread affinity: the caller's (StreamInvalidator's thread).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "cache/redis/blocking_redis.h"

namespace pgs::proxy {

class StreamLease {
 public:
  using Reply = cache::redis::BlockingRedis::Reply;
  // One command; nullopt when no reply came (connection lost, timeout).
  using Command = std::function<std::optional<Reply>(const std::vector<std::string>&)>;
  struct Keys {
    std::string lease, beat;  // in one hash slot (a Redis Cluster runs both in one script)
  };
  enum class Outcome {
    done,      // taken, renewed, released
    refused,   // the lease is another's (or, for release, not ours any more)
    late,      // the script ran too late after it was issued and did nothing
    no_reply,  // nothing known: the command may still run later (and then does nothing, see above)
  };

  StreamLease(Keys keys, std::chrono::milliseconds max_delay, std::chrono::milliseconds late_after);

  // SET NX of the lease to `token`, PX max_delay.
  Outcome acquire(const Command& redis, const std::string& token);
  // Extends the lease of `token` by max_delay and, when `beat`, sets the heartbeat to `token` until
  // max_delay after this call.
  Outcome renew(const Command& redis, const std::string& token, bool beat);
  // Deletes the lease if it is still `token`'s.
  Outcome release(const Command& redis, const std::string& token);
  // A follower's check: the leadership whose heartbeat is current, or nullopt.
  struct Heartbeat {
    std::string token;                   // that leadership's
    std::chrono::milliseconds remaining;  // until the heartbeat expires (PTTL when Redis ran the check)
  };
  static std::optional<Heartbeat> live_heartbeat(const Command& redis, const Keys& keys);

  // Redis's clock now, as learnt from the last reply (ms since the epoch); nullopt before any reply.
  std::optional<int64_t> redis_now_ms() const;

 private:
  Outcome run_timed(const Command& redis, const char* script, std::vector<std::string> keys,
                    std::vector<std::string> args);

  Keys keys_;
  std::chrono::milliseconds max_delay_;
  std::chrono::milliseconds late_after_;
  std::optional<int64_t> redis_ms_;                // Redis's TIME in the last reply
  std::chrono::steady_clock::time_point learnt_at_;  // when that reply arrived here
};

}  // namespace pgs::proxy
