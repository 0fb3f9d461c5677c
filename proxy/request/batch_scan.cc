#include "proxy/request/batch_scan.h"

#include "protocol/frontend.h"

namespace pgs::proxy {

namespace pf = protocol::frontend;

namespace {

router::StatementSummary unknown_write() {
  router::StatementSummary s;
  s.read_only = false;
  s.writes = true;
  return s;
}

void combine(router::StatementSummary& acc, const router::StatementSummary& next, bool first) {
  if (first) {
    acc = next;
    return;
  }
  router::combine_statements(acc, next);
}

}  // namespace

BatchFacts scan_batch(const BufferedRequest& request, const ClassifyFn& classify, const PreparedSqlFn& prepared_sql) {
  BatchFacts facts;
  facts.summary = unknown_write();
  bool first = true;
  bool parsed_unnamed = false;
  for (const pf::Message& m : request.messages) {
    std::string_view sql;
    bool has_sql = false;
    if (const auto* q = m.as<pf::Query>()) {
      combine(facts.summary, router::summarize(*classify(q->sql)), first);
      facts.complete = true;
      return facts;
    }
    if (const auto* p = m.as<pf::Parse>()) {
      sql = p->sql;
      has_sql = true;
      if (p->name.empty()) parsed_unnamed = true;
    } else if (const auto* b = m.as<pf::BindView>()) {
      if (b->statement.empty()) {
        if (!parsed_unnamed) return facts;  // an unnamed statement from an earlier request: unknown
      } else {
        const std::string* text = prepared_sql(b->statement);
        if (text == nullptr) return facts;
        sql = *text;
        has_sql = true;
      }
    } else if (m.type() == 'S') {
      facts.complete = !first;  // a lone Sync: nothing to route, the primary answers it
      if (first) facts.summary = unknown_write();
      return facts;
    } else if (m.type() != 'D' && m.type() != 'E' && m.type() != 'C' && m.type() != 'H') {
      return facts;  // FunctionCall, COPY data: primary
    }
    if (has_sql) {
      combine(facts.summary, router::summarize(*classify(sql)), first);
      first = false;
    }
  }
  return facts;  // not all buffered (or a message that does not decode): the primary decides nothing wrong
}

}  // namespace pgs::proxy
