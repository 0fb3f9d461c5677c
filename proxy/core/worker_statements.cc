// Worker: what it remembers of statement texts: the per-fingerprint digests and the memo of which
// statement shapes run code that may change session state.
#include "proxy/core/process.h"
#include "proxy/core/worker.h"
#include "proxy/session/statement_text.h"

namespace pgs::proxy {

void Worker::record_digest(std::string_view sql, std::chrono::microseconds took, uint64_t rows, bool error,
                           bool cache_hit, uint64_t shape) {
  if (!digests_ || snapshot_->config->observability.digest_top_n <= 0) return;
  // A statement seen before is found by its shape alone (runs_session_code may have made it already);
  // the normalised text is built only for a new entry.
  if (shape == 0) shape = lexical_shape(sql);
  if (digests_->record_if_present(shape, took, rows, error, cache_hit)) return;
  digests_->record(shape, lexical_normalize(sql), took, rows, error, cache_hit);
}

const SessionCodeCatalog* Worker::session_code() {
  uint64_t version = process_.catalog_version();  // one atomic load; the lock only when it moved
  if (version != session_code_version_ || !session_code_) {
    session_code_ = process_.session_code();
    session_code_version_ = version;
  }
  return session_code_.get();
}

bool Worker::runs_session_code(std::string_view sql, const std::function<bool()>& decide, uint64_t* shape_out) {
  constexpr size_t kMaxShapeBytes = 2048;  // lexical_normalize's window: the whole text must fit
  constexpr size_t kMaxEntries = 8192;
  if (sql.size() > kMaxShapeBytes) return decide();
  session_code();  // refresh the catalog copy: a new version invalidates every decision
  if (session_code_memo_version_ != session_code_version_) {
    session_code_memo_.clear();
    session_code_memo_version_ = session_code_version_;
  }
  uint64_t shape = lexical_shape(sql, kMaxShapeBytes);
  if (shape_out != nullptr) *shape_out = shape;
  if (auto it = session_code_memo_.find(shape); it != session_code_memo_.end()) return it->second;
  bool runs = decide();
  if (session_code_memo_.size() >= kMaxEntries) session_code_memo_.clear();
  session_code_memo_.emplace(shape, runs);
  return runs;
}

}  // namespace pgs::proxy
