#include "proxy/core/worker.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#include <pthread.h>
#endif

#include <cstring>

#include "proxy/client/client_conn.h"
#include "proxy/core/log.h"
#include "proxy/core/process.h"
#include "proxy/monitor/adapters.h"
#include "proxy/pool/cancel.h"
#include "proxy/pool/pool.h"
#include "proxy/server/server_conn.h"

namespace pgs::proxy {

namespace {
constexpr uint64_t kTickMs = 100;
constexpr int kListenBacklog = 4096;

// A listening socket with SO_REUSEPORT so every worker has its own and the kernel spreads connections.
int open_reuseport_listener(const std::string& host, uint16_t port, std::string& error) {
  sockaddr_storage addr{};
  socklen_t len = 0;
  int family = AF_INET;
  if (uv_ip4_addr(host.c_str(), port, reinterpret_cast<sockaddr_in*>(&addr)) == 0) {
    len = sizeof(sockaddr_in);
  } else if (uv_ip6_addr(host.c_str(), port, reinterpret_cast<sockaddr_in6*>(&addr)) == 0) {
    family = AF_INET6;
    len = sizeof(sockaddr_in6);
  } else {
    error = "invalid listen address " + host;
    return -1;
  }
  int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error = std::string("socket: ") + std::strerror(errno);
    return -1;
  }
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
      ::bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0) {
    error = "listen on " + host + ":" + std::to_string(port) + ": " + std::strerror(errno);
    ::close(fd);
    return -1;
  }
  return fd;
}
}  // namespace

namespace {
router::ClassifyOptions classify_options(const conf::Config& config) {
  router::ClassifyOptions o;
  o.max_parse_bytes = config.routing.max_parse_bytes;
  o.replica_safe_functions = config.routing.replica_safe_functions;
  return o;
}
size_t classifier_entries(const conf::Config& config) {
  return static_cast<size_t>(std::max(1, config.routing.classifier_cache_entries));
}
}  // namespace

namespace {
// Fixed glibc thresholds, set once before the first worker thread starts. By default both adapt: once a
// large block (a grown buffer, a map's buckets for 10,000 clients) was mmapped and freed, the mmap
// threshold rises to its size and the trim threshold to twice that, and a worker's arena then keeps
// that much free memory at its top for the rest of the process (malloc_trim does not shrink the top
// of a thread's arena). Fixed values keep large blocks mmapped (unmapped when freed) and arenas trimmed
// back on free.
void fix_malloc_thresholds() {
#ifdef __GLIBC__
  static std::once_flag once;
  std::call_once(once, [] {
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    mallopt(M_TRIM_THRESHOLD, 128 * 1024);
  });
#endif
}
}  // namespace

Worker::Worker(Process& process, int index) : process_(process), index_(index) { fix_malloc_thresholds(); }

Worker::~Worker() { join(); }

