#include "proxy/request/batch_scan.h"

#include "protocol/frame.h"
#include "protocol/frontend.h"
#include "proxy/session/prepared.h"

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

BatchFacts scan_batch(protocol::Bytes buffered, uint32_t max_message_bytes, const ClassifyFn& classify,
                      const PreparedSqlFn& prepared_sql) {
  BatchFacts facts;
  facts.summary = unknown_write();
  bool first = true;
  bool parsed_unnamed = false;
  size_t offset = 0;
  while (offset < buffered.size()) {
    auto r = protocol::split_frame(buffered.subspan(offset), max_message_bytes);
    const auto* f = std::get_if<protocol::Frame>(&r);
    if (f == nullptr) return facts;  // incomplete or invalid: the primary decides nothing wrong
    offset += f->size;
    std::string_view sql;
    bool has_sql = false;
    switch (f->type) {
      case 'Q': {
        auto q = pf::Query::decode(f->body);
        if (!q.ok()) return facts;
        combine(facts.summary, router::summarize(*classify(q->sql)), first);
        facts.complete = true;
        return facts;
      }
      case 'P': {
        auto p = pf::Parse::decode(f->body);
        if (!p.ok()) return facts;
        sql = p->sql;
        has_sql = true;
        if (p->name.empty()) parsed_unnamed = true;
        break;
      }
      case 'B': {
        auto head = read_bind_head(protocol::as_string_view(f->body));
        if (!head) return facts;
        if (head->statement.empty()) {
          if (!parsed_unnamed) return facts;  // an unnamed statement from an earlier request: unknown
          break;
        }
        const std::string* text = prepared_sql(head->statement);
        if (text == nullptr) return facts;
        sql = *text;
        has_sql = true;
        break;
      }
      case 'S':
        facts.complete = !first;  // a lone Sync: nothing to route, the primary answers it
        if (first) facts.summary = unknown_write();
        return facts;
      case 'D':
      case 'E':
      case 'C':
      case 'H':
        break;
      default:
        return facts;  // FunctionCall, COPY data: primary
    }
    if (has_sql) {
      combine(facts.summary, router::summarize(*classify(sql)), first);
      first = false;
    }
  }
  return facts;
}

}  // namespace pgs::proxy
