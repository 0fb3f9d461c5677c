// libFuzzer target: classify(), the classifier cache, fingerprint(), normalize(), parse_hints() and
// route() on arbitrary bytes. Invariants checked: nothing unparsed or unsafe is read-only, statement
// slices stay inside the text, and a cached answer equals a fresh one.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "router/classifier_cache.h"
#include "router/fingerprint.h"
#include "router/route.h"

using namespace pgs::router;

namespace {
void check(bool ok) {
  if (!ok) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view sql(reinterpret_cast<const char*>(data), size);
  ClassifyOptions options;
  options.max_parse_bytes = 8192;
  Classification c = classify(sql, options);
  if (c.flags.parse_error || c.flags.oversized) check(!c.read_only);
  if (c.read_only) {
    check(c.tables_written.empty() && !c.flags.any_row_lock() && !c.flags.data_modifying_cte &&
          !c.flags.select_into && !c.flags.calls_unsafe_function && !c.flags.session_state);
  }
  for (const auto& s : c.statements) check(size_t{s.location} + s.length <= size);

  static ClassifierCache cache(64, options);
  auto cached = cache.classify(sql);
  check(cached->kind == c.kind && cached->read_only == c.read_only &&
        cached->tables_read == c.tables_read && cached->tables_written == c.tables_written);

  (void)fingerprint(sql, options);
  (void)normalize(sql, options);
  (void)parse_hints(sql);

  ReplicaSnapshot replicas[2];
  replicas[1].healthy = true;
  RouteInput in;
  in.statement = summarize(c);
  in.replicas = replicas;
  in.counter = size;
  Decision d = route(in, RouteOptions{});
  check(d.primary() || d.target == 1);
  if (!d.primary()) check(c.read_only || in.statement.replica_capable);
  return 0;
}