bool Worker::start(std::string& error) {
  snapshot_ = process_.snapshot();
  if (snapshot_->config->observability.digest_top_n > 0) {
    obs::DigestOptions o;
    o.capacity = static_cast<size_t>(snapshot_->config->observability.digest_top_n);
    digests_ = std::make_unique<obs::DigestTable>(o);
  }
  classifier_ = std::make_unique<router::ClassifierCache>(classifier_entries(*snapshot_->config),
                                                          classify_options(*snapshot_->config));
  const auto& pc = snapshot_->config->proxy;
  int fd = open_reuseport_listener(pc.listen_host, pc.listen_port, error);
  if (fd < 0) return false;
  uv_loop_init(&loop_);
  uv_tcp_init(&loop_, &listener_);
  listener_.data = this;
  int rc = uv_tcp_open(&listener_, fd);
  if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(&listener_), kListenBacklog, &Worker::accept_cb);
  if (rc != 0) {
    error = std::string("listen: ") + uv_strerror(rc);
    uv_close(reinterpret_cast<uv_handle_t*>(&listener_), nullptr);
    uv_run(&loop_, UV_RUN_DEFAULT);
    uv_loop_close(&loop_);
    return false;
  }
  listener_open_ = true;
  if (pc.io_uring) {
    std::string why;
    send_ring_ = SendRing::create(&loop_, why);
    if (!send_ring_ && index_ == 0) LOG_WARN("io_uring is not available (" + why + "): sockets send with send(2)");
  }
  inbox_open_ = true;
  uv_async_init(&loop_, &async_, &Worker::async_cb);
  async_.data = this;
  uv_timer_init(&loop_, &tick_timer_);
  tick_timer_.data = this;
  uv_timer_start(&tick_timer_, &Worker::tick_cb, kTickMs, kTickMs);
  if (snapshot_->config->cache.enabled) start_result_cache();
  resolver_ = std::make_unique<HostResolver>(&loop_);
  auth_query_ = std::make_unique<AuthQuery>(&loop_, *resolver_, [this](uint64_t id, const AuthAnswer& answer) {
    if (ClientConn* c = client_by_id(id)) c->on_auth_answer(answer);
  });
  auth_query_->apply_config(*snapshot_->config);
  thread_ = std::thread([this] { run(); });
  return true;
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::run() {
  // "pgs-worker-<n>" in top -H, ps -L and perf: a DBA sees which loop is busy (15 bytes at most).
  std::string name = "pgs-worker-" + std::to_string(index_);
  name.resize(std::min<size_t>(name.size(), 15));
  pthread_setname_np(pthread_self(), name.c_str());
  if (send_ring_) send_ring_->bind_to_this_thread();
  uv_run(&loop_, UV_RUN_DEFAULT);  // returns once every connection is closed and every send completed
  pools_.clear();
  if (send_ring_) {
    send_ring_->close();
    uv_run(&loop_, UV_RUN_DEFAULT);  // the ring's handles' close callbacks
    send_ring_->unbind_from_this_thread();
    send_ring_.reset();
  }
  uv_loop_close(&loop_);
  process_.on_worker_exit();
}

// ---- inbox (any thread) ----

void Worker::post_snapshot(std::shared_ptr<const Snapshot> snapshot) {
  {
    std::lock_guard<std::mutex> lock(inbox_mutex_);
    if (!inbox_open_) return;  // the loop is gone
    inbox_snapshot_ = std::move(snapshot);
    uv_async_send(&async_);  // under the lock: the handle cannot be closed meanwhile
  }
}

void Worker::post_cancel(int32_t pid, int32_t secret) {
  {
    std::lock_guard<std::mutex> lock(inbox_mutex_);
    if (!inbox_open_) return;  // the loop is gone
    inbox_cancels_.emplace_back(pid, secret);
    uv_async_send(&async_);  // under the lock: the handle cannot be closed meanwhile
  }
}

void Worker::post_shutdown(bool immediate) {
  {
    std::lock_guard<std::mutex> lock(inbox_mutex_);
    if (!inbox_open_) return;  // the loop is gone
    inbox_shutdown_ = true;
    inbox_immediate_ = inbox_immediate_ || immediate;
    uv_async_send(&async_);  // under the lock: the handle cannot be closed meanwhile
  }
}

void Worker::post_pause(bool paused) {
  std::lock_guard<std::mutex> lock(inbox_mutex_);
  if (!inbox_open_) return;
  inbox_pause_ = paused ? 1 : 0;
  uv_async_send(&async_);
}

void Worker::async_cb(uv_async_t* h) noexcept { static_cast<Worker*>(h->data)->drain_inbox(); }

void Worker::drain_inbox() {
  std::shared_ptr<const Snapshot> snap;
  std::vector<std::pair<int32_t, int32_t>> cancels;
  bool shutdown = false, immediate = false;
  int pause = -1;
  {
    std::lock_guard<std::mutex> lock(inbox_mutex_);
    pause = inbox_pause_;
    inbox_pause_ = -1;
    snap = std::move(inbox_snapshot_);
    inbox_snapshot_.reset();
    cancels.swap(inbox_cancels_);
    shutdown = inbox_shutdown_;
    immediate = inbox_immediate_;
    inbox_shutdown_ = false;
  }
  if (snap) apply_snapshot(std::move(snap));
  for (auto [pid, secret] : cancels) deliver_cancel(pid, secret);
  if (pause >= 0) {
    paused_ = pause == 1;
    if (!paused_) {
      for (auto& [key, pool] : pools_) pool->resume();
    }
  }
  if (shutdown) begin_shutdown(immediate);
}


