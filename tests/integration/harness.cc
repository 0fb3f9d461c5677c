#include "tests/integration/harness.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace pgs::it {
namespace {

using Clock = std::chrono::steady_clock;

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::string(v) : fallback;
}

// A libpq conninfo value: single-quoted with \ and ' escaped.
std::string quote_conninfo(const std::string& v) {
  std::string out = "'";
  for (char c : v) {
    if (c == '\\' || c == '\'') out += '\\';
    out += c;
  }
  return out + "'";
}

// A TOML basic string.
std::string toml_str(const std::string& v) {
  std::string out = "\"";
  for (char c : v) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

bool is_cleartext(const std::string& password) {
  return password.rfind("SCRAM-SHA-256$", 0) != 0 && password.rfind("md5", 0) != 0;
}

}  // namespace

Target target() {
  return env_or("PGS_IT_TARGET", "proxy") == "direct" ? Target::direct : Target::proxy;
}

bool wait_until(const std::function<bool()>& pred, Millis deadline, Millis interval) {
  auto end = Clock::now() + deadline;
  while (true) {
    if (pred()) return true;
    if (Clock::now() >= end) return false;
    std::this_thread::sleep_for(interval);  // poll interval between checks of the condition
  }
}

void require_dev_services() {
  static std::once_flag once;
  static std::string failure;
  std::call_once(once, [] {
    Millis wait(1000 * std::stoi(env_or("PGS_IT_SERVICES_WAIT", "120")));
    std::string last;
    bool up = wait_until(
        [&] {
          Pg pg = superuser();
          last = pg.error();
          return pg.ok();
        },
        wait, Millis(500));
    if (!up) {
      failure = "dev services not reachable (primary 127.0.0.1:15432 as postgres); run ./dev up. "
                "Last error: " + last;
    }
  });
  if (!failure.empty()) throw std::runtime_error(failure);
}

uint16_t free_port() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket failed");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    close(fd);
    throw std::runtime_error("bind to port 0 failed");
  }
  close(fd);
  return ntohs(a.sin_port);
}

