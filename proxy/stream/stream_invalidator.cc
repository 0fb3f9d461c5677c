#include "proxy/stream/stream_invalidator.h"

#include <hiredis/hiredis.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>

#include <algorithm>
#include <utility>
#include <memory>
#include <optional>
#include <map>
#include <set>

#include "cache/generations.h"
#include "cache/policy.h"
#include "cache/redis/bump_script.h"
#include "cache/stream/replication_messages.h"
#include "cache/stream/test_decoding.h"
#include "proxy/core/log.h"
#include "proxy/monitor/libpq_text.h"
#include "proxy/stream/stream_catalog.h"
#include "proxy/stream/stream_redis.h"
#include "proxy/stream/stream_tls_read.h"
#include "router/lsn.h"

namespace pgs::proxy {

using Millis = std::chrono::milliseconds;

namespace {

using monitor::libpq_message_line;

// How much of a backlog the leader decodes per slot and round (Slot::read), and how many reads it makes
// for it: decoded bytes alone do not bound a round while one message larger than the budget (a row of
// hundreds of MB) is still arriving, since nothing is decoded until it is whole.
constexpr size_t kReadBudget = 4u << 20;
constexpr int kReadPasses = 256;

}  // namespace

Millis stream_batch_window(Millis max_delay) { return std::clamp(max_delay / 20, Millis(5), Millis(50)); }

std::string stream_slot_name(std::string_view prefix, std::string_view dbname) {
  std::string out;
  for (std::string_view part : {prefix, std::string_view("_"), dbname}) {
    for (char c : part) {
      char l = c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
      out.push_back((l >= 'a' && l <= 'z') || (l >= '0' && l <= '9') || l == '_' ? l : '_');
    }
  }
  if (out.size() > 63) out.resize(63);
  return out;
}

// One database's slot: a replication connection streaming from it, and what was read.
struct StreamInvalidator::Slot {
  const StreamTarget& target;
  PGconn* conn = nullptr;
  ssl_st* tls = nullptr;             // conn's TLS session (libpq's), reading ahead; null in plaintext
  bool created = false;              // the slot did not exist (logged)
  cache::stream::TransactionTables txn;
  bool in_transaction = false;
  std::set<std::string> pending;     // tables of committed transactions, not bumped yet
  uint64_t pending_lsn = 0;          // the server's WAL end when the last of them was sent
  uint64_t received = 0;             // the highest WAL position the stream has shown us
  uint64_t confirmed = 0;            // flushed: every commit before it is bumped
  uint64_t server_end = 0;
  uint64_t committed = 0;            // transactions in `pending`
  std::string last_error;            // logged once until it changes
  PGconn* sql = nullptr;             // a plain connection for the catalog (a streaming one runs no SQL)
  CatalogSnapshot catalog;           // of the last read (stream_catalog.h)

  explicit Slot(const StreamTarget& t) : target(t) {}
  ~Slot() { close(); }
  void close() {
    if (conn != nullptr) PQfinish(conn);
    conn = nullptr;
    tls = nullptr;
    if (sql != nullptr) PQfinish(sql);
    sql = nullptr;
    catalog.clear();
  }

  PGconn* connect(bool replication) const {
    std::string port = std::to_string(target.port);
    const char* keys[] = {"host", "port", "dbname", "user", "password", "replication", "connect_timeout",
                          "sslmode", "sslrootcert", "application_name", "options", nullptr};
    const char* values[] = {target.host.c_str(), port.c_str(), target.dbname.c_str(), target.user.c_str(),
                            target.password.c_str(), replication ? "database" : "false", "5",
                            target.sslmode.c_str(), target.sslrootcert.c_str(), "pgsidecar-stream",
                            replication ? "" : "-c statement_timeout=5000", nullptr};
    return PQconnectdbParams(keys, values, 0);
  }

  // The slot is still read by a former leader that stopped without dying (a frozen process or VM): its
  // walsender would hold the slot until wal_sender_timeout. This sidecar holds the lease now, so that
  // reader is no leader any more: its walsender is ended (the stream's role may end its own backends),
  // and the next round starts the slot. Returns what to add to the error that is logged.
  std::string release_slot_from_a_former_leader() {
    if (std::string error = open_sql(); !error.empty()) return "; cannot take it over: " + error;
    const std::string sql_text = "SELECT pg_catalog.pg_terminate_backend(active_pid) FROM pg_catalog.pg_replication_slots "
                                 "WHERE slot_name = '" + target.slot + "' AND active_pid IS NOT NULL";
    PGresult* r = PQexec(sql, sql_text.c_str());
    std::string outcome = PQresultStatus(r) == PGRES_TUPLES_OK
                              ? "; ended the former leader's walsender, the next round takes the slot over"
                              : "; cannot end the former leader's walsender: " + libpq_message_line(PQresultErrorMessage(r));
    PQclear(r);
    return outcome;
  }