void Worker::apply_snapshot(std::shared_ptr<const Snapshot> snapshot) {
  snapshot_ = std::move(snapshot);
  const conf::Config& config = *snapshot_->config;
  if (config.cache.enabled && result_cache_ == nullptr && !shutting_down_) start_result_cache();
  if (!(classifier_->options() == classify_options(config))) classifier_->reset(classify_options(config));
  auth_query_->apply_config(config);
  for (auto& [key, pool] : pools_) {
    const auto* db = config.find_database(std::get<0>(key));
    const conf::UserConfig looked_up{.name = std::get<1>(key)};
    const auto* user = config.find_user(std::get<1>(key));
    if (user == nullptr && config.proxy.auth_query_enabled()) user = &looked_up;  // the pool defaults
    if (std::get<2>(key) >= static_cast<int>(config.replicas.size())) continue;  // replica removed
    if (db == nullptr || user == nullptr) continue;  // removed: its clients keep the old settings
    const UserSecrets* s = snapshot_->secrets_for(user->name);
    pool->apply_config(config, *db, *user, s != nullptr ? s->server_password : std::string());
  }
}

// ---- pools and clients ----

Pool* Worker::pool_for(const std::string& database, const std::string& user, int target) {
  auto key = std::make_tuple(database, user, target);
  auto it = pools_.find(key);
  if (it != pools_.end()) return it->second.get();
  const conf::Config& config = *snapshot_->config;
  const auto* db = config.find_database(database);
  const auto* u = config.find_user(user);
  // A user auth_query let in (pool_for is asked only after a login) gets the pool defaults.
  const conf::UserConfig looked_up{.name = user};
  if (u == nullptr && config.proxy.auth_query_enabled()) u = &looked_up;
  if (db == nullptr || u == nullptr) return nullptr;
  if (target >= static_cast<int>(config.replicas.size())) return nullptr;
  auto pool = std::make_unique<Pool>(*this, database, user, target);
  const UserSecrets* s = snapshot_->secrets_for(user);
  pool->apply_config(config, *db, *u, s != nullptr ? s->server_password : std::string());
  Pool* raw = pool.get();
  pools_.emplace(std::move(key), std::move(pool));
  return raw;
}

void Worker::note_client_keys(const std::string& user, const protocol::scram::ClientKeys& keys) {
  client_keys_[user] = keys;
}

const protocol::scram::ClientKeys* Worker::client_keys(const std::string& user) const {
  auto it = client_keys_.find(user);
  return it == client_keys_.end() ? nullptr : &it->second;
}

bool Worker::routing_enabled() const {
  const conf::Config& config = *snapshot_->config;
  return !config.replicas.empty() && config.routing.consistency != conf::Consistency::primary;
}

std::span<const router::ReplicaSnapshot> Worker::replica_view() {
  uint64_t gen = process_.health_generation();
  if (gen != replica_view_generation_) {
    auto health = process_.health();
    if (health) monitor::to_route_replicas(*health, replica_view_);
    else replica_view_.clear();
    replica_view_taken_at_ = health ? health->taken_at : std::chrono::steady_clock::time_point{};
    replica_view_generation_ = gen;
    replica_down_until_gen_.resize(replica_view_.size(), 0);
  }
  for (size_t i = 0; i < replica_view_.size(); ++i) {
    uint32_t outstanding = 0;
    for (auto& [key, pool] : pools_) {
      if (std::get<2>(key) == static_cast<int>(i)) outstanding += static_cast<uint32_t>(pool->busy_servers());
    }
    replica_view_[i].outstanding = outstanding;
    if (replica_down_until_gen_[i] > gen) replica_view_[i].healthy = false;
  }
  return replica_view_;
}

