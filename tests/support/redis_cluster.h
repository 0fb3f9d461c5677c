// A private Redis Cluster for tests (cache/README.md "Redis Cluster"): 3 masters with one replica each,
// six redis-server children on loopback ports base..base+5 (their cluster bus on port + 100), state
// in a temp dir, built with `redis-cli --cluster create ... --cluster-replicas 1`, a short
// cluster-node-timeout so that a killed master's replica takes over within seconds. Every wait has a
// deadline. Helpers move a slot between masters step by step (SETSLOT IMPORTING/MIGRATING, MIGRATE,
// SETSLOT NODE) and fail a master over (CLUSTER FAILOVER on its replica, or kill it).
// With RedisServerOptions' certificates every node serves TLS only, on its port and its cluster bus and
// replication links alike (as ElastiCache's in-transit encryption); with its users the default user is
// off, replicas log in to their masters as the first user, and so does the harness (cli(), the waits).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/process.h"
#include "tests/support/redis_server.h"

namespace pgs::test {

struct ClusterNodeInfo {
  std::string id;
  uint16_t port = 0;
  bool master = false;
  bool failed = false;      // flagged fail (or fail?) by the node asked
  std::string master_id;    // a replica's master
  std::vector<std::pair<int, int>> ranges;  // slots held (masters)
};

class PrivateRedisCluster {
 public:
  static constexpr int kNodes = 6;
  explicit PrivateRedisCluster(uint16_t base_port, int node_timeout_ms = 1000, RedisServerOptions options = {});
  // For a suite's SetUpTestSuite: a started cluster, or null with the reason in `error`.
  static PrivateRedisCluster* start_new(uint16_t base_port, std::string& error, RedisServerOptions options = {});
  ~PrivateRedisCluster();  // SIGKILLs every node, deletes the state
  PrivateRedisCluster(const PrivateRedisCluster&) = delete;
  PrivateRedisCluster& operator=(const PrivateRedisCluster&) = delete;

  // Starts the nodes and creates the cluster; true once every slot is served and every replica synced.
  bool start();
  const std::string& error() const { return error_; }
  std::vector<std::string> seeds() const;  // "127.0.0.1:<port>" of every node
  uint16_t port(int i) const { return static_cast<uint16_t>(base_ + i); }
  // Its cluster bus (`cluster-port`): port + kBusOffset, below the ephemeral range as the ports are.
  static constexpr uint16_t kBusOffset = 100;
  uint16_t bus_port(int i) const { return static_cast<uint16_t>(port(i) + kBusOffset); }

  // redis-cli -p port args... (stdout, trimmed); "" when it cannot be run.
  std::string cli(uint16_t port, const std::vector<std::string>& args) const;
  // CLUSTER NODES as seen by the first live node (or `asked`).
  std::vector<ClusterNodeInfo> nodes(std::optional<uint16_t> asked = std::nullopt) const;
  std::optional<ClusterNodeInfo> master_of_slot(int slot) const;
  std::optional<ClusterNodeInfo> replica_of(const ClusterNodeInfo& master) const;
  // Every live node says cluster_state:ok, every slot has a live master, every live master has a synced
  // replica (WAIT 1 can be answered).
  bool healthy() const;
  bool wait_healthy(Millis within) const;

  // Slot migration in steps: IMPORTING on `to`, MIGRATING on the owner; MIGRATE up to `max_keys` of
  // the slot's keys (all when 0); SETSLOT NODE everywhere.
  bool begin_migration(int slot, uint16_t to);
  bool migrate_keys(int slot, uint16_t to, int max_keys = 0);
  bool finish_migration(int slot, uint16_t to);

  // CLUSTER FAILOVER on `replica`; true once it reports role master.
  bool manual_failover(uint16_t replica, Millis within);
  void kill_node(uint16_t port);  // SIGKILL and reap
  void pause_node(uint16_t port);   // SIGSTOP
  void resume_node(uint16_t port);  // SIGCONT
  bool alive(uint16_t port);

 private:
  bool spawn_node(int i);
  bool answers(uint16_t port) const;  // PING answered PONG (over TLS, logged in, when so configured)
  // redis-cli with the TLS and login options, then `args`.
  std::vector<std::string> cli_argv(std::vector<std::string> args) const;
  uint16_t base_;
  int node_timeout_ms_;
  RedisServerOptions options_;
  std::string dir_, error_;
  std::vector<Child> children_;
};

}  // namespace pgs::test