  std::string open_sql() {
    if (sql == nullptr) sql = connect(false);
    return PQstatus(sql) == CONNECTION_OK ? std::string() : libpq_message_line(PQerrorMessage(sql));
  }

  // A bump that is not a decoded commit's (the first one of a slot, a change read from the catalog) still
  // carries an LSN: the primary's WAL position now, after whatever it stands for. Without one, a result a
  // replica answers under the new generation could never be stored (no stale store, cache/README.md).
  std::string note_wal_position() {
    if (std::string error = open_sql(); !error.empty()) return error;
    PGresult* r = PQexec(sql, "SELECT pg_catalog.pg_current_wal_lsn()::text");
    std::optional<router::Lsn> lsn;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) lsn = router::parse_lsn(PQgetvalue(r, 0, 0));
    std::string error = lsn ? std::string() : "reading the WAL position: " + libpq_message_line(PQresultErrorMessage(r));
    PQclear(r);
    if (lsn) pending_lsn = std::max<uint64_t>(pending_lsn, *lsn);
    return error;
  }

  // What DDL changed since the last read (behind every sidecar's back) goes to `pending`. "" or the error.
  std::string check_catalog() {
    if (std::string error = open_sql(); !error.empty()) return error;
    const size_t before = pending.size();
    if (std::string error = proxy::check_catalog(sql, catalog, pending); !error.empty()) return error;
    return pending.size() != before ? note_wal_position() : std::string();
  }

  // Connects, creates the slot when missing and starts streaming. "" or the error.
  std::string open() {
    conn = connect(true);
    if (PQstatus(conn) != CONNECTION_OK) return libpq_message_line(PQerrorMessage(conn));
    const std::string create = "CREATE_REPLICATION_SLOT \"" + target.slot + "\" LOGICAL test_decoding";
    PGresult* r = PQexec(conn, create.c_str());
    const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    created = PQresultStatus(r) == PGRES_TUPLES_OK;
    std::string error = created || (state != nullptr && std::string_view(state) == "42710")  // exists
                            ? std::string()
                            : libpq_message_line(PQresultErrorMessage(r));
    PQclear(r);
    if (!error.empty()) return "creating slot " + target.slot + ": " + error;
    const std::string start = "START_REPLICATION SLOT \"" + target.slot +
                              "\" LOGICAL 0/0 (\"include-xids\" '0', \"skip-empty-xacts\" '1')";
    r = PQexec(conn, start.c_str());
    bool streaming = PQresultStatus(r) == PGRES_COPY_BOTH;
    const char* start_state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    const bool in_use = start_state != nullptr && std::string_view(start_state) == "55006";
    if (!streaming) error = "starting slot " + target.slot + ": " + libpq_message_line(PQresultErrorMessage(r));
    PQclear(r);
    if (in_use) error += release_slot_from_a_former_leader();
    if (!streaming) return error;
    PQsetnonblocking(conn, 1);
    read_ahead_over_tls();
    txn = cache::stream::TransactionTables();
    in_transaction = false;
    return {};
  }

  // Over TLS: one recv() for what the socket holds (stream_tls_read.h).
  void read_ahead_over_tls() { tls = read_ahead(conn); }
  bool record_ready() { return whole_record_buffered(tls); }

  // Reads what arrived: all the socket holds (one PQconsumeInput takes libpq's buffer, 16-32 kB), up to
  // kReadBudget bytes of messages or kReadPasses reads, so a burst is read in a round or a few rather than
  // one read per batch window, and a backlog of gigabytes still lets the round end (and the lease be
  // renewed).
  // `drained`: nothing was left in the socket (nor in OpenSSL's buffer). False when the stream ended or
  // failed (`error` says why). A pass that only takes a whole record OpenSSL already holds (over TLS)
  // reads nothing from the socket and does not count: such passes are bounded by what the last read
  // brought (OpenSSL's buffer, about 17 kB).
  bool read(std::string& error, bool& reply_requested, bool& drained) {
    size_t read_bytes = 0;
    drained = false;
    for (int reads = 0;;) {
      if (!record_ready()) ++reads;
      if (PQconsumeInput(conn) == 0) {
        error = libpq_message_line(PQerrorMessage(conn));
        return false;
      }
      if (!decode_buffered(error, reply_requested, read_bytes)) return false;
      if (read_bytes >= kReadBudget || reads >= kReadPasses) return true;
      pollfd more{PQsocket(conn), POLLIN, 0};
      if (!record_ready() && ::poll(&more, 1, 0) <= 0) {
        drained = true;
        return true;
      }
    }
  }

