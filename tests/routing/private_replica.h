// PrivateReplica: a streaming replica of the shared dev primary that only this test process uses, so
// tests may stop, delay or pause it without touching the shared replica on :15433.
//
// It is a slot-less pg_basebackup -R (as the postgres OS user, role replicator) into a temp dir, on a
// free port, with its own unix socket dir; settings live in the copy's dev.conf, which this class
// rewrites (the primary's copy would point it at :15433). Every wait has a deadline; failures throw
// std::runtime_error with the node's log tail. The destructor stops it (immediate) and deletes the dir.
#pragma once

#include <cstdint>
#include <string>

#include "tests/integration/harness.h"

namespace pgs::it::routing {

// Stops and deletes private replicas left by earlier test processes that died (killed by a timeout,
// say): each dir holds owner.pid; a dir whose owner is gone is cleaned. Called by the constructor.
void reap_stale_private_replicas();

class PrivateReplica {
 public:
  // Base backup + start + wait until it streams. Throws on failure.
  PrivateReplica();
  ~PrivateReplica();
  PrivateReplica(const PrivateReplica&) = delete;
  PrivateReplica& operator=(const PrivateReplica&) = delete;

  uint16_t port() const { return port_; }
  const std::string& dir() const { return dir_; }
  std::string log_tail() const;

  // pg_ctl start -w / stop -m <mode> -w ("fast": backends send FATAL 57P01 then close; "immediate":
  // they vanish without a word). start() then waits until it streams again.
  void start();
  void stop(const std::string& mode = "fast");
  // recovery_min_apply_delay (ms; 0 = off), applied by a reload; waits until SHOW reports it.
  void set_apply_delay(int ms);
  // reject: pg_hba rejects logins of `user` on this node only; else the rules are the primary's again.
  // Reloads and waits (deadline) until a login of `user` / `password` fails (reject) or works.
  void reject_logins(const std::string& user, const std::string& password, bool reject);
  // pg_wal_replay_pause() / pg_wal_replay_resume() as the superuser on this node.
  void pause_replay();
  void resume_replay();
  // True when the node accepts connections, is in recovery and its WAL receiver streams.
  bool streaming() const;
  // Waits until this node has replayed the primary's current WAL position (deadline).
  void wait_caught_up(Millis deadline) const;
  // For a failure message: the primary's WAL position and this node's receive and replay positions,
  // replay age, pause state and WAL receiver status, as the proxy's monitor would read them.
  std::string positions() const;
  // Superuser connection to this node.
  Pg superuser(const std::string& dbname = "postgres") const;

 private:
  void init();     // base backup, config, start (constructor body)
  void cleanup();  // stop (immediate) and delete the dir; also when init() fails
  void write_conf() const;
  void write_hba(const std::string& rejected_user) const;
  bool login_works(const std::string& user, const std::string& password) const;
  RunResult as_postgres(const std::vector<std::string>& argv, Millis timeout) const;
  std::string dir_, data_, sock_, log_;
  uint16_t port_ = 0;
  int apply_delay_ms_ = 0;
};

}  // namespace pgs::it::routing
