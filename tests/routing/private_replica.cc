#include "tests/routing/private_replica.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace pgs::it::routing {

namespace {
const std::string kPgBin = kPgBinDir;

constexpr const char* kDirPrefix = "pgs-routing-replica-";

std::string make_owned_dir() {
  std::string dir = make_temp_dir(kDirPrefix);
  // The postgres OS user must be able to enter it (the data dir inside is its own, mode 0700).
  chmod(dir.c_str(), 0755);
  std::ofstream(dir + "/owner.pid") << getpid() << "\n";
  return dir;
}

bool process_alive(pid_t pid) { return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM); }
}  // namespace

void reap_stale_private_replicas() {
  namespace fs = std::filesystem;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/tmp", ec)) {
    std::string name = entry.path().filename().string();
    if (name.rfind(kDirPrefix, 0) != 0) continue;
    pid_t owner = 0;
    std::ifstream(entry.path() / "owner.pid") >> owner;
    if (owner == 0 || process_alive(owner)) continue;  // no marker yet, or its test still runs
    std::string data = (entry.path() / "data").string();
    run_program({"runuser", "-u", "postgres", "--", kPgBin + "pg_ctl", "stop", "-D", data, "-m",
                 "immediate", "-w", "-t", "30"},
                {}, Millis(40000));
    run_program({"rm", "-rf", entry.path().string()}, {}, Millis(60000));
  }
}

RunResult PrivateReplica::as_postgres(const std::vector<std::string>& argv, Millis timeout) const {
  std::vector<std::string> full = {"runuser", "-u", "postgres", "--"};
  full.insert(full.end(), argv.begin(), argv.end());
  return run_program(full, {{"PGSSLMODE", "disable"}}, timeout);
}

PrivateReplica::PrivateReplica() {
  require_dev_services();
  reap_stale_private_replicas();
  dir_ = make_owned_dir();
  data_ = dir_ + "/data";
  sock_ = dir_ + "/sock";
  log_ = dir_ + "/log/postgres.log";
  port_ = free_port();
  try {
    init();
  } catch (...) {
    cleanup();
    throw;
  }
}

void PrivateReplica::init() {
  RunResult mk = run_program(
      {"install", "-d", "-o", "postgres", "-g", "postgres", "-m", "0700", data_, sock_, dir_ + "/log"}, {},
      Millis(10000));
  if (mk.exit_code != 0) throw std::runtime_error("install -d failed: " + mk.describe());
  // Other suites may restart the dev primary (resilience tests): a backup cut short by that is
  // retried once the primary accepts logins again, up to three attempts.
  RunResult bb;
  for (int attempt = 1; attempt <= 3; ++attempt) {
    bb = as_postgres({"env", std::string("PGPASSWORD=") + kReplicationPassword,
                      kPgBin + "pg_basebackup", "-h", kHost, "-p", std::to_string(kPrimaryPort), "-U",
                      kReplicationUser, "-D", data_, "-R", "-X", "stream", "-c", "fast", "--no-sync"},
                     Millis(120000));
    if (bb.exit_code == 0) break;
    wait_until([] { return it::superuser().ok(); }, Millis(60000), Millis(100));
  }
  if (bb.exit_code != 0) throw std::runtime_error("pg_basebackup failed 3 times: " + bb.describe());
  write_conf();
  write_hba("");
  start();
}

PrivateReplica::~PrivateReplica() { cleanup(); }

void PrivateReplica::cleanup() {
  as_postgres({kPgBin + "pg_ctl", "stop", "-D", data_, "-m", "immediate", "-w", "-t", "30"},
              Millis(40000));
  if (std::getenv("PGS_IT_KEEP") == nullptr) run_program({"rm", "-rf", dir_}, {}, Millis(60000));
}

// The copy's dev.conf (included from postgresql.conf) came from the primary; replace it wholesale.
// max_connections must not be below the primary's (400), or recovery refuses to start.
void PrivateReplica::write_conf() const {
  std::string path = data_ + "/dev.conf";
  {
    std::ofstream f(path, std::ios::trunc);
    f << "# Written by tests/routing/private_replica.cc\n"
      << "listen_addresses = '127.0.0.1'\nport = " << port_ << "\nunix_socket_directories = '" << sock_
      << "'\nmax_connections = 400\nshared_buffers = 32MB\n"
      << "shared_preload_libraries = 'pg_stat_statements'\npg_stat_statements.track = all\n"
      << "hot_standby = on\nhot_standby_feedback = off\nfsync = off\n"
      << "recovery_min_apply_delay = '" << apply_delay_ms_ << "ms'\n"
      << "log_line_prefix = '%m [%p] %q%u@%d '\nlog_min_messages = warning\n";
    if (!f) throw std::runtime_error("cannot write " + path);
  }
  run_program({"chown", "postgres:postgres", path}, {}, Millis(10000));
}