  // Decodes every whole message libpq has buffered; adds their sizes to `read_bytes`.
  bool decode_buffered(std::string& error, bool& reply_requested, size_t& read_bytes) {
    for (;;) {
      char* buf = nullptr;
      int n = PQgetCopyData(conn, &buf, 1);
      if (n == 0) return true;  // nothing more for now
      if (n < 0) {
        error = n == -1 ? "the server ended the stream" : libpq_message_line(PQerrorMessage(conn));
        return false;
      }
      read_bytes += static_cast<size_t>(n);
      std::string_view payload(buf, static_cast<size_t>(n));
      auto m = cache::stream::decode_stream_message(payload);
      if (!m.ok()) {
        PQfreemem(buf);
        error = "unreadable replication message";
        return false;
      }
      if (const auto* x = std::get_if<cache::stream::XLogData>(&m.value())) {
        server_end = std::max(server_end, x->end_lsn);
        received = std::max(received, x->start_lsn);
        auto line = cache::stream::parse_test_decoding(x->data);
        if (line.kind == cache::stream::DecodedLine::Kind::begin) in_transaction = true;
        if (auto tables = txn.on_line(x->data)) {
          in_transaction = false;
          pending.insert(tables->begin(), tables->end());
          pending_lsn = std::max(pending_lsn, x->end_lsn);
          ++committed;
        }
      } else if (const auto* k = std::get_if<cache::stream::Keepalive>(&m.value())) {
        server_end = std::max(server_end, k->end_lsn);
        // Caught up: the sender had nothing more to send up to its WAL end.
        if (!in_transaction) received = std::max(received, k->end_lsn);
        reply_requested = reply_requested || k->reply_requested;
      }
      PQfreemem(buf);
    }
  }

  // Tells the server how far every commit is bumped (the slot may free WAL before it).
  bool confirm(uint64_t lsn) {
    confirmed = std::max(confirmed, lsn);
    std::string msg = cache::stream::standby_status_update(confirmed, confirmed, confirmed,
                                                          cache::stream::postgres_clock(std::chrono::system_clock::now()),
                                                          false);
    if (PQputCopyData(conn, msg.data(), static_cast<int>(msg.size())) != 1) return false;
    return PQflush(conn) >= 0;
  }
};

StreamInvalidator::StreamInvalidator(StreamOptions options) : options_(std::move(options)) {}

StreamInvalidator::~StreamInvalidator() { stop(); }

void StreamInvalidator::start() { thread_ = std::thread([this] { run(); }); }

void StreamInvalidator::stop() noexcept {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

StreamStats StreamInvalidator::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  StreamStats s = stats_;
  s.live = live_.live();
  return s;
}

bool StreamInvalidator::wait(Millis d) {
  std::unique_lock<std::mutex> lock(mutex_);
  wake_.wait_for(lock, d, [this] { return stopping_; });
  return !stopping_;
}

void StreamInvalidator::set_live(std::optional<std::chrono::steady_clock::time_point> until) {
  const bool live = until.has_value();
  if (live) {
    live_.until(*until);
  } else {
    live_.end();
  }
  if (std::exchange(claimed_live_, live) != live) {
    if (live) {
      LOG_INFO("cache: the invalidation stream is live; cached results are served");
    } else {
      LOG_WARN("cache: the invalidation stream is not proven live (no leader heartbeat): every lookup misses");
    }
  }
}

