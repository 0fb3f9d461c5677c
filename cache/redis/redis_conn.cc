#include "cache/redis/redis_conn.h"

#include "cache/redis/resp.h"

#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>
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
  if (ctx_ != nullptr) {
    redisAsyncContext* ac = ctx_;
    ctx_ = nullptr;
    ac->data = nullptr;
    redisAsyncFree(ac);  // runs the pending callbacks with null replies: they only free their Pending
  }
  for (Pending* p : pending_) delete p;  // none expected; defensive
  pending_.clear();
}

void RedisConn::start() {
  if (state_ == State::idle) connect_now();
}

void RedisConn::connect_now() {
  redisAsyncContext* ac = redisAsyncConnect(options_.host.c_str(), options_.port);
  if (ac == nullptr) {
    ++stats_.connect_failures;
    schedule_reconnect();
    return;
  }
  if (ac->err != 0 || redisLibuvAttach(ac, loop_) != REDIS_OK) {
    redisAsyncFree(ac);
    ++stats_.connect_failures;
    schedule_reconnect();
    return;
  }
  ac->data = this;
  redisAsyncSetConnectCallback(ac, &RedisConn::on_connect_cb);
  redisAsyncSetDisconnectCallback(ac, &RedisConn::on_disconnect_cb);
  ctx_ = ac;
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
    }
    redisAsyncContext* ac = ctx_;
    ctx_ = nullptr;
    ac->data = nullptr;
    redisAsyncFree(ac);  // not connected yet: no callbacks run
    ++stats_.connect_failures;
    schedule_reconnect();
  }
}

void RedisConn::on_connect_cb(const redisAsyncContext* ac, int status) noexcept {
  auto* self = static_cast<RedisConn*>(ac->data);
  if (self == nullptr || self->ctx_ != ac) return;
  self->reconnect_timer_.stop();
  if (status != REDIS_OK) {
    self->ctx_ = nullptr;  // hiredis frees the context after this callback
    ++self->stats_.connect_failures;
    self->schedule_reconnect();
    return;
  }
  if (!self->options_.password.empty()) {
    // Nothing else is sent before AUTH is answered; the connect deadline covers it too.
    std::vector<const char*> argv{"AUTH"};
    std::vector<size_t> lens{4};
    if (!self->options_.user.empty()) {
      argv.push_back(self->options_.user.data());
      lens.push_back(self->options_.user.size());
    }
    argv.push_back(self->options_.password.data());
    lens.push_back(self->options_.password.size());
    self->state_ = State::authenticating;
    self->reconnect_timer_.start(self->options_.connect_timeout);
    if (redisAsyncCommandArgv(self->ctx_, &RedisConn::on_auth_cb, self, static_cast<int>(argv.size()), argv.data(),
                              lens.data()) != REDIS_OK) {
      ++self->stats_.auth_failures;
      self->drop();
    }
    return;
  }
  self->established();
}

void RedisConn::on_auth_cb(redisAsyncContext* ac, void* reply, void* privdata) noexcept {
  auto* self = static_cast<RedisConn*>(privdata);
  if (self == nullptr || ac->data != self || self->ctx_ != ac || self->state_ != State::authenticating) return;
  self->reconnect_timer_.stop();
  const auto* r = static_cast<const redisReply*>(reply);
  if (r != nullptr && r->type == REDIS_REPLY_STATUS) {
    self->last_error_.clear();
    self->established();
    return;
  }
  ++self->stats_.auth_failures;
  self->last_error_ = r != nullptr && r->type == REDIS_REPLY_ERROR ? std::string(r->str, r->len) : "no reply to AUTH";
  self->drop();  // reconnects after the backoff, and tries again
}

void RedisConn::established() {
  state_ = State::connected;
  ++stats_.connects;
  if (on_connect) {
    try {
      on_connect();
    } catch (...) {
    }
  }
}

void RedisConn::on_disconnect_cb(const redisAsyncContext* ac, int /*status*/) noexcept {
  auto* self = static_cast<RedisConn*>(ac->data);
  if (self == nullptr || self->ctx_ != ac) return;  // dropped by us: drop() did the bookkeeping
  self->ctx_ = nullptr;                             // hiredis frees the context after this callback
  self->lost_connection();
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

void RedisConn::drop() {
  if (ctx_ == nullptr) return;
  redisAsyncContext* ac = ctx_;
  bool was_connected = state_ == State::connected;
  ctx_ = nullptr;
  ac->data = nullptr;
  reconnect_timer_.stop();
  redisAsyncFree(ac);  // pending requests fail through on_reply_cb (their Pending knows the conn)
  if (was_connected) {
    lost_connection();
  } else {
    schedule_reconnect();
  }
}

bool RedisConn::command(std::span<const std::string_view> args, ReplyCallback done, milliseconds timeout) {
  if (state_ != State::connected || ctx_ == nullptr) {
    ++stats_.refused_down;
    return false;
  }
  if (pending_.size() >= options_.max_inflight) {
    ++stats_.refused_busy;
    return false;
  }
  format_command(args, formatted_);
  milliseconds t = timeout.count() > 0 ? timeout : options_.timeout;
  auto* p = new Pending{this, std::move(done), uv_now(loop_) + static_cast<uint64_t>(t.count())};
  if (redisAsyncFormattedCommand(ctx_, &RedisConn::on_reply_cb, p, formatted_.data(), formatted_.size()) != REDIS_OK) {
    delete p;
    ++stats_.refused_down;
    return false;
  }
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
    // Never into hiredis: a throwing callback is the caller's bug; the request is simply over.
  }
}

void RedisConn::on_reply_cb(redisAsyncContext* /*ac*/, void* reply, void* privdata) noexcept {
  auto* p = static_cast<Pending*>(privdata);
  RedisConn* self = p->conn;
  if (self->closing_) {
    self->pending_.erase(p->where);
    delete p;
    return;
  }
  self->handle_reply(p, static_cast<const redisReply*>(reply));
}

void RedisConn::handle_reply(Pending* p, const redisReply* reply) {
  pending_.erase(p->where);
  std::unique_ptr<Pending> owned(p);
  if (p->finished) {
    if (reply != nullptr) ++stats_.late_replies;
    return;
  }
  if (reply == nullptr) {
    ++stats_.failed;
    deliver(p->done, nullptr, ReplyError::disconnected);
  } else {
    ++stats_.replies;
    backoff_ = options_.backoff_min;  // Redis answers: a later loss starts the backoff afresh
    deliver(p->done, reply, ReplyError::none);
  }
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
  if (state_ != State::connected || ctx_ == nullptr) return false;
  push_ = std::move(push);
  const char* argv[] = {"SUBSCRIBE", channel.data()};
  size_t lens[] = {9, channel.size()};
  return redisAsyncCommandArgv(ctx_, &RedisConn::on_push_cb, this, 2, argv, lens) == REDIS_OK;
}

void RedisConn::on_push_cb(redisAsyncContext* ac, void* reply, void* /*privdata*/) noexcept {
  auto* self = static_cast<RedisConn*>(ac->data);
  if (self == nullptr || reply == nullptr || !self->push_) return;
  self->backoff_ = self->options_.backoff_min;
  try {
    self->push_(static_cast<const redisReply*>(reply));
  } catch (...) {
  }
}

}  // namespace pgs::cache::redis