std::chrono::milliseconds Worker::replica_view_age() const {
  if (replica_view_taken_at_ == std::chrono::steady_clock::time_point{}) return std::chrono::milliseconds{0};
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - replica_view_taken_at_);
}

void Worker::mark_replica_down(int replica) {
  if (replica < 0) return;
  size_t i = static_cast<size_t>(replica);
  if (replica_down_until_gen_.size() <= i) replica_down_until_gen_.resize(i + 1, 0);
  // Two rounds: the monitor's next verdict may still be from before the failure.
  replica_down_until_gen_[i] = process_.health_generation() + 2;
  if (i < replica_view_.size()) replica_view_[i].healthy = false;
  process_.want_fresh_health();  // those two rounds at the fast cadence, not the idle one
}

void Worker::add_client(ClientConn* client) {
  clients_[client->id()] = client;
  clients_peak_ = std::max(clients_peak_, clients_.size());
}

// Memory goes back to the OS once it is not needed (issue 11: RSS falls back once 10,000 idle clients
// left). Once a second: read blocks nobody took during the last second leave this thread's pool. After
// a burst of clients left (the count fell by kTrimMinDrop and a quarter since its peak), or when the
// pool just freed kTrimMinBytes, and for a few seconds after a burst, malloc_trim gives the free pages glibc keeps in all its arenas back
// (freed chunks below the mmap threshold stay mapped otherwise); it walks the arenas under their
// locks, so it does not run for ordinary churn.
void Worker::release_memory_after_burst() {
  constexpr size_t kTrimMinDrop = 256;
  constexpr size_t kTrimMinBytes = 1 << 20;
  constexpr int kTrimTicksAfterBurst = 5;
  size_t freed = 0;
  if (BufferPool* pool = BufferPool::for_this_thread()) freed = pool->release_unused();
  size_t now = clients_.size();
  size_t dropped = clients_peak_ - std::min(clients_peak_, now);
  bool burst_left = dropped >= kTrimMinDrop && dropped >= clients_peak_ / 4;
  if (burst_left) {
    clients_peak_ = now;
    clients_.rehash(0);
    clients_by_pid_.rehash(0);
    trim_ticks_left_ = kTrimTicksAfterBurst;  // the last of the burst may still be closing
  }
  if (trim_ticks_left_ == 0 && freed < kTrimMinBytes) return;
  if (trim_ticks_left_ > 0) --trim_ticks_left_;
#ifdef __GLIBC__
  malloc_trim(0);
#endif
}

void Worker::remove_client(ClientConn* client) {
  clients_.erase(client->id());
  metrics_.bytes_received += client->bytes_read();
  metrics_.bytes_sent += client->bytes_written();
  if (client->cancel_pid() != 0) clients_by_pid_.erase(client->cancel_pid());
}

void Worker::for_each_client(const std::function<void(ClientConn&)>& fn) {
  std::vector<ClientConn*> copy;
  copy.reserve(clients_.size());
  for (const auto& [id, c] : clients_) copy.push_back(c);
  for (ClientConn* c : copy) fn(*c);
}

// ---- accept ----

void Worker::accept_cb(uv_stream_t* s, int status) noexcept { static_cast<Worker*>(s->data)->on_accept(status); }

void Worker::on_accept(int status) {
  if (status < 0 || shutting_down_) return;
  auto* client = new ClientConn(*this, next_client_id_++);
  if (uv_accept(reinterpret_cast<uv_stream_t*>(&listener_), client->stream()) != 0) {
    client->close();  // on_closed deletes it
    return;
  }
  ++metrics_.clients_accepted;
  client->start();
}

// ---- timers and shutdown ----

void Worker::tick_cb(uv_timer_t* h) noexcept { static_cast<Worker*>(h->data)->tick(); }

