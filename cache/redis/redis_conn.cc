#include "cache/redis/redis_conn.h"

#include "cache/redis/resp.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <vector>

namespace pgs::cache::redis {

RedisConn::RedisConn(uv_loop_t* loop, ConnOptions options)
    : loop_(loop),
      options_(std::move(options)),
      backoff_(options_.backoff_min),
      deadline_timer_(loop, [this] { check_deadlines(); }),
      reconnect_timer_(loop, [this] { on_timer(); }) {}

RedisConn::~RedisConn() {
  closing_ = true;
  close_transport();
  for (Pending* p : pending_) delete p;  // never called back: the owner is going away
  pending_.clear();
}

void RedisConn::start() {
  if (state_ == State::idle) connect_now();
}

void RedisConn::close_transport() {
  if (transport_ == nullptr) return;
  RedisTransport* t = transport_;
  transport_ = nullptr;
  t->close();
}

void RedisConn::connect_now() {
  std::string error;
  transport_ = RedisTransport::open(loop_, options_.host, options_.port, options_.tls, this, error);
  if (transport_ == nullptr) {
    ++stats_.connect_failures;
    if (options_.tls.enabled()) {
      ++stats_.tls_failures;
      last_error_ = error;
    }
    schedule_reconnect();
    return;
  }
  state_ = State::connecting;
  reconnect_timer_.start(options_.connect_timeout);
}

void RedisConn::schedule_reconnect() {
  if (closing_) return;
  state_ = State::waiting;
  reconnect_timer_.start(backoff_);
  backoff_ = std::min(backoff_ * 2, options_.backoff_max);
}

// The reconnect timer: the backoff ran out (connect again), or the connect deadline passed.
void RedisConn::on_timer() {
  if (state_ == State::waiting) {
    connect_now();
  } else if (state_ == State::connecting || state_ == State::authenticating) {
    if (state_ == State::authenticating) {
      ++stats_.auth_failures;
      last_error_ = "no reply to AUTH within the connect timeout";
    } else if (options_.tls.enabled()) {
      ++stats_.tls_failures;
      last_error_ = "no TLS session within the connect timeout";
    }
    close_transport();
    ++stats_.connect_failures;
    schedule_reconnect();
  }
}

// TCP is up and, with TLS, the handshake done and the certificate accepted.
void RedisConn::on_open() {
  reconnect_timer_.stop();
  if (options_.password.empty()) {
    established();
    return;
  }
  // Nothing else is sent before AUTH is answered; the connect deadline covers it too.
  std::string_view with_user[] = {"AUTH", options_.user, options_.password};
  std::string_view without_user[] = {"AUTH", options_.password};
  state_ = State::authenticating;
  reconnect_timer_.start(options_.connect_timeout);
  send(options_.user.empty() ? std::span<const std::string_view>(without_user)
                             : std::span<const std::string_view>(with_user));
}

void RedisConn::on_auth_reply(const redisReply* r) {
  reconnect_timer_.stop();
  if (r->type == REDIS_REPLY_STATUS) {
    last_error_.clear();
    established();
    return;
  }
  ++stats_.auth_failures;
  last_error_ = r->type == REDIS_REPLY_ERROR ? std::string(r->str, r->len) : "an unexpected reply to AUTH";
  drop();  // reconnects after the backoff, and tries again
}

void RedisConn::established() {
  state_ = State::connected;
  ++stats_.connects;
  last_error_.clear();
  if (on_connect) {
    try {
      on_connect();
    } catch (...) {
    }
  }
}

void RedisConn::on_failure(TransportFailure kind, const std::string& why) {
  transport_ = nullptr;  // closed itself
  if (kind == TransportFailure::tls) {
    ++stats_.tls_failures;
    last_error_ = why;
  }
  if (state_ == State::connected) {
    fail_pending();
    lost_connection();
    return;
  }
  reconnect_timer_.stop();
  ++stats_.connect_failures;
  schedule_reconnect();
}

void RedisConn::lost_connection() {
  ++stats_.disconnects;
  push_ = nullptr;
  schedule_reconnect();
  if (on_disconnect) {
    try {
      on_disconnect();
    } catch (...) {
    }
  }
}

// The connection is gone: every request still waiting fails (a timed-out one silently). A callback may
// send again (refused: not connected) or drop(); the list is taken first.
void RedisConn::fail_pending() {
  std::list<Pending*> failed;
  failed.swap(pending_);
  deadline_timer_.stop();
  for (Pending* p : failed) {
    std::unique_ptr<Pending> owned(p);
    if (p->finished) continue;
    ++stats_.failed;
    deliver(p->done, nullptr, ReplyError::disconnected);
  }
}

void RedisConn::drop() {
  if (transport_ == nullptr) return;
  bool was_connected = state_ == State::connected;
  close_transport();
  reconnect_timer_.stop();
  state_ = State::waiting;  // command() refuses while the pending ones fail
  fail_pending();
  if (was_connected) {
    lost_connection();
  } else {
    schedule_reconnect();
  }
}

// Appends one request to the transport's batch (sent at the end of this loop iteration).
bool RedisConn::send(std::span<const std::string_view> args) {
  if (transport_ == nullptr) return false;
  append_command(args, transport_->outbox());
  transport_->flush_soon();
  return true;
}

bool RedisConn::command(std::span<const std::string_view> args, ReplyCallback done, milliseconds timeout) {
  if (state_ != State::connected || transport_ == nullptr) {
    ++stats_.refused_down;
    return false;
  }
  if (pending_.size() >= options_.max_inflight) {
    ++stats_.refused_busy;
    return false;
  }
  milliseconds t = timeout.count() > 0 ? timeout : options_.timeout;
  auto* p = new Pending{this, std::move(done), uv_now(loop_) + static_cast<uint64_t>(t.count())};
  send(args);
  p->where = pending_.insert(pending_.end(), p);
  ++stats_.requests;
  if (!deadline_timer_.active() || p->deadline_ms < armed_for_ms_) arm_deadline_timer();
  return true;
}

void RedisConn::deliver(const ReplyCallback& cb, const redisReply* reply, ReplyError error) noexcept {
  if (!cb) return;
  try {
    cb(reply, error);
  } catch (...) {
    // Never into libuv: a throwing callback is the caller's bug; the request is simply over.
  }
}

// Redis answers in order: a reply is the oldest request's, or (none waiting, subscribed) a push.
void RedisConn::on_reply(const redisReply* reply) {
  if (state_ == State::authenticating) {
    on_auth_reply(reply);
  } else if (!pending_.empty()) {
    handle_reply(pending_.front(), reply);
  } else if (push_) {
    backoff_ = options_.backoff_min;
    try {
      push_(reply);
    } catch (...) {
    }
  } else {
    drop();  // a reply nobody asked for: the stream is out of step
  }
}

void RedisConn::handle_reply(Pending* p, const redisReply* reply) {
  pending_.erase(p->where);
  std::unique_ptr<Pending> owned(p);
  if (p->finished) {
    if (reply != nullptr) ++stats_.late_replies;
    return;
  }
  ++stats_.replies;
  backoff_ = options_.backoff_min;  // Redis answers: a later loss starts the backoff afresh
  deliver(p->done, reply, ReplyError::none);
}

void RedisConn::arm_deadline_timer() {
  uint64_t now = uv_now(loop_);
  uint64_t next = UINT64_MAX;
  for (const Pending* p : pending_) {
    uint64_t at = p->finished ? p->deadline_ms + static_cast<uint64_t>(options_.stuck_after.count()) : p->deadline_ms;
    next = std::min(next, at);
  }
  if (next == UINT64_MAX) {
    deadline_timer_.stop();
    return;
  }
  armed_for_ms_ = next;
  deadline_timer_.start(milliseconds(next > now ? next - now : 0));
}

// Times out overdue requests; drops the connection when an answered-late request is overdue by
// stuck_after (Redis stopped or hopelessly slow).
void RedisConn::check_deadlines() {
  uint64_t now = uv_now(loop_);
  bool stuck = false;
  std::vector<Pending*> overdue;
  for (Pending* p : pending_) {
    if (!p->finished && p->deadline_ms <= now) overdue.push_back(p);
    if (p->finished && p->deadline_ms + static_cast<uint64_t>(options_.stuck_after.count()) <= now) stuck = true;
  }
  // Mark first, call after: a callback may drop() this connection, which frees every Pending.
  std::vector<ReplyCallback> callbacks;
  callbacks.reserve(overdue.size());
  for (Pending* p : overdue) {
    p->finished = true;
    ++stats_.timeouts;
    callbacks.push_back(std::move(p->done));
  }
  for (const ReplyCallback& cb : callbacks) deliver(cb, nullptr, ReplyError::timeout);
  if (stuck) drop();
  arm_deadline_timer();
}

bool RedisConn::subscribe(std::string_view channel, PushCallback push) {
  if (state_ != State::connected || transport_ == nullptr) return false;
  push_ = std::move(push);
  std::string_view args[] = {"SUBSCRIBE", channel};
  return send(args);
}

}  // namespace pgs::cache::redis