void raise_nofile_limit(rlim_t want) {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  rlim_t target = want;
  if (rl.rlim_max != RLIM_INFINITY && target > rl.rlim_max) target = rl.rlim_max;
  if (rl.rlim_cur < target) {
    rl.rlim_cur = target;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

std::string ConnSpec::str() const {
  std::map<std::string, std::string> kv = extra;
  kv["host"] = host;
  kv["port"] = std::to_string(port);
  kv["dbname"] = dbname;
  kv["user"] = user;
  if (password) kv["password"] = *password;
  kv.try_emplace("sslmode", "disable");
  kv.try_emplace("gssencmode", "disable");
  kv.try_emplace("connect_timeout", "10");
  std::string out;
  for (const auto& [k, v] : kv) out += k + "=" + quote_conninfo(v) + " ";
  return out;
}

bool PgResult::ok() const {
  switch (status()) {
    case PGRES_COMMAND_OK:
    case PGRES_TUPLES_OK:
    case PGRES_COPY_IN:
    case PGRES_COPY_OUT:
    case PGRES_SINGLE_TUPLE:
    case PGRES_PIPELINE_SYNC:
      return true;
    default:
      return false;
  }
}

std::string PgResult::sqlstate() const {
  const char* s = r_ ? PQresultErrorField(r_.get(), PG_DIAG_SQLSTATE) : nullptr;
  return s != nullptr ? s : "";
}

std::string PgResult::error() const {
  return r_ ? PQresultErrorMessage(r_.get()) : "no result (connection lost?)";
}

std::string PgResult::value(int row, int col) const {
  if (row >= rows() || col >= PQnfields(r_.get())) throw std::runtime_error("no such cell");
  return PQgetvalue(r_.get(), row, col);
}

Pg::Pg(const std::string& conninfo) : conn_(PQconnectdb(conninfo.c_str())) {}

PgResult Pg::exec(const std::string& sql) { return PgResult(PQexec(conn_.get(), sql.c_str())); }

PgResult Pg::exec_params(const std::string& sql, const std::vector<std::string>& params) {
  std::vector<const char*> values;
  for (const auto& p : params) values.push_back(p.c_str());
  return PgResult(PQexecParams(conn_.get(), sql.c_str(), static_cast<int>(values.size()), nullptr,
                               values.data(), nullptr, nullptr, 0));
}

std::vector<PgResult> Pg::exec_all(const std::string& sql) {
  std::vector<PgResult> out;
  if (PQsendQuery(conn_.get(), sql.c_str()) != 1) {
    out.emplace_back(PQmakeEmptyPGresult(conn_.get(), PGRES_FATAL_ERROR));
    return out;
  }
  while (PGresult* r = PQgetResult(conn_.get())) out.emplace_back(r);
  return out;
}

std::optional<PgResult> Pg::exec_within(const std::string& sql, Millis deadline) {
  PGconn* c = conn_.get();
  auto end = Clock::now() + deadline;
  if (PQsendQuery(c, sql.c_str()) != 1) return PgResult(PQmakeEmptyPGresult(c, PGRES_FATAL_ERROR));
  std::optional<PgResult> last;
  while (true) {
    while (!PQisBusy(c)) {
      PGresult* r = PQgetResult(c);
      if (r == nullptr) return last;
      last.emplace(r);
    }
    auto left = std::chrono::duration_cast<Millis>(end - Clock::now()).count();
    pollfd p{PQsocket(c), POLLIN, 0};
    if (left <= 0 || poll(&p, 1, static_cast<int>(left)) == 0) break;
    if (PQconsumeInput(c) != 1) return PgResult(PQmakeEmptyPGresult(c, PGRES_FATAL_ERROR));
  }
  conn_.reset();
  return std::nullopt;
}

std::string Pg::scalar(const std::string& sql) {
  PgResult r = exec(sql);
  if (!r.ok() || r.rows() < 1) {
    throw std::runtime_error("query failed: " + sql + ": [" + r.sqlstate() + "] " + r.error());
  }
  return r.value(0, 0);
}

void Pg::must(const std::string& sql) {
  PgResult r = exec(sql);
  if (!r.ok()) throw std::runtime_error("failed: " + sql + ": [" + r.sqlstate() + "] " + r.error());
}

Pg superuser(const std::string& dbname) {
  ConnSpec s;
  s.dbname = dbname;
  s.user = kSuperUser;
  s.password = kSuperPassword;
  s.extra["connect_timeout"] = "5";
  s.extra["application_name"] = "pgs-it-superuser";
  return Pg(s);
}

std::string render_config(const ProxyOptions& o, uint16_t listen_port, uint16_t metrics_port) {
  std::ostringstream t;
  t << "# generated by tests/integration/harness.cc\n[proxy]\nlisten_host = \"127.0.0.1\"\n"
    << "listen_port = " << listen_port << "\nworkers = " << o.workers
    << "\nauth_type = " << toml_str(o.auth_type) << "\nmax_client_conn = " << o.max_client_conn
    << "\nshutdown_timeout = " << toml_str(o.shutdown_timeout)
    << "\nclient_login_timeout = " << toml_str(o.client_login_timeout) << "\n" << o.proxy_toml;
  if (o.max_message_bytes) t << "max_message_bytes = " << *o.max_message_bytes << "\n";
  t << "\n[pool]\npool_mode = " << toml_str(o.pool_mode) << "\npool_size = " << o.pool_size
    << "\nquery_wait_timeout = " << toml_str(o.query_wait_timeout)
    << "\nserver_connect_timeout = " << toml_str(o.server_connect_timeout) << "\n";
  if (o.idle_transaction_timeout != "0") {
    t << "idle_transaction_timeout = " << toml_str(o.idle_transaction_timeout) << "\n";
  }
  t << o.pool_toml;
  t << "\n[primary]\nname = \"primary\"\nhost = \"127.0.0.1\"\nport = " << o.primary_port.value_or(kPrimaryPort)
    << "\n";
  if (o.with_replica) {
    t << "\n[[replicas]]\nname = \"replica1\"\nhost = \"127.0.0.1\"\nport = " << kReplicaPort << "\n";
  }
  t << "\n[cache]\n" << (o.cache_toml.empty() ? std::string("enabled = false\n") : o.cache_toml)
    << "\n[observability]\nmetrics_listen = \"127.0.0.1:"
    << metrics_port << "\"\n"
    << o.observability_toml << "\n";
  for (const auto& db : o.databases) t << "\n[[databases]]\nname = " << toml_str(db) << "\n";
  for (const auto& u : o.users) {
    t << "\n[[users]]\nname = " << toml_str(u.name) << "\npassword = " << toml_str(u.password)
      << "\n";
    if (!u.server_password.empty()) t << "server_password = " << toml_str(u.server_password) << "\n";
    if (u.admin) t << "admin = true\n";
  }
  if (!o.tls_toml.empty()) t << "\n[tls]\n" << o.tls_toml << "\n";
  t << "\n" << o.extra_toml << "\n";
  return t.str();
}

std::string proxy_binary() {
  std::vector<std::string> candidates;
  candidates.push_back(env_or("PGSIDECAR_BIN", ""));
#ifdef PGSIDECAR_BIN
  candidates.push_back(PGSIDECAR_BIN);
#endif
#ifdef PGS_SOURCE_DIR
  candidates.push_back(std::string(PGS_SOURCE_DIR) + "/build/proxy/pgsidecar");
#endif
  for (const auto& c : candidates) {
    if (!c.empty() && access(c.c_str(), X_OK) == 0) return c;
  }
  std::string tried;
  for (const auto& c : candidates) tried += " '" + c + "'";
  throw std::runtime_error("pgsidecar binary not found (tried" + tried + "); set PGSIDECAR_BIN");
}

std::unique_ptr<Proxy> Proxy::start(const ProxyOptions& options) {
  std::unique_ptr<Proxy> p(new Proxy());
  if (is_direct()) {
    p->direct_ = true;
    return p;
  }
  std::string bin = proxy_binary();
  char tmpl[] = "/tmp/pgs-it-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
  p->dir_ = tmpl;
  p->config_path_ = p->dir_ + "/pgsidecar.toml";
  p->log_path_ = p->dir_ + "/pgsidecar.stderr";
  p->port_ = free_port();
  p->metrics_port_ = free_port();
  p->rewrite_config(options);
  p->child_ = Child::spawn({bin, "--config", p->config_path_}, {}, p->log_path_);
  p->wait_ready(options, Millis(15000));
  return p;
}

void Proxy::wait_ready(const ProxyOptions& options, Millis deadline) {
  const UserSpec& u = options.users.at(0);
  bool login = options.auth_type == "trust" || is_cleartext(u.password);
  ConnSpec s = spec(u.name, u.password, options.databases.at(0));
  s.extra["connect_timeout"] = "2";
  if (!options.tls_toml.empty()) s.extra["sslmode"] = "prefer";  // client_tls = "require" refuses plaintext
  std::string last;
  bool ready = wait_until(
      [&] {
        if (!child_.running()) return true;
        if (!login) return PQping(s.str().c_str()) == PQPING_OK;
        Pg pg(s);
        last = pg.error();
        return pg.ok();
      },
      deadline, Millis(50));
  if (!child_.running()) {
    throw std::runtime_error("pgsidecar exited during start-up (code " +
                             std::to_string(child_.exit_code().value_or(-1)) + "):\n" + log_tail());
  }
  if (!ready) {
    throw std::runtime_error("pgsidecar not accepting connections on port " +
                             std::to_string(port_) + ": " + last + "\n" + log_tail());
  }
}

Proxy::~Proxy() {
  if (direct_) return;
  // No client is left at teardown, so a draining proxy has nothing to wait for.
  child_.stop(Millis(5000));
  if (child_.exited_by_signal() && child_.exit_code() == 128 + SIGKILL) {
    std::cerr << "warning: pgsidecar (pid " << child_.pid()
              << ") did not exit within 5 s of SIGTERM and was killed\n";
  }
  if (!dir_.empty() && env_or("PGS_IT_KEEP", "").empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

std::string Proxy::log_tail(size_t max_bytes) const {
  if (direct_) return "(direct mode: no proxy log)";
  return read_file_tail(log_path_, max_bytes);
}

ConnSpec Proxy::spec(const std::string& user, const std::string& password,
                     const std::string& dbname) const {
  ConnSpec s;
  s.host = host_;
  s.port = port_;
  s.user = user;
  s.password = password;
  s.dbname = dbname;
  return s;
}

void Proxy::rewrite_config(const ProxyOptions& options) {
  if (direct_) return;
  std::string tmp = config_path_ + ".tmp";
  {
    std::ofstream f(tmp);
    f << render_config(options, port_, metrics_port_);
    if (!f) throw std::runtime_error("cannot write " + tmp);
  }
  std::filesystem::rename(tmp, config_path_);  // atomic: a reload never sees half a file
}

std::optional<int> Proxy::wait_exit(Millis deadline) {
  if (direct_ || !child_.wait_exit(deadline)) return std::nullopt;
  return child_.exit_code();
}

long Proxy::rss_kb() const {
  if (direct_) return -1;
  std::ifstream f("/proc/" + std::to_string(child_.pid()) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

int Proxy::server_connections(uint16_t server_port) const {
  return direct_ ? -1 : tcp_connections(child_.pid(), server_port);
}

int tcp_connections(pid_t pid, uint16_t remote_port) {
  return static_cast<int>(tcp_local_ports(pid, remote_port).size());
}

std::vector<uint16_t> tcp_local_ports(pid_t pid, uint16_t remote_port) {
  std::set<std::string> inodes;
  std::string fd_dir = "/proc/" + std::to_string(pid) + "/fd";
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(fd_dir, ec)) {
    std::string target = std::filesystem::read_symlink(e.path(), ec).string();
    if (target.rfind("socket:[", 0) == 0) inodes.insert(target.substr(8, target.size() - 9));
  }
  // /proc/net/tcp columns: sl local_address rem_address st ... uid timeout inode
  std::ifstream tcp("/proc/net/tcp");
  std::string line;
  std::getline(tcp, line);
  char port_hex[8];
  std::snprintf(port_hex, sizeof port_hex, "%04X", remote_port);
  std::vector<uint16_t> ports;
  while (std::getline(tcp, line)) {
    std::istringstream is(line);
    std::string sl, local, remote, state, queues, tr, retr, uid, timeout, inode;
    is >> sl >> local >> remote >> state >> queues >> tr >> retr >> uid >> timeout >> inode;
    bool to_port = remote.size() > 5 && remote.substr(remote.size() - 4) == port_hex;
    if (to_port && state == "01" && inodes.count(inode) && local.size() > 5) {  // 01 = ESTABLISHED
      ports.push_back(static_cast<uint16_t>(std::stoul(local.substr(local.size() - 4), nullptr, 16)));
    }
  }
  return ports;
}

int Proxy::server_backends(const std::string& dbname) const {
  if (direct_) return -1;
  std::string ports = "{";
  for (uint16_t port : tcp_local_ports(child_.pid(), kPrimaryPort)) {
    ports += (ports.size() > 1 ? "," : "") + std::to_string(port);
  }
  ports += "}";
  Pg su = superuser();
  if (!su.ok()) throw std::runtime_error("superuser: " + su.error());
  PgResult r = su.exec_params(
      "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND client_port = ANY($2::int[]) "
      "AND client_addr = '127.0.0.1' AND application_name <> 'pgsidecar-catalog'",
      {dbname, ports});
  if (!r.ok()) throw std::runtime_error(r.error());
  return std::stoi(r.value(0, 0));
}

void ProxyTest::SetUp() { require_dev_services(); }

void ProxyTest::TearDown() {
  if (proxy_ && HasFailure() && !proxy_->direct()) {
    std::cerr << "---- pgsidecar stderr (" << proxy_->log_path() << ") ----\n"
              << proxy_->log_tail() << "\n---- end ----\n";
  }
  proxy_.reset();
}

Proxy& ProxyTest::start_proxy(const ProxyOptions& options) {
  proxy_ = Proxy::start(options);
  return *proxy_;
}

RunResult run_psql(const std::string& conninfo, const std::string& script,
                   const std::vector<std::string>& extra_args, Millis timeout) {
  std::vector<std::string> argv = {"psql", "-X", "-d", conninfo};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  return run_program(argv, {{"PGSSLMODE", "disable"}, {"PGCONNECT_TIMEOUT", "10"}}, timeout,
                     script);
}

bool wait_query_running(const std::string& needle, Millis deadline, uint16_t port) {
  ConnSpec spec;
  spec.port = port;
  spec.user = kSuperUser;
  spec.password = kSuperPassword;
  spec.dbname = "postgres";
  Pg su(spec);
  if (!su.ok()) return false;
  return wait_until(
      [&] {
        PgResult r = su.exec_params(
            "SELECT 1 FROM pg_stat_activity WHERE state = 'active' AND query LIKE $1 AND pid <> pg_backend_pid()",
            {"%" + needle + "%"});
        return r.ok() && r.rows() > 0;
      },
      deadline);
}

RunResult restart_primary(Millis timeout) {
  // The primary says where its data is (the checkout may be anywhere; ./dev may keep the data under
  // /var/tmp). Same open-file limit as ./dev (scripts/lib.sh as_postgres); pg_ctl's log in the data dir.
  std::string data_dir = superuser().scalar("SHOW data_directory");
  if (data_dir.empty() || data_dir.find('\'') != std::string::npos) {
    RunResult r;
    r.err = "cannot read the primary's data_directory";
    return r;
  }
  std::string cmd = "ulimit -n 65536 2>/dev/null || ulimit -n \"$(ulimit -Hn)\"; exec pg_ctl -D '" + data_dir +
                    "' -w -t 60 -l '" + data_dir + "/pg_ctl_restart.log' restart -m fast";
  return run_program({"runuser", "-u", "postgres", "--", "bash", "-c", cmd},
                     {{"PATH", "/usr/lib/postgresql/15/bin:/usr/bin:/bin"}}, timeout);
}

void ensure_database(const std::string& name) {
  Pg su = superuser();
  if (!su.ok()) throw std::runtime_error("superuser connect: " + su.error());
  PgResult r = su.exec_params("SELECT 1 FROM pg_database WHERE datname = $1", {name});
  if (!r.ok()) throw std::runtime_error(r.error());
  if (r.rows() == 0) su.must("CREATE DATABASE \"" + name + "\" OWNER flopods");
}

}  // namespace pgs::it