void Worker::tick() {
  auto now = Clock::now();
  const conf::Config& config = *snapshot_->config;
  for (auto& [key, pool] : pools_) pool->tick(now);
  auto login_limit = config.proxy.client_login_timeout;
  for_each_client([&](ClientConn& c) {
    auto st = c.state();
    bool logging_in = st == ClientConn::State::startup || st == ClientConn::State::auth ||
                      st == ClientConn::State::login_wait;
    // A connection in the cancel reserve has a second to send its CancelRequest (libpq sends it at once).
    if (c.cancel_only() && st == ClientConn::State::startup && now - c.created_at() > std::chrono::seconds(1)) {
      c.refuse_too_many();
      return;
    }
    if (logging_in && login_limit.count() > 0 && now - c.created_at() > login_limit) {
      c.fail("08P01", "pgsidecar: client_login_timeout");
      return;
    }
    // A closing client that neither reads its last error nor finishes sending a refused message.
    if (st == ClientConn::State::closing && login_limit.count() > 0 && now - c.state_since() > login_limit) {
      c.close();
      return;
    }
    if (!c.reading()) {
      c.notice_hangup_while_paused();
      if (c.state() == ClientConn::State::closing) return;
    }
    if (st == ClientConn::State::active && c.pool() != nullptr && c.server() != nullptr) {
      auto limit = c.pool()->settings().idle_transaction_timeout;
      const ServerConn* s = c.server();
      if (limit.count() > 0 && s->pending_ready() == 0 && s->transaction_status() != 'I' &&
          now - c.last_activity() > limit) {
        c.fail("25P03", "terminating connection due to idle-in-transaction timeout");
      }
    }
  });
  expire_cache_waits(now);
  bool each_second = ++ticks_ % 10 == 0;
  publish_stats(each_second);
  if (each_second) release_memory_after_burst();
  if (each_second && digests_) process_.publish_digests(*digests_);
  if (shutting_down_ && now > shutdown_deadline_) {
    for_each_client([](ClientConn& c) { c.fail("57P01", "terminating connection due to administrator command"); });
  }
}

void Worker::begin_shutdown(bool immediate) {
  if (!shutting_down_) {
    shutting_down_ = true;
    shutdown_deadline_ = Clock::now() + snapshot_->config->proxy.shutdown_timeout;
    if (listener_open_) {
      listener_open_ = false;
      uv_close(reinterpret_cast<uv_handle_t*>(&listener_), nullptr);
    }
    for (auto& [key, pool] : pools_) pool->close_idle_servers();
  }
  if (immediate) shutdown_deadline_ = Clock::now();
  for_each_client([immediate](ClientConn& c) {
    if (immediate) {
      c.fail("57P01", "terminating connection due to administrator command");
    } else {
      c.begin_shutdown();
    }
  });
  maybe_finish_shutdown();
}

void Worker::maybe_finish_shutdown() {
  if (!shutting_down_ || handles_closed_ || !clients_.empty()) return;
  for (auto& [key, pool] : pools_) pool->close_idle_servers();
  if (open_servers_ != 0) return;
  handles_closed_ = true;
  auth_query_->shutdown();  // closes the handles of lookups still running (nobody waits for them now)
  resolver_->shutdown();    // name lookups still queued are dropped (running ones end on their own)
  result_cache_.reset();  // closes its Redis connections; the loop runs on to release their handles
  {
    std::lock_guard<std::mutex> lock(inbox_mutex_);
    inbox_open_ = false;
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&async_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&tick_timer_), nullptr);
}

// ---- result cache ----

void Worker::start_result_cache() {
  const conf::CacheConfig& c = snapshot_->config->cache;
  // Waits: at most 1 s each (Inflight defaults). Worker 0 counts Redis's evictions for the process.
  result_cache_ = std::make_unique<cache::redis::WorkerCache>(&loop_, c, cache::Inflight::Options{}, index_ == 0);
  result_cache_->require_stream(process_.stream_live());
  result_cache_->start();
}

void Worker::expire_cache_waits(Clock::time_point now) {
  if (result_cache_ == nullptr) return;
  for (uint64_t id : result_cache_->inflight().expire(now)) {
    if (ClientConn* c = client_by_id(id)) c->on_cache_wait_over(nullptr);
  }
}

}  // namespace pgs::proxy