void StreamInvalidator::run() {
  pthread_setname_np(pthread_self(), "pgs-inval-strm");  // names in top -H, ps -L, perf: 15 bytes at most
  Redis redis(options_);
  const Millis round = std::max(Millis(25), options_.max_delay / 4);
  const StreamLease::Keys keys{options_.names.stream_key("stream:leader"), options_.names.stream_key("stream:beat")};
  // Lives across leaderships: what it learnt of Redis's clock dates every later attempt.
  // Late: run more than half the command timeout after it was issued. The leader gives up at the whole
  // timeout; the margin covers the error of its estimate of Redis's clock (whole milliseconds, the
  // reply's own travel), so a command it gave up on is always found late. One found late that still
  // answers in time only makes this leader step down.
  StreamLease lease(keys, options_.max_delay, options_.redis.timeout / 2);
  const StreamLease::Command command = [&redis](const std::vector<std::string>& args) { return redis.command(args); };
  uint64_t attempts = 0;
  while (wait(Millis(0))) {
    if (!redis.connect()) {
      set_live(std::nullopt);
      if (!wait(round)) break;
      continue;
    }
    // Each attempt has a token of its own (the lease's and the heartbeat's value): an attempt this sidecar
    // gave up on that Redis still runs later cannot pass for a leadership it holds.
    const std::string token = options_.sidecar_id + "#" + std::to_string(++attempts);
    if (lease.acquire(command, token) == StreamLease::Outcome::done) {
      {
        std::lock_guard<std::mutex> lock(mutex_);
        stats_.leader = true;
        ++stats_.leaderships;
      }
      LOG_INFO("cache: this sidecar leads the invalidation stream");
      // Live again only once this leader's own first round proved its slots stream (not on the former
      // leader's heartbeat, which may outlive it by up to max_delay).
      set_live(std::nullopt);
      lead(redis, lease, token);
      std::lock_guard<std::mutex> lock(mutex_);
      stats_.leader = false;
      stats_.lag_bytes = 0;
      continue;
    }
    // Live until the heartbeat expires, as Redis counted when it ran the check (which was after `asked`).
    // Never live on a heartbeat of one of this sidecar's own former leaderships: it knows they stopped.
    const auto asked = std::chrono::steady_clock::now();
    std::optional<StreamLease::Heartbeat> beat = StreamLease::live_heartbeat(command, keys);
    if (beat && !beat->token.starts_with(options_.sidecar_id + "#")) {
      set_live(asked + std::min(beat->remaining, options_.max_delay));
    } else {
      set_live(std::nullopt);
    }
    if (!wait(round)) break;
  }
  set_live(std::nullopt);
}

void StreamInvalidator::count_error() {
  std::lock_guard<std::mutex> lock(mutex_);
  ++stats_.errors;
}

// Every slot streams, or is opened again (a failed one waits for the next round). False when one could
// not be opened.
bool StreamInvalidator::open_slots(Slots& slots) {
  bool all_open = true;
  for (auto& s : slots) {
    if (s->conn != nullptr) continue;
    std::string error = s->open();
    if (!error.empty()) {
      if (error != s->last_error) LOG_WARN("cache: invalidation stream of database " + s->target.dbname + ": " + error);
      s->last_error = error;
      s->close();
      all_open = false;
      count_error();
      continue;
    }
    s->last_error.clear();
    // What changed while no slot existed (a new one), or DDL while no leader watched the catalog (a
    // takeover, a reconnect), is unknown: every table goes once.
    if (s->created) LOG_INFO("cache: created replication slot " + s->target.slot);
    s->pending.insert(std::string(cache::kAllTables));
    if (std::string lsn_error = s->note_wal_position(); !lsn_error.empty()) {
      LOG_WARN("cache: invalidation stream of database " + s->target.dbname + ": " + lsn_error);
      s->close();
      all_open = false;
      count_error();
      continue;
    }
  }
  return all_open;
}

// Read, bump, confirm each open slot; once a round (`round_due`), its catalog too. A slot that fails is
// closed (opened again next round); a bump Redis refused ends the round at once (nothing more is
// confirmed).
StreamInvalidator::RoundResult StreamInvalidator::serve_slots(Slots& slots, Redis& redis, bool round_due) {
  RoundResult out;
  for (auto& s : slots) {
    if (s->conn == nullptr) continue;
    std::string error;
    bool reply = false;
    bool drained = false;
    if (!s->read(error, reply, drained)) {
      LOG_WARN("cache: invalidation stream of database " + s->target.dbname + " lost: " + error);
      s->last_error = error;
      s->close();
      out.all_open = false;
      count_error();
      continue;
    }
    out.had_data = out.had_data || !s->pending.empty();
    out.drained = out.drained && drained;
    uint64_t upto = s->received;
    if (std::string catalog_error = round_due ? s->check_catalog() : std::string(); !catalog_error.empty()) {
      LOG_WARN("cache: invalidation stream of database " + s->target.dbname + ": catalog: " + catalog_error);
      s->close();
      out.all_open = false;
      count_error();
      continue;
    }
    if (!s->pending.empty()) {
      expand_pending(s->pending, s->catalog.edges);  // partitions' parents, views over what was written
      if (!redis.bump(s->pending, s->pending_lsn)) {
        out.bumped_all = false;
        count_error();
        break;  // Redis trouble: nothing is confirmed, the heartbeat stops, the lease will lapse
      }
      {
        std::lock_guard<std::mutex> lock(mutex_);
        stats_.bumped_tables += s->pending.size();
        stats_.transactions += s->committed;
      }
      s->committed = 0;
      s->pending.clear();
      s->pending_lsn = 0;
    }
    if (upto > s->confirmed || reply) {
      if (!s->confirm(upto)) {
        s->close();
        out.all_open = false;
        count_error();
        continue;
      }
    }
    // Behind what the walsender sent, and behind the primary's own WAL (read with the catalog, once a
    // round): a walsender that is itself far behind the primary sends positions that look current.
    const uint64_t end = std::max(s->server_end, s->catalog.primary_wal);
    out.lag = std::max(out.lag, end > s->confirmed ? end - s->confirmed : 0);
  }
  return out;
}

