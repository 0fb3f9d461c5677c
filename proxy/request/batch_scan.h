// What the next request of a client is, before it is given a server (issue 4): the buffered bytes from
// the start to the end of the first request — a Query, or extended-protocol messages up to a Sync — with
// the classifications of every statement in it combined. Anything not fully known reads as a write, so
// the router sends it to the primary. Pure apart from the callbacks it is given.
#pragma once

#include <functional>
#include <memory>
#include <string_view>

#include "proxy/request/buffered_request.h"
#include "router/classification.h"
#include "router/route.h"

namespace pgs::proxy {

struct BatchFacts {
  bool complete = false;            // the whole request is buffered
  router::StatementSummary summary; // combined over its statements (a write when incomplete)
};

using ClassifyFn = std::function<std::shared_ptr<const router::Classification>(std::string_view sql)>;
using PreparedSqlFn = std::function<const std::string*(std::string_view statement_name)>;

BatchFacts scan_batch(const BufferedRequest& request, const ClassifyFn& classify, const PreparedSqlFn& prepared_sql);

}  // namespace pgs::proxy
