// RequestRouting: one client's read/write routing and replica retry (issue 4; issue 11 item 2). It decides
// where each request outside a transaction runs (router::route over the request's statements, the client's
// read-your-writes floor and the replicas' health), keeps what may have to be sent again (a read whose
// replica fails before any of its reply reached the client; an extended-protocol batch whose plan went
// stale after DDL), and tracks what a binding on the primary may have written: whether the primary's WAL
// position must be read at the end (the LSN probe), whether the reply that ends it must be held until then,
// and the client's LSN floor that its later reads wait for.
//
// It does no I/O and knows no pool, server or worker: the connection hands it events (a request to route,
// a server bound, a message forwarded, server bytes, the server lost, the release point, the LSN probe's
// row) with the facts it needs as plain values, and acts on what it returns (which pool, hold or flush,
// what to send again, whether to run the probe). Thread affinity: the owning connection's.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "conf/config.h"
#include "protocol/frame.h"
#include "proxy/request/batch_scan.h"
#include "router/lsn.h"
#include "router/route.h"

namespace pgs::proxy {

// The routing settings in force. Read from the worker's config snapshot at each event, as they may change
// at a reload.
struct RoutingPolicy {
  bool enabled = false;              // replicas are configured and consistency is not "primary"
  bool session_consistency = false;  // consistency = "session": a client's reads wait for its writes
  bool floor_per_user = false;       // read_your_writes = "user": one floor per (database, user)

  static RoutingPolicy from(const conf::RoutingConfig& routing, bool enabled);
};

// route()'s options from the [routing] table.
router::RouteOptions route_options(const conf::RoutingConfig& routing);

// What choosing a target reads besides the client's own state: the worker's view, a seam for tests. Each
// is asked only when the decision needs it, in this order.
class RouteSources {
 public:
  virtual BatchFacts scan_request() = 0;  // the buffered request's statements (batch_scan.h)
  virtual const std::string* route_hint_setting() = 0;  // the session's pgsidecar.route, or null
  virtual router::Lsn shared_lsn_floor() = 0;  // the floor of the client's (database, user): floor_per_user
  virtual std::span<const router::ReplicaSnapshot> replicas() = 0;
  virtual std::chrono::milliseconds replicas_age() = 0;  // since the monitor measured replicas()
  virtual uint64_t next_counter() = 0;  // the worker's decision counter (round robin, ties)
  // The chosen replica has a pool for this client's (database, user) that did not just refuse its login.
  virtual bool replica_usable(int target) = 0;

 protected:
  ~RouteSources() = default;
};

// What the connection knows when a bound server's replies were appended to the client's outbox.
struct ReplyFacts {
  bool bound = false;                // a server (and its pool) is bound
  bool on_replica = false;           // ... and it is a replica
  bool transaction_pooling = false;  // its pool runs in transaction mode
  bool at_release_point = false;     // the server sent ReadyForQuery 'I' with nothing in flight
  int replies_pending = 0;           // ReadyForQuery messages the server still owes
  size_t outbox_bytes = 0;           // bytes in the client's outbox now
  size_t keep_limit = 0;             // a replica's reply is kept unsent below this size
};

enum class ReplyStep : uint8_t {
  keep,          // a read on a replica, not complete yet: send nothing (it may be re-run on the primary)
  hold_for_lsn,  // the end of a transaction that may have written: hold the client's output from here on
                 // (Stream::hold_output_from) until the LSN probe's row or the release, then flush
  flush,         // send what is there
};

enum class LsnProbe : uint8_t {
  unavailable,  // on a replica, or routing is off: there is no WAL position to read
  not_needed,   // nothing of this binding wants it
  start,        // run "SELECT pg_catalog.pg_current_wal_lsn()" now; its row goes to on_lsn_row()
};

// The LSN probe's row, read.
struct LsnRow {
  std::optional<router::Lsn> lsn;  // the primary's WAL position (nullopt: no value, or not an LSN)
  bool raise_shared_floor = false;  // raise the (database, user) floor to `lsn` (raise_floor)
  bool release_output = false;      // the output held for this row flows again (Stream::release_output)
};

// Raises `floor` to `lsn` if it is below it; never lowers it (other workers may raise it meanwhile).
void raise_floor(std::atomic<uint64_t>& floor, router::Lsn lsn);

class RequestRouting {
 public:
  // A request larger than this is not kept to be sent again: it runs once, where it was sent.
  static constexpr size_t kMaxReplayBytes = 1 << 20;

  explicit RequestRouting(size_t max_replay_bytes = kMaxReplayBytes) : max_replay_bytes_(max_replay_bytes) {}

  // ---- a request outside a transaction ----
  // Where it runs: nullopt when routing is off (the primary, no decision counted); otherwise the decision
  // to count, primary or a replica's index. `session_pooling`: the client's login pool runs in session
  // mode (its server is its session: everything on the primary, unscanned).
  [[nodiscard]] std::optional<router::Decision> route(const RoutingPolicy& policy, const router::RouteOptions& options,
                                                      bool session_pooling, RouteSources& sources);
  // The read waiting for a replica goes to the primary instead (the replica failed to connect): nothing of
  // it is kept for another re-run.
  void on_rerouted_to_primary() { drop_replica_request(); }