// Renews the lease (false: lost, or unconfirmed) and, when every slot streams within the lag limit,
// the heartbeat, in one script (stream_lease.h: a renewal Redis runs late does nothing).
bool StreamInvalidator::renew(const StreamLease::Command& redis, StreamLease& lease, const std::string& token,
                              bool all_open, uint64_t lag) {
  const bool beat = all_open && lag <= options_.max_lag_bytes;
  if (!beat && lag > options_.max_lag_bytes && claimed_live_) {  // once, as it falls behind
    LOG_WARN("cache: the invalidation stream is " + std::to_string(lag) + " bytes behind the primary (limit " +
             std::to_string(options_.max_lag_bytes) + "): every lookup misses until it catches up");
  }
  // The heartbeat expires max_delay after the renewal was issued (stream_lease.h), so no later than this.
  const auto issued = std::chrono::steady_clock::now();
  StreamLease::Outcome renewed = lease.renew(redis, token, beat);
  if (renewed != StreamLease::Outcome::done) {
    LOG_WARN(renewed == StreamLease::Outcome::refused
                 ? "cache: this sidecar lost the invalidation stream's lease"
                 : "cache: the invalidation stream's lease renewal was not confirmed in time: stepping down");
    count_error();
    return false;
  }
  set_live(beat ? std::optional(issued + options_.max_delay) : std::nullopt);
  return true;
}

// Holds the lease: streams every slot, bumps what committed transactions wrote, confirms, beats.
// Returns when the lease is lost, Redis fails, or the invalidator stops.
void StreamInvalidator::lead(Redis& redis, StreamLease& lease, const std::string& token) {
  const Millis round = std::max(Millis(25), options_.max_delay / 4);
  const Millis batch_window = stream_batch_window(options_.max_delay);
  const StreamLease::Command command = [&redis](const std::vector<std::string>& args) { return redis.command(args); };
  Slots slots;
  for (const StreamTarget& t : options_.targets) slots.push_back(std::make_unique<Slot>(t));
  auto next_renewal = std::chrono::steady_clock::now();
  while (wait(Millis(0))) {
    bool all_open = open_slots(slots);
    // Wait for data, at most until the next renewal.
    std::vector<pollfd> fds;
    bool buffered = false;  // a slot has a whole record in OpenSSL's buffer: no wait on the sockets
    for (auto& s : slots) {
      if (s->conn != nullptr) fds.push_back({PQsocket(s->conn), POLLIN, 0});
      buffered = buffered || (s->conn != nullptr && s->record_ready());
    }
    auto now = std::chrono::steady_clock::now();
    auto until = buffered ? Millis(0) : std::max(Millis(0), std::chrono::duration_cast<Millis>(next_renewal - now));
    if (!fds.empty()) {
      (void)poll(fds.data(), fds.size(), static_cast<int>(std::min(until, round).count()));
    } else if (!wait(std::min(until, round))) {
      break;
    }
    const bool round_due = std::chrono::steady_clock::now() >= next_renewal;
    const RoundResult served = serve_slots(slots, redis, round_due);
    all_open = all_open && served.all_open;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stats_.lag_bytes = served.lag;
    }
    if (!served.bumped_all) break;
    if (round_due) {
      if (!renew(command, lease, token, all_open, served.lag)) break;
      next_renewal = std::chrono::steady_clock::now() + round;
    }
    // Under a stream of writes, the next ones are read together after a pause (stream_batch_window):
    // one wakeup, one Redis bump and one confirmation for all of them, not one per transaction (a busy
    // primary sends thousands a second).
    // A slot with more to read goes round again at once.
    if (served.had_data && served.drained && !wait(batch_window)) break;
  }
  set_live(std::nullopt);
  // Let another sidecar lead at once rather than after the lease lapses (only if still ours).
  (void)lease.release(command, token);
}

}  // namespace pgs::proxy
