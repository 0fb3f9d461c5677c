#include "cache/write_tables_memo.h"

namespace pgs::cache {

const std::vector<std::string>& WriteTablesMemo::tables(const std::shared_ptr<const router::Classification>& c,
                                                        const SessionFacts& facts,
                                                        const std::shared_ptr<const WriteDependencies>& deps,
                                                        const std::shared_ptr<const conf::CacheConfig>& only_classes_of) {
  if (deps != deps_ || only_classes_of != only_classes_of_) {  // catalog or config read again
    entries_.clear();
    deps_ = deps;
    only_classes_of_ = only_classes_of;
  }
  auto compute = [&](std::vector<std::string>& out) {
    out = tables_to_bump(*c, facts);
    if (deps_ && !out.empty()) deps_->expand(out);
    if (only_classes_of_ != nullptr) {
      std::erase_if(out, [&](const std::string& t) {
        return t != kAllTables && only_classes_of_->class_for_table(t) == nullptr;
      });
    }
  };
  auto it = entries_.find(c.get());
  if (it != entries_.end()) {
    Entry& e = it->second;
    if (e.role == facts.role && e.search_path == facts.search_path) {
      ++hits_;
      return e.tables;
    }
    // Another session's role or search_path: this one's answer replaces it.
    e.role.assign(facts.role);
    e.search_path.assign(facts.search_path);
    compute(e.tables);
    return e.tables;
  }
  if (max_entries_ == 0) {
    compute(scratch_);
    return scratch_;
  }
  if (entries_.size() >= max_entries_) entries_.clear();
  Entry& e = entries_[c.get()];
  e.classification = c;
  e.role.assign(facts.role);
  e.search_path.assign(facts.search_path);
  compute(e.tables);
  return e.tables;
}

}  // namespace pgs::cache
