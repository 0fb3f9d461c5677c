#include "tests/hostile/hostile_support.h"

#include <cstdlib>

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <sstream>

namespace pgs::it::hostile {

std::string with_length(char type, uint32_t declared, std::string_view body) {
  return std::string(1, type) + be32(declared) + std::string(body);
}

std::string parse_msg(const std::string& name, const std::string& sql, const std::vector<uint32_t>& oids) {
  std::string body = cstr(name) + cstr(sql) + be16(uint16_t(oids.size()));
  for (uint32_t o : oids) body += be32(o);
  return typed_message('P', body);
}

std::string bind_msg(const std::string& portal, const std::string& stmt,
                     const std::vector<std::optional<std::string>>& params) {
  std::string body = cstr(portal) + cstr(stmt) + be16(0) + be16(uint16_t(params.size()));
  for (const auto& p : params) {
    if (!p) {
      body += be32(0xffffffffu);
    } else {
      body += be32(uint32_t(p->size())) + *p;
    }
  }
  return typed_message('B', body + be16(0));
}

std::string describe_msg(char kind, const std::string& name) { return typed_message('D', kind + cstr(name)); }

std::string execute_msg(const std::string& portal, int32_t max_rows) {
  return typed_message('E', cstr(portal) + be32(uint32_t(max_rows)));
}

std::string close_msg(char kind, const std::string& name) { return typed_message('C', kind + cstr(name)); }

std::string function_call_msg(uint32_t oid, const std::vector<std::string>& args) {
  std::string body = be32(oid) + be16(0) + be16(uint16_t(args.size()));
  for (const auto& a : args) body += be32(uint32_t(a.size())) + a;
  return typed_message('F', body + be16(0));
}

std::vector<TypeSample> frontend_samples() {
  auto body_of = [](const std::string& msg) { return msg.substr(5); };
  return {
      {'Q', "Query", cstr("SELECT 1")},
      {'P', "Parse", body_of(parse_msg("", "SELECT $1::int", {23}))},
      {'B', "Bind", body_of(bind_msg("", "", {std::string("7")}))},
      {'D', "Describe", body_of(describe_msg('S', ""))},
      {'E', "Execute", body_of(execute_msg("", 0))},
      {'S', "Sync", ""},
      {'H', "Flush", ""},
      {'C', "Close", body_of(close_msg('S', ""))},
      {'d', "CopyData", "1\thostile\n"},
      {'c', "CopyDone", ""},
      {'f', "CopyFail", cstr("hostile abort")},
      {'F', "FunctionCall", body_of(function_call_msg(2026, {}))},  // pg_backend_pid()
      {'X', "Terminate", ""},
      {'p', "PasswordMessage", cstr("not-a-password")},
      {'j', "unknown_j", "junk"},
      {'\0', "unknown_nul", ""},
      {'\xff', "unknown_ff", "x"},
      {'Z', "backend_ReadyForQuery", "I"},
      {'T', "backend_RowDescription", be16(0)},
  };
}

SendResult send_within(RawConn& c, std::string_view bytes, Millis deadline) {
  auto end = Clock::now() + deadline;
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::send(c.fd(), bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      done += size_t(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{c.fd(), POLLOUT, 0};
      int r = poll(&p, 1, ms_left(end));
      if (r == 0) return SendResult::timed_out;
      if (r > 0 && (p.revents & (POLLERR | POLLHUP)) != 0) return SendResult::closed;
      continue;
    }
    return SendResult::closed;
  }
  return SendResult::ok;
}

std::string Verdict::describe() const {
  std::ostringstream os;
  os << "messages:";
  for (const auto& m : messages) os << ' ' << (m.type >= 32 && m.type < 127 ? m.type : '?');
  if (error) os << " error=[" << error->describe() << "]";
  if (ready != 0) os << " ready=" << ready;
  if (closed) os << " closed";
  if (timed_out) os << " TIMED-OUT";
  return os.str();
}

Verdict read_verdict(RawConn& c, Millis deadline, bool stop_at_error) {
  Verdict v;
  auto end = Clock::now() + deadline;
  while (true) {
    auto m = c.read_message(Millis(ms_left(end)));
    if (!m) {
      v.closed = c.closed();
      v.timed_out = !v.closed;
      return v;
    }
    v.messages.push_back(*m);
    if (m->type == 'E' && !v.error) {
      v.error = parse_error_fields(m->body);
      if (stop_at_error) return v;
    }
    if (m->type == 'Z') {
      v.ready = m->body.empty() ? '?' : m->body[0];
      return v;
    }
  }
}

std::vector<Row> data_rows(const std::vector<Msg>& messages) {
  std::vector<Row> rows;
  for (const auto& m : messages) {
    if (m.type != 'D' || m.body.size() < 2) continue;
    const std::string& b = m.body;
    int n = (uint8_t(b[0]) << 8) | uint8_t(b[1]);
    size_t at = 2;
    Row row;
    for (int i = 0; i < n && at + 4 <= b.size(); ++i) {
      uint32_t len = get_be32(b, at);
      at += 4;
      if (len == 0xffffffffu) {
        row.push_back(std::nullopt);
        continue;
      }
      if (at + len > b.size()) break;
      row.push_back(b.substr(at, len));
      at += len;
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

std::string all_bodies(const std::vector<Msg>& messages) {
  std::string out;
  for (const auto& m : messages) out += m.body;
  return out;
}

std::string hostile_prelude(RawConn& c, Proxy& p) {
  (void)p;
  LoginOutcome l = login(c, kUser, kPassword, kDatabase, {{"application_name", "hostile"}});
  if (!l.ok) return "hostile login: " + l.describe();
  const std::string steps[] = {
      "SET application_name = 'hostile'",
      "SET statement_timeout = '7777ms'",
      std::string("PREPARE hostile_stmt AS SELECT '") + kHostileSecret + "'",
      "LISTEN hostile_chan",
      "SELECT pg_try_advisory_lock(" + std::to_string(kHostileLockKey) + ")",
      "CREATE TEMP TABLE hostile_tmp(x text)",
      "BEGIN",
      std::string("INSERT INTO hostile_tmp VALUES ('") + kHostileSecret + "')",
  };
  for (const auto& sql : steps) {
    QueryOutcome q = simple_query(c, sql, Millis(10000));
    if (q.error) return sql + ": " + q.error->describe();
    if (q.status == 0) return sql + ": no ReadyForQuery" + (q.closed ? " (closed)" : " (timeout)");
    if (sql.find("advisory") != std::string::npos) {
      auto rows = data_rows(q.messages);
      if (rows.empty() || rows[0].empty() || rows[0][0] != "t") return "advisory lock was not free (a leak?)";
    }
  }
  return "";
}

std::string HonestReport::describe() const {
  std::string s;
  for (const auto& p : problems) s += "\n  - " + p;
  return s;
}

namespace {

// The honest client's own queries; appends problems to `r`.
void honest_queries(Proxy& p, Millis deadline, HonestReport& r, bool listed_foreign_statements_ok) {
  RawConn c(p.host(), p.port());
  LoginOutcome l = login(c, kUser, kPassword, kDatabase, {{"application_name", "honest"}}, deadline);
  if (!l.ok) {
    r.problems.push_back("honest login: " + l.describe());
    return;
  }
  std::string seen;
  QueryOutcome one = simple_query(c, "SELECT 1", deadline);
  seen += all_bodies(one.messages);
  auto rows = data_rows(one.messages);
  if (one.error || one.status == 0 || rows.empty() || rows[0][0] != "1") {
    r.problems.push_back(std::string("SELECT 1 failed: ") +
                         (one.error ? one.error->describe() : one.closed ? "closed" : "no answer in time"));
    return;
  }
  if (one.status != 'I') r.problems.push_back(std::string("a transaction is open: ReadyForQuery ") + one.status);
  QueryOutcome st = simple_query(
      c,
      "SELECT current_setting('application_name'), current_setting('statement_timeout'), "
      "(SELECT count(*) FROM pg_prepared_statements WHERE name NOT LIKE 'pgsidecar%'), "
      "(SELECT count(*) FROM pg_listening_channels()), to_regclass('pg_temp.hostile_tmp') IS NULL",
      deadline);
  seen += all_bodies(st.messages);
  rows = data_rows(st.messages);
  if (st.error || rows.size() != 1 || rows[0].size() != 5) {
    r.problems.push_back("state query failed: " + (st.error ? st.error->describe() : std::string("bad reply")));
  } else {
    const Row& v = rows[0];
    if (v[0] != "honest") r.problems.push_back("application_name is '" + v[0].value_or("NULL") + "'");
    if (v[1] == "7777ms") r.problems.push_back("the hostile statement_timeout is visible");
    if (v[2] != "0") {
      r.foreign_sql_prepared = std::atoi(v[2].value_or("0").c_str());
      if (!listed_foreign_statements_ok) r.problems.push_back(v[2].value_or("?") + " foreign prepared statement(s) visible");
    }
    if (v[3] != "0") r.problems.push_back(v[3].value_or("?") + " LISTEN channel(s) visible");
    if (v[4] != "t") r.problems.push_back("the hostile temp table is visible");
  }
  QueryOutcome ex = simple_query(c, "EXECUTE hostile_stmt", deadline);
  seen += all_bodies(ex.messages);
  if (!ex.error) r.problems.push_back("EXECUTE hostile_stmt succeeded: the hostile statement leaked");
  if (ex.status != 'I') r.problems.push_back(std::string("after EXECUTE: ReadyForQuery ") + (ex.status ? ex.status : '0'));
  if (seen.find(kHostileSecret) != std::string::npos) r.problems.push_back("a reply carried the hostile secret");
  c.send(terminate_message());
}

}  // namespace

HonestReport check_honest(Proxy& p, int max_servers, Millis deadline, bool listed_foreign_statements_ok) {
  HonestReport r;
  if (!p.alive()) {
    r.problems.push_back("proxy process died");
    return r;
  }
  honest_queries(p, deadline, r, listed_foreign_statements_ok);
  Pg su = superuser(kDatabase);
  std::string locks;
  bool released = wait_until(
      [&] {
        try {
          locks = su.scalar("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = " +
                            std::to_string(kHostileLockKey));
        } catch (const std::exception& e) {
          locks = e.what();
        }
        return locks == "0";
      },
      Millis(5000));
  if (!released) r.problems.push_back("hostile advisory lock still held: " + locks);
  int servers = -1;
  bool few = wait_until([&] { return (servers = p.server_backends(kDatabase)) <= max_servers; }, Millis(5000));
  if (!few) r.problems.push_back("leaked servers: " + std::to_string(servers) + " open to the primary");
  if (!p.alive()) r.problems.push_back("proxy process died");
  return r;
}

std::optional<PoolCounts> show_pools(Proxy& p) {
  Pg admin(p.conninfo(kAdminUser, kAdminPassword, "pgsidecar"));
  if (!admin.ok()) return std::nullopt;
  auto res = admin.exec_within("SHOW POOLS", Millis(5000));
  if (!res || !res->ok()) return std::nullopt;
  PGresult* r = res->get();
  auto col = [&](const char* name, int row) {
    int f = PQfnumber(r, name);
    return f < 0 ? 0 : std::atoi(PQgetvalue(r, row, f));
  };
  for (int i = 0; i < res->rows(); ++i) {
    int db = PQfnumber(r, "database"), user = PQfnumber(r, "user"), node = PQfnumber(r, "node");
    if (db < 0 || user < 0) continue;
    if (std::string(PQgetvalue(r, i, db)) != kDatabase || std::string(PQgetvalue(r, i, user)) != kUser) continue;
    if (node >= 0 && std::string(PQgetvalue(r, i, node)) != "primary") continue;
    PoolCounts pc;
    pc.cl_active = col("cl_active", i);
    pc.cl_waiting = col("cl_waiting", i);
    pc.sv_active = col("sv_active", i);
    pc.sv_idle = col("sv_idle", i);
    pc.sv_used = col("sv_used", i);
    pc.sv_login = col("sv_login", i);
    return pc;
  }
  return PoolCounts{};  // no row yet: nothing pooled
}

}  // namespace pgs::it::hostile