// The primary's rules (copied by the base backup), with an optional reject line in front.
void PrivateReplica::write_hba(const std::string& rejected_user) const {
  std::string path = data_ + "/pg_hba.conf";
  {
    std::ofstream f(path, std::ios::trunc);
    f << "# Written by tests/routing/private_replica.cc\n";
    if (!rejected_user.empty()) f << "host all " << rejected_user << " 127.0.0.1/32 reject\n";
    f << "local all postgres trust\nlocal all all scram-sha-256\nhost all all 127.0.0.1/32 scram-sha-256\n"
      << "host replication all 127.0.0.1/32 scram-sha-256\n";
    if (!f) throw std::runtime_error("cannot write " + path);
  }
  run_program({"chown", "postgres:postgres", path}, {}, Millis(10000));
}

bool PrivateReplica::login_works(const std::string& user, const std::string& password) const {
  ConnSpec s;
  s.port = port_;
  s.user = user;
  s.password = password;
  s.extra["connect_timeout"] = "3";
  return Pg(s).ok();
}

void PrivateReplica::reject_logins(const std::string& user, const std::string& password, bool reject) {
  write_hba(reject ? user : "");
  superuser().must("SELECT pg_reload_conf()");
  wait_until([&] { return login_works(user, password) != reject; }, Millis(10000),
             "the pg_hba change for " + user + " to take effect", Millis(50));
}

std::string PrivateReplica::log_tail() const { return read_file_tail(log_, 4000); }

void PrivateReplica::start() {
  RunResult r = as_postgres({kPgBin + "pg_ctl", "start", "-D", data_, "-l", log_, "-w", "-t", "60"},
                            Millis(70000));
  if (r.exit_code != 0) throw std::runtime_error("pg_ctl start failed: " + r.describe() + "\n" + log_tail());
  if (!wait_until([this] { return streaming(); }, Millis(60000), Millis(50))) {
    throw std::runtime_error("private replica on :" + std::to_string(port_) + " does not stream\n" + log_tail());
  }
}

void PrivateReplica::stop(const std::string& mode) {
  RunResult r = as_postgres({kPgBin + "pg_ctl", "stop", "-D", data_, "-m", mode, "-w", "-t", "60"},
                            Millis(70000));
  if (r.exit_code != 0) throw std::runtime_error("pg_ctl stop failed: " + r.describe());
}

Pg PrivateReplica::superuser(const std::string& dbname) const {
  ConnSpec s = superuser_spec(port_, dbname);
  s.extra["connect_timeout"] = "3";
  s.extra["application_name"] = "pgs-routing-test";
  return Pg(s);
}

bool PrivateReplica::streaming() const {
  Pg pg = superuser();
  if (!pg.ok()) return false;
  PgResult r = pg.exec(
      "SELECT pg_is_in_recovery() AND EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming')");
  return r.ok() && r.rows() == 1 && r.value(0, 0) == "t";
}

void PrivateReplica::set_apply_delay(int ms) {
  apply_delay_ms_ = ms;
  write_conf();
  Pg pg = superuser();
  pg.must("SELECT pg_reload_conf()");
  std::string want = ms == 0 ? "0" : std::to_string(ms) + "ms";
  wait_until(
      [&] {
        Pg fresh = superuser();
        return fresh.ok() && fresh.scalar("SHOW recovery_min_apply_delay") == want;
      },
      Millis(10000), "recovery_min_apply_delay to become " + want, Millis(50));
}

void PrivateReplica::pause_replay() { superuser().must("SELECT pg_wal_replay_pause()"); }
void PrivateReplica::resume_replay() { superuser().must("SELECT pg_wal_replay_resume()"); }

std::string PrivateReplica::positions() const {
  std::string out = "primary pg_current_wal_lsn=" + it::superuser().scalar("SELECT pg_current_wal_lsn()");
  Pg pg = superuser();
  if (!pg.ok()) return out + "; replica :" + std::to_string(port_) + " unreachable: " + pg.error();
  PgResult r = pg.exec(
      "SELECT pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn(),"
      " now() - pg_last_xact_replay_timestamp(), pg_is_wal_replay_paused(),"
      " (SELECT status || ' from ' || coalesce(flushed_lsn::text, '?') FROM pg_stat_wal_receiver)");
  if (!r.ok() || r.rows() != 1) return out + "; replica: " + r.error();
  return out + "; replica receive=" + r.value(0, 0) + " replay=" + r.value(0, 1) + " replay_age=" + r.value(0, 2) +
         " paused=" + r.value(0, 3) + " wal_receiver=" + r.value(0, 4);
}

void PrivateReplica::wait_caught_up(Millis deadline) const {
  std::string target = it::superuser().scalar("SELECT pg_current_wal_lsn()");
  bool ok = wait_until(
      [&] {
        Pg pg = superuser();
        if (!pg.ok()) return false;
        PgResult r = pg.exec_params("SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn", {target});
        return r.ok() && r.rows() == 1 && r.value(0, 0) == "t";
      },
      deadline, Millis(20));
  if (!ok) throw std::runtime_error("private replica did not replay up to " + target + "\n" + log_tail());
}

}  // namespace pgs::it::routing
