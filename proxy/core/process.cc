#include "proxy/core/process.h"

#include <openssl/rand.h>
#include <unistd.h>

#include <csignal>
#include <thread>

#include "cache/redis/redis_tls.h"
#include "cache/redis/worker_cache.h"
#include "conf/config.h"
#include "proxy/admin/http_endpoints.h"
#include "proxy/admin/reachability.h"
#include "proxy/core/catalog_watcher.h"
#include "proxy/core/fd_limit.h"
#include "proxy/core/log.h"
#include "proxy/core/worker.h"
#include "proxy/monitor/adapters.h"
#include "proxy/monitor/health_monitor.h"
#include "proxy/net/tls.h"
#include "proxy/obs/endpoints.h"
#include "proxy/stream/stream_invalidator.h"

namespace pgs::proxy {

Process::Process(std::string config_path) : config_path_(std::move(config_path)) {}

Process::~Process() = default;

std::shared_ptr<const Snapshot> Process::snapshot() const {
  std::lock_guard<std::mutex> lock(snapshot_mutex_);
  return snapshot_;
}

bool Process::try_admit_client() {
  int limit = snapshot()->config->proxy.max_client_conn;
  int now = clients_.fetch_add(1, std::memory_order_relaxed);
  if (now >= limit) {
    clients_.fetch_sub(1, std::memory_order_relaxed);
    return false;
  }
  return true;
}

void Process::release_client() { clients_.fetch_sub(1, std::memory_order_relaxed); }

bool Process::try_admit_cancel_only() {
  if (cancel_only_.fetch_add(1, std::memory_order_relaxed) < kCancelReserveConnections) return true;
  cancel_only_.fetch_sub(1, std::memory_order_relaxed);
  return false;
}

void Process::release_cancel_only() { cancel_only_.fetch_sub(1, std::memory_order_relaxed); }

void Process::route_cancel(int32_t pid, int32_t secret) {
  size_t owner = (static_cast<uint32_t>(pid) >> kCancelWorkerShift) & 0xff;
  if (owner < workers_.size()) workers_[owner]->post_cancel(pid, secret);
}

std::vector<WorkerStats> Process::stats() const {
  std::vector<WorkerStats> out;
  out.reserve(workers_.size());
  for (const auto& w : workers_) out.push_back(w->published_stats());
  return out;
}

std::shared_ptr<const monitor::HealthSnapshot> Process::health() const {
  return monitor_ ? monitor_->snapshot() : nullptr;
}

uint64_t Process::health_generation() const { return monitor_ ? monitor_->generation() : 0; }

void Process::want_fresh_health() const {
  if (monitor_) monitor_->want_fresh();
}

void Process::log_slow(obs::SlowQueryRecord record) {
  slow_queries_.fetch_add(1, std::memory_order_relaxed);
  if (slow_log_ && !slow_log_->submit(std::move(record))) slow_log_dropped_.fetch_add(1, std::memory_order_relaxed);
}

void Process::publish_digests(obs::DigestTable& worker_table) {
  if (digest_hub_) digest_hub_->publish(worker_table);
}

std::atomic<uint64_t>& Process::lsn_floor(const std::string& database, const std::string& user) {
  std::lock_guard<std::mutex> lock(floors_mutex_);
  auto& slot = floors_[{database, user}];
  if (!slot) slot = std::make_unique<std::atomic<uint64_t>>(0);
  return *slot;
}

// The monitor's login: [routing] monitor_* or, by default, the first user with a server password.
static void start_monitor(const conf::Config& config, std::unique_ptr<monitor::HealthMonitor>& out) {
  if (config.replicas.empty()) return;
  const auto& r = config.routing;
  std::string user = r.monitor_user, password = r.monitor_password, dbname = r.monitor_dbname;
  if (user.empty()) {
    for (const auto& u : config.users) {
      if (!u.server_password.empty()) {
        user = u.name;
        password = u.server_password;
        break;
      }
    }
  }
  if (dbname.empty() && !config.databases.empty()) {
    dbname = config.databases.front().server_dbname.empty() ? config.databases.front().name
                                                            : config.databases.front().server_dbname;
  }
  std::vector<monitor::MonitorNode> replicas;
  for (const auto& e : config.replicas) replicas.push_back(monitor::node_from_endpoint(e));
  out = std::make_unique<monitor::HealthMonitor>(
      monitor::options_from_routing(r, user, password, dbname), monitor::node_from_endpoint(config.primary),
      std::move(replicas), [](const monitor::NodeHealth& node, const monitor::HealthSnapshot&) {
        LOG_INFO("health: " + node.node.name + (node.healthy ? " is healthy" : " is unhealthy (") +
                 (node.healthy ? "" : std::string(monitor::reason_name(node.reason)) + ")"));
      });
  out->start();
}

// The result cache's write dependencies (cache/dependencies.h), read from the primary's catalog of
// every served database as the first configured user with a server password (any user may read
// pg_constraint, pg_inherits, pg_trigger and pg_rewrite), at start and every 30 s.
// Also which relations run user code (session_code.h): without it every statement that names a relation
// makes the proxy probe the server's session state after its transaction, so it runs without the cache too.
static void start_catalog_watcher(const Snapshot& snapshot, std::unique_ptr<CatalogWatcher>& out) {
  const conf::Config& config = *snapshot.config;
  std::string user, password;
  for (const auto& u : config.users) {
    const UserSecrets* s = snapshot.secrets_for(u.name);
    if (s != nullptr && !s->server_password.empty()) {
      user = u.name;
      password = s->server_password;
      break;
    }
  }
  if (user.empty()) {
    LOG_WARN("catalog: no user with a server password: foreign-key cascades, partitions and triggers are not "
             "known (cached results of tables they write are only bounded by the TTL), and every statement "
             "naming a relation is followed by a session-state probe");
    return;
  }
  std::vector<CatalogTarget> targets;
  for (const auto& db : config.databases) {
    conf::LibpqTls tls = conf::libpq_tls(config.primary);
    targets.push_back({config.primary.host, config.primary.port, db.server_dbname.empty() ? db.name : db.server_dbname,
                       user, password, tls.sslmode, tls.sslrootcert});
  }
  out = std::make_unique<CatalogWatcher>(std::move(targets), std::chrono::seconds(30));
  out->start();
}

// The cache's invalidation stream ([cache] invalidation_stream): one slot per served database on the
// primary, read by whichever sidecar holds the lease; its login is stream_user or the monitor's.
static void start_stream_invalidator(const conf::Config& config, std::unique_ptr<StreamInvalidator>& out) {
  const conf::CacheConfig& c = config.cache;
  if (!c.enabled || !c.invalidation_stream) return;
  StreamOptions o;
  std::string user = c.stream_user.empty() ? config.routing.monitor_user : c.stream_user;
  std::string password = c.stream_user.empty() ? config.routing.monitor_password : c.stream_password;
  if (user.empty()) {
    LOG_ERROR("cache: invalidation_stream is on but no login is set (stream_user or [routing] monitor_user): "
              "every lookup misses");
  }
  for (const auto& db : config.databases) {
    std::string dbname = db.server_dbname.empty() ? db.name : db.server_dbname;
    conf::LibpqTls tls = conf::libpq_tls(config.primary);
    o.targets.push_back({config.primary.host, config.primary.port, dbname, user, password,
                         stream_slot_name(c.stream_slot, dbname), tls.sslmode, tls.sslrootcert});
  }
  o.redis = cache::redis::conn_options(c);
  o.redis.timeout = std::max<std::chrono::milliseconds>(c.redis_timeout, std::chrono::milliseconds(500));
  o.redis.connect_timeout = std::max<std::chrono::milliseconds>(o.redis.timeout, o.redis.connect_timeout);
  o.redis_cluster = c.redis_cluster;
  o.redis_nodes = c.redis_nodes;
  o.redis_wait_replicas = c.redis_cluster_wait_replicas;
  o.names = cache::RedisNames(c.key_prefix, c.redis_cluster ? static_cast<size_t>(c.redis_cluster_partitions) : 0);
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  uint64_t nonce = 0;
  (void)RAND_bytes(reinterpret_cast<unsigned char*>(&nonce), sizeof nonce);
  o.sidecar_id = std::string(host) + ":" + std::to_string(getpid()) + ":" + std::to_string(nonce);
  o.max_delay = c.stream_max_delay;
  o.max_lag_bytes = c.stream_max_lag_bytes;
  out = std::make_unique<StreamInvalidator>(std::move(o));
  if (!user.empty()) out->start();
}

const cache::LiveUntil* Process::stream_live() const { return stream_ ? &stream_->live() : nullptr; }

std::shared_ptr<const cache::WriteDependencies> Process::write_dependencies() const {
  return catalog_ ? catalog_->current() : nullptr;
}

uint64_t Process::catalog_loads() const { return catalog_ ? catalog_->loads() : 0; }

std::shared_ptr<const SessionCodeCatalog> Process::session_code() const {
  return catalog_ ? catalog_->session_code() : nullptr;
}

uint64_t Process::catalog_version() const { return catalog_ ? catalog_->version() : 0; }

void Process::refresh_write_dependencies() {
  if (catalog_) catalog_->refresh_soon();
}

static void log_errors(const std::vector<conf::ConfigError>& errors) {
  for (const auto& e : errors) LOG_ERROR("config: " + e.to_string());
}

namespace {
// The TLS contexts the config asks for: to clients ([tls], null when client_tls = "disable") and to each
// server (server_tls: [0] the primary, [1 + i] replica i, null for "disable"). False with `error` when a
// certificate, key or CA file cannot be loaded.
struct TlsContexts {
  std::shared_ptr<const TlsContext> clients;
  std::vector<std::shared_ptr<const TlsContext>> servers;
};
bool load_tls(const conf::Config& config, TlsContexts& out, std::string& error) {
  out = {};
  auto load_server = [&](const conf::ServerEndpoint& node) {
    auto ctx = TlsContext::load_client(node, error);
    out.servers.push_back(ctx);
    return ctx != nullptr || node.server_tls == conf::ServerTls::disable;
  };
  if (!load_server(config.primary)) return false;
  for (const auto& replica : config.replicas) {
    if (!load_server(replica)) return false;
  }
  if (config.tls.client_tls == conf::ClientTls::disable) return true;
  out.clients = TlsContext::load(config.tls, error);
  return out.clients != nullptr;
}
}  // namespace

void Process::install_admin_hooks() {
  admin_hooks_.stats = [this] { return stats(); };
  admin_hooks_.snapshot = [this] { return snapshot(); };
  admin_hooks_.reload = [this](std::string& message) { return reload(message); };
  admin_hooks_.set_paused = [this](bool paused) { set_paused(paused); };
  admin_hooks_.shutdown = [this] { uv_async_send(&shutdown_async_); };
  admin_hooks_.version = "pgsidecar 0.1.0";
  admin_hooks_.health = [this] { return health(); };
  if (snapshot_->config->observability.digest_top_n > 0) {
    admin_hooks_.digest_rows = [this](size_t limit) {
      return digest_hub_ ? digest_hub_->rows(limit) : std::vector<std::vector<std::string>>{};
    };
  }
}

// The slow-query log and the per-fingerprint digests, when configured.
void Process::start_query_sinks() {
  const auto& obs_conf = snapshot_->config->observability;
  if (obs_conf.slow_query.count() > 0) {
    obs::SlowLogOptions o;
    o.path = obs_conf.slow_query_log;
    o.log_parameters = obs_conf.log_parameters;
    slow_log_ = std::make_unique<obs::SlowLog>(o);
  }
  if (obs_conf.digest_top_n > 0) {
    obs::DigestOptions o;
    o.capacity = static_cast<size_t>(obs_conf.digest_top_n);
    digest_hub_ = std::make_unique<obs::DigestHub>(o);
  }
}

// False (every worker stopped again, the error logged) when one cannot start: its port is taken, say.
bool Process::start_workers() {
  int n = snapshot_->config->proxy.workers;
  if (n <= 0) n = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  // Checked at start only: a reload that raises max_client_conn or pool sizes is not re-checked.
  if (std::string warning = ensure_descriptor_limit(descriptors_needed(*snapshot_->config, n)); !warning.empty()) {
    LOG_WARN(warning);
  }
  for (int i = 0; i < n; ++i) workers_.push_back(std::make_unique<Worker>(*this, i));
  for (auto& w : workers_) {
    std::string error;
    workers_running_.fetch_add(1);
    if (!w->start(error)) {
      workers_running_.fetch_sub(1);
      LOG_ERROR(error);
      for (auto& other : workers_) other->post_shutdown(true);
      for (auto& other : workers_) other->join();
      return false;
    }
  }
  const auto& pc = snapshot_->config->proxy;
  LOG_INFO("pgsidecar listening on " + pc.listen_host + ":" + std::to_string(pc.listen_port) + " with " +
           std::to_string(n) + " workers");
  return true;
}

// What /metrics, /readyz and /digests read. /readyz never pings on the HTTP thread (a primary that
// accepts and never answers would stall every endpoint): `primary_probe` pings on its own thread.
admin::ObservabilitySources Process::observability_sources(admin::ReachabilityProbe& primary_probe) {
  admin::ObservabilitySources sources;
  sources.stats = [this] { return stats(); };
  sources.readiness = [this, &primary_probe] {
    // The monitor's last round reached the primary, or (no monitor, or its login fails) the latest
    // background ping did.
    auto h = health();
    const auto& primary = snapshot()->config->primary;
    bool up = (h && h->primary_reachable) || primary_probe.reachable(primary.host, primary.port);
    return admin::readiness_from(h.get(), up, stopping_.load());
  };
  sources.process = [this] {
    return admin::ProcessFacts{.reloads_ok = reloads_ok(),
                               .reloads_failed = reloads_failed(),
                               .slow_queries = slow_queries(),
                               .slow_log_dropped = slow_log_dropped(),
                               .catalog_reads = catalog_loads(),
                               .stream = stream_ ? std::optional<StreamStats>(stream_->stats()) : std::nullopt,
                               .health = health()};
  };
  sources.digests = [this](std::string_view query) {
    if (!digest_hub_) return obs::HttpResponse{200, "application/json", "[]"};
    return obs::digests_response(*digest_hub_, query);
  };
  return sources;
}

int Process::run() {
  auto loaded = conf::load_config_file(config_path_);
  if (!loaded.errors.empty()) {
    log_errors(loaded.errors);
    return 2;
  }
  TlsContexts tls;
  if (std::string error; !load_tls(*loaded.config, tls, error)) {
    LOG_ERROR("cannot start TLS: " + error);
    return 2;
  }
  // Redis's TLS context is made now (and kept for the workers): a CA file that cannot be read stops the
  // start, as a server's does. Its keys need a restart, so a reload does not read it again.
  if (const conf::CacheConfig& c = loaded.config->cache; c.enabled && c.redis_tls != conf::RedisTls::disable) {
    if (auto redis = cache::redis::transport_tls(c); !redis.error.empty()) {
      LOG_ERROR("cannot start TLS to Redis: " + redis.error);
      return 2;
    }
  }
  snapshot_ = make_snapshot(loaded.config, std::move(tls.clients), std::move(tls.servers));
  std::signal(SIGPIPE, SIG_IGN);
  install_admin_hooks();

  uv_loop_init(&loop_);
  uv_async_init(&loop_, &worker_exit_async_, &Process::worker_exit_cb);
  worker_exit_async_.data = this;
  uv_async_init(&loop_, &shutdown_async_, [](uv_async_t* h) noexcept {
    static_cast<Process*>(h->data)->shutdown(false);
  });
  shutdown_async_.data = this;
  start_monitor(*snapshot_->config, monitor_);
  start_catalog_watcher(*snapshot_, catalog_);
  start_stream_invalidator(*snapshot_->config, stream_);
  start_query_sinks();
  if (!start_workers()) {
    uv_close(reinterpret_cast<uv_handle_t*>(&worker_exit_async_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&shutdown_async_), nullptr);
    uv_run(&loop_, UV_RUN_DEFAULT);
    uv_loop_close(&loop_);
    return 1;
  }

  for (auto* sig : {&sighup_, &sigterm_, &sigint_}) {
    uv_signal_init(&loop_, sig);
    sig->data = this;
  }
  // obs: start. /readyz never pings on the HTTP thread (a primary that accepts and never answers
  // would stall every endpoint): the probe pings on its own thread; the first ping starts now.
  admin::ReachabilityProbe primary_probe;
  (void)primary_probe.reachable(snapshot_->config->primary.host, snapshot_->config->primary.port,
                                admin::ReachabilityProbe::Millis(0));
  admin::ObservabilityServer obs_server(snapshot_->config->observability, observability_sources(primary_probe));
  const std::string obs_error = obs_server.start();
  if (!obs_error.empty()) {
    LOG_ERROR("metrics_listen: " + obs_error);
    shutdown(true);
  }
  uv_signal_start(&sighup_, &Process::signal_cb, SIGHUP);
  uv_signal_start(&sigterm_, &Process::signal_cb, SIGTERM);
  uv_signal_start(&sigint_, &Process::signal_cb, SIGINT);
  uv_run(&loop_, UV_RUN_DEFAULT);
  for (auto& w : workers_) w->join();
  if (monitor_) monitor_->stop();
  if (catalog_) catalog_->stop();
  if (stream_) stream_->stop();
  // obs: stop
  obs_server.stop();
  if (!obs_error.empty()) {
    uv_loop_close(&loop_);
    return 1;
  }
  uv_loop_close(&loop_);
  LOG_INFO("pgsidecar stopped");
  return 0;
}

void Process::signal_cb(uv_signal_t* h, int signum) noexcept {
  auto* self = static_cast<Process*>(h->data);
  switch (signum) {
    case SIGHUP: {
      std::string message;
      self->reload(message);
      if (self->slow_log_) self->slow_log_->reopen();  // log rotation
      break;
    }
    case SIGTERM:
      self->shutdown(false);
      break;
    case SIGINT:
      self->shutdown(true);
      break;
    default:
      break;
  }
}


bool Process::reload(std::string& message) {
  auto loaded = conf::load_config_file(config_path_);
  if (!loaded.errors.empty()) {
    reloads_failed_.fetch_add(1);
    LOG_ERROR("reload failed; keeping the running configuration");
    log_errors(loaded.errors);
    message.clear();
    for (const auto& e : loaded.errors) message += e.to_string() + "\n";
    return false;
  }
  // The certificate and CA files are read again (a rotated certificate at the same path takes effect);
  // new TLS sessions use them, running ones keep theirs.
  TlsContexts tls;
  if (std::string error; !load_tls(*loaded.config, tls, error)) {
    reloads_failed_.fetch_add(1);
    LOG_ERROR("reload failed; keeping the running configuration: " + error);
    message = error + "\n";
    return false;
  }
  auto current = snapshot();
  for (const auto& key : conf::non_reloadable_changes(*current->config, *loaded.config)) {
    LOG_WARN("reload: " + key + " changes only on restart");
  }
  auto snap = make_snapshot(loaded.config, std::move(tls.clients), std::move(tls.servers));
  {
    std::lock_guard<std::mutex> lock(snapshot_mutex_);
    snapshot_ = snap;
  }
  for (auto& w : workers_) w->post_snapshot(snap);
  reloads_ok_.fetch_add(1);
  LOG_INFO("configuration reloaded from " + config_path_);
  message = "configuration reloaded";
  return true;
}

void Process::set_paused(bool paused) {
  for (auto& w : workers_) w->post_pause(paused);
}

void Process::shutdown(bool immediate) {
  LOG_INFO(immediate ? "SIGINT: closing every connection now" : "SIGTERM: draining");
  stopping_ = true;
  for (auto& w : workers_) w->post_shutdown(immediate);
}

void Process::on_worker_exit() {
  // Under the mutex: the handle is closed only once the count is zero, i.e. after the last send.
  std::lock_guard<std::mutex> lock(exit_mutex_);
  workers_running_.fetch_sub(1);
  uv_async_send(&worker_exit_async_);
}

void Process::worker_exit_cb(uv_async_t* h) noexcept {
  auto* self = static_cast<Process*>(h->data);
  std::lock_guard<std::mutex> lock(self->exit_mutex_);
  if (self->workers_running_.load() > 0) return;
  // Every worker is gone: close our handles so uv_run returns.
  uv_close(reinterpret_cast<uv_handle_t*>(&self->worker_exit_async_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&self->shutdown_async_), nullptr);
  for (auto* sig : {&self->sighup_, &self->sigterm_, &self->sigint_}) {
    uv_close(reinterpret_cast<uv_handle_t*>(sig), nullptr);
  }
}

}  // namespace pgs::proxy
