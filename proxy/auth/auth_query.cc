#include "proxy/auth/auth_query.h"

#include "proxy/core/log.h"

namespace pgs::proxy {

namespace {

constexpr size_t kMaxRoleName = 63;  // NAMEDATALEN - 1: no longer name can be a role

// Postgres's server encoding here is UTF8: a name that is not valid UTF-8 cannot be a role (and the
// lookup would fail with an encoding error instead of saying "no such user").
bool valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n = 0;
    if (c < 0x80) {
      n = 0;
    } else if (c >= 0xc2 && c <= 0xdf) {
      n = 1;
    } else if ((c & 0xf0) == 0xe0) {
      n = 2;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
    } else {
      return false;
    }
    if (n > s.size() - i - 1) return false;
    for (size_t k = 1; k <= n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return false;
    }
    const auto c1 = n > 0 ? static_cast<unsigned char>(s[i + 1]) : 0;
    // Overlong forms and UTF-16 surrogates.
    if ((c == 0xe0 && c1 < 0xa0) || (c == 0xed && c1 >= 0xa0) || (c == 0xf0 && c1 < 0x90) ||
        (c == 0xf4 && c1 >= 0x90)) {
      return false;
    }
    i += n + 1;
  }
  return true;
}

}  // namespace

AuthQuery::AuthQuery(uv_loop_t* loop, HostResolver& resolver, Deliver deliver)
    : loop_(loop), resolver_(resolver), deliver_(std::move(deliver)) {}

AuthQuery::~AuthQuery() { shutdown(); }

void AuthQuery::apply_config(const conf::Config& config) {
  const conf::ProxyConfig& p = config.proxy;
  cache_.set_options({.ttl = p.auth_query_ttl,
                      .negative_ttl = p.auth_query_negative_ttl,
                      .max_entries = static_cast<size_t>(p.auth_query_cache_entries),
                      .max_pending = static_cast<size_t>(p.auth_query_max_pending)});
  max_running_ = p.auth_query_connections;
  target_.host = config.primary.host;
  target_.port = config.primary.port;
  target_.dbname = p.auth_dbname;
  target_.user = p.auth_user;
  target_.password = p.auth_password;
  target_.query = p.auth_query;
  target_.timeout = p.auth_query_timeout;
  conf::LibpqTls tls = conf::libpq_tls(config.primary);  // the primary's server_tls, as for every libpq connection
  target_.sslmode = tls.sslmode;
  target_.sslrootcert = tls.sslrootcert;
  std::string identity = p.auth_user + '\0' + p.auth_password + '\0' + p.auth_query + '\0' + p.auth_dbname +
                         '\0' + config.primary.host + ':' + std::to_string(config.primary.port);
  if (identity != identity_) cache_.clear();
  identity_ = std::move(identity);
  start_next();
}

std::optional<AuthAnswer> AuthQuery::lookup(const std::string& database, const std::string& user,
                                            uint64_t client) {
  if (user.empty() || user.size() > kMaxRoleName || !valid_utf8(user)) return AuthAnswer{};  // unknown
  const std::string dbname = target_.dbname.empty() ? database : target_.dbname;
  const std::string key = AuthCache::key(dbname, user);
  auto r = cache_.begin(key, client, AuthCache::Clock::now());
  switch (r.what) {
    case AuthCache::Begin::hit:
      ++counts_.cache_hits;
      return std::move(r.answer);
    case AuthCache::Begin::joined:
      ++counts_.joined;
      return std::nullopt;
    case AuthCache::Begin::full: {
      ++counts_.refused;
      AuthAnswer a;
      a.kind = AuthAnswer::Kind::failed;
      a.sqlstate = "53300";
      a.error = "too many authentication lookups in progress";
      return a;
    }
    case AuthCache::Begin::start:
      break;
  }
  queue_.push_back({key, dbname, user});
  start_next();
  return std::nullopt;
}

void AuthQuery::start_next() {
  while (!queue_.empty() && static_cast<int>(running_.size()) < max_running_) {
    Queued q = std::move(queue_.front());
    queue_.pop_front();
    AuthLookupTarget t = target_;
    t.dbname = q.dbname;
    const std::string key = q.key;
    auto lookup = std::make_unique<AuthLookup>(loop_, resolver_, std::move(t), q.user,
                                               [this, key](AuthAnswer a) { on_done(key, std::move(a)); });
    AuthLookup* raw = lookup.get();
    running_[key] = std::move(lookup);
    raw->start();  // may end at once (on_done)
  }
}

void AuthQuery::on_done(const std::string& key, AuthAnswer answer) {
  // The lookup calls this as its last act and touches nothing of its own afterwards: it can go now.
  running_.erase(key);
  switch (answer.kind) {
    case AuthAnswer::Kind::found: ++counts_.found; break;
    case AuthAnswer::Kind::unknown: ++counts_.unknown; break;
    case AuthAnswer::Kind::failed: ++counts_.failed; break;
  }
  if (answer.kind == AuthAnswer::Kind::failed) {
    LOG_WARN("auth_query lookup failed (SQLSTATE " + std::string(answer.sqlstate) + "): " + answer.error);
  }
  for (uint64_t client : cache_.complete(key, answer, AuthCache::Clock::now())) deliver_(client, answer);
  start_next();
}

void AuthQuery::shutdown() {
  queue_.clear();
  running_.clear();  // each abandons its lookup
}

}  // namespace pgs::proxy