  // ---- a binding ----
  // A server was bound for the routed request. Returns a request to send to it first, as if the client
  // sent it now (the read of a replica that failed, see on_server_lost), or "".
  [[nodiscard]] std::string on_server_bound(bool on_replica);
  // A whole message went to the bound server (`f.whole`: its bytes as forwarded).
  void on_forwarded(const protocol::Frame& f, bool on_replica);
  // A message too large to buffer (its type byte) went to the server as it arrives: nothing of this
  // request can be sent again.
  void on_forwarded_unbuffered(char type, bool on_replica);
  // The server appended replies to the client's outbox: keep, hold or send them.
  [[nodiscard]] ReplyStep on_server_bytes(const ReplyFacts& reply, const RoutingPolicy& policy);
  // The server was lost. When true, the request that ran on the replica is re-run on the primary: it is
  // returned by the next on_server_bound(). Only a read on a replica, kept whole, of which nothing reached
  // the client, and only when the client has no session state (`pinned_state`) the primary lacks.
  [[nodiscard]] bool retry_on_primary(bool on_replica, bool pinned_state);
  // The server reached ReadyForQuery 'I' with nothing in flight: an LSN probe, if any, has ended.
  void on_release_point() { lsn_probe_ = false; }
  // Whether the primary's WAL position is read now (on_lsn_row): for this client's floor after a binding
  // that may have written (consistency = "session"), or because `cache_wants_lsn` (a committed bump).
  [[nodiscard]] LsnProbe lsn_probe_at_release(const RoutingPolicy& policy, bool on_primary, bool cache_wants_lsn);
  // The request just sent to the primary ends a transaction that may have written — the caller proved
  // it: the COMMIT of an open transaction, or one write statement outside any — and nothing else is in
  // flight or buffered behind it. start: send the LSN probe right behind it, in the same write, so that
  // its row comes with the request's reply instead of one round trip after the release point (which
  // then has nothing left to probe). The reply that ends the transaction is held until the row exactly
  // as at the release point (on_server_bytes).
  [[nodiscard]] LsnProbe lsn_probe_behind_request(const RoutingPolicy& policy, bool transaction_pooling,
                                                  bool cache_wants_lsn);
  bool lsn_probe_running() const { return lsn_probe_; }
  // The LSN probe's row: raises this client's floor (consistency = "session") and ends the hold.
  [[nodiscard]] LsnRow on_lsn_row(const std::vector<std::optional<std::string>>& values, const RoutingPolicy& policy);
  // The binding ends (server released or lost): true when the client's output was held for an LSN row that
  // did not come (the caller releases it).
  [[nodiscard]] bool end_lsn_hold();
  // The server goes back to its pool: what was kept for its replica's failure is dropped.
  void on_server_released() { drop_replica_request(); }

  // ---- a stale plan's retry (ServerConn::start_stale_plan_retry) ----
  // The last extended-protocol batch is kept whole (up to its Sync, within the bound) and can run again.
  bool can_retry_batch() const { return batch_capturable_ && batch_complete_ && !last_batch_.empty(); }
  // That batch's bytes, to send again; no longer kept.
  [[nodiscard]] std::string take_retry_batch();

  router::Lsn lsn_floor() const { return lsn_floor_; }  // this client's own read-your-writes floor

 private:
  void keep_for_retry(const protocol::Frame& f);
  void keep_for_replica_retry(const protocol::Frame& f);
  void drop_replica_request() {
    replica_request_.clear();
    replica_request_kept_ = false;
  }
  void note_request_sent(bool on_replica);

  size_t max_replay_bytes_;
  bool may_write_ = true;          // the routed request may write (not provably a read)
  bool flushed_since_bind_ = false;  // replies of the current binding reached the client's socket
  bool wrote_ = false;             // the current binding on the primary may have written: read the LSN
  int requests_ = 0;               // requests (Query, or a batch up to Sync) sent in the current binding
  bool lsn_probe_ = false;         // the LSN probe runs on the bound server
  bool lsn_hold_ = false;          // the client's output is held until the LSN probe's row
  bool hold_for_probe_behind_ = false;  // ... is to be, from the next server bytes (lsn_probe_behind_request)
  router::Lsn lsn_floor_ = 0;      // this client's own read-your-writes floor (never lowered)
  std::string replica_request_;    // the bytes sent to a replica for this request (a re-run on the primary)
  bool replica_request_kept_ = false;  // replica_request_ holds the whole request
  std::string pending_replay_;     // a request to send again once the next server is bound
  std::string last_batch_;         // the messages of the current extended-protocol batch (a stale plan's retry)
  bool batch_complete_ = true;     // last_batch_ ends with its Sync
  bool batch_capturable_ = true;   // last_batch_ stayed within max_replay_bytes_ (and was all buffered)
};

}  // namespace pgs::proxy
