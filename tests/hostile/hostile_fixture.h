// The hostile suite's fixture: a proxy with ONE worker and a pool of ONE server (so a leaked or stuck
// server shows at once), a short query_wait_timeout (a leak becomes an error, not a hang), a 1 MiB
// max_message_bytes, and the assertions every case shares.
#pragma once

#include <sys/socket.h>

#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "tests/hostile/hostile_support.h"

namespace pgs::it::hostile {

inline constexpr uint32_t kMaxMessage = 1u << 20;  // [proxy] max_message_bytes in this suite
inline constexpr Millis kAnswerDeadline{5000};      // a bad input is answered or closed within this

class HostileTest : public ProxyTest {
 protected:
  void SetUp() override {
    ProxyTest::SetUp();
    if (is_direct()) GTEST_SKIP() << "the hostile suite tests the pgsidecar process";
    ProxyOptions o;
    o.pool_size = 1;
    o.workers = 1;
    o.query_wait_timeout = "5s";
    o.client_login_timeout = "3s";
    o.max_message_bytes = kMaxMessage;
    start_proxy(o);
    Pg pg(proxy_->spec());
    ASSERT_TRUE(pg.ok()) << pg.error();
    pg.must("CREATE TABLE IF NOT EXISTS hostile_rows(id int, v text)");
    pg.must("TRUNCATE hostile_rows");
  }

  std::unique_ptr<RawConn> open() { return std::make_unique<RawConn>(proxy_->host(), proxy_->port()); }
  std::unique_ptr<RawConn> open_logged_in() {
    auto c = open();
    LoginOutcome l = login(*c, kUser, kPassword, kDatabase, {{"application_name", "hostile"}});
    EXPECT_TRUE(l.ok) << l.describe();
    return c;
  }

  // The honest client on the pool of one server sees nothing of the hostile one (hostile_support.h).
  void expect_clean(const std::string& what) {
    HonestReport r = check_honest(*proxy_);
    EXPECT_TRUE(r.ok()) << "after " << what << ":" << r.describe();
  }
};

// A bad input's answer: an ErrorResponse with a SQLSTATE or a clean close (or, with `ready_ok`, a
// ReadyForQuery for input a server accepts), never silence past the deadline.
inline void expect_answered(const Verdict& v, const std::string& what, bool ready_ok) {
  EXPECT_FALSE(v.timed_out) << what << ": no answer and not closed within the deadline (hang): " << v.describe();
  if (v.error) {
    EXPECT_EQ(v.error->sqlstate().size(), 5u) << what << ": ErrorResponse without a SQLSTATE: " << v.describe();
  } else if (!v.closed && !v.timed_out) {
    EXPECT_TRUE(ready_ok) << what << ": neither an error nor a close: " << v.describe();
  }
}

// When the connection is still open, its next Query gets exactly its own answer (no stale or foreign
// rows; ReadyForQuery messages of the earlier batch may still precede it) or it is closed.
inline void expect_in_sync(RawConn& c, const std::string& what) {
  if (c.closed()) return;
  if (!c.send(query_message("SELECT 'hostile-alive'"))) return;  // closed meanwhile
  auto end = std::chrono::steady_clock::now() + kAnswerDeadline;
  while (true) {
    auto left = std::chrono::duration_cast<Millis>(end - std::chrono::steady_clock::now());
    Verdict v = read_verdict(c, left < Millis(0) ? Millis(0) : left);
    if (v.closed) return;
    ASSERT_FALSE(v.timed_out) << what << ": the next Query got no ReadyForQuery in time: " << v.describe();
    for (const Row& r : data_rows(v.messages)) {
      ASSERT_TRUE(r.size() == 1 && r[0] == "hostile-alive")
          << what << ": a row that is not this Query's answer: " << r[0].value_or("NULL");
      return;  // its answer arrived, and this ReadyForQuery closed it
    }
  }
}

// Sends `bytes`; true when the whole input went out or the proxy closed meanwhile (both fine), false
// when the proxy stopped reading for `kAnswerDeadline` without closing.
inline bool send_or_closed(RawConn& c, std::string_view bytes) {
  return send_within(c, bytes, kAnswerDeadline) != SendResult::timed_out;
}

}  // namespace pgs::it::hostile
