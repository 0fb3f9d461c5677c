#include "app/pg.h"

#include <charconv>
#include <cstring>

namespace pgs::app {
namespace {

// Type OIDs from pg_type.h (stable across versions).
constexpr Oid kBool = 16, kInt8 = 20, kInt2 = 21, kInt4 = 23, kJson = 114, kFloat4 = 700,
              kFloat8 = 701, kTimestamp = 1114, kTimestamptz = 1184, kJsonb = 3802;

// "2026-11-26 18:54:02.123+00" -> "2026-11-26T18:54:02.123+00:00" (ISO 8601 / RFC 3339).
std::string iso_timestamp(std::string_view pg) {
  std::string out(pg);
  if (out.size() > 10 && out[10] == ' ') out[10] = 'T';
  const auto sign = out.find_last_of("+-");
  if (sign != std::string::npos && sign > 10 && out.size() - sign == 3) out += ":00";
  return out;
}

boost::json::value typed_value(Oid type, std::string_view text) {
  switch (type) {
    case kInt2:
    case kInt4:
    case kInt8: {
      std::int64_t v = 0;
      std::from_chars(text.data(), text.data() + text.size(), v);
      return v;
    }
    case kFloat4:
    case kFloat8: return std::strtod(std::string(text).c_str(), nullptr);
    case kBool: return text == "t";
    case kJson:
    case kJsonb: {
      boost::system::error_code ec;
      auto v = boost::json::parse(text, ec);
      return ec ? boost::json::value(boost::json::string(text)) : v;
    }
    case kTimestamptz:
    case kTimestamp: return boost::json::string(iso_timestamp(text));
    default: return boost::json::string(text);
  }
}

std::string conn_error(PGconn* conn) {
  std::string msg = conn != nullptr ? PQerrorMessage(conn) : "out of memory";
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  return msg;
}

}  // namespace

DbError make_db_error(const std::string& sqlstate, const std::string& message, bool connection_ok) {
  using K = DbError::Kind;
  DbError e{K::other, sqlstate, message};
  if (!connection_ok || sqlstate.starts_with("08") || sqlstate.starts_with("57P") || sqlstate == "53300") {
    e.kind = K::unavailable;  // connection exceptions, admin shutdown, too many connections
  } else if (sqlstate == "23505") {
    e.kind = K::unique;
  } else if (sqlstate == "23503") {
    e.kind = K::missing_ref;
  } else if (sqlstate == "23514" && message.find("no partition") != std::string::npos) {
    e.kind = K::no_partition;
  } else if (sqlstate.starts_with("22") || sqlstate == "23514" || sqlstate == "23502") {
    e.kind = K::bad_input;
  }
  return e;
}

int Rows::affected() const {
  const char* n = PQcmdTuples(res_.get());
  return (n != nullptr && *n != '\0') ? std::atoi(n) : 0;
}

std::string_view Rows::text(int row, int col) const {
  return {PQgetvalue(res_.get(), row, col), static_cast<size_t>(PQgetlength(res_.get(), row, col))};
}

std::int64_t Rows::int64(int row, int col) const {
  const std::string_view t = text(row, col);
  std::int64_t v = 0;
  std::from_chars(t.data(), t.data() + t.size(), v);
  return v;
}

boost::json::object Rows::row_json(int row) const {
  boost::json::object obj;
  const int ncols = PQnfields(res_.get());
  for (int c = 0; c < ncols; ++c) {
    const char* name = PQfname(res_.get(), c);
    obj[name] = is_null(row, c) ? boost::json::value(nullptr) : typed_value(PQftype(res_.get(), c), text(row, c));
  }
  return obj;
}

boost::json::array Rows::all_json() const {
  boost::json::array arr;
  arr.reserve(static_cast<size_t>(size()));
  for (int r = 0; r < size(); ++r) arr.emplace_back(row_json(r));
  return arr;
}

Outcome<std::unique_ptr<PgConn>, DbError> PgConn::connect(const std::string& conninfo) {
  // Earlier keywords are overridden by what the expanded dbname (the conninfo) sets.
  const char* keys[] = {"connect_timeout", "application_name", "dbname", nullptr};
  const char* values[] = {"3", "flopods-api", conninfo.c_str(), nullptr};
  PGconn* conn = PQconnectdbParams(keys, values, 1);
  if (conn == nullptr || PQstatus(conn) != CONNECTION_OK) {
    DbError e = make_db_error("", conn_error(conn), false);
    PQfinish(conn);
    return e;
  }
  // NOTICEs ("relation ... already exists, skipping") are expected chatter here, not news.
  PQsetNoticeProcessor(conn, [](void*, const char*) {}, nullptr);
  return std::unique_ptr<PgConn>(new PgConn(conn));
}

PgConn::~PgConn() { PQfinish(conn_); }

bool PgConn::broken() const {
  if (PQstatus(conn_) != CONNECTION_OK) return true;
  const auto ts = PQtransactionStatus(conn_);
  return ts == PQTRANS_ACTIVE || ts == PQTRANS_UNKNOWN;
}

bool PgConn::in_transaction() const {
  const auto ts = PQtransactionStatus(conn_);
  return ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR;
}

Outcome<Rows, DbError> PgConn::finish(PGresult* res) {
  const auto status = PQresultStatus(res);
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return Rows(res);
  const char* state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
  const char* primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
  std::string message = primary != nullptr ? primary : conn_error(conn_);
  DbError e = make_db_error(state != nullptr ? state : "", message, PQstatus(conn_) == CONNECTION_OK);
  PQclear(res);
  return e;
}

Outcome<std::string, DbError> PgConn::statement_name(std::string_view sql, int nparams) {
  const std::string key(sql);
  if (auto it = statements_.find(key); it != statements_.end()) return it->second;
  std::string name = "fp_" + std::to_string(statements_.size() + 1);
  auto done = finish(PQprepare(conn_, name.c_str(), key.c_str(), nparams, nullptr));
  if (!done) return done.error();
  statements_.emplace(key, name);
  return name;
}

Outcome<Rows, DbError> PgConn::exec(std::string_view sql, const std::vector<Param>& params) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  const int n = static_cast<int>(params.size());
  if (prepared_) {
    auto name = statement_name(sql, n);
    if (!name) return name.error();
    return finish(PQexecPrepared(conn_, name->c_str(), n, values.data(), nullptr, nullptr, 0));
  }
  const std::string text(sql);
  return finish(PQexecParams(conn_, text.c_str(), n, nullptr, values.data(), nullptr, nullptr, 0));
}

Outcome<Rows, DbError> PgConn::exec_script(std::string_view sql) {
  const std::string text(sql);
  PGresult* last = nullptr;
  if (!PQsendQuery(conn_, text.c_str())) return make_db_error("", conn_error(conn_), false);
  // A script yields one result per statement: keep the first error, or else the last result.
  PGresult* error = nullptr;
  while (PGresult* r = PQgetResult(conn_)) {
    const auto st = PQresultStatus(r);
    const bool failed = st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY;
    if (failed && error == nullptr) {
      error = r;
      continue;
    }
    PQclear(last);
    last = r;
  }
  if (error != nullptr) {
    PQclear(last);
    return finish(error);
  }
  if (last == nullptr) return make_db_error("", conn_error(conn_), PQstatus(conn_) == CONNECTION_OK);
  if (PQresultStatus(last) == PGRES_EMPTY_QUERY) {
    PQclear(last);
    return Rows(PQmakeEmptyPGresult(conn_, PGRES_COMMAND_OK));
  }
  return finish(last);
}

}  // namespace pgs::app
